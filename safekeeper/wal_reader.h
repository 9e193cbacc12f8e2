// VerifiedWalReader: the WAL one ReadWal stream serves, read from a timeline's
// segments, with the CRC of every record checked before any byte of it leaves
// the safekeeper.
//
// Records were decoded (CRC included) when they arrived, but every reader reads
// them again from disk: a byte flipped since (bit rot, a bad sector the drive did
// not report) must be caught here, never served. The reader decodes with the
// Postgres WAL decoder (common/pg) from a record boundary at or before the first
// byte asked for and hands out only bytes of records whose CRC verified; it
// reads ahead past the window's limit to finish the record that straddles it. A
// record that fails is DATA_LOSS naming the safekeeper and the segment, so the
// client can read from another safekeeper.
//
// Bytes after the last complete record (a proposer's recovery read may reach
// into a record still being written) cannot be verified by anyone yet: above the
// window's verify_to they are handed out as they are. So are the bytes at the
// lowest stored LSN that continue a record begun below it (trimmed or skipped
// WAL): no copy of the record's start is left here to check them against.
//
// Thread-safety: not thread-safe; one per stream.
#ifndef CAMBIUM_SAFEKEEPER_WAL_READER_H_
#define CAMBIUM_SAFEKEEPER_WAL_READER_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/lsn.h"
#include "common/pg/wal_decoder.h"
#include "safekeeper/term_history.h"
#include "safekeeper/timeline.h"

namespace cambium::safekeeper {

class VerifiedWalReader {
 public:
  // Reads `timeline` from `start` on; `term` as in Timeline::ReadLimit.
  // REQUIRES: timeline outlives this.
  VerifiedWalReader(Timeline* timeline, Lsn start, Term term);

  // Up to `max` verified bytes from position() on, below window.limit (a window
  // ReadLimit returned for position()). Fewer (possibly none) only if the window
  // ends first, or a damaged record follows: the bytes before it are handed
  // out, then every later call fails with DATA_LOSS.
  absl::StatusOr<std::string> Read(const Timeline::ReadWindow& window, uint64_t max);
  // The next byte Read hands out.
  Lsn position() const { return pos_; }

 private:
  // Where decoding must start so that the record holding pos_ is verified.
  absl::StatusOr<Lsn> DecodeStart();
  // The page header at `page`: its size and whether the page begins with the
  // continuation of an earlier record, and where that continuation ends
  // (Lsn::Max() if it fills the page). Nullopt if it is not a valid header.
  struct PageStart {
    bool continuation = false;
    Lsn first_record;  // where the first record beginning in this page starts
  };
  absl::StatusOr<std::optional<PageStart>> ReadPageStart(Lsn page);
  // Feeds the decoder the next chunk below `bound`.
  absl::Status FeedMore(Lsn bound);
  // Decodes until verified_ reaches `target`, the window says the rest is an
  // unfinished record, or a record fails (damage_).
  absl::Status VerifyTo(Lsn target, const Timeline::ReadWindow& window);
  void SetUnverifiableTail();
  absl::Status Damaged(Lsn at, const absl::Status& cause) const;

  Timeline* const tl_;
  const Term term_;
  Lsn pos_;                                // next byte to hand out
  std::optional<pg::WalDecoder> decoder_;  // created by the first Read
  Lsn fed_;                                // bytes below were fed to the decoder
  Lsn verified_;                           // end of the last verified record
  std::string buf_;                        // bytes [pos_, fed_)
  bool unverifiable_tail_ = false;         // decoding ended above verify_to
  absl::Status damage_;                    // a record below verify_to failed
};

}  // namespace cambium::safekeeper

#endif  // CAMBIUM_SAFEKEEPER_WAL_READER_H_
