-- Plugin logic without a server, run by tests/test_nvim.py in a headless Neovim:
--   nvim --headless --clean --cmd 'lua vim.opt.rtp:prepend(PLUGIN)' -l options.lua OUT ROOT
-- Writes what each function returned as JSON to OUT; the Python test compares it whole.
local out_path, root = arg[1], arg[2]
local config = require("codekin.config")
local commands = require("codekin.commands")
local results = require("codekin.results")
local lsp = require("codekin.lsp")

local report = {}
local notes = {}
vim.notify = function(msg, level)
  table.insert(notes, { msg = msg, level = level })
end

local function resolved(user)
  local opts, err = config.resolve(user)
  return { opts = opts or vim.NIL, err = err or vim.NIL }
end

report.defaults = resolved(nil).opts
report.lens_off = resolved({ codelens = { enabled = false } }).opts.codelens
report.autostart_off = resolved({ autostart = false }).opts.autostart
report.cmd_replaced = resolved({ cmd = { "/opt/codekin/bin/codekin" } }).opts.cmd
report.keymaps = resolved({ keymaps = { similar = "<leader>ks" } }).opts.keymaps
report.bad = resolved({
  codelens = { enabled = "yes", minSimilarity = 1.5 },
  search = { limit = 0, mode = "fuzzy" },
  cmd = {},
  colour = "blue",
})
report.not_a_table = resolved("codekin").err
report.init_options = config.init_options(config.resolve({ search = { limit = 25, minSimilarity = 0.3 } }))
report.server_cmd = config.server_cmd(config.resolve({ model = "/models/kin-v3" }))

-- setup() with bad options changes nothing and says why
report.setup_bad = require("codekin").setup({ search = { mode = "fuzzy" } })
report.setup_bad_note = notes[#notes]
report.options_after_bad_setup = config.get().search.mode

report.retrain = {
  empty = { commands.parse_retrain("") },
  bare = { commands.parse_retrain("3") },
  named = { commands.parse_retrain("epochs=2 lr=0.00002 batch=16") },
  bad_value = { commands.parse_retrain("epochs=two") },
  fraction = { commands.parse_retrain("batch=1.5") },
  unknown = { commands.parse_retrain("warmup=10") },
}

-- findSimilar arguments from a buffer (cursor: empty range; lines: whole lines + unsaved text)
local file = root .. "/lib/shop/retry.ex"
vim.cmd.edit(vim.fn.fnameescape(file))
local bufnr = vim.api.nvim_get_current_buf()
report.arg_cursor = commands.similar_argument(bufnr, { cursor = { 3, 4 } })
report.arg_lines_saved = commands.similar_argument(bufnr, { line1 = 2, line2 = 4 })
vim.api.nvim_buf_set_lines(bufnr, 2, 3, false, { "    delay = base * 3" })
report.arg_lines_unsaved = commands.similar_argument(bufnr, { line1 = 2, line2 = 4 })
report.file_uri = vim.uri_from_fname(file)
report.root_of_file = lsp.find_root(bufnr, config.defaults.root_markers)
report.root_of_nested = lsp.root_for_path(root .. "/apps/web/lib/web.ex", config.defaults.root_markers)
report.root_of_outside = lsp.root_for_path("/", { ".codekin-no-such-marker" }) or vim.NIL

local result = {
  uri = vim.uri_from_fname(root .. "/lib/shop/backoff.ex"),
  range = { start = { line = 9, character = 0 }, ["end"] = { line = 14, character = 5 } },
  path = "lib/shop/backoff.ex",
  startLine = 10,
  endLine = 15,
  symbol = "Shop.Backoff.delay/1",
  language = "elixir",
  kind = "function",
  score = 0.9134,
}
local anonymous = vim.deepcopy(result)
anonymous.symbol = ""
local items, malformed = results.to_qf_items({ result, anonymous, { uri = 3 }, "junk" }, root)
for _, item in ipairs(items) do
  item.user_data = nil
end
report.qf_items = items
report.qf_malformed = malformed

-- picker = "telescope" without Telescope installed: a warning, and the quickfix list
local telescope_opts = config.resolve({ picker = "telescope", open_quickfix = false })
local before = #notes
report.show_count = results.show("codekin: test", { result }, telescope_opts, root)
report.show_notes = vim.list_slice(notes, before + 1)
local qf = vim.fn.getqflist({ title = 0, items = 0 })
report.show_qf = { title = qf.title, count = #qf.items, text = qf.items[1] and qf.items[1].text or vim.NIL }

report.status_lines = commands.format_status({
  root = "/r",
  indexed = true,
  chunks = 338,
  model = "all-MiniLM-L6-v2",
  queue = 0,
  lastTraining = vim.NIL,
  extra = { a = 1 },
})

if vim.fn.has("nvim-0.11") == 1 then
  local lsp_config = vim.lsp.config.codekin
  report.lsp_enable_config = {
    cmd = lsp_config.cmd,
    filetypes = lsp_config.filetypes,
    init_options = lsp_config.init_options,
    root_dir_is_function = type(lsp_config.root_dir) == "function",
  }
end

report.commands = {}
for _, name in ipairs({ "CodekinSimilar", "CodekinSearch", "CodekinRetrain", "CodekinStatus" }) do
  report.commands[name] = vim.fn.exists(":" .. name) == 2
end
report.lens_handler = vim.lsp.commands["codekin.findSimilar"] == commands.lens_handler

vim.fn.writefile({ vim.json.encode(report) }, out_path)
