#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh

npm ci --no-audit --no-fund --loglevel=error
npm test
# The extension inside a real VS Code (code-server + chromium; see docs/TESTING.md).
bash scripts/test-vscode.sh
