#!/usr/bin/env bash
# The VS Code end-to-end test, whole: install code-server + playwright-core (setup.sh, cached),
# package the extension, index a copy of examples/, then drive VS Code (drive.mjs).
#
#   run.sh [--retrain]    exit 0 when every step passed; the JSON lines of drive.mjs on stdout
#
# Environment:
#   CODEKIN_E2E_SHOTS   where the screenshots go (default: a new temp dir; never the source tree)
#   CODEKIN_E2E_CACHE   code-server + playwright-core (default ~/.cache/codekin/vscode-e2e)
#   CODEKIN_VSIX        a packaged extension to test (default: packaged here with vsce)
#   CODEKIN_PYTHON      the Python that runs codekin (default python3; honours PYTHONPATH)
#   CODEKIN_E2E_WORKSPACE  an already indexed copy of examples/ (default: copied and indexed here)
# Nothing is downloaded from outside the npm, PyPI and Debian registries.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
extension="$(dirname "$here")"
repo="$(cd "$extension/../.." && pwd)"
python="${CODEKIN_PYTHON:-python3}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
work="$(mktemp -d "${TMPDIR:-/tmp}/codekin-vscode-e2e.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log() { echo "== vscode e2e: $*" >&2; }

log "setup (code-server, playwright-core)"
cache="$(bash "$here/setup.sh" | tail -1)"

vsix="${CODEKIN_VSIX:-}"
if [[ -z $vsix ]]; then
  log "package the extension"
  cd "$extension"
  [[ -d node_modules ]] || npm ci --no-audit --no-fund --prefer-offline >&2
  vsix="$work/codekin.vsix"
  npx --no-install vsce package --no-dependencies --allow-missing-repository --skip-license --out "$vsix" >&2
fi

workspace="${CODEKIN_E2E_WORKSPACE:-}"
if [[ -z $workspace ]]; then
  log "index a copy of examples/"
  workspace="$work/examples"
  cp -r "$repo/examples" "$workspace"
  rm -rf "$workspace/.codekin"
  (cd "$workspace" && "$python" -m codekin.cli index . >&2)
fi

log "drive VS Code"
cd "$here"
node drive.mjs --cache "$cache" --vsix "$vsix" --workspace "$workspace" \
  --server-command "$("$python" -c 'import json, sys; print(json.dumps([sys.executable, "-m", "codekin.cli", "serve"]))')" \
  "$@"
