#!/usr/bin/env bash
# The test command (README): unit, property, golden and end-to-end tests of the whole workspace.
# End-to-end tests run the real binaries against the emulator on 127.0.0.1, and against real
# peers that scripts/setup.d/*.sh install and start on 127.0.0.1 (OpenLDAP's slapd, scim2-server).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null; then
  echo "cargo is required: install Rust from https://rustup.rs" >&2
  exit 1
fi

# Each setup script installs what it needs, starts its server on 127.0.0.1, appends
# `export VAR=…` lines to $SCIMSYNC_TEST_ENV for the tests, and its pid to $SCIMSYNC_TEST_PIDS.
export SCIMSYNC_TEST_RUN_DIR="$(mktemp -d)"
export SCIMSYNC_TEST_ENV="$SCIMSYNC_TEST_RUN_DIR/env"
export SCIMSYNC_TEST_PIDS="$SCIMSYNC_TEST_RUN_DIR/pids"
: >"$SCIMSYNC_TEST_ENV"; : >"$SCIMSYNC_TEST_PIDS"
cleanup() {
  while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$SCIMSYNC_TEST_PIDS"
  rm -rf "$SCIMSYNC_TEST_RUN_DIR"
}
trap cleanup EXIT
for setup in scripts/setup.d/*.sh; do
  [ -e "$setup" ] || continue
  echo "==> $setup"
  bash "$setup"
done
# shellcheck disable=SC1090
source "$SCIMSYNC_TEST_ENV"

# The e2e tests drive the built binaries; build them first so the tests find them.
cargo build --locked --workspace --bins
cargo test --locked --workspace --no-fail-fast "$@"
