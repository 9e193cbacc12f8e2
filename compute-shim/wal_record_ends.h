// WalRecordEnds: the end of the last complete WAL record the compute has written.
//
// Why: W tags every data mutation (ARCHITECTURE.md section 2). Postgres writes whole
// 8 KiB WAL pages, zero-padded after its insert position, so the raw end of a WAL
// write is usually past the last record, while branch points are record ends. With
// the raw end as W, the last data writes before a quiet period (a checkpoint's
// pg_control update, the pages it flushed) carry a tag above the head's record end
// and are invisible on a branch cut there: a compute started on it recovers from the
// previous checkpoint (22 s after a 2 GB load instead of 0.3 s).
//
// The end of the last complete record written is as valid a tag. Postgres writes a
// data page only after flushing the WAL up to that page's LSN, which is a record end
// inside the written bytes, and sets hint bits only for commits whose record is
// flushed; so no data write depends on a byte past the last complete record. (A tag
// may be larger than necessary, never smaller: the raw end stays a valid fallback.)
//
// The tracker keeps the bytes from that record end R to the end of WAL written (the
// record in progress) and decodes them after each write. A write below R repeats
// bytes that are final there (Postgres rewrites its partial last page). A write past
// the tracked end (a gap; Postgres never leaves one) restarts tracking at the write's
// page, where the decoder skips a leading continuation; until a record is decoded
// again, Written() returns the raw end.
//
// Thread-safety: not thread-safe (the shim serializes WAL writes under one mutex).
#ifndef CAMBIUM_COMPUTE_SHIM_WAL_RECORD_ENDS_H_
#define CAMBIUM_COMPUTE_SHIM_WAL_RECORD_ENDS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/lsn.h"

namespace cambium::shim {

class WalRecordEnds {
 public:
  // `start` is a record end (where this compute's WAL begins).
  explicit WalRecordEnds(Lsn start, uint64_t segment_size = kDefaultWalSegmentSize)
      : segment_size_(segment_size), record_end_(start), base_(start) {}

  // WAL bytes [lsn, lsn + bytes.size()) were written. Returns the tag they allow: the
  // end of the last complete record written, or the raw end while tracking is lost.
  Lsn Written(Lsn lsn, std::string_view bytes);

  // The end of the last complete record decoded so far.
  Lsn record_end() const { return record_end_; }

 private:
  const uint64_t segment_size_;
  Lsn record_end_;       // end of the last complete record (valid when synced_)
  bool synced_ = true;   // record_end_ is known
  Lsn base_;             // where pending_ starts: a record start or a page boundary
  std::string pending_;  // written bytes from base_ on
};

}  // namespace cambium::shim

#endif  // CAMBIUM_COMPUTE_SHIM_WAL_RECORD_ENDS_H_
