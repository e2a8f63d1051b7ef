import Config

config :kin_shop, ecto_repos: [KinShop.Repo]

config :kin_shop, KinShop.Repo,
  database: "kin_shop_#{config_env()}",
  username: "postgres",
  password: "postgres",
  hostname: "localhost",
  pool_size: 10,
  telemetry_prefix: [:kin_shop, :repo]

config :kin_shop,
  http_port: 4080,
  payment_gateway: KinShop.Payments.CardGateway,
  warehouse_url: "http://warehouse.internal:8088/v1/stock",
  api_keys: %{
    "dev-key-please-rotate" => "internal-dashboard"
  }

config :kin_shop, :payment_breaker,
  threshold: 5,
  reset_timeout: 30_000

config :kin_shop, KinShop.Payments.CardGateway,
  endpoint: "https://cards.example.invalid/v2",
  currencies: ["EUR", "USD", "GBP"]

config :kin_shop, KinShop.Payments.InvoiceGateway,
  credit_limit_cents: 500_000,
  payment_terms_days: 30

config :logger, :console,
  format: "$time $metadata[$level] $message\n",
  metadata: [:request_id, :order_id]

if config_env() == :test do
  config :kin_shop, http_port: nil
  config :kin_shop, KinShop.Repo, pool: Ecto.Adapters.SQL.Sandbox, pool_size: 5
  config :logger, level: :warning
end
