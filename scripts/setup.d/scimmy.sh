#!/usr/bin/env bash
# Starts a second, independent SCIM 2.0 server on 127.0.0.1 for the `generic` profile's
# end-to-end tests: SCIMMY and scimmy-routers (npm; another codebase than scim2-server) over
# the in-memory store in scripts/peers/scimmy/server.mjs. Its userName filter compares exactly
# (case-sensitive), it declares no enterprise extension, and it pages by 20.
# Contract (scripts/test.sh): append `export VAR=…` lines to $SCIMSYNC_TEST_ENV and the server's
# pid to $SCIMSYNC_TEST_PIDS. Each test uses its own tenant at /<tenant>/v2.
set -euo pipefail

: "${SCIMSYNC_TEST_ENV:?run from scripts/test.sh (SCIMSYNC_TEST_ENV unset)}"
: "${SCIMSYNC_TEST_PIDS:?run from scripts/test.sh (SCIMSYNC_TEST_PIDS unset)}"
here="$(cd "$(dirname "$0")/.." && pwd)/peers/scimmy"
CACHE="${SCIMSYNC_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/scimsync-ci}"
RUN_DIR="${SCIMSYNC_TEST_RUN_DIR:-$(mktemp -d)}"
# The versions are pinned in package.json and, with every dependency, in package-lock.json:
# a changed lock file gets a fresh install.
LOCK_SUM="$(sha256sum "$here/package-lock.json" | cut -c1-16)"
APP="$CACHE/scimmy-$LOCK_SUM"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "scimmy.sh: node and npm are required (apt-get install -y nodejs npm)" >&2
    exit 1
  fi
fi

if [ ! -d "$APP/node_modules/scimmy-routers" ]; then
  rm -rf "$APP"
  mkdir -p "$APP"
  cp "$here/package.json" "$here/package-lock.json" "$APP/"
  (cd "$APP" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
# The server itself is ours and small: always the worktree's copy.
cp "$here/server.mjs" "$APP/server.mjs"

PORT="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
TOKEN="$(node -e 'console.log(require("crypto").randomBytes(24).toString("base64url"))')"
LOG="$RUN_DIR/scimmy.log"

node "$APP/server.mjs" "$PORT" "$TOKEN" >"$LOG" 2>&1 &
PID=$!
echo "$PID" >>"$SCIMSYNC_TEST_PIDS"

# Wait until it answers (bounded: 100 × 0.1 s), through a probe tenant.
ready=""
for _ in $(seq 1 100); do
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "scimmy.sh: the server exited early; its log:" >&2
    cat "$LOG" >&2
    exit 1
  fi
  if node -e '
    const [port, token] = process.argv.slice(1);
    fetch(`http://127.0.0.1:${port}/ready-probe/v2/ServiceProviderConfig`,
          {headers: {Authorization: `Bearer ${token}`}})
      .then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1));
  ' "$PORT" "$TOKEN" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "scimmy.sh: the server did not answer on 127.0.0.1:$PORT within 10 s; its log:" >&2
  cat "$LOG" >&2
  exit 1
fi

echo "export SCIMSYNC_TEST_SCIMMY_URL=http://127.0.0.1:$PORT SCIMSYNC_TEST_SCIMMY_TOKEN=$TOKEN" \
  >>"$SCIMSYNC_TEST_ENV"
echo "scimmy.sh: SCIMMY peer on 127.0.0.1:$PORT (pid $PID)"
