--- The user commands :CodekinSimilar, :CodekinSearch, :CodekinIndex, :CodekinRetrain, :CodekinStatus
--- and the client-side handler of the code lens command `codekin.findSimilar`.
local config = require("codekin.config")
local lsp = require("codekin.lsp")
local results = require("codekin.results")

local M = {}

---@param client vim.lsp.Client
---@return string|nil
local function root_of(client)
  return client.root_dir
end

--- The `results` list of a response (nil when the response is not an object).
---@param response any
---@return any
local function results_of(response)
  return type(response) == "table" and response.results or nil
end

--- A title for the results of findSimilar.
---@param response table
---@param fallback string
---@return string
local function similar_title(response, fallback)
  local query = type(response) == "table" and response.query or nil
  if type(query) == "table" and type(query.symbol) == "string" and query.symbol ~= "" then
    return "codekin: similar to " .. query.symbol
  end
  return "codekin: similar to " .. fallback
end

--- The findSimilar argument for a cursor (an empty range: the server takes the indexed chunk
--- around it) or for lines line1..line2 (1-based, inclusive; sent as whole lines, the end at
--- column 0 of the next line). The unsaved text of a line range goes along when the buffer
--- differs from the file on disk.
---@param bufnr integer
---@param span {cursor: {[1]: integer, [2]: integer}}|{line1: integer, line2: integer}
---@return table
function M.similar_argument(bufnr, span)
  local argument = { uri = vim.uri_from_bufnr(bufnr) }
  if span.cursor then
    local position = { line = span.cursor[1] - 1, character = span.cursor[2] }
    argument.range = { start = position, ["end"] = position }
    return argument
  end
  argument.range = {
    start = { line = span.line1 - 1, character = 0 },
    ["end"] = { line = span.line2, character = 0 },
  }
  if vim.bo[bufnr].modified then
    argument.text = table.concat(vim.api.nvim_buf_get_lines(bufnr, span.line1 - 1, span.line2, false), "\n")
  end
  return argument
end

--- :CodekinSimilar — code like the function around the cursor, or like the given range.
---@param cmd_opts {range: integer, line1: integer, line2: integer}|nil
---@return boolean sent
function M.similar(cmd_opts)
  local bufnr = vim.api.nvim_get_current_buf()
  if vim.api.nvim_buf_get_name(bufnr) == "" or vim.bo[bufnr].buftype ~= "" then
    lsp.notify(":CodekinSimilar needs a buffer showing a file of the repository", vim.log.levels.ERROR)
    return false
  end
  local span, where
  local name = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(bufnr), ":t")
  if cmd_opts and cmd_opts.range and cmd_opts.range > 0 then
    span = { line1 = cmd_opts.line1, line2 = cmd_opts.line2 }
    where = ("%s:%d-%d"):format(name, span.line1, span.line2)
  else
    span = { cursor = vim.api.nvim_win_get_cursor(0) }
    where = ("%s:%d"):format(name, span.cursor[1])
  end
  return lsp.execute("codekin.findSimilar", M.similar_argument(bufnr, span), function(response, client)
    results.show(similar_title(response, where), results_of(response), config.get(), root_of(client))
  end, bufnr)
end

--- :CodekinSearch {query} — semantic search over the repository (prompts when no query).
---@param query string|nil
---@return boolean sent
function M.search(query)
  if query == nil or vim.trim(query) == "" then
    vim.ui.input({ prompt = "codekin search: " }, function(input)
      if input and vim.trim(input) ~= "" then
        M.search(input)
      end
    end)
    return false
  end
  query = vim.trim(query)
  return lsp.execute("codekin.search", { query = query }, function(response, client)
    results.show("codekin: " .. query, results_of(response), config.get(), root_of(client))
  end)
end

--- :CodekinFiles {query} — the files that answer a whole-file question (prompts when no query).
---@param query string|nil
---@return boolean sent
function M.files(query)
  if query == nil or vim.trim(query) == "" then
    vim.ui.input({ prompt = "codekin files: " }, function(input)
      if input and vim.trim(input) ~= "" then
        M.files(input)
      end
    end)
    return false
  end
  query = vim.trim(query)
  return lsp.execute("codekin.search", { query = query, files = true }, function(response, client)
    results.show("codekin files: " .. query, results_of(response), config.get(), root_of(client))
  end)
end

local RETRAIN_FIELDS = {
  epochs = { key = "epochs", integer = true },
  lr = { key = "learningRate", integer = false },
  learningRate = { key = "learningRate", integer = false },
  batch = { key = "batchSize", integer = true },
  batchSize = { key = "batchSize", integer = true },
}

--- Parse ":CodekinRetrain [N] [epochs=N] [lr=X] [batch=N]" into the retrain argument.
---@param args string
---@return table|nil argument, string|nil error
function M.parse_retrain(args)
  local argument = {}
  for token in vim.gsplit(vim.trim(args or ""), "%s+", { trimempty = true }) do
    local name, value = token:match("^(%w+)=(.+)$")
    if not name then
      name, value = "epochs", token
    end
    local field = RETRAIN_FIELDS[name]
    local number = tonumber(value)
    if not field then
      return nil, ("unknown retrain option '%s' (use epochs=N, lr=X, batch=N)"):format(name)
    end
    if not number or number <= 0 or (field.integer and math.floor(number) ~= number) then
      local what = field.integer and "a positive integer" or "a positive number"
      return nil, ("retrain option '%s' must be %s, got '%s'"):format(name, what, value)
    end
    argument[field.key] = number
  end
  return argument, nil
end

--- :CodekinRetrain — run the training pipeline once (the server says if it is unavailable).
---@param args string|nil
---@return boolean sent
function M.retrain(args)
  local argument, problem = M.parse_retrain(args or "")
  if not argument then
    lsp.notify(problem or "invalid retrain options", vim.log.levels.ERROR)
    return false
  end
  return lsp.execute("codekin.retrain", argument, function(response)
    local message = type(response) == "table" and response.message or vim.inspect(response)
    local level = (type(response) == "table" and response.started == true) and vim.log.levels.INFO
      or vim.log.levels.WARN
    lsp.notify("retrain: " .. tostring(message), level)
  end)
end

--- :CodekinIndex — index the repository on the server (it also offers to when there is no index).
---@return boolean sent
function M.index()
  return lsp.execute("codekin.index", {}, function(response)
    lsp.notify(type(response) == "table" and tostring(response.message) or vim.inspect(response), vim.log.levels.INFO)
  end)
end

local STATUS_ORDER = {
  "root",
  "indexed",
  "model",
  "chunks",
  "files",
  "queue",
  "device",
  "stale",
  "lastTraining",
  "nextTraining",
  "dashboard",
}

---@param value any
---@return string
local function show_value(value)
  if value == vim.NIL or value == nil then
    return "-"
  elseif type(value) == "table" then
    return vim.json.encode(value)
  end
  return tostring(value)
end

--- The status response as "key: value" lines, the contract's fields first.
---@param status table
---@return string[]
function M.format_status(status)
  local lines, seen = {}, {}
  for _, key in ipairs(STATUS_ORDER) do
    if status[key] ~= nil then
      table.insert(lines, ("%s: %s"):format(key, show_value(status[key])))
      seen[key] = true
    end
  end
  local rest = {}
  for key in pairs(status) do
    if not seen[key] then
      table.insert(rest, key)
    end
  end
  table.sort(rest)
  for _, key in ipairs(rest) do
    table.insert(lines, ("%s: %s"):format(key, show_value(status[key])))
  end
  return lines
end

--- :CodekinStatus — the server's index and model state.
---@param on_status fun(status: table)|nil also receives the status (for statuslines, scripts)
---@return boolean sent
function M.status(on_status)
  return lsp.execute("codekin.status", {}, function(response)
    if type(response) ~= "table" then
      lsp.notify("status: unexpected response " .. vim.inspect(response), vim.log.levels.ERROR)
      return
    end
    lsp.notify("status\n" .. table.concat(M.format_status(response), "\n"))
    if on_status then
      on_status(response)
    end
  end)
end

--- Client-side handler of the code lens command `codekin.findSimilar`: run it on the
--- server and show the results (the server's reply would otherwise be dropped).
---@param command lsp.Command
---@param ctx {client_id: integer, bufnr: integer}
function M.lens_handler(command, ctx)
  local argument = command.arguments and command.arguments[1]
  if type(argument) ~= "table" then
    lsp.notify("code lens without a findSimilar argument", vim.log.levels.ERROR)
    return
  end
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  lsp.execute("codekin.findSimilar", argument, function(response, from)
    local line = argument.range and argument.range.start and argument.range.start.line or 0
    results.show(similar_title(response, "line " .. (line + 1)), results_of(response), config.get(), root_of(from))
  end, ctx.bufnr, client)
end

--- Create the user commands (idempotent).
function M.create()
  local create = vim.api.nvim_create_user_command
  create("CodekinSimilar", function(o)
    M.similar({ range = o.range, line1 = o.line1, line2 = o.line2 })
  end, { range = true, desc = "codekin: find code similar to this line (its function) or the range" })
  create("CodekinSearch", function(o)
    M.search(o.args)
  end, { nargs = "*", desc = "codekin: semantic search, results in the quickfix list" })
  create("CodekinFiles", function(o)
    M.files(o.args)
  end, { nargs = "*", desc = "codekin: files that answer a whole-file question, in the quickfix list" })
  create("CodekinRetrain", function(o)
    M.retrain(o.args)
  end, { nargs = "*", desc = "codekin: retrain the embedding model ([epochs=N] [lr=X] [batch=N])" })
  create("CodekinIndex", function()
    M.index()
  end, { nargs = 0, desc = "codekin: index the repository (codekin index, on the server)" })
  create("CodekinStatus", function()
    M.status()
  end, { nargs = 0, desc = "codekin: index and model status" })
  vim.lsp.commands["codekin.findSimilar"] = vim.lsp.commands["codekin.findSimilar"] or M.lens_handler
end

return M
