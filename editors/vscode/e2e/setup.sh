#!/usr/bin/env bash
# Install a real VS Code (code-server from npm) and playwright-core for the end-to-end test,
# offline-safe: everything comes from the npm and Debian registries, nothing is downloaded at
# run time.
#
#   code-server 4.99.x is VS Code 1.99 on node 20 (the machine's node). Its postinstall would
#   fetch ripgrep from GitHub, so packages are installed with --ignore-scripts and the steps
#   that matter are done here: the native modules are compiled against the local node headers
#   (--nodedir=/usr, no header download; argon2 --build-from-source, no prebuilt download), and
#   @vscode/ripgrep's binary is Debian's rg. The browser is Debian's chromium, driven by
#   playwright-core (which has no install script and downloads nothing).
#
# Usage: setup.sh [CACHE_DIR]  (default $CODEKIN_E2E_CACHE or ~/.cache/codekin/vscode-e2e)
# Prints the cache directory on its last line. Idempotent: a second run checks a stamp and exits.
set -euo pipefail

CODE_SERVER=4.99.4
PLAYWRIGHT=1.65.2
cache="${1:-${CODEKIN_E2E_CACHE:-$HOME/.cache/codekin/vscode-e2e}}"
stamp="$cache/.codekin-e2e-ready"
want="code-server@$CODE_SERVER playwright-core@$PLAYWRIGHT $(node --version)"

fail() { echo "editors/vscode/e2e/setup.sh: $*" >&2; exit 1; }

if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
  echo "$cache"
  exit 0
fi

[[ "$(node --version)" == v20.* ]] || fail "code-server $CODE_SERVER needs node 20; found $(node --version)"
[[ -f /usr/include/node/node.h ]] || fail "no node headers in /usr/include/node (hint: Debian/NodeSource nodejs ships them)"
missing=()
for tool in chromium rg make g++ python3; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    pkgs=$(printf '%s\n' "${missing[@]}" | sed 's/^rg$/ripgrep/; s/^g++$/g++/; s/^python3$/python3/' | tr '\n' ' ')
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null; }
  else
    fail "missing ${missing[*]} (hint: apt-get install chromium ripgrep make g++ python3)"
  fi
fi

rm -rf "$cache"
mkdir -p "$cache"
cd "$cache"
echo '{"private": true}' >package.json
export npm_config_nodedir=/usr npm_config_audit=false npm_config_fund=false
npm install --ignore-scripts --prefer-offline --no-save "code-server@$CODE_SERVER" "playwright-core@$PLAYWRIGHT" >/dev/null
# argon2 (code-server's password hashing, imported at start): compile, never the GitHub prebuilt.
npm_config_build_from_source=true npm rebuild argon2 >/dev/null

cd node_modules/code-server/lib/vscode
npm install --omit=dev --ignore-scripts --prefer-offline >/dev/null
# The VS Code server's native modules; node-pty's post-install also runs an `npx node-gyp` that
# only writes compile_commands.json, so it is built directly with node-gyp here.
npm rebuild @vscode/spdlog native-watchdog @parcel/watcher @vscode/deviceid >/dev/null
node_gyp="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")/node_modules/node-gyp/bin/node-gyp.js"
[[ -f $node_gyp ]] || fail "npm's bundled node-gyp not found at $node_gyp"
(cd node_modules/node-pty && node "$node_gyp" rebuild --nodedir=/usr >/dev/null 2>&1)
for built in node_modules/@vscode/spdlog/build/Release/spdlog.node node_modules/node-pty/build/Release/pty.node; do
  [[ -f $built ]] || fail "$built was not built"
done
mkdir -p node_modules/@vscode/ripgrep/bin
ln -sf "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
ln -sfn node_modules node_modules.asar

echo "$want" >"$stamp"
echo "$cache"
