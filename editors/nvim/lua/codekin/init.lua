--- codekin for Neovim: find similar code, semantic search and similarity code lenses from a
--- local codekin index, through the `codekin serve` language server.
---
--- ```lua
--- require("codekin").setup({ codelens = { minSimilarity = 0.85 } })
--- ```
local commands = require("codekin.commands")
local config = require("codekin.config")
local lsp = require("codekin.lsp")

local M = {}

--- Make `require("lspconfig").codekin.setup{}` available when nvim-lspconfig is installed.
---@param opts codekin.Options
---@return boolean registered
local function register_lspconfig(opts)
  local ok, configs = pcall(require, "lspconfig.configs")
  if not ok or type(configs) ~= "table" then
    return false
  end
  if rawget(configs, lsp.name) == nil then
    configs[lsp.name] = {
      default_config = {
        cmd = config.server_cmd(opts),
        filetypes = opts.filetypes,
        root_dir = function(fname)
          return lsp.root_for_path(fname, config.get().root_markers)
        end,
        init_options = config.init_options(opts),
        on_attach = lsp.on_attach,
      },
      docs = { description = "codekin: find similar code and semantic search from a local index." },
    }
  end
  return true
end

---@param bufnr integer
---@param opts codekin.Options
---@return boolean
local function wants(bufnr, opts)
  return vim.api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(opts.filetypes, vim.bo[bufnr].filetype)
end

--- Configure the plugin and (unless autostart = false) start the server for buffers of the
--- configured filetypes inside a repository. Invalid options are reported and nothing changes.
---@param user codekin.UserOptions|nil
---@return boolean ok
function M.setup(user)
  local opts, problem = config.resolve(user)
  if not opts then
    vim.notify("codekin: " .. tostring(problem), vim.log.levels.ERROR)
    return false
  end
  config.set(opts)
  commands.create()
  register_lspconfig(opts)
  local group = vim.api.nvim_create_augroup("codekin_autostart", { clear = true })
  if opts.autostart then
    vim.api.nvim_create_autocmd("FileType", {
      group = group,
      pattern = opts.filetypes,
      desc = "codekin: start or attach the language server",
      callback = function(args)
        lsp.start(args.buf, config.get())
      end,
    })
    for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
      if wants(bufnr, opts) then
        lsp.start(bufnr, opts)
      end
    end
  end
  return true
end

--- Start (or attach to) the server for a buffer by hand, e.g. with autostart = false.
---@param bufnr integer|nil default: current buffer
---@return integer|nil client_id
function M.start(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  return lsp.start(bufnr, config.get())
end

M.similar = commands.similar
M.search = commands.search
M.files = commands.files
M.index = commands.index
M.retrain = commands.retrain
M.status = commands.status

return M
