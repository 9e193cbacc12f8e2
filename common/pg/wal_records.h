// Interpretation of the WAL records Cambium needs: the block references and main
// data of any record, transaction commit/abort records (their xact_time maps
// timestamps to LSNs for point-in-time restore), and checkpoint records (their
// redo LSN is where a compute's crash recovery starts).
//
// Thread-safety: pure functions.
#ifndef CAMBIUM_COMMON_PG_WAL_RECORDS_H_
#define CAMBIUM_COMMON_PG_WAL_RECORDS_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/lsn.h"
#include "common/pg/wal_decoder.h"

namespace cambium::pg {

// Parses the block headers of record->bytes and fills blocks, fpi_len,
// main_data_offset and main_data_len. DATA_LOSS if the headers do not add up to
// xl_tot_len (the checks of Postgres' DecodeXLogRecord). WalDecoder calls this for
// every record it returns.
absl::Status DecodeRecordBody(WalRecord* record);

// Postgres' TimestampTz (microseconds since 2000-01-01 UTC) <-> absl::Time.
absl::Time PgTimestampToTime(int64_t pg_micros);
int64_t TimeToPgTimestamp(absl::Time time);
// "2026-11-21 19:31:29.123456 UTC", as pg_waldump prints it with TZ=UTC.
std::string FormatPgTimestampUtc(int64_t pg_micros);

// A relation's files (Postgres' RelFileNode): tablespace, database, relfilenode.
struct RelFileNode {
  uint32_t spc = 0;
  uint32_t db = 0;
  uint32_t rel = 0;
  auto operator<=>(const RelFileNode&) const = default;
};

enum class XactKind { kCommit, kAbort, kCommitPrepared, kAbortPrepared };

struct XactRecord {
  XactKind kind = XactKind::kCommit;
  int64_t xact_time = 0;  // TimestampTz
  // The relations whose files the transaction drops: those it dropped (commit),
  // or those it created (abort). From xl_xact_relfilenodes.
  std::vector<RelFileNode> dropped;
};

// A commit or abort record (Transaction rmgr), its xact_time and dropped relations;
// std::nullopt for any other record. DATA_LOSS if it is one but its main data is
// too short for what its xinfo says it holds.
absl::StatusOr<std::optional<XactRecord>> DecodeXact(const WalRecord& record);

// A Storage rmgr record: a relation fork's file created (xl_smgr_create) or a
// relation truncated (xl_smgr_truncate).
struct SmgrRecord {
  enum class Kind { kCreate, kTruncate };
  Kind kind = Kind::kCreate;
  RelFileNode node;
  uint32_t fork = 0;            // kCreate: the fork created
  uint32_t truncate_to = 0;     // kTruncate: the new length in blocks
  uint32_t truncate_flags = 0;  // kTruncate: SMGR_TRUNCATE_HEAP 1 | VM 2 | FSM 4
};
absl::StatusOr<std::optional<SmgrRecord>> DecodeSmgr(const WalRecord& record);

// CheckPoint (catalog/pg_control.h), the main data of a checkpoint record and the
// checkPointCopy in pg_control.
struct CheckPoint {
  Lsn redo;
  uint32_t timeline_id = 0;
  uint32_t prev_timeline_id = 0;
  bool full_page_writes = false;
  uint64_t next_xid = 0;  // FullTransactionId
  uint32_t next_oid = 0;
  uint32_t next_multi = 0;
  uint32_t next_multi_offset = 0;
  uint32_t oldest_xid = 0;
  uint32_t oldest_xid_db = 0;
  uint32_t oldest_multi = 0;
  uint32_t oldest_multi_db = 0;
  int64_t time = 0;  // pg_time_t: seconds since the Unix epoch
  uint32_t oldest_commit_ts_xid = 0;
  uint32_t newest_commit_ts_xid = 0;
  uint32_t oldest_active_xid = 0;
};
inline constexpr size_t kCheckPointSize = 88;

// REQUIRES: data.size() >= kCheckPointSize.
CheckPoint ParseCheckPoint(std::string_view data);

struct CheckpointRecord {
  bool shutdown = false;  // XLOG_CHECKPOINT_SHUTDOWN vs XLOG_CHECKPOINT_ONLINE
  CheckPoint checkpoint;
};

// A checkpoint record; std::nullopt for any other record.
absl::StatusOr<std::optional<CheckpointRecord>> DecodeCheckpoint(const WalRecord& record);

}  // namespace cambium::pg

#endif  // CAMBIUM_COMMON_PG_WAL_RECORDS_H_
