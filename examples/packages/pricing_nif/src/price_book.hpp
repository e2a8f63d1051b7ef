// PriceBook: an immutable table of unit prices with one bulk-discount tier
// per SKU. Built once from the catalogue and then shared read-only between
// scheduler threads, so it needs no locking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace kin_shop {

// Discounts are expressed in basis points: 100 bp = 1%, 10000 bp = 100%.
using BasisPoints = std::int32_t;

struct PriceEntry {
  std::string sku;
  std::int64_t unit_cents = 0;
  std::int64_t bulk_threshold = 0;  // 0 disables the bulk tier
  BasisPoints bulk_discount_bp = 0;
};

struct QuoteLine {
  std::string sku;
  std::int64_t quantity = 0;
  std::int64_t unit_cents = 0;
  std::int64_t line_cents = 0;
};

enum class QuoteStatus { kOk, kUnknownSku, kOverflow };

// Thrown by the PriceBook constructor when two entries share a SKU.
class DuplicateSkuError : public std::invalid_argument {
 public:
  explicit DuplicateSkuError(const std::string& sku)
      : std::invalid_argument("duplicate sku: " + sku), sku_(sku) {}

  const std::string& sku() const noexcept { return sku_; }

 private:
  std::string sku_;
};

// Subtracts `bp` basis points from `cents`, rounding the discount half up
// to a whole cent. Mirrors KinShop.Money.apply_discount/2 in Elixir.
std::int64_t apply_discount(std::int64_t cents, BasisPoints bp);

class PriceBook {
 public:
  // Validates and indexes the entries. Throws DuplicateSkuError for a
  // repeated SKU and std::invalid_argument for negative prices or an
  // out-of-range discount.
  explicit PriceBook(std::vector<PriceEntry> entries);

  PriceBook(const PriceBook&) = delete;
  PriceBook& operator=(const PriceBook&) = delete;

  // Effective unit price when buying `quantity` units, or nullopt for an
  // unknown SKU.
  std::optional<std::int64_t> unit_price(std::string_view sku, std::int64_t quantity) const;

  bool contains(std::string_view sku) const { return find(sku) != nullptr; }

  std::size_t size() const noexcept { return entries_.size(); }

  // Prices every (sku, quantity) pair into `out` and sums them into
  // `total`. On kUnknownSku, `failed_sku` names the offending SKU.
  QuoteStatus quote(const std::vector<std::pair<std::string, std::int64_t>>& lines,
                    std::vector<QuoteLine>* out, std::int64_t* total,
                    std::string* failed_sku) const;

 private:
  const PriceEntry* find(std::string_view sku) const;

  std::unordered_map<std::string, PriceEntry> entries_;
};

}  // namespace kin_shop
