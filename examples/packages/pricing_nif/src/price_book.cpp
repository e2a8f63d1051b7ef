#include "price_book.hpp"

#include <utility>

namespace kin_shop {

namespace {

constexpr BasisPoints kMaxBasisPoints = 10000;

bool checked_mul(std::int64_t a, std::int64_t b, std::int64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

bool checked_add(std::int64_t a, std::int64_t b, std::int64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}

void validate(const PriceEntry& entry) {
  if (entry.sku.empty()) {
    throw std::invalid_argument("empty sku");
  }
  if (entry.unit_cents < 0) {
    throw std::invalid_argument("negative unit price for " + entry.sku);
  }
  if (entry.bulk_threshold < 0) {
    throw std::invalid_argument("negative bulk threshold for " + entry.sku);
  }
  if (entry.bulk_discount_bp < 0 || entry.bulk_discount_bp > kMaxBasisPoints) {
    throw std::invalid_argument("bulk discount out of range for " + entry.sku);
  }
}

}  // namespace

std::int64_t apply_discount(std::int64_t cents, BasisPoints bp) {
  if (bp <= 0) {
    return cents;
  }
  if (bp >= kMaxBasisPoints) {
    return 0;
  }
  const std::int64_t discount = (cents * bp + 5000) / 10000;
  return cents - discount;
}

PriceBook::PriceBook(std::vector<PriceEntry> entries) {
  entries_.reserve(entries.size());
  for (auto& entry : entries) {
    validate(entry);
    std::string key = entry.sku;
    auto [it, inserted] = entries_.emplace(std::move(key), std::move(entry));
    if (!inserted) {
      throw DuplicateSkuError(it->first);
    }
  }
}

const PriceEntry* PriceBook::find(std::string_view sku) const {
  auto it = entries_.find(std::string(sku));
  return it == entries_.end() ? nullptr : &it->second;
}

std::optional<std::int64_t> PriceBook::unit_price(std::string_view sku,
                                                  std::int64_t quantity) const {
  const PriceEntry* entry = find(sku);
  if (entry == nullptr) {
    return std::nullopt;
  }
  const bool bulk = entry->bulk_threshold > 0 && quantity >= entry->bulk_threshold;
  return bulk ? apply_discount(entry->unit_cents, entry->bulk_discount_bp) : entry->unit_cents;
}

QuoteStatus PriceBook::quote(const std::vector<std::pair<std::string, std::int64_t>>& lines,
                             std::vector<QuoteLine>* out, std::int64_t* total,
                             std::string* failed_sku) const {
  out->clear();
  out->reserve(lines.size());
  std::int64_t sum = 0;

  for (const auto& [sku, quantity] : lines) {
    const auto unit = unit_price(sku, quantity);
    if (!unit) {
      *failed_sku = sku;
      return QuoteStatus::kUnknownSku;
    }

    std::int64_t line_cents = 0;
    if (!checked_mul(*unit, quantity, &line_cents) || !checked_add(sum, line_cents, &sum)) {
      return QuoteStatus::kOverflow;
    }
    out->push_back(QuoteLine{sku, quantity, *unit, line_cents});
  }

  *total = sum;
  return QuoteStatus::kOk;
}

}  // namespace kin_shop
