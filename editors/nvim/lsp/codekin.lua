-- codekin for Neovim >= 0.11: `vim.lsp.enable("codekin")` uses this configuration (the options
-- of require("codekin").setup{} when it ran first, else the defaults).
local config = require("codekin.config")
local lsp = require("codekin.lsp")

local opts = config.get()

---@type vim.lsp.Config
return {
  cmd = config.server_cmd(opts),
  filetypes = opts.filetypes,
  root_dir = function(bufnr, on_dir)
    local root = lsp.find_root(bufnr, config.get().root_markers)
    if root then
      on_dir(root)
    end
  end,
  init_options = config.init_options(opts),
  on_attach = lsp.on_attach,
}
