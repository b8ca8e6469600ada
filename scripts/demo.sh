#!/usr/bin/env bash
# The offline demo: a real scimsync cycle against the bundled Miro emulator on 127.0.0.1,
# with examples/directory.json as the directory. No Miro account needed.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=8790
if ! command -v cargo >/dev/null; then
  echo "cargo is required: install Rust from https://rustup.rs" >&2
  exit 1
fi
echo "==> building scimsync and the emulator (first build takes a few minutes)"
cargo build --quiet --locked -p scimsync -p scimsync-emulator
BIN="${CARGO_TARGET_DIR:-target}/debug"

# A throwaway token for the emulator; a real one goes in an env var or a 0600 file, never in sync.toml.
export MIRO_SCIM_TOKEN="demo-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
# Miro's REST API (team assignment) has a credential of its own.
export MIRO_REST_TOKEN="demo-rest-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
rm -f scimsync.db scimsync.db-wal scimsync.db-shm scimsync.lock

LOG=$(mktemp)
"$BIN/scimsync-emulator" --port "$PORT" --token "$MIRO_SCIM_TOKEN" --rest-token "$MIRO_REST_TOKEN" \
  --group-model user-group --seed examples/emulator-seed.json >"$LOG" 2>&1 &
EMU=$!
trap 'kill $EMU 2>/dev/null || true; wait $EMU 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 100); do
  grep -q "listening on" "$LOG" && break
  kill -0 $EMU 2>/dev/null || { cat "$LOG" >&2; echo "the emulator did not start (is port $PORT free?)" >&2; exit 1; }
  sleep 0.1
done
grep -q "listening on" "$LOG" || { echo "the emulator did not start in 10 s" >&2; exit 1; }
echo "==> emulator: $(head -1 "$LOG") (Miro in 2026: user groups, teams over REST; seeded with an unmanaged admin, two guests, a differently-cased Priya Shah, a deactivated ex-employee, the Engineering and Design user groups, the Product and Platform teams)"

echo; echo "==> scimsync check"
"$BIN/scimsync" check
echo; echo "==> scimsync plan   (dry run: reads only)"
"$BIN/scimsync" plan
echo; echo "==> scimsync sync --now"
set +e
"$BIN/scimsync" sync --now
code=$?
set -e
echo "(exit code $code: 0 = all done, 3 = some operations failed and need a human: see events --failed)"
echo; echo "==> scimsync sync --now   (again: nothing changed, so nothing is sent)"
"$BIN/scimsync" sync --now || true
echo; echo "==> scimsync status"
"$BIN/scimsync" status
echo; echo "==> scimsync events --failed   (what needs a human)"
"$BIN/scimsync" events --failed
echo; echo "==> Miro's teams and the user groups assigned to them (REST API)"
curl -s "http://127.0.0.1:$PORT/_emulator/teams" 2>/dev/null | head -c 2000 || true
echo; echo; echo "==> what the emulator saw"
curl -s "http://127.0.0.1:$PORT/_emulator/stats" 2>/dev/null | head -c 2000 || true
echo
