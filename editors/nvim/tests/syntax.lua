-- Parse (without running) every Lua file given: `nvim --headless --clean -l syntax.lua FILE...`
-- Exits non-zero and names each file that LuaJIT cannot load. Used by editors/ci.sh.
local bad = 0
for _, path in ipairs(arg) do
  local chunk, err = loadfile(path)
  if not chunk then
    io.stderr:write(tostring(err) .. "\n")
    bad = bad + 1
  end
end
io.stdout:write(("%d Lua files parsed, %d with errors\n"):format(#arg, bad))
os.exit(bad == 0 and 0 or 1)
