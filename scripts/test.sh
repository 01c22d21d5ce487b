#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# git is the reference for the ignore-rule tests.
if ! command -v git >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq git >/dev/null
fi

npm ci --no-audit --no-fund --loglevel=error
npm test
