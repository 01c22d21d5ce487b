#!/usr/bin/env bash
# The extension's tests inside a real VS Code on this machine (VS Code desktop cannot be downloaded
# here: code-server, i.e. VS Code 1.139 served to Debian chromium), from a fresh machine:
#
#   1. tools: scripts/install-vscode.sh (chromium, Node 24, code-server; reused when complete)
#   2. build: `npm run build` (dist/extension.js), the in-host mocha suite (esbuild ->
#      out/vscode-suite/), the sshd test helper (esbuild bundle of test/servers/sshd.ts)
#   3. package: `vsce package --no-dependencies` (the repo's .vscodeignore decides the contents),
#      checks on the VSIX, install into a throwaway code-server profile
#   4. UI tests: code-server on 127.0.0.1 (free port), test/vscode/ui.mjs --phase ui (playwright-core +
#      chromium; a real sshd; Sync Now, sync on save, the status bar toggle, Preview and the Sync
#      view, a conflict settled in the diff editor, Clear Sync State, a password target; results
#      checked on disk; a screenshot of each step)
#   5. in-host tests: code-server again with the smoke-test driver, test/vscode/ui.mjs --phase host
#      (the mocha suite in the extension host, against another sshd)
#
# Prints "N passed, M failed" and exits non-zero on any failure. Screenshots and logs:
# test-results/vscode/. Everything started is killed by process group at the end (trap).
#
#   SYNCENGINE_VSCODE_TOOLS    tools folder (see install-vscode.sh)
#   SYNCENGINE_VSCODE_EXT_DIR  package this folder instead of the repository (must hold a built
#                              dist/extension.js; used to prove the harness with a stub extension)
#   SYNCENGINE_VSCODE_KEEP=1   keep the scratch folder (/tmp/syncengine-vscode.*) for inspection
#   SYNCENGINE_VSCODE_TIMEOUT  seconds before everything is stopped and the run fails (default 1800)
#   SYNCENGINE_VSCODE_PHASES   which test phases to run (default "ui host"; e.g. "ui" while working on
#                              the UI tests)
#   SYNCENGINE_VSCODE_GREP     only the in-host tests whose full title matches this regular expression
#   SYNCENGINE_VSCODE_BENCH_OUT  the host phase runs the figures suite (test/vscode/suite/*.bench.ts)
#                              instead of the tests and writes its figures to this JSON file
#                              (bench/extension.mjs WITH_VSCODE=1)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"
TOOLS="${SYNCENGINE_VSCODE_TOOLS:-$HOME/.cache/syncengine-vscode-tools}"
export SYNCENGINE_VSCODE_TOOLS="$TOOLS"
EXT_DIR="$(cd "${SYNCENGINE_VSCODE_EXT_DIR:-$REPO}" && pwd)"
OUT="$REPO/test-results/vscode"
LIMIT="${SYNCENGINE_VSCODE_TIMEOUT:-1800}"
PHASES=" ${SYNCENGINE_VSCODE_PHASES:-ui host} "
# The extension must not find an ssh-agent of the person running the tests (the password test needs
# a target with no usable key).
unset SSH_AUTH_SOCK SSH_AGENT_PID

t0=$(date +%s)
declare -a TIMES=()
stamp() { echo "[vscode +$(( $(date +%s) - t0 ))s] $*"; }
lap_start=$t0
lap() { local now; now=$(date +%s); TIMES+=("$1=$(( now - lap_start ))s"); lap_start=$now; }

PASSED=0; FAILED=0
check() {  # check NAME COMMAND...: one packaging test, counted with the others
  local name="$1"; shift
  local msg
  if msg=$("$@" 2>&1); then PASSED=$((PASSED + 1)); echo "PASS $name"
  else FAILED=$((FAILED + 1)); echo "FAIL $name"; [ -n "$msg" ] && echo "$msg" | sed 's/^/      /'; fi
}
SUMMARY_DONE=""
summary() { SUMMARY_DONE=1; echo "$PASSED passed, $FAILED failed"; }

# ---------------------------------------------------------------- process bookkeeping
WORK=""; CS_PID=""; DRV_PID=""; MEM_PID=""; DOG_PID=""
kill_group() {  # kill_group PGID: TERM, up to 5 s, then KILL
  local g="$1"
  [ -n "$g" ] || return 0
  kill -TERM -- -"$g" 2>/dev/null || return 0
  for _ in $(seq 1 20); do kill -0 -- -"$g" 2>/dev/null || return 0; sleep 0.25; done
  kill -KILL -- -"$g" 2>/dev/null || true
}
# Chromium left behind by a driver that was killed (its own process group; found by our profile path).
kill_chromium() { local p; for p in $(pgrep -f -- "--user-data-dir=$WORK/chromium-" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done; }
cleanup() {
  local rc=$?
  set +e
  if [ -z "$SUMMARY_DONE" ]; then  # stopped early (a failed step, a signal): still say so
    [ "$rc" -ne 0 ] && [ "$FAILED" -eq 0 ] && FAILED=1
    summary
  fi
  [ -n "$DOG_PID" ] && kill -- -"$DOG_PID" 2>/dev/null
  kill_group "$DRV_PID"; DRV_PID=""
  kill_group "$CS_PID"; CS_PID=""
  [ -n "$WORK" ] && kill_chromium
  [ -n "$MEM_PID" ] && kill "$MEM_PID" 2>/dev/null
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    [ -d "$WORK/run/udd/logs" ] && cp -r "$WORK/run/udd/logs" "$OUT/code-server-logs" 2>/dev/null
    if [ "${SYNCENGINE_VSCODE_KEEP:-}" = 1 ]; then echo "scratch folder kept: $WORK"; else rm -rf "$WORK"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM
# A hard limit for the whole run: a hung browser or server must not eat CI's time.
setsid bash -c "sleep $LIMIT; echo '[vscode] time limit of ${LIMIT}s reached: stopping'; kill -TERM $$" < /dev/null &
DOG_PID=$!

rm -rf "$OUT"; mkdir -p "$OUT"
WORK="$(mktemp -d /tmp/syncengine-vscode.XXXXXX)"
chmod 755 "$WORK"   # the sshd test user reads its keys below it

# ---------------------------------------------------------------- 1. tools
stamp "tools (scripts/install-vscode.sh)"
bash "$REPO/scripts/install-vscode.sh"
# shellcheck disable=SC1091
. "$TOOLS/env.sh"
lap tools

# ---------------------------------------------------------------- 2. build
stamp "build: npm run build, in-host suite, sshd helper"
npm run -s build
ESBUILD="$REPO/node_modules/.bin/esbuild"
rm -rf "$REPO/out/vscode-suite"
"$ESBUILD" test/vscode/suite/*.ts --platform=node --format=cjs --target=node20 --sourcemap \
  --outdir="$REPO/out/vscode-suite" --log-level=warning
"$ESBUILD" test/servers/sshd.ts --bundle --platform=node --format=cjs --target=node20 \
  --outfile="$WORK/sshd.cjs" --log-level=warning
if [ ! -f "$EXT_DIR/dist/extension.js" ]; then
  echo "FAIL $EXT_DIR/dist/extension.js does not exist: the extension is not built (npm run build)"
  FAILED=$((FAILED + 1)); summary; exit 1
fi
lap build

# ---------------------------------------------------------------- 3. package, check, install
stamp "package: vsce package --no-dependencies"
VSIX="$WORK/syncengine.vsix"
# --skip-license / --allow-missing-repository: vsce would otherwise ask on stdin and abort.
# --no-rewrite-relative-links: without a repository URL vsce refuses a README with relative links;
# that is a release concern (the marketplace page), not what these tests are about.
if (cd "$EXT_DIR" && "$REPO/node_modules/.bin/vsce" package --no-dependencies --skip-license \
      --allow-missing-repository --no-rewrite-relative-links -o "$VSIX" < /dev/null) > "$OUT/vsce.log" 2>&1; then
  PASSED=$((PASSED + 1)); echo "PASS vsce package"
else
  FAILED=$((FAILED + 1)); echo "FAIL vsce package"; sed 's/^/      /' "$OUT/vsce.log" | tail -20
  summary; exit 1
fi
unzip -Z1 "$VSIX" | sort > "$OUT/vsix-files.txt"
check "VSIX holds package.json and its main (dist/extension.js)" bash -c '
  set -e; f="$1"; main=$(node -p "require(process.argv[1]).main || \"\"" "$2/package.json")
  [ -n "$main" ] || { echo "package.json has no main"; exit 1; }
  for p in package.json "${main#./}"; do grep -qx "extension/$p" "$f" || { echo "extension/$p is not in the VSIX"; exit 1; }; done' _ "$OUT/vsix-files.txt" "$EXT_DIR"
# Bundles loaded by path at run time (the backends, the listing worker) must travel with
# dist/extension.js: follow the names each packaged-or-needed bundle mentions.
vsix_loads() {
  local -a need=(dist/extension.js) queue=(dist/extension.js)
  local cur f name missing=()
  while [ ${#queue[@]} -gt 0 ]; do
    cur="${queue[0]}"; queue=("${queue[@]:1}")
    for f in "$EXT_DIR"/dist/*.js; do
      name="$(basename "$f")"
      [[ " ${need[*]} " == *" dist/$name "* ]] && continue
      if grep -qF "$name" "$EXT_DIR/$cur" || { [[ "$name" == backend-* ]] && grep -qF 'backend-' "$EXT_DIR/$cur"; }; then
        need+=("dist/$name"); queue+=("dist/$name")
      fi
    done
  done
  for f in "${need[@]}"; do grep -qx "extension/$f" "$OUT/vsix-files.txt" || missing+=("$f"); done
  echo "loaded at run time: ${need[*]}"
  [ ${#missing[@]} -eq 0 ] || { echo "missing from the VSIX (see .vscodeignore): ${missing[*]}"; return 1; }
}
check "VSIX holds every bundle dist/extension.js loads by path" vsix_loads
echo "      VSIX: $(wc -l < "$OUT/vsix-files.txt") files, $(( $(stat -c %s "$VSIX") / 1024 )) KiB (list: test-results/vscode/vsix-files.txt)"

export XDG_CONFIG_HOME="$WORK/xdg/config" XDG_DATA_HOME="$WORK/xdg/data" XDG_CACHE_HOME="$WORK/xdg/cache"
CS_TMP="$WORK/tmp"   # code-server's sockets and temp files (only code-server gets this TMPDIR)
RUN="$WORK/run"
mkdir -p "$CS_TMP" "$RUN/udd/User" "$RUN/exts"
cat > "$RUN/udd/User/settings.json" <<'EOF'
{
  "workbench.startupEditor": "none",
  "workbench.secondarySideBar.defaultVisibility": "hidden",
  "security.workspace.trust.enabled": false,
  "telemetry.telemetryLevel": "off",
  "update.mode": "none",
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "workbench.tips.enabled": false,
  "chat.disableAIFeatures": true,
  "window.restoreWindows": "none"
}
EOF
cs() { TMPDIR="$CS_TMP" PATH="$NODE24_BIN:$PATH" EXTENSIONS_GALLERY='{}' "$CODE_SERVER_BIN" "$@"; }
stamp "install the VSIX into a throwaway code-server profile"
cs --user-data-dir "$RUN/udd" --extensions-dir "$RUN/exts" --install-extension "$VSIX" > "$OUT/install-extension.log" 2>&1 \
  || { cat "$OUT/install-extension.log"; echo "FAIL install the VSIX"; FAILED=$((FAILED + 1)); summary; exit 1; }
INSTALLED="$(ls -d "$RUN/exts"/syncengine.syncengine-* 2>/dev/null | head -1 || true)"
check "code-server installs the VSIX as syncengine.syncengine" test -f "$INSTALLED/dist/extension.js"
[ -n "$INSTALLED" ] || { summary; exit 1; }
lap package

# ---------------------------------------------------------------- code-server start/stop, memory sampling
free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
start_cs() {  # start_cs [extra args]: sets CS_PID (process-group leader) and CS_PORT
  local attempt
  for attempt in 1 2 3; do
    CS_PORT="$(free_port)"
    # --reconnection-grace-time: otherwise each closed browser tab leaves its extension host alive for hours.
    TMPDIR="$CS_TMP" PATH="$NODE24_BIN:$PATH" EXTENSIONS_GALLERY='{}' setsid "$CODE_SERVER_BIN" \
      --bind-addr "127.0.0.1:$CS_PORT" --auth none --disable-telemetry --disable-update-check \
      --disable-workspace-trust --reconnection-grace-time 5 "$@" \
      --user-data-dir "$RUN/udd" --extensions-dir "$RUN/exts" --config "$RUN/cs-config.yaml" \
      >> "$OUT/code-server.log" 2>&1 < /dev/null &
    CS_PID=$!
    for _ in $(seq 1 240); do
      curl -sf -o /dev/null "http://127.0.0.1:$CS_PORT/healthz" && break
      kill -0 "$CS_PID" 2>/dev/null || break
      sleep 0.25
    done
    if curl -sf -o /dev/null "http://127.0.0.1:$CS_PORT/healthz"; then
      # warm-up: the first workbench load of a fresh server is the slowest
      local wb
      wb=$(curl -sf "http://127.0.0.1:$CS_PORT/?folder=/" | grep -o '[^"]*workbench/workbench.js' | head -1 || true)
      [ -n "$wb" ] && curl -sf -o /dev/null --compressed "http://127.0.0.1:$CS_PORT/${wb#./}" || true
      return 0
    fi
    echo "code-server did not answer on port $CS_PORT (attempt $attempt); log: test-results/vscode/code-server.log"
    kill_group "$CS_PID"; CS_PID=""
  done
  return 1
}
stop_cs() { kill_group "$CS_PID"; CS_PID=""; }
# Peak resident memory, sampled every 0.5 s over process trees (chromium and the sshd run in process
# groups of their own, but they are descendants of the driver): "codeServerMiB driverMiB", the driver's
# tree being node + chromium + sshd.
sample_mem() {
  local cs="$1" drv="$2"
  while sleep 0.5; do
    ps -eo pid=,ppid=,rss= | awk -v cs="$cs" -v drv="$drv" '
      { rss[$1] = $3; kids[$2] = kids[$2] " " $1 }
      function tree(p,   n, i, k, sum) { sum = rss[p]; n = split(kids[p], k, " "); for (i = 1; i <= n; i++) sum += tree(k[i]); return sum }
      END { printf "%d %d\n", tree(cs) / 1024, tree(drv) / 1024 }'
  done
}
run_driver() {  # run_driver PHASE [env...]: the driver in its own process group; returns its exit code
  local phase="$1"; shift
  env CS_PORT="$CS_PORT" SYNCENGINE_VSCODE_WORK="$WORK" SYNCENGINE_VSCODE_OUT="$OUT" SSHD_MODULE="$WORK/sshd.cjs" \
    CHROMIUM_BIN="$CHROMIUM_BIN" "$@" setsid node "$REPO/test/vscode/ui.mjs" --phase "$phase" &
  DRV_PID=$!
  sample_mem "$CS_PID" "$DRV_PID" >> "$OUT/memory-$phase.txt" &
  MEM_PID=$!
  local rc=0
  wait "$DRV_PID" || rc=$?
  kill "$MEM_PID" 2>/dev/null || true; MEM_PID=""
  kill_group "$DRV_PID"; DRV_PID=""
  kill_chromium
  return "$rc"
}
# The extension host logs an activation that throws, while ext.activate() still resolves: look there.
activation_ok() {  # activation_ok MARKER: no "Activating extension syncengine.syncengine failed" since MARKER
  local logs err
  logs=$(find "$RUN/udd/logs" -name 'remoteexthost.log' -newer "$1" 2>/dev/null)
  [ -n "$logs" ] || { echo "no extension host log under $RUN/udd/logs"; return 1; }
  # shellcheck disable=SC2086
  err=$(grep -h -A2 'Activating extension syncengine.syncengine failed' $logs | head -6)
  [ -z "$err" ] || { echo "$err" | sed 's/^[0-9-]* [0-9:.]* //'; echo "(test-results/vscode/code-server-logs/*/exthost*/remoteexthost.log)"; return 1; }
}
add_results() {  # add the counts of a phase's results file
  local f="$OUT/$1-results.json" p fl
  if [ -f "$f" ]; then
    p=$(node -p "require('$f').passed"); fl=$(node -p "require('$f').failed")
  else
    p=0; fl=1; echo "FAIL $1 phase: no results file"
  fi
  PASSED=$((PASSED + p)); FAILED=$((FAILED + fl))
}

# ---------------------------------------------------------------- 4. UI tests
if [[ "$PHASES" == *" ui "* ]]; then
  stamp "UI tests (code-server + chromium + sshd)"
  touch "$WORK/ui.start"
  start_cs || { echo "FAIL code-server does not start"; FAILED=$((FAILED + 1)); summary; exit 1; }
  echo "      code-server $(cs --version 2>/dev/null | head -1) on 127.0.0.1:$CS_PORT"
  run_driver ui || true
  add_results ui
  check "ui: the extension activated without an error (extension host log)" activation_ok "$WORK/ui.start"
  stop_cs
  lap ui
fi

# ---------------------------------------------------------------- 5. in-host tests
if [[ "$PHASES" == *" host "* ]]; then
  stamp "in-host tests (mocha in the extension host, smoke-test driver)"
  # enable-smoke-test-driver: without it a built workbench ignores the test payload in the URL; it also
  # hides notifications and dialogs, which is why the UI tests run on a normal server.
  touch "$WORK/host.start"
  start_cs --vscode-option enable-smoke-test-driver || { echo "FAIL code-server does not start"; FAILED=$((FAILED + 1)); summary; exit 1; }
  run_driver host EXT_DEV_PATH="$INSTALLED" TESTS_PATH="$REPO/out/vscode-suite/index.js" || true
  add_results host
  check "host: the extension activated without an error (extension host log)" activation_ok "$WORK/host.start"
  stop_cs
  lap host
fi

# ---------------------------------------------------------------- summary
peak() { cat "$OUT"/memory-*.txt 2>/dev/null | awk '{ t = $1 + $2; if (t > m) { m = t; a = $1; b = $2 } }
  END { printf "%d MiB (code-server %d, driver: node + chromium + sshd %d)", m, a, b }'; }
{
  echo "total=$(( $(date +%s) - t0 ))s ${TIMES[*]}"
  echo "peak RSS: $(peak)"
} | tee "$OUT/timings.txt"
stamp "screenshots and logs: test-results/vscode/"
summary
[ "$FAILED" -eq 0 ]
