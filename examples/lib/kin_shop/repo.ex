defmodule KinShop.Repo do
  @moduledoc """
  Ecto repository for the KinShop PostgreSQL database.
  """
  use Ecto.Repo,
    otp_app: :kin_shop,
    adapter: Ecto.Adapters.Postgres

  @doc """
  Runs `fun` inside a transaction and unwraps its result: `{:ok, value}`
  commits, `{:error, reason}` rolls back and returns `{:error, reason}`.
  Unlike `transaction/2` the function does not need to call `rollback/1`.
  """
  @spec transact((-> {:ok, any()} | {:error, any()}), keyword()) :: {:ok, any()} | {:error, any()}
  def transact(fun, opts \\ []) when is_function(fun, 0) do
    transaction(
      fn ->
        case fun.() do
          {:ok, value} -> value
          {:error, reason} -> rollback(reason)
        end
      end,
      opts
    )
  end
end
