#include "common/lsn.h"

#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace cambium {
namespace {

// Parses 1..8 hex digits into a 32-bit value.
bool ParseHex32(std::string_view text, uint32_t* out) {
  if (text.empty() || text.size() > 8) return false;
  uint32_t v = 0;
  for (char c : text) {
    uint32_t d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return false;
    }
    v = (v << 4) | d;
  }
  *out = v;
  return true;
}

}  // namespace

absl::StatusOr<Lsn> Lsn::Parse(std::string_view text) {
  size_t slash = text.find('/');
  uint32_t hi = 0, lo = 0;
  if (slash == std::string_view::npos || !ParseHex32(text.substr(0, slash), &hi) ||
      !ParseHex32(text.substr(slash + 1), &lo)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("invalid LSN \"%s\": expected X/Y in hex, e.g. 16/B374D848", text));
  }
  return Lsn((uint64_t{hi} << 32) | lo);
}

std::string Lsn::ToString() const {
  return absl::StrFormat("%X/%X", static_cast<uint32_t>(value_ >> 32),
                         static_cast<uint32_t>(value_));
}

std::string WalSegmentFileName(uint32_t timeline_id, uint64_t segno, uint64_t seg_size) {
  const uint64_t segs_per_xlogid = 0x100000000ull / seg_size;
  return absl::StrFormat("%08X%08X%08X", timeline_id,
                         static_cast<uint32_t>(segno / segs_per_xlogid),
                         static_cast<uint32_t>(segno % segs_per_xlogid));
}

absl::StatusOr<WalSegmentName> ParseWalSegmentFileName(std::string_view name, uint64_t seg_size) {
  uint32_t tli = 0, log = 0, seg = 0;
  const uint64_t segs_per_xlogid = 0x100000000ull / seg_size;
  if (name.size() != 24 || !ParseHex32(name.substr(0, 8), &tli) ||
      !ParseHex32(name.substr(8, 8), &log) || !ParseHex32(name.substr(16, 8), &seg) ||
      seg >= segs_per_xlogid) {
    return absl::InvalidArgumentError(
        absl::StrFormat("\"%s\" is not a WAL segment file name", name));
  }
  return WalSegmentName{tli, uint64_t{log} * segs_per_xlogid + seg};
}

}  // namespace cambium
