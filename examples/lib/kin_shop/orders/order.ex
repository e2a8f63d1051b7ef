defmodule KinShop.Orders.Order do
  @moduledoc """
  A customer order with its lines. Status moves forward only:
  `:pending -> :paid -> :shipped`, with `:cancelled` reachable from
  `:pending` and `:paid`, and `:refunded` reachable from `:paid` and
  `:shipped`. `status_changeset/3` enforces these transitions.
  """
  use Ecto.Schema

  import Ecto.Changeset

  alias KinShop.Orders.OrderLine

  @type status :: :pending | :paid | :shipped | :cancelled | :refunded
  @type t :: %__MODULE__{}

  @statuses [:pending, :paid, :shipped, :cancelled, :refunded]
  @email_format ~r/^[^\s@]+@[^\s@]+\.[^\s@]+$/

  schema "orders" do
    field :customer_email, :string
    field :customer_id, :string
    field :status, Ecto.Enum, values: @statuses, default: :pending
    field :currency, :string, default: "EUR"
    field :total_cents, :integer, default: 0
    field :discount_bp, :integer, default: 0
    field :payment_ref, :string
    field :tracking_code, :string
    field :notes, :string

    has_many :lines, OrderLine, on_replace: :delete

    timestamps(type: :utc_datetime)
  end

  @doc """
  Changeset for a new order. Lines are cast through
  `KinShop.Orders.OrderLine.changeset/2` and at least one is required;
  the total is not cast, it is computed by `KinShop.Orders`.
  """
  @spec changeset(t(), map()) :: Ecto.Changeset.t()
  def changeset(order, attrs) do
    order
    |> cast(attrs, [:customer_email, :customer_id, :currency, :discount_bp, :notes])
    |> validate_required([:customer_email, :currency])
    |> update_change(:customer_email, &String.downcase/1)
    |> validate_format(:customer_email, @email_format)
    |> validate_number(:discount_bp, greater_than_or_equal_to: 0, less_than_or_equal_to: 5_000)
    |> validate_length(:notes, max: 500)
    |> cast_assoc(:lines, with: &OrderLine.changeset/2, required: true)
  end

  @doc """
  Changeset that moves an order to `new_status`, casting the extra fields
  that belong to the transition (`payment_ref` when paid, `tracking_code`
  when shipped). Illegal transitions add an error on `:status`.
  """
  @spec status_changeset(t(), status(), map()) :: Ecto.Changeset.t()
  def status_changeset(%__MODULE__{status: current} = order, new_status, attrs \\ %{}) do
    order
    |> cast(attrs, [:payment_ref, :tracking_code])
    |> put_change(:status, new_status)
    |> validate_transition(current, new_status)
    |> require_transition_fields(new_status)
  end

  @doc "Returns true when an order may move from status `from` to status `to`."
  @spec transition_allowed?(status(), status()) :: boolean()
  def transition_allowed?(:pending, :paid), do: true
  def transition_allowed?(:pending, :cancelled), do: true
  def transition_allowed?(:paid, :shipped), do: true
  def transition_allowed?(:paid, :cancelled), do: true
  def transition_allowed?(:paid, :refunded), do: true
  def transition_allowed?(:shipped, :refunded), do: true
  def transition_allowed?(_from, _to), do: false

  @doc "Lists every status an order can have, in lifecycle order."
  @spec statuses() :: [status()]
  def statuses, do: @statuses

  defp validate_transition(changeset, from, to) do
    if transition_allowed?(from, to) do
      changeset
    else
      add_error(changeset, :status, "cannot change from %{from} to %{to}", from: from, to: to)
    end
  end

  defp require_transition_fields(changeset, :paid), do: validate_required(changeset, [:payment_ref])
  defp require_transition_fields(changeset, :shipped), do: validate_required(changeset, [:tracking_code])
  defp require_transition_fields(changeset, _status), do: changeset
end
