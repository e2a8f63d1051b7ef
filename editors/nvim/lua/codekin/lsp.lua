--- The codekin language client: root detection, start/attach, requests, code lens refresh.
local config = require("codekin.config")

local M = {}

M.name = "codekin"

-- Neovim 0.11 made client methods colon-called (client:request); 0.10 has client.request.
local has_method_calls = vim.fn.has("nvim-0.11") == 1

---@param msg string
---@param level integer|nil
function M.notify(msg, level)
  vim.notify("codekin: " .. msg, level or vim.log.levels.INFO, { title = "codekin" })
end

--- The repository root of a file: the nearest directory holding the first marker found,
--- trying markers in order (so `.codekin` or `.git` wins over a nested `mix.exs`).
---@param path string
---@param markers string[]
---@return string|nil
function M.root_for_path(path, markers)
  local dir = vim.fs.dirname(vim.fs.normalize(vim.fn.fnamemodify(path, ":p")))
  for _, marker in ipairs(markers) do
    local found = vim.fs.find(marker, { upward = true, path = dir, limit = 1 })[1]
    if found then
      return vim.fs.dirname(found)
    end
  end
  return nil
end

--- The repository root of a buffer showing a file (nil for scratch and special buffers).
---@param bufnr integer
---@param markers string[]
---@return string|nil
function M.find_root(bufnr, markers)
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name == "" or vim.bo[bufnr].buftype ~= "" then
    return nil
  end
  return M.root_for_path(name, markers)
end

---@param opts codekin.Options
---@return string|nil error why the server command cannot run
local function check_cmd(opts)
  local exe = opts.cmd[1]
  if vim.fn.executable(exe) == 1 then
    return nil
  end
  return ("cannot start the language server: '%s' is not an executable on PATH"):format(exe)
    .. " (hint: `pip install -e <codekin checkout>` in the environment Neovim sees, or set"
    .. " cmd = { '/path/to/venv/bin/codekin', 'serve' } in require('codekin').setup{})"
end

--- The vim.lsp.start() configuration for one repository root.
---@param opts codekin.Options
---@param root string
---@return vim.lsp.ClientConfig
function M.client_config(opts, root)
  return {
    name = M.name,
    cmd = config.server_cmd(opts),
    root_dir = root,
    init_options = config.init_options(opts),
    on_attach = M.on_attach,
  }
end

--- Start the server for `bufnr` (or attach the buffer to the running one of its root).
---@param bufnr integer
---@param opts codekin.Options
---@return integer|nil client_id
function M.start(bufnr, opts)
  local root = M.find_root(bufnr, opts.root_markers)
  if not root then
    return nil
  end
  local problem = check_cmd(opts)
  if problem then
    vim.notify_once("codekin: " .. problem, vim.log.levels.ERROR)
    return nil
  end
  return vim.lsp.start(M.client_config(opts, root), { bufnr = bufnr })
end

---@param filter table
---@return vim.lsp.Client[]
local function clients(filter)
  local get = vim.lsp.get_clients or vim.lsp.get_active_clients
  return get(filter)
end

--- The codekin client for a buffer: the one attached to it, else one whose root holds the
--- current directory, else any running codekin client.
---@param bufnr integer|nil
---@return vim.lsp.Client|nil
function M.get_client(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local attached = clients({ name = M.name, bufnr = bufnr })
  if #attached > 0 then
    return attached[1]
  end
  local all = clients({ name = M.name })
  local cwd = vim.fs.normalize(vim.fn.getcwd())
  for _, client in ipairs(all) do
    local root = client.root_dir and vim.fs.normalize(client.root_dir)
    if root and (cwd == root or vim.startswith(cwd, root .. "/")) then
      return client
    end
  end
  return all[1]
end

--- Send a request with the calling convention of the running Neovim.
---@param client vim.lsp.Client
---@param method string
---@param params table
---@param handler fun(err: lsp.ResponseError|nil, result: any)
---@param bufnr integer|nil
function M.request(client, method, params, handler, bufnr)
  if has_method_calls then
    return client:request(method, params, handler, bufnr)
  end
  ---@diagnostic disable-next-line: param-type-mismatch
  return client.request(method, params, handler, bufnr)
end

--- Run one `codekin.*` server command (workspace/executeCommand with one argument object).
---@param command string e.g. "codekin.findSimilar"
---@param argument table the command's argument object
---@param on_result fun(result: any, client: vim.lsp.Client)
---@param bufnr integer|nil buffer whose client runs it (default: current)
---@param client vim.lsp.Client|nil a specific client (e.g. the one a code lens came from)
---@return boolean sent
function M.execute(command, argument, on_result, bufnr, client)
  client = client or M.get_client(bufnr)
  if not client then
    M.notify(
      "no codekin language server is running"
        .. " (hint: open a file of the repository, check `:checkhealth codekin`,"
        .. " and index it once with `codekin index`)",
      vim.log.levels.ERROR
    )
    return false
  end
  if next(argument) == nil then
    argument = vim.empty_dict() -- an empty object on the wire, not []
  end
  local params = { command = command, arguments = { argument } }
  M.request(client, "workspace/executeCommand", params, function(err, result)
    if err then
      M.notify(("%s failed: %s"):format(command, err.message or vim.inspect(err)), vim.log.levels.ERROR)
      return
    end
    on_result(result, client)
  end, bufnr)
  return true
end

---@param bufnr integer
local function refresh_lenses(bufnr)
  if vim.api.nvim_buf_is_loaded(bufnr) then
    vim.lsp.codelens.refresh({ bufnr = bufnr })
  end
end

---@param bufnr integer
---@param keymaps codekin.Keymaps
local function set_keymaps(bufnr, keymaps)
  if keymaps.similar then
    vim.keymap.set({ "n", "x" }, keymaps.similar, ":CodekinSimilar<CR>", {
      buffer = bufnr,
      silent = true,
      desc = "codekin: find code similar to this line / selection",
    })
  end
  if keymaps.search then
    vim.keymap.set("n", keymaps.search, "<Cmd>CodekinSearch<CR>", {
      buffer = bufnr,
      desc = "codekin: semantic search",
    })
  end
end

--- on_attach for every codekin client: code lenses (refreshed on enter, save and leaving
--- insert mode) and the optional buffer-local keymaps.
---@param client vim.lsp.Client
---@param bufnr integer
function M.on_attach(client, bufnr)
  local opts = config.get()
  if opts.keymaps then
    set_keymaps(bufnr, opts.keymaps)
  end
  if not (opts.codelens.enabled and client.server_capabilities.codeLensProvider) then
    return
  end
  local group = vim.api.nvim_create_augroup("codekin_codelens_" .. bufnr, { clear = true })
  vim.api.nvim_create_autocmd({ "BufEnter", "BufWritePost", "InsertLeave" }, {
    group = group,
    buffer = bufnr,
    desc = "codekin: refresh code lenses",
    callback = function(args)
      refresh_lenses(args.buf)
    end,
  })
  vim.api.nvim_create_autocmd("LspDetach", {
    group = group,
    buffer = bufnr,
    desc = "codekin: stop refreshing code lenses",
    callback = function(args)
      if args.data and args.data.client_id == client.id then
        pcall(vim.api.nvim_del_augroup_by_id, group)
        vim.lsp.codelens.clear(client.id, args.buf)
      end
    end,
  })
  refresh_lenses(bufnr)
end

return M
