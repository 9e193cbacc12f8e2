// Reader of PostgreSQL 15's global/pg_control (ControlFileData).
//
// A compute starting at an LSN reads pg_control from the file state at that LSN:
// the checkpoint's redo LSN says where the WAL it replays must start. The reader
// checks the CRC-32C and the format version, and that the cluster uses the page and
// segment sizes Cambium supports, so a torn or foreign pg_control is an error, not a
// wrong answer.
//
// Thread-safety: pure functions.
#ifndef CAMBIUM_COMMON_PG_PG_CONTROL_H_
#define CAMBIUM_COMMON_PG_PG_CONTROL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/lsn.h"
#include "common/pg/wal_records.h"

namespace cambium::pg {

inline constexpr uint32_t kPgControlVersion = 1300;  // PG_CONTROL_VERSION of PostgreSQL 15
inline constexpr size_t kPgControlFileSize = 8192;   // PG_CONTROL_FILE_SIZE
inline constexpr size_t kPgControlCrcOffset = 288;   // offsetof(ControlFileData, crc)

enum class DbState : uint32_t {
  kStartup = 0,
  kShutdowned = 1,
  kShutdownedInRecovery = 2,
  kShutdowning = 3,
  kInCrashRecovery = 4,
  kInArchiveRecovery = 5,
  kInProduction = 6,
};

// The text pg_controldata prints for a state ("shut down", "in production", ...).
const char* DbStateName(DbState state);

struct PgControl {
  uint64_t system_identifier = 0;
  uint32_t pg_control_version = 0;
  uint32_t catalog_version = 0;
  DbState state = DbState::kStartup;
  int64_t time = 0;            // pg_time_t of the last update
  Lsn checkpoint;              // the latest checkpoint record
  CheckPoint checkpoint_copy;  // its contents; checkpoint_copy.redo is the redo LSN
  Lsn unlogged_lsn;
  Lsn min_recovery_point;
  uint32_t min_recovery_point_tli = 0;
  Lsn backup_start_point;
  Lsn backup_end_point;
  bool backup_end_required = false;
  int32_t wal_level = 0;
  bool wal_log_hints = false;
  int32_t max_connections = 0;
  uint32_t blcksz = 0;
  uint32_t relseg_size = 0;
  uint32_t xlog_blcksz = 0;
  uint32_t xlog_seg_size = 0;
  uint32_t data_checksum_version = 0;
  uint32_t crc = 0;

  Lsn redo() const { return checkpoint_copy.redo; }
  uint32_t timeline_id() const { return checkpoint_copy.timeline_id; }
};

// Parses the bytes of global/pg_control (at least kPgControlCrcOffset + 4 bytes).
// DATA_LOSS on a CRC mismatch or short file; FAILED_PRECONDITION for another
// PostgreSQL major version or unsupported block/segment sizes.
absl::StatusOr<PgControl> ParsePgControl(std::string_view bytes);

// Reads and parses PGDATA/global/pg_control.
absl::StatusOr<PgControl> ReadPgControl(const std::string& pgdata);

}  // namespace cambium::pg

#endif  // CAMBIUM_COMMON_PG_PG_CONTROL_H_
