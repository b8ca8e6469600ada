#!/usr/bin/env bash
# Starts scim2-server (PyPI, an RFC 7643/7644 server we did not write) on 127.0.0.1 for the
# `generic` profile's end-to-end tests (tests/it/generic.rs).
# Contract (scripts/test.sh): append `export VAR=…` lines to $SCIMSYNC_TEST_ENV and the server's
# pid to $SCIMSYNC_TEST_PIDS. With --dynamic-tenants each test uses its own store at /<tenant>/v2.
set -euo pipefail

VERSION=0.8.3
: "${SCIMSYNC_TEST_ENV:?run from scripts/test.sh (SCIMSYNC_TEST_ENV unset)}"
: "${SCIMSYNC_TEST_PIDS:?run from scripts/test.sh (SCIMSYNC_TEST_PIDS unset)}"
CACHE="${SCIMSYNC_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scimsync-ci}"
VENV="$CACHE/venv"
RUN_DIR="${SCIMSYNC_TEST_RUN_DIR:-$(mktemp -d)}"

if ! command -v python3 >/dev/null; then
  echo "scim2-server: python3 not found; install it (apt-get install -y python3 python3-venv)" >&2
  exit 1
fi

# Reuse the cached venv when it already holds this version; rebuild it otherwise.
# (pip's output captured first: `grep -q` closing the pipe early would fail under pipefail)
installed="$("$VENV/bin/python" -m pip show scim2-server 2>/dev/null || true)"
if ! grep -qx "Version: $VERSION" <<<"$installed"; then
  mkdir -p "$CACHE"
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    # Debian ships venv (and ensurepip) in a separate package.
    rm -rf "$VENV"
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      pyver="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq python3-venv "python${pyver}-venv" >/dev/null 2>&1 \
        || apt-get install -y -qq python3-venv >/dev/null
    else
      echo "scim2-server: python3 -m venv failed; install python3-venv" >&2
      exit 1
    fi
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "scim2-server==$VERSION"
fi

# A free loopback port: bind to 0 and let the kernel choose (a tiny race we accept; the wait
# below fails loudly if someone takes it first).
PORT="$("$VENV/bin/python" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
TOKEN="$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(24))')"
LOG="$RUN_DIR/scim2-server.log"

"$VENV/bin/scim2-server" --hostname 127.0.0.1 --port "$PORT" --bearer-token "$TOKEN" \
  --dynamic-tenants >"$LOG" 2>&1 &
PID=$!
echo "$PID" >>"$SCIMSYNC_TEST_PIDS"

# Wait until it answers (bounded: 100 × 0.1 s), through a probe tenant.
ready=""
for _ in $(seq 1 100); do
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "scim2-server exited early; its log:" >&2
    cat "$LOG" >&2
    exit 1
  fi
  if "$VENV/bin/python" - "$PORT" "$TOKEN" <<'EOF' 2>/dev/null; then
import sys, urllib.request
req = urllib.request.Request(
    f"http://127.0.0.1:{sys.argv[1]}/ready-probe/v2/ServiceProviderConfig",
    headers={"Authorization": f"Bearer {sys.argv[2]}"})
urllib.request.urlopen(req, timeout=1).read()
EOF
    ready=1
    break
  fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "scim2-server did not answer on 127.0.0.1:$PORT within 10 s; its log:" >&2
  cat "$LOG" >&2
  exit 1
fi

echo "export SCIMSYNC_TEST_SCIM2_URL=http://127.0.0.1:$PORT SCIMSYNC_TEST_SCIM2_TOKEN=$TOKEN" \
  >>"$SCIMSYNC_TEST_ENV"
echo "scim2-server $VERSION on 127.0.0.1:$PORT (pid $PID)"
