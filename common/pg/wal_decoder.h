// WalDecoder: turns PostgreSQL 15 WAL bytes into records, exactly as Postgres'
// xlogreader reads them.
//
// Bytes are fed in LSN order (Feed); Next() returns the next complete record,
// std::nullopt when more bytes are needed, or an error when the WAL is invalid at
// the current position. It handles short and long page headers, records whose
// header or body continue across pages and segments, XLOG_SWITCH (the rest of the
// segment is skipped), and "overwrite contrecord" pages (an aborted partial record
// is abandoned, as Postgres does after a crash).
//
// Every record's CRC-32C is verified and its block references are parsed before it
// is returned. Errors are sticky: once Next() fails, it keeps failing.
//   OUT_OF_RANGE: the WAL ends here (a zero record length, a zeroed page, or a page
//                 left over from a recycled segment), which is how valid WAL ends in
//                 a pg_wal directory.
//   DATA_LOSS:    the bytes are corrupt or not PostgreSQL 15 WAL (bad CRC, bad
//                 header, impossible lengths, broken prev-link).
// The decoder never reads outside the bytes it was given and never allocates more
// than the bytes it was fed, whatever lengths the input claims.
//
// Positions: WalRecord::start is the record's first byte (pg_waldump's "lsn");
// WalRecord::end is where the next record is read (Postgres' EndRecPtr: the
// MAXALIGNed end, a page boundary when the record fills its page exactly, the
// next segment's start after XLOG_SWITCH). Branch points and restore targets are
// record ends.
//
// Thread-safety: not thread-safe; one decoder per reader.
#ifndef CAMBIUM_COMMON_PG_WAL_DECODER_H_
#define CAMBIUM_COMMON_PG_WAL_DECODER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/lsn.h"

namespace cambium::pg {

// A block reference of a record (XLogRecordBlockHeader).
struct WalBlockRef {
  uint8_t block_id = 0;
  uint32_t spc_oid = 0;  // RelFileNode
  uint32_t db_oid = 0;
  uint32_t rel_oid = 0;
  uint8_t fork = 0;
  uint32_t block_no = 0;
  uint8_t flags = 0;  // BKPBLOCK_* bits
  bool has_image = false;
  bool apply_image = false;
  uint16_t image_len = 0;  // bytes of (possibly compressed) image in the record
  uint8_t image_info = 0;  // BKPIMAGE_* bits
  uint16_t data_len = 0;
};

struct WalRecord {
  Lsn start;
  Lsn end;
  Lsn prev;
  uint32_t xid = 0;
  uint8_t rmid = 0;
  uint8_t info = 0;
  uint32_t total_len = 0;  // xl_tot_len
  uint32_t fpi_len = 0;    // sum of block image lengths (pg_waldump's tot - rec)
  std::vector<WalBlockRef> blocks;
  uint32_t main_data_offset = 0;  // into bytes
  uint32_t main_data_len = 0;
  std::string bytes;  // the whole record, header first (xl_tot_len bytes)

  std::string_view main_data() const {
    return std::string_view(bytes).substr(main_data_offset, main_data_len);
  }
  // xl_info without XLOG's own flag bits: the rmgr's record type.
  uint8_t rmgr_info() const { return info & 0xF0; }
};

struct WalDecoderOptions {
  // Must match the long page headers. Default: 16 MiB.
  uint64_t segment_size = kDefaultWalSegmentSize;
  // If non-zero, long page headers must carry this system identifier. If zero, the
  // first long header seen fixes it. Default: 0.
  uint64_t system_id = 0;
};

class WalDecoder {
 public:
  // `start` is a record's first byte, or a page boundary. At a page boundary whose
  // page begins with the continuation of an earlier record, that continuation is
  // skipped and decoding starts at the first record that begins there (as
  // XLogFindNextRecord does), so a decoder can start at any segment's start.
  explicit WalDecoder(Lsn start, WalDecoderOptions options = {});

  // Appends bytes that follow everything fed so far: data[0] is at fed_end().
  void Feed(std::string_view data);
  Lsn fed_end() const { return buf_start_ + buf_.size(); }

  // The next record, std::nullopt if more bytes are needed, or the error at the
  // current position (sticky).
  absl::StatusOr<std::optional<WalRecord>> Next();

  // The end of the last record returned (the start LSN before the first one).
  Lsn position() const { return last_end_; }
  // The system identifier from the long page headers (0 until one is seen).
  uint64_t system_id() const { return system_id_; }

 private:
  // Outcome of one decoding step.
  enum class Step { kOk, kNeedMore, kError, kRestart };
  struct PageHeader {
    uint32_t size = 0;  // 24 or 40 bytes
    uint16_t info = 0;
    uint32_t rem_len = 0;
  };

  Step ValidatePageHeader(Lsn page, PageHeader* out);
  Step SkipContinuationAtStart();
  Step BeginRecord();
  Step GatherRecord();
  Step ValidateRecordHeader(const uint8_t* header, Lsn at);
  absl::StatusOr<WalRecord> FinishRecord();
  // Pointer to `n` fed bytes at `lsn`, or nullptr if they have not been fed.
  const uint8_t* Bytes(Lsn lsn, uint64_t n) const;
  Step Fail(absl::Status status);
  void DropConsumedInput();

  const WalDecoderOptions options_;
  uint64_t system_id_;
  std::string buf_;  // fed bytes from buf_start_ on
  Lsn buf_start_;
  Lsn pos_;               // where the next record (or its page header) is read
  bool skip_contrecord_;  // started at a page boundary; skip a leading continuation
  Lsn last_end_;
  bool have_prev_ = false;  // a record was decoded: check prev-links exactly
  Lsn last_record_start_;
  uint32_t latest_page_tli_ = 0;
  Lsn latest_page_;

  // The record being assembled; rec_ holds its bytes so far.
  bool assembling_ = false;
  Lsn rec_start_;
  Lsn cursor_;  // next byte of the record to copy
  uint32_t rec_total_ = 0;
  bool header_checked_ = false;
  std::string rec_;

  absl::Status error_;
};

// Decodes the records in `bytes` (which start at `start`) and returns the end of
// the last complete record that ends at or below `target`: the record boundary a
// branch point or restore target is rounded down to. The end of valid WAL or of
// the bytes before `target` is not an error (the last record before it counts);
// corruption is (DATA_LOSS). NOT_FOUND if no record ends at or below `target`.
absl::StatusOr<Lsn> LastRecordEndAtOrBelow(Lsn start, std::string_view bytes, Lsn target,
                                           WalDecoderOptions options = {});

}  // namespace cambium::pg

#endif  // CAMBIUM_COMMON_PG_WAL_DECODER_H_
