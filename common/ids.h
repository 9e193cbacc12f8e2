// TenantId and TimelineId: 128-bit identifiers, printed as 32 lowercase hex digits;
// and the rule for the names of tenants and branches (ValidateName).
//
// Ids are generated randomly (Generate) by the pageserver when a tenant or timeline
// is created and never reused. They are distinct types so that a timeline id can
// never be passed where a tenant id is expected.
//
// Thread-safety: value types. Generate() is thread-safe.
#ifndef CAMBIUM_COMMON_IDS_H_
#define CAMBIUM_COMMON_IDS_H_

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace cambium {

// REQUIRES: Tag is an empty struct that makes each id type distinct.
template <typename Tag>
class Id128 {
 public:
  constexpr Id128() = default;
  constexpr Id128(uint64_t hi, uint64_t lo) : hi_(hi), lo_(lo) {}

  // A fresh random id (never the zero id).
  static Id128 Generate();
  // Parses exactly 32 hex digits (either case).
  static absl::StatusOr<Id128> Parse(std::string_view hex);

  constexpr uint64_t hi() const { return hi_; }
  constexpr uint64_t lo() const { return lo_; }
  constexpr bool IsZero() const { return hi_ == 0 && lo_ == 0; }

  std::string ToString() const;

  // 16 bytes, big endian, so that byte order equals numeric order (used in keys).
  void AppendBytes(std::string* out) const;
  // REQUIRES: bytes points at 16 readable bytes written by AppendBytes.
  static Id128 FromBytes(const char* bytes);

  constexpr auto operator<=>(const Id128&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const Id128& id) {
    return H::combine(std::move(h), id.hi_, id.lo_);
  }

 private:
  uint64_t hi_ = 0;
  uint64_t lo_ = 0;
};

struct TenantIdTag {};
struct TimelineIdTag {};
using TenantId = Id128<TenantIdTag>;
using TimelineId = Id128<TimelineIdTag>;

// Branch and tenant names: 1-kMaxNameLength characters of [A-Za-z0-9._-], starting
// with a letter or digit (they become role, directory and socket names). Every name
// Cambium derives from a branch name (a restore's NAME_old_<time>, a read-only
// endpoint's NAME-ro-<ms>) is shortened to fit too.
inline constexpr size_t kMaxNameLength = 63;
// INVALID_ARGUMENT naming `what` ("branch", "tenant") unless `name` is such a name.
absl::Status ValidateName(std::string_view what, std::string_view name);

}  // namespace cambium

#endif  // CAMBIUM_COMMON_IDS_H_
