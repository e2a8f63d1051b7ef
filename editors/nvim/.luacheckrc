-- luacheck configuration for the codekin Neovim plugin (run from editors/nvim).
std = "luajit"
max_line_length = 120
read_globals = {
  vim = {
    other_fields = true,
    fields = {
      g = { other_fields = true, read_only = false },
      lsp = { other_fields = true, fields = { commands = { other_fields = true, read_only = false } } },
    },
  },
}
-- the headless test scripts capture messages by replacing vim.notify
files["tests"] = { ignore = { "122" } }
