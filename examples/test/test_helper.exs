# Tests that need PostgreSQL are tagged :integration and excluded by
# default. Run them with `mix test --include integration` after
# `mix ecto.setup`.
ExUnit.start(exclude: [:integration])

Ecto.Adapters.SQL.Sandbox.mode(KinShop.Repo, :manual)
