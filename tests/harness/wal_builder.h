// WalBuilder: writes valid PostgreSQL 15 WAL bytes for tests.
//
// Real Postgres is the authority (tests compare against pg_waldump), but some layouts
// happen there only by chance: a record header split across two pages, a page that
// overwrites an aborted continuation, a record crossing a segment boundary at an exact
// offset. The builder produces them deterministically with correct page headers,
// prev-links and CRCs, so the decoder's unit tests can cover every branch.
//
// Thread-safety: not thread-safe.
#ifndef CAMBIUM_TESTS_HARNESS_WAL_BUILDER_H_
#define CAMBIUM_TESTS_HARNESS_WAL_BUILDER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/lsn.h"

namespace cambium::testing {

class WalBuilder {
 public:
  struct Options {
    uint64_t system_id = 7300000000000000001ull;
    uint32_t timeline_id = 1;
    uint64_t segment_size = kDefaultWalSegmentSize;
  };
  // A block reference carrying data (no image).
  struct Block {
    uint32_t rel_oid = 16384;
    uint32_t block_no = 0;
    std::string data;  // non-empty
  };

  // REQUIRES: start is a page boundary.
  explicit WalBuilder(Lsn start) : WalBuilder(start, Options{}) {}
  WalBuilder(Lsn start, Options options);

  // Appends a record; returns its start LSN.
  Lsn Add(uint8_t rmid, uint8_t info, uint32_t xid, std::string_view main_data,
          const std::vector<Block>& blocks = {});
  // A Transaction-rmgr commit record with the given TimestampTz.
  Lsn AddCommit(uint32_t xid, int64_t xact_time);
  // A record of exactly `total_len` bytes (a logical message). REQUIRES: total_len
  // >= 26 and not in [282, 284] (no header encoding yields those sizes).
  Lsn AddWithTotalLen(uint32_t total_len);
  // XLOG_SWITCH; the rest of the segment is left unused.
  Lsn AddSwitch();
  // Writes the start of a record of `total_len` bytes up to the end of its page and
  // no further, then marks the next page XLP_FIRST_IS_OVERWRITE_CONTRECORD, as
  // Postgres does after crash recovery found the record incomplete. Returns the
  // aborted record's start. REQUIRES: the record does not fit on the current page.
  Lsn AddAbortedRecord(uint32_t total_len);

  Lsn start() const { return start_; }
  // Where the next record goes: the end of the last record (Postgres' EndRecPtr).
  Lsn end() const { return start_ + out_.size(); }
  // Where the next record will start: end(), or just after the page header that
  // will be written there if end() is a page boundary.
  Lsn next_record_start() const;
  // All bytes from start() to end().
  const std::string& bytes() const { return out_; }
  // Appends zero bytes (an unwritten WAL tail).
  void AppendZeros(size_t n) { out_.append(n, '\0'); }

 private:
  std::string BuildRecord(uint8_t rmid, uint8_t info, uint32_t xid, std::string_view main_data,
                          const std::vector<Block>& blocks) const;
  std::string MessageRecord(uint32_t total_len) const;
  void WritePageHeader(uint32_t rem_len, bool continuation);
  // Writes record bytes with page headers; returns the record's start.
  Lsn Emit(const std::string& record, size_t limit);

  const Options options_;
  const Lsn start_;
  std::string out_;
  Lsn prev_;
  bool overwrite_next_page_ = false;
};

}  // namespace cambium::testing

#endif  // CAMBIUM_TESTS_HARNESS_WAL_BUILDER_H_
