// NIF entry points for KinShop.Native.PricingNif.
//
// Price books live in a NIF resource: Elixir only ever holds an opaque
// reference, and the PriceBook is freed by the resource destructor once
// the last reference is garbage collected.

#include <erl_nif.h>

#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "nif_term.hpp"
#include "price_book.hpp"

namespace nif = kin_shop::nif;

using kin_shop::PriceBook;
using kin_shop::PriceEntry;
using kin_shop::QuoteLine;
using kin_shop::QuoteStatus;

namespace {

ErlNifResourceType* price_book_type = nullptr;

// The resource only stores a pointer, so the PriceBook can be fully
// constructed (and may throw) before any resource memory is allocated.
struct PriceBookResource {
  PriceBook* book;
};

void price_book_dtor(ErlNifEnv* /*env*/, void* obj) {
  auto* resource = static_cast<PriceBookResource*>(obj);
  delete resource->book;
  resource->book = nullptr;
}

const PriceBook* get_book(ErlNifEnv* env, ERL_NIF_TERM term) {
  PriceBookResource* resource = nullptr;
  if (!enif_get_resource(env, term, price_book_type, reinterpret_cast<void**>(&resource))) {
    return nullptr;
  }
  return resource->book;
}

// {Sku, UnitCents, BulkThreshold, BulkDiscountBp}
bool decode_entry(ErlNifEnv* env, ERL_NIF_TERM term, PriceEntry* out) {
  int arity = 0;
  const ERL_NIF_TERM* items = nullptr;
  if (!enif_get_tuple(env, term, &arity, &items) || arity != 4) {
    return false;
  }
  return nif::get(env, items[0], &out->sku) && nif::get(env, items[1], &out->unit_cents) &&
         nif::get(env, items[2], &out->bulk_threshold) &&
         nif::get(env, items[3], &out->bulk_discount_bp);
}

}  // namespace

// apply_discount(PriceCents, BasisPoints) -> DiscountedCents
static ERL_NIF_TERM apply_discount_nif(ErlNifEnv* env, int argc, const ERL_NIF_TERM argv[]) {
  std::int64_t cents = 0;
  std::int32_t bp = 0;
  if (argc != 2 || !nif::get(env, argv[0], &cents) || !nif::get(env, argv[1], &bp)) {
    return enif_make_badarg(env);
  }
  if (cents < 0 || bp < 0 || bp > 10000) {
    return enif_make_badarg(env);
  }
  return nif::make(env, kin_shop::apply_discount(cents, bp));
}

// new_price_book([{Sku, UnitCents, BulkThreshold, BulkBp}]) -> {ok, Book} | {error, Reason}
static ERL_NIF_TERM new_price_book_nif(ErlNifEnv* env, int argc, const ERL_NIF_TERM argv[]) {
  unsigned length = 0;
  if (argc != 1 || !enif_get_list_length(env, argv[0], &length)) {
    return enif_make_badarg(env);
  }

  std::vector<PriceEntry> entries;
  entries.reserve(length);
  ERL_NIF_TERM head;
  ERL_NIF_TERM tail = argv[0];
  while (enif_get_list_cell(env, tail, &head, &tail)) {
    PriceEntry entry;
    if (!decode_entry(env, head, &entry)) {
      return enif_make_badarg(env);
    }
    entries.push_back(std::move(entry));
  }

  try {
    auto book = std::make_unique<PriceBook>(std::move(entries));
    auto* resource = static_cast<PriceBookResource*>(
        enif_alloc_resource(price_book_type, sizeof(PriceBookResource)));
    resource->book = book.release();
    ERL_NIF_TERM term = enif_make_resource(env, resource);
    enif_release_resource(resource);
    return nif::ok(env, term);
  } catch (const kin_shop::DuplicateSkuError& e) {
    return nif::error(env, "duplicate_sku", nif::make(env, e.sku()));
  } catch (const std::invalid_argument& e) {
    return nif::error(env, "invalid_entry", nif::make(env, std::string(e.what())));
  } catch (const std::bad_alloc&) {
    return nif::error(env, "enomem");
  }
}

// lookup_price(Book, Sku, Quantity) -> {ok, UnitCents} | {error, unknown_sku}
static ERL_NIF_TERM lookup_price_nif(ErlNifEnv* env, int argc, const ERL_NIF_TERM argv[]) {
  const PriceBook* book = argc == 3 ? get_book(env, argv[0]) : nullptr;
  std::string sku;
  std::int64_t quantity = 0;
  if (book == nullptr || !nif::get(env, argv[1], &sku) || !nif::get(env, argv[2], &quantity) ||
      quantity <= 0) {
    return enif_make_badarg(env);
  }

  const auto price = book->unit_price(sku, quantity);
  if (!price) {
    return nif::error(env, "unknown_sku");
  }
  return nif::ok(env, nif::make(env, *price));
}

// quote_basket(Book, [{Sku, Quantity}]) ->
//     {ok, TotalCents, [{Sku, Quantity, UnitCents, LineCents}]} | {error, Reason}
//
// Runs on a dirty CPU scheduler (see nif_funcs below), so it does not need
// to yield even for very large baskets.
static ERL_NIF_TERM quote_basket_nif(ErlNifEnv* env, int argc, const ERL_NIF_TERM argv[]) {
  if (argc != 2) {
    return enif_make_badarg(env);
  }
  const PriceBook* book = get_book(env, argv[0]);
  unsigned length = 0;
  if (book == nullptr || !enif_get_list_length(env, argv[1], &length)) {
    return enif_make_badarg(env);
  }

  // Decode every line first so that a malformed line is reported by its
  // position before any pricing work is done.
  std::vector<std::pair<std::string, std::int64_t>> lines;
  lines.reserve(length);
  ERL_NIF_TERM head;
  ERL_NIF_TERM tail = argv[1];
  unsigned index = 0;
  while (enif_get_list_cell(env, tail, &head, &tail)) {
    int arity = 0;
    const ERL_NIF_TERM* items = nullptr;
    std::string sku;
    std::int64_t quantity = 0;
    if (!enif_get_tuple(env, head, &arity, &items) || arity != 2 ||
        !nif::get(env, items[0], &sku) || !nif::get(env, items[1], &quantity) || quantity <= 0) {
      return nif::error(env, "bad_line", enif_make_uint(env, index));
    }
    lines.emplace_back(std::move(sku), quantity);
    ++index;
  }

  std::vector<QuoteLine> quoted;
  std::int64_t total = 0;
  std::string failed_sku;
  switch (book->quote(lines, &quoted, &total, &failed_sku)) {
    case QuoteStatus::kOk:
      break;
    case QuoteStatus::kUnknownSku:
      return nif::error(env, "unknown_sku", nif::make(env, failed_sku));
    case QuoteStatus::kOverflow:
      return nif::error(env, "overflow");
  }

  // Build the result list back to front so it keeps the input order.
  ERL_NIF_TERM result = enif_make_list(env, 0);
  for (auto it = quoted.rbegin(); it != quoted.rend(); ++it) {
    ERL_NIF_TERM line = enif_make_tuple4(env, nif::make(env, it->sku), nif::make(env, it->quantity),
                                         nif::make(env, it->unit_cents),
                                         nif::make(env, it->line_cents));
    result = enif_make_list_cell(env, line, result);
  }

  return enif_make_tuple3(env, nif::atom(env, "ok"), nif::make(env, total), result);
}

static int load(ErlNifEnv* env, void** /*priv_data*/, ERL_NIF_TERM /*load_info*/) {
  const auto flags = static_cast<ErlNifResourceFlags>(ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER);
  price_book_type =
      enif_open_resource_type(env, nullptr, "kin_price_book", price_book_dtor, flags, nullptr);
  return price_book_type == nullptr ? -1 : 0;
}

static int upgrade(ErlNifEnv* env, void** priv_data, void** /*old_priv_data*/,
                   ERL_NIF_TERM load_info) {
  return load(env, priv_data, load_info);
}

static ErlNifFunc nif_funcs[] = {
    {"apply_discount", 2, apply_discount_nif, 0},
    {"new_price_book", 1, new_price_book_nif, 0},
    {"lookup_price", 3, lookup_price_nif, 0},
    {"quote_basket", 2, quote_basket_nif, ERL_NIF_DIRTY_JOB_CPU_BOUND},
};

ERL_NIF_INIT(Elixir.KinShop.Native.PricingNif, nif_funcs, load, nullptr, upgrade, nullptr);
