-- The plugin against the real `codekin serve`, run by tests/test_nvim.py in a headless Neovim:
--   nvim --headless --clean --cmd 'lua vim.opt.rtp:prepend(PLUGIN)' -l e2e.lua OUT FILE LINE CMD QUERY
-- Opens FILE, waits for the client, collects code lenses, runs :CodekinSimilar on LINE, a
-- :{range}CodekinSimilar over an unsaved edit, :CodekinSearch QUERY, the code lens command and
-- :CodekinStatus, then stops the client. Writes every quickfix list it got to OUT as JSON.
local out_path, file, line, cmd_json, query = arg[1], arg[2], tonumber(arg[3]), arg[4], arg[5]
local TIMEOUT = 120000

local report = { notifications = {}, steps = {} }
vim.notify = function(msg, level)
  table.insert(report.notifications, { msg = msg, level = level or vim.log.levels.INFO })
end

local function step(name)
  table.insert(report.steps, { name = name, at = vim.uv.hrtime() / 1e6 })
end

---@param what string
---@param condition fun(): boolean
local function wait_for(what, condition, timeout)
  if not vim.wait(timeout or TIMEOUT, condition, 20) then
    error(("timed out waiting for %s"):format(what))
  end
end

--- Run `action`, wait for the new quickfix list it makes, and return it with file names.
---@param what string
---@param action fun()
local function quickfix_after(what, action)
  local before = vim.fn.getqflist({ id = 0 }).id
  step(what)
  action()
  wait_for(what .. " results in the quickfix list", function()
    return vim.fn.getqflist({ id = 0 }).id ~= before
  end)
  local list = vim.fn.getqflist({ id = 0, items = 0, title = 0 })
  local entries = {}
  for _, item in ipairs(list.items) do
    table.insert(entries, {
      filename = vim.api.nvim_buf_get_name(item.bufnr),
      lnum = item.lnum,
      end_lnum = item.end_lnum,
      text = item.text,
    })
  end
  step(what .. " done")
  return { title = list.title, entries = entries }
end

local function main()
  local attached = false
  vim.api.nvim_create_autocmd("LspAttach", {
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      attached = attached or (client ~= nil and client.name == "codekin")
    end,
  })
  assert(require("codekin").setup({ cmd = vim.json.decode(cmd_json), picker = "quickfix" }), "setup failed")
  step("edit")
  vim.cmd.edit(vim.fn.fnameescape(file))
  local bufnr = vim.api.nvim_get_current_buf()
  local win = vim.api.nvim_get_current_win()
  wait_for("the codekin client to attach", function()
    return attached
  end)
  step("attached")

  -- code lenses: requested on attach, titles resolved lazily
  wait_for("resolved code lenses", function()
    local lenses = vim.lsp.codelens.get(bufnr)
    if #lenses == 0 then
      return false
    end
    for _, lens in ipairs(lenses) do
      if not (lens.command and lens.command.title ~= "") then
        return false
      end
    end
    return true
  end)
  report.lenses = {}
  for _, lens in ipairs(vim.lsp.codelens.get(bufnr)) do
    table.insert(report.lenses, {
      line = lens.range.start.line + 1,
      title = lens.command.title,
      command = lens.command.command,
    })
  end
  step("lenses")

  vim.api.nvim_win_set_cursor(win, { line, 2 })
  report.similar = quickfix_after(":CodekinSimilar", function()
    vim.cmd("CodekinSimilar")
  end)

  -- the lens of the cursor's function (shown on its first line), run as a user would: on
  -- that line, with vim.lsp.codelens.run() (the plugin's client-side command handler)
  local lens_line = 1
  for _, lens in ipairs(report.lenses) do
    if lens.line <= line and lens.line > lens_line then
      lens_line = lens.line
    end
  end
  report.lens_line = lens_line
  vim.api.nvim_set_current_win(win)
  vim.api.nvim_win_set_cursor(win, { lens_line, 0 })
  report.lens_run = quickfix_after("vim.lsp.codelens.run()", function()
    vim.lsp.codelens.run()
  end)

  -- an unsaved edit inside the function body, then the body lines as a range
  vim.api.nvim_set_current_win(win)
  local body_first, body_last = line + 1, line + 4
  local body = vim.api.nvim_buf_get_lines(bufnr, body_first - 1, body_last, false)
  body[1] = body[1] .. " # edited, not saved"
  vim.api.nvim_buf_set_lines(bufnr, body_first - 1, body_first, false, { body[1] })
  report.range = quickfix_after(":{range}CodekinSimilar", function()
    vim.cmd(("%d,%dCodekinSimilar"):format(body_first, body_last))
  end)
  report.range_modified = vim.bo[bufnr].modified

  report.search = quickfix_after(":CodekinSearch", function()
    vim.cmd("CodekinSearch " .. query)
  end)

  report.files = quickfix_after(":CodekinFiles", function()
    vim.cmd("CodekinFiles " .. query)
  end)

  step(":CodekinStatus")
  require("codekin").status(function(status)
    report.status = status
  end)
  wait_for("the status", function()
    return report.status ~= nil
  end)

  -- a bad argument is refused by the plugin with a message, nothing is sent
  report.retrain_bad_sent = require("codekin").retrain("epochs=two")

  step("stop")
  local client = vim.lsp.get_clients({ name = "codekin" })[1]
  client:stop()
  wait_for("the client to stop", function()
    return client:is_stopped()
  end, 15000)
  step("stopped")
end

local ok, err = xpcall(main, debug.traceback)
report.ok = ok
report.error = ok and vim.NIL or tostring(err)
vim.fn.writefile({ vim.json.encode(report) }, out_path)
vim.cmd(ok and "qall!" or "cquit! 1")
