--- codekin results (the contract's Result objects) -> quickfix entries / a Telescope picker.
local M = {}

---@class codekin.Position
---@field line integer 0-based
---@field character integer

---@class codekin.Range
---@field start codekin.Position
---@field end codekin.Position

---@class codekin.Result
---@field uri string
---@field range codekin.Range
---@field path string repository-relative
---@field startLine integer 1-based
---@field endLine integer 1-based
---@field symbol string
---@field language string
---@field kind string
---@field score number

---@class codekin.QfItem
---@field filename string
---@field lnum integer
---@field end_lnum integer
---@field col integer
---@field text string
---@field user_data codekin.Result

---@param result any
---@return boolean
local function well_formed(result)
  return type(result) == "table"
    and type(result.uri) == "string"
    and type(result.path) == "string"
    and type(result.startLine) == "number"
    and result.startLine >= 1
    and type(result.endLine) == "number"
    and type(result.score) == "number"
end

--- The text of a quickfix entry: "symbol  score" (the path when the chunk has no symbol).
---@param result codekin.Result
---@return string
function M.entry_text(result)
  local symbol = type(result.symbol) == "string" and result.symbol or ""
  if symbol == "" or symbol == "?" then
    symbol = ("%s:%d-%d"):format(result.path, result.startLine, result.endLine)
  end
  return ("%s  %.2f"):format(symbol, result.score)
end

--- Map results to quickfix items; malformed results are counted, not shown.
---@param results any the `results` list of a codekin response
---@param root string|nil repository root, to resolve `path` when a result has no file URI
---@return codekin.QfItem[] items, integer malformed
function M.to_qf_items(results, root)
  local items, malformed = {}, 0
  if type(results) ~= "table" then
    return items, 0
  end
  for _, result in ipairs(results) do
    if well_formed(result) then
      local filename = vim.startswith(result.uri, "file:") and vim.uri_to_fname(result.uri)
        or (root and vim.fs.joinpath(root, result.path) or result.path)
      table.insert(items, {
        filename = filename,
        lnum = result.startLine,
        end_lnum = result.endLine,
        col = 1,
        text = M.entry_text(result),
        user_data = result,
      })
    else
      malformed = malformed + 1
    end
  end
  return items, malformed
end

---@param picker codekin.Picker
---@return boolean
local function use_telescope(picker)
  if picker == "quickfix" then
    return false
  end
  local ok = pcall(require, "telescope")
  return ok
end

--- The quickfix items in a Telescope picker (Telescope's own quickfix entries and previewer).
---@param title string
---@param items codekin.QfItem[]
local function telescope_picker(title, items)
  local conf = require("telescope.config").values
  local opts = {}
  require("telescope.pickers")
    .new(opts, {
      prompt_title = title,
      finder = require("telescope.finders").new_table({
        results = items,
        entry_maker = require("telescope.make_entry").gen_from_quickfix(opts),
      }),
      previewer = conf.qflist_previewer(opts),
      sorter = conf.generic_sorter(opts),
    })
    :find()
end

--- Put results in the quickfix list (always, so :cnext works) and show them: in a Telescope
--- picker when Telescope is installed (picker "auto"/"telescope"), else in the quickfix window.
---@param title string
---@param results any
---@param opts codekin.Options
---@param root string|nil
---@return integer shown number of entries
function M.show(title, results, opts, root)
  local items, malformed = M.to_qf_items(results, root)
  vim.fn.setqflist({}, " ", { title = title, items = items, context = { codekin = true } })
  if malformed > 0 then
    vim.notify(
      ("codekin: skipped %d malformed result(s) from the server (check :LspLog)"):format(malformed),
      vim.log.levels.WARN
    )
  end
  if #items == 0 then
    vim.notify(
      ("codekin: %s: no results (hint: lower search.minSimilarity, or run `codekin index` if files changed)"):format(
        title
      ),
      vim.log.levels.INFO
    )
    return 0
  end
  if opts.picker == "telescope" and not use_telescope(opts.picker) then
    vim.notify("codekin: picker = 'telescope' but Telescope is not installed; using quickfix", vim.log.levels.WARN)
  end
  if use_telescope(opts.picker) then
    telescope_picker(title, items)
  elseif opts.open_quickfix then
    vim.cmd("botright copen")
  end
  return #items
end

return M
