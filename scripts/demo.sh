#!/usr/bin/env bash
# The main job on a fresh machine: a real two-way sync of a sample workspace with a local-folder
# target. Rerun it after editing either side to see the change go the right way.
set -euo pipefail
cd "$(dirname "$0")/.."
demo="${SYNCENGINE_DEMO:-/tmp/syncengine-demo}"
workspace="$demo/workspace"
target="$demo/target"
if [ ! -d "$workspace" ]; then
  mkdir -p "$demo"
  cp -R examples/sample-project "$workspace"
fi
node dist/cli.js sync "$workspace" "$target" "$@"
echo
echo "Workspace: $workspace"
echo "Target:    $target"
echo "Edit, add, rename or delete files on either side, then run 'npm run demo' again."
