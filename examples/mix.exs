defmodule KinShop.MixProject do
  use Mix.Project

  @version "0.3.1"
  @source_url "https://example.invalid/kin_shop"

  def project do
    [
      app: :kin_shop,
      version: @version,
      elixir: "~> 1.15",
      start_permanent: Mix.env() == :prod,
      compilers: [:elixir_make] ++ Mix.compilers(),
      make_targets: ["all"],
      make_clean: ["clean"],
      erlc_paths: ["src"],
      erlc_include_path: "include",
      deps: deps(),
      aliases: aliases(),
      docs: [main: "readme", source_url: @source_url, extras: ["README.md"]]
    ]
  end

  def application do
    [
      mod: {KinShop.Application, []},
      extra_applications: [:logger, :crypto, :inets, :ssl]
    ]
  end

  defp deps do
    [
      {:plug_cowboy, "~> 2.7"},
      {:ecto_sql, "~> 3.11"},
      {:postgrex, "~> 0.17"},
      {:jason, "~> 1.4"},
      {:telemetry, "~> 1.2"},
      {:elixir_make, "~> 0.8", runtime: false},
      {:ex_doc, "~> 0.31", only: :dev, runtime: false}
    ]
  end

  defp aliases do
    [
      setup: ["deps.get", "ecto.setup"],
      "ecto.setup": ["ecto.create", "ecto.migrate"],
      "ecto.reset": ["ecto.drop", "ecto.setup"]
    ]
  end
end
