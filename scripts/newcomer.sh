#!/usr/bin/env bash
# A new admin's first hour, as a test: a fresh clone in a temp dir, a fresh CARGO_TARGET_DIR
# (nothing reused), then README's commands one by one, checking what README promises of each.
#
#   bash scripts/newcomer.sh                 # the demo, the release install, the token step, man
#   bash scripts/newcomer.sh --with-tests    # and `bash scripts/test.sh` in the clone too
#
# Cost on the project's 2-core machine (cold, nothing cached but the crates.io download cache):
# about 12 min for the debug build the demo makes and 6-18 min for the release install,
# depending on load; --with-tests adds the suite (about 10 min).
# Needs what README's "Before you start" lists, and port 8790 free (the demo's emulator).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WITH_TESTS=0
[ "${1:-}" = "--with-tests" ] && WITH_TESTS=1

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
fail() { echo "newcomer: FAILED: $*" >&2; exit 1; }
expect() { # expect FILE PATTERN WHAT
  grep -qE -- "$2" "$1" || { cat "$1" >&2; fail "$3 (no line matching: $2)"; }
}
started=$SECONDS
step() { echo "==> [$(( (SECONDS - started) / 60 ))m$(( (SECONDS - started) % 60 ))s] $*"; }

step "fresh clone of $(git -C "$REPO" rev-parse --short HEAD) into $WORK/scimsync"
git clone --quiet "$REPO" "$WORK/scimsync"
cd "$WORK/scimsync"
export CARGO_TARGET_DIR="$WORK/target"
[ ! -e target ] || fail "a fresh clone has a target/ directory"

step "README: bash scripts/demo.sh"
bash scripts/demo.sh >"$WORK/demo.out" 2>&1 || { cat "$WORK/demo.out" >&2; fail "the demo"; }
out="$WORK/demo.out"
# What README says to expect of the demo.
expect "$out" '^verdict: ready' "check: a clear verdict"
expect "$out" '^Plan: 45 to create, 3 to adopt, 1 to update, 0 to reactivate, 0 to deactivate, 0 to delete; 2 skipped' "plan: the summary"
expect "$out" '^run 1: 54 succeeded, 0 failed, 3 skipped' "first sync: 43 users created, Priya and 2 groups adopted, the guest and 2 suspended skipped"
expect "$out" 'users_post: 44 requests in [0-9.]+ s, one burst' "first sync: the creates in one burst"
expect "$out" 'adopted event=group_create_provision group=Engineering' "the Engineering user group adopted"
expect "$out" '^run 2: 0 succeeded, 0 failed, 3 skipped' "second sync: nothing sent"
expect "$out" '^managed users: 44$' "status: 43 created + Priya adopted"
expect "$out" 'SKIP +noor.aziz@agency.example' "events --failed: the guest"
expect "$out" '"name":"Platform","groups":\["[0-9]+"\]' "Engineering assigned to Platform"
if grep -nE 'Some\(|None' "$out"; then fail "Rust Debug text in the demo's output"; fi
created=$(grep -c 'ok event=user_create_provision' "$out")
[ "$created" = 43 ] || fail "the demo created $created users, README says 43"

step "README: cargo install --locked --path crates/cli"
cargo install --quiet --locked --path crates/cli --root "$WORK/install"
BIN="$WORK/install/bin/scimsync"
"$BIN" --version | grep -q '^scimsync ' || fail "the installed binary"

step "README: the token step (in a scratch root instead of /etc)"
ETC="$WORK/etc"
install -d -m 700 "$ETC/scimsync"
install -m 600 /dev/null "$ETC/scimsync/miro.token"
[ "$(stat -c %a "$ETC/scimsync/miro.token")" = 600 ] || fail "the token file's mode"

step "README: man pages and completions"
"$BIN" man --out-dir "$WORK/man" 2>/dev/null
for page in scimsync scimsync-plan scimsync-sync scimsync-daemon scimsync-events scimsync-status \
  scimsync-check scimsync-approve-deletes; do
  [ -s "$WORK/man/$page.1" ] || fail "no man page $page.1"
done
"$BIN" completions bash | grep -q scimsync || fail "bash completions"

step "README: errors a newcomer meets"
set +e
"$BIN" --config "$WORK/nope.toml" status >"$WORK/e1" 2>&1; c1=$?
"$BIN" --config sync.toml sync >"$WORK/e2" 2>&1; c2=$?
set -e
[ "$c1" = 1 ] || fail "a missing config exits 1 (got $c1)"
[ "$c2" = 2 ] || fail "sync without --now is a usage error, exit 2 (got $c2)"
[ "$(grep -c '^error:' "$WORK/e2")" = 1 ] || { cat "$WORK/e2" >&2; fail "an error printed once"; }

if [ "$WITH_TESTS" = 1 ]; then
  step "README: bash scripts/test.sh"
  bash scripts/test.sh
fi
step "newcomer: everything README promises holds"
