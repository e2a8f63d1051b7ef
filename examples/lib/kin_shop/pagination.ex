defmodule KinShop.Pagination do
  @moduledoc """
  Offset pagination for Ecto queries and the helpers the API needs around
  it: parsing `page`/`page_size` query parameters, computing page counts
  and building a compact page range for navigation links.
  """
  import Ecto.Query, only: [limit: 2, offset: 2, exclude: 2]

  defstruct entries: [], page: 1, page_size: 20, total_entries: 0, total_pages: 0

  @type t :: %__MODULE__{
          entries: [term()],
          page: pos_integer(),
          page_size: pos_integer(),
          total_entries: non_neg_integer(),
          total_pages: non_neg_integer()
        }

  @type params :: %{page: pos_integer(), page_size: pos_integer()}

  @default_page_size 20
  @max_page_size 100

  @doc """
  Reads `"page"` and `"page_size"` from string-keyed query parameters.
  Missing or malformed values fall back to page 1 and 20 entries; the
  page size is capped at #{@max_page_size} so clients cannot ask for the
  whole table in one request.
  """
  @spec params(map()) :: params()
  def params(query_params) when is_map(query_params) do
    %{
      page: parse_positive(query_params["page"], 1),
      page_size: query_params["page_size"] |> parse_positive(@default_page_size) |> min(@max_page_size)
    }
  end

  @doc """
  Runs `queryable` for one page and counts the total number of rows with a
  second query, returning a `KinShop.Pagination` struct.
  """
  @spec paginate(Ecto.Queryable.t(), params(), module()) :: t()
  def paginate(queryable, %{page: page, page_size: size}, repo \\ KinShop.Repo) do
    total = queryable |> exclude(:order_by) |> repo.aggregate(:count)

    entries =
      queryable
      |> limit(^size)
      |> offset(^((page - 1) * size))
      |> repo.all()

    %__MODULE__{
      entries: entries,
      page: page,
      page_size: size,
      total_entries: total,
      total_pages: total_pages(total, size)
    }
  end

  @doc "Number of pages needed to show `total` entries, `page_size` at a time."
  @spec total_pages(non_neg_integer(), pos_integer()) :: non_neg_integer()
  def total_pages(0, _page_size), do: 0
  def total_pages(total, page_size), do: div(total + page_size - 1, page_size)

  @doc """
  Builds the page numbers to show in a pager around `current`, with `:gap`
  markers where pages are skipped. The first and last page are always
  included, as are `window` pages on each side of the current one.

      iex> KinShop.Pagination.page_range(6, 20)
      [1, :gap, 4, 5, 6, 7, 8, :gap, 20]
  """
  @spec page_range(pos_integer(), non_neg_integer(), non_neg_integer()) :: [pos_integer() | :gap]
  def page_range(current, total, window \\ 2)
  def page_range(_current, 0, _window), do: []
  def page_range(_current, 1, _window), do: [1]

  def page_range(current, total, window) do
    from = max(current - window, 2)
    to = min(current + window, total - 1)
    middle = if from <= to, do: Enum.to_list(from..to), else: []

    [1]
    |> Kernel.++(if from > 2, do: [:gap], else: [])
    |> Kernel.++(middle)
    |> Kernel.++(if to < total - 1, do: [:gap], else: [])
    |> Kernel.++([total])
  end

  @doc "Returns the JSON `meta` object describing a page for API responses."
  @spec meta(t()) :: map()
  def meta(%__MODULE__{} = page) do
    %{
      page: page.page,
      page_size: page.page_size,
      total_entries: page.total_entries,
      total_pages: page.total_pages,
      has_next: page.page < page.total_pages
    }
  end

  defp parse_positive(nil, default), do: default
  defp parse_positive(value, _default) when is_integer(value) and value > 0, do: value

  defp parse_positive(value, default) when is_binary(value) do
    case Integer.parse(value) do
      {n, ""} when n > 0 -> n
      _ -> default
    end
  end

  defp parse_positive(_value, default), do: default
end
