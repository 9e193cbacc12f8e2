// Lsn: a position in the PostgreSQL write-ahead log (XLogRecPtr), as a strong type.
//
// Every component passes WAL positions as Lsn, never as a bare integer. An Lsn prints
// and parses as Postgres does ("16/B374D848": high and low 32 bits in hex). The
// segment and page helpers follow Postgres' XLogSegNo / XLByteToSeg arithmetic for
// the sizes Cambium supports: 16 MiB segments (configurable per call) and 8 KiB WAL
// pages.
//
// Thread-safety: a value type; safe to copy and share.
#ifndef CAMBIUM_COMMON_LSN_H_
#define CAMBIUM_COMMON_LSN_H_

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace cambium {

// Postgres' WAL geometry. Cambium requires the defaults of postgresql-15 as Debian
// builds it; pg_control and long page headers are checked against these.
inline constexpr uint32_t kWalPageSize = 8192;                   // XLOG_BLCKSZ
inline constexpr uint64_t kDefaultWalSegmentSize = 16ull << 20;  // wal_segment_size
inline constexpr uint32_t kBlockSize = 8192;                     // BLCKSZ

class Lsn {
 public:
  constexpr Lsn() = default;
  constexpr explicit Lsn(uint64_t value) : value_(value) {}

  static constexpr Lsn Invalid() { return Lsn(0); }
  static constexpr Lsn Max() { return Lsn(UINT64_MAX); }

  // Parses "X/Y" with X and Y hexadecimal of at most 8 digits each ("0/01000028"
  // and "16/B374D848" are both accepted).
  static absl::StatusOr<Lsn> Parse(std::string_view text);

  constexpr uint64_t value() const { return value_; }
  constexpr bool valid() const { return value_ != 0; }

  // "16/B374D848", as Postgres prints with "%X/%X".
  std::string ToString() const;

  // Segment and page arithmetic.
  constexpr uint64_t SegmentNo(uint64_t seg_size = kDefaultWalSegmentSize) const {
    return value_ / seg_size;
  }
  constexpr uint64_t SegmentOffset(uint64_t seg_size = kDefaultWalSegmentSize) const {
    return value_ % seg_size;
  }
  constexpr uint32_t PageOffset() const { return static_cast<uint32_t>(value_ % kWalPageSize); }
  constexpr bool IsPageBoundary() const { return PageOffset() == 0; }
  constexpr bool IsSegmentBoundary(uint64_t seg_size = kDefaultWalSegmentSize) const {
    return SegmentOffset(seg_size) == 0;
  }
  constexpr Lsn PageStart() const { return Lsn(value_ - PageOffset()); }
  constexpr Lsn SegmentStart(uint64_t seg_size = kDefaultWalSegmentSize) const {
    return Lsn(value_ - SegmentOffset(seg_size));
  }
  // Rounds up to a multiple of 8 (MAXALIGN), as WAL records are aligned.
  constexpr Lsn MaxAligned() const { return Lsn((value_ + 7) & ~uint64_t{7}); }

  constexpr Lsn operator+(uint64_t bytes) const { return Lsn(value_ + bytes); }
  constexpr Lsn operator-(uint64_t bytes) const { return Lsn(value_ - bytes); }
  constexpr Lsn& operator+=(uint64_t bytes) {
    value_ += bytes;
    return *this;
  }
  // Distance in bytes; REQUIRES: *this >= other.
  constexpr uint64_t operator-(Lsn other) const { return value_ - other.value_; }

  constexpr auto operator<=>(const Lsn&) const = default;

  template <typename H>
  friend H AbslHashValue(H h, Lsn lsn) {
    return H::combine(std::move(h), lsn.value_);
  }

 private:
  uint64_t value_ = 0;
};

// The start LSN of segment `segno`.
constexpr Lsn SegmentStartLsn(uint64_t segno, uint64_t seg_size = kDefaultWalSegmentSize) {
  return Lsn(segno * seg_size);
}

// The file name Postgres gives a WAL segment: 8 hex digits of timeline id, then the
// segment number split in "log" and "seg" parts ("000000010000000000000003").
std::string WalSegmentFileName(uint32_t timeline_id, uint64_t segno,
                               uint64_t seg_size = kDefaultWalSegmentSize);

struct WalSegmentName {
  uint32_t timeline_id = 0;
  uint64_t segno = 0;
};

// Parses a segment file name; rejects partial/history/backup names.
absl::StatusOr<WalSegmentName> ParseWalSegmentFileName(std::string_view name,
                                                       uint64_t seg_size = kDefaultWalSegmentSize);

// A block number inside a relation segment or any versioned file (8 KiB blocks).
class BlockNo {
 public:
  constexpr BlockNo() = default;
  constexpr explicit BlockNo(uint32_t value) : value_(value) {}
  constexpr uint32_t value() const { return value_; }
  // Byte offset of the block's first byte inside its file.
  constexpr uint64_t ByteOffset() const { return uint64_t{value_} * kBlockSize; }
  constexpr auto operator<=>(const BlockNo&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, BlockNo b) {
    return H::combine(std::move(h), b.value_);
  }

 private:
  uint32_t value_ = 0;
};

}  // namespace cambium

#endif  // CAMBIUM_COMMON_LSN_H_
