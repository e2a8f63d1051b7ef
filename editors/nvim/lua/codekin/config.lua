--- Options of the codekin plugin: defaults, merging with the user's table, validation.
local M = {}

---@alias codekin.SearchMode "hybrid"|"dense"|"lexical"
---@alias codekin.Picker "auto"|"quickfix"|"telescope"

---@class codekin.CodeLensOptions
---@field enabled boolean show "N similar · best 0.91" above each function and module
---@field minSimilarity number cosine similarity (0..1) a chunk needs to be counted by a lens (server default 0.7)

---@class codekin.SearchOptions
---@field limit integer results per :CodekinSimilar / :CodekinSearch
---@field minSimilarity number drop results scoring below this (0..1)
---@field mode codekin.SearchMode

---@class codekin.Keymaps
---@field similar string|false normal/visual mapping for :CodekinSimilar
---@field search string|false normal mapping that prompts for :CodekinSearch

---@class codekin.Options
---@field cmd string[] command line that starts the language server
---@field model string|nil embedding model passed to the server as `--model` (nil: repository config)
---@field filetypes string[] buffers of these filetypes start/attach the server
---@field root_markers string[] files or directories that mark the repository root
---@field autostart boolean start the server when a buffer of a listed filetype opens
---@field codelens codekin.CodeLensOptions
---@field search codekin.SearchOptions
---@field picker codekin.Picker where results go: quickfix list, Telescope, or Telescope when installed
---@field open_quickfix boolean open the quickfix window when results arrive (picker "quickfix")
---@field keymaps codekin.Keymaps|false buffer-local mappings set on attach (false: none)

---@class codekin.UserOptions
---@field cmd? string[]
---@field model? string
---@field filetypes? string[]
---@field root_markers? string[]
---@field autostart? boolean
---@field codelens? {enabled?: boolean, minSimilarity?: number}
---@field search? {limit?: integer, minSimilarity?: number, mode?: codekin.SearchMode}
---@field picker? codekin.Picker
---@field open_quickfix? boolean
---@field keymaps? {similar?: string|false, search?: string|false}|false

---@type codekin.Options
M.defaults = {
  cmd = { "codekin", "serve" },
  model = nil,
  filetypes = { "elixir", "eelixir", "heex", "erlang", "c", "cpp" },
  root_markers = { ".codekin", ".git", "mix.exs", "rebar.config" },
  autostart = true,
  codelens = { enabled = true, minSimilarity = 0.7 },
  search = { limit = 10, minSimilarity = 0.0, mode = "hybrid" },
  picker = "auto",
  open_quickfix = true,
  keymaps = false,
}

-- Option keys whose value is a list (replaced whole, never merged index by index)
-- or that may be nil (no default).
local LISTS = { cmd = true, filetypes = true, root_markers = true }
local OPTIONAL = { model = true }

---@param value any
---@return boolean
local function is_string_list(value)
  if type(value) ~= "table" or #value == 0 then
    return false
  end
  for i, item in pairs(value) do
    if type(i) ~= "number" or type(item) ~= "string" or item == "" then
      return false
    end
  end
  return true
end

---@param value any
---@return boolean
local function is_unit(value)
  return type(value) == "number" and value >= 0 and value <= 1
end

---@param value any
---@return boolean
local function is_mapping(value)
  return value == false or (type(value) == "string" and value ~= "")
end

--- name -> {check, what it must be}
---@type table<string, {[1]: fun(value: any): boolean, [2]: string}>
local CHECKS = {
  cmd = { is_string_list, "a non-empty list of strings, e.g. { 'codekin', 'serve' }" },
  model = {
    function(v)
      return v == nil or (type(v) == "string" and v ~= "")
    end,
    "nil or a model name/path string",
  },
  filetypes = { is_string_list, "a non-empty list of filetype names" },
  root_markers = { is_string_list, "a non-empty list of file or directory names" },
  autostart = {
    function(v)
      return type(v) == "boolean"
    end,
    "true or false",
  },
  ["codelens.enabled"] = {
    function(v)
      return type(v) == "boolean"
    end,
    "true or false",
  },
  ["codelens.minSimilarity"] = { is_unit, "a number from 0 to 1" },
  ["search.limit"] = {
    function(v)
      return type(v) == "number" and v >= 1 and v <= 200 and math.floor(v) == v
    end,
    "an integer from 1 to 200",
  },
  ["search.minSimilarity"] = { is_unit, "a number from 0 to 1" },
  ["search.mode"] = {
    function(v)
      return v == "hybrid" or v == "dense" or v == "lexical"
    end,
    "'hybrid', 'dense' or 'lexical'",
  },
  picker = {
    function(v)
      return v == "auto" or v == "quickfix" or v == "telescope"
    end,
    "'auto', 'quickfix' or 'telescope'",
  },
  open_quickfix = {
    function(v)
      return type(v) == "boolean"
    end,
    "true or false",
  },
  ["keymaps.similar"] = { is_mapping, "a key sequence string or false" },
  ["keymaps.search"] = { is_mapping, "a key sequence string or false" },
}

---@param defaults table
---@param user table
---@param prefix string
---@param errors string[]
---@return table
local function merge(defaults, user, prefix, errors)
  local out = vim.deepcopy(defaults)
  for key, value in pairs(user) do
    local name = prefix .. tostring(key)
    local default = defaults[key]
    if default == nil and not OPTIONAL[name] then
      table.insert(errors, ("unknown option '%s'"):format(name))
    elseif type(default) == "table" and not LISTS[name] then
      if type(value) == "table" then
        out[key] = merge(default, value, name .. ".", errors)
      else
        table.insert(errors, ("option '%s' must be a table, got %s"):format(name, vim.inspect(value)))
      end
    elseif name == "keymaps" and type(value) == "table" then
      out[key] = merge({ similar = false, search = false }, value, "keymaps.", errors)
    else
      out[key] = value
    end
  end
  return out
end

--- Merge the user's options over the defaults and check every value.
---@param user codekin.UserOptions|nil
---@return codekin.Options|nil options, string|nil error one message listing every problem
function M.resolve(user)
  if user ~= nil and type(user) ~= "table" then
    return nil, ("codekin.setup() takes a table of options, got %s"):format(type(user))
  end
  local errors = {}
  local opts = merge(M.defaults, user or {}, "", errors)
  for name, check in pairs(CHECKS) do
    local value = opts
    for part in name:gmatch("[^.]+") do
      if type(value) == "table" then
        value = value[part] -- may be false: no `and/or` shortcut here
      else
        value = nil
      end
    end
    local parent = name:match("^(%w+)%.")
    local skip = parent == "keymaps" and opts.keymaps == false
    if not skip and not check[1](value) then
      table.insert(errors, ("option '%s' must be %s, got %s"):format(name, check[2], vim.inspect(value)))
    end
  end
  if #errors > 0 then
    table.sort(errors)
    return nil, "invalid codekin options: " .. table.concat(errors, "; ") .. " (see :help codekin-options)"
  end
  return opts, nil
end

---@type codekin.Options
local current = vim.deepcopy(M.defaults)

--- The options in force (the defaults until setup() succeeds).
---@return codekin.Options
function M.get()
  return current
end

---@param opts codekin.Options
function M.set(opts)
  current = opts
end

--- The server command line, with `--model` when a model is configured.
---@param opts codekin.Options
---@return string[]
function M.server_cmd(opts)
  local cmd = vim.deepcopy(opts.cmd)
  if opts.model then
    vim.list_extend(cmd, { "--model", opts.model })
  end
  return cmd
end

--- The LSP initializationOptions of the contract (camelCase).
---@param opts codekin.Options
---@return table
function M.init_options(opts)
  return {
    codeLens = { enabled = opts.codelens.enabled, minSimilarity = opts.codelens.minSimilarity },
    search = {
      limit = opts.search.limit,
      minSimilarity = opts.search.minSimilarity,
      mode = opts.search.mode,
    },
  }
end

return M
