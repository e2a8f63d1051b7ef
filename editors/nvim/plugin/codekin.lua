-- codekin: user commands, available with setup{} or with vim.lsp.enable("codekin").
if vim.g.loaded_codekin then
  return
end
vim.g.loaded_codekin = true

if vim.fn.has("nvim-0.10") == 0 then
  vim.notify_once("codekin: Neovim 0.10 or newer is needed", vim.log.levels.WARN)
  return
end

require("codekin.commands").create()
