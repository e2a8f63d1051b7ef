--- :checkhealth codekin
local config = require("codekin.config")
local lsp = require("codekin.lsp")

local M = {}

function M.check()
  local health = vim.health
  health.start("codekin")
  local version = vim.version()
  local shown = ("%d.%d.%d"):format(version.major, version.minor, version.patch)
  if vim.fn.has("nvim-0.10") == 1 then
    health.ok("Neovim " .. shown)
  else
    health.error("Neovim " .. shown .. " is too old", { "codekin needs Neovim 0.10 or newer (vim.lsp.start, vim.fs)" })
  end

  local opts = config.get()
  local exe = opts.cmd[1]
  if vim.fn.executable(exe) == 1 then
    health.ok(("server command: %s (%s)"):format(table.concat(config.server_cmd(opts), " "), vim.fn.exepath(exe)))
  else
    health.error(("server command '%s' is not executable"):format(exe), {
      "pip install -e <codekin checkout> in the environment Neovim sees",
      "or set cmd = { '/path/to/venv/bin/codekin', 'serve' } in require('codekin').setup{}",
    })
  end

  local root = lsp.find_root(vim.api.nvim_get_current_buf(), opts.root_markers)
  if not root then
    local markers = table.concat(opts.root_markers, ", ")
    health.info("the current buffer is not inside a repository (markers: " .. markers .. ")")
  elseif vim.uv.fs_stat(vim.fs.joinpath(root, ".codekin", "state.json")) then
    health.ok("index found in " .. root)
  else
    health.warn("no index in " .. root, { "run `codekin index` in " .. root })
  end

  local get = vim.lsp.get_clients or vim.lsp.get_active_clients
  local running = get({ name = lsp.name })
  if #running > 0 then
    for _, client in ipairs(running) do
      health.ok(("client %d running for %s"):format(client.id, client.root_dir or "?"))
    end
  else
    health.info("no codekin client running")
  end

  if pcall(require, "telescope") then
    health.ok("Telescope installed: results open in a picker (picker = '" .. opts.picker .. "')")
  else
    health.info("Telescope not installed: results go to the quickfix list")
  end
end

return M
