#include "common/ids.h"

#include <cctype>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace cambium {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

template <typename Tag>
Id128<Tag> Id128<Tag>::Generate() {
  // absl::BitGen is seeded from the OS; one generator per thread avoids locking.
  thread_local absl::BitGen gen;
  Id128 id;
  do {
    id = Id128(absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen));
  } while (id.IsZero());
  return id;
}

template <typename Tag>
absl::StatusOr<Id128<Tag>> Id128<Tag>::Parse(std::string_view hex) {
  if (hex.size() != 32) {
    return absl::InvalidArgumentError(
        absl::StrFormat("invalid id \"%s\": expected 32 hex digits", hex));
  }
  uint64_t halves[2] = {0, 0};
  for (size_t i = 0; i < 32; ++i) {
    int v = HexValue(hex[i]);
    if (v < 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("invalid id \"%s\": '%c' is not a hex digit", hex, hex[i]));
    }
    halves[i / 16] = (halves[i / 16] << 4) | static_cast<uint64_t>(v);
  }
  return Id128(halves[0], halves[1]);
}

template <typename Tag>
std::string Id128<Tag>::ToString() const {
  return absl::StrFormat("%016x%016x", hi_, lo_);
}

template <typename Tag>
void Id128<Tag>::AppendBytes(std::string* out) const {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(hi_ >> shift));
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(lo_ >> shift));
}

template <typename Tag>
Id128<Tag> Id128<Tag>::FromBytes(const char* bytes) {
  uint64_t hi = 0, lo = 0;
  for (int i = 0; i < 8; ++i) hi = (hi << 8) | static_cast<uint8_t>(bytes[i]);
  for (int i = 8; i < 16; ++i) lo = (lo << 8) | static_cast<uint8_t>(bytes[i]);
  return Id128(hi, lo);
}

template class Id128<TenantIdTag>;
template class Id128<TimelineIdTag>;

absl::Status ValidateName(std::string_view what, std::string_view name) {
  bool ok = !name.empty() && name.size() <= kMaxNameLength &&
            std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "invalid %s name \"%s\": use 1-%d letters, digits, '-', '_' or '.', starting with a "
        "letter or digit",
        what, name, kMaxNameLength));
  }
  return absl::OkStatus();
}

}  // namespace cambium
