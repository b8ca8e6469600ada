#!/usr/bin/env bash
# The test command (README): unit, property, golden and end-to-end tests of the whole workspace.
# End-to-end tests run the real binaries against the emulator on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null; then
  echo "cargo is required: install Rust from https://rustup.rs" >&2
  exit 1
fi
# The e2e tests drive the built binaries; build them first so the tests find them.
cargo build --locked --workspace --bins
cargo test --locked --workspace --no-fail-fast "$@"
