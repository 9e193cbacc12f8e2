#include "common/pg/pg_control.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_format.h"
#include "common/checksum.h"
#include "common/files.h"
#include "common/pg/wal_format.h"
#include "common/status.h"

namespace cambium::pg {

const char* DbStateName(DbState state) {
  switch (state) {
    case DbState::kStartup:
      return "starting up";
    case DbState::kShutdowned:
      return "shut down";
    case DbState::kShutdownedInRecovery:
      return "shut down in recovery";
    case DbState::kShutdowning:
      return "shutting down";
    case DbState::kInCrashRecovery:
      return "in crash recovery";
    case DbState::kInArchiveRecovery:
      return "in archive recovery";
    case DbState::kInProduction:
      return "in production";
  }
  return "unrecognized status code";
}

absl::StatusOr<PgControl> ParsePgControl(std::string_view bytes) {
  if (bytes.size() < kPgControlCrcOffset + 4) {
    return absl::DataLossError(absl::StrFormat(
        "pg_control is %u bytes, too short to be a PostgreSQL control file", bytes.size()));
  }
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  PgControl c;
  c.crc = Load<uint32_t>(p + kPgControlCrcOffset);
  const uint32_t computed = Crc32c(p, kPgControlCrcOffset);
  c.pg_control_version = Load<uint32_t>(p + 8);
  if (c.pg_control_version != kPgControlVersion) {
    return absl::FailedPreconditionError(
        absl::StrFormat("pg_control version %u is not PostgreSQL 15's (%u)", c.pg_control_version,
                        kPgControlVersion));
  }
  if (computed != c.crc) {
    return absl::DataLossError(absl::StrFormat(
        "pg_control checksum mismatch (stored %08X, computed %08X): the file is torn or corrupt",
        c.crc, computed));
  }
  c.system_identifier = Load<uint64_t>(p + 0);
  c.catalog_version = Load<uint32_t>(p + 12);
  c.state = static_cast<DbState>(Load<uint32_t>(p + 16));
  c.time = Load<int64_t>(p + 24);
  c.checkpoint = Lsn(Load<uint64_t>(p + 32));
  c.checkpoint_copy = ParseCheckPoint(bytes.substr(40, kCheckPointSize));
  c.unlogged_lsn = Lsn(Load<uint64_t>(p + 128));
  c.min_recovery_point = Lsn(Load<uint64_t>(p + 136));
  c.min_recovery_point_tli = Load<uint32_t>(p + 144);
  c.backup_start_point = Lsn(Load<uint64_t>(p + 152));
  c.backup_end_point = Lsn(Load<uint64_t>(p + 160));
  c.backup_end_required = p[168] != 0;
  c.wal_level = Load<int32_t>(p + 172);
  c.wal_log_hints = p[176] != 0;
  c.max_connections = Load<int32_t>(p + 180);
  c.blcksz = Load<uint32_t>(p + 216);
  c.relseg_size = Load<uint32_t>(p + 220);
  c.xlog_blcksz = Load<uint32_t>(p + 224);
  c.xlog_seg_size = Load<uint32_t>(p + 228);
  c.data_checksum_version = Load<uint32_t>(p + 252);
  if (c.blcksz != kBlockSize || c.xlog_blcksz != kWalPageSize) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "cluster uses %u-byte pages and %u-byte WAL pages; Cambium supports %u and %u", c.blcksz,
        c.xlog_blcksz, kBlockSize, kWalPageSize));
  }
  return c;
}

absl::StatusOr<PgControl> ReadPgControl(const std::string& pgdata) {
  const std::string path = pgdata + "/global/pg_control";
  CAMBIUM_ASSIGN_OR_RETURN(const std::string data, ReadFileToString(path));
  absl::StatusOr<PgControl> control = ParsePgControl(data);
  if (!control.ok()) return Annotate(control.status(), path);
  return control;
}

}  // namespace cambium::pg
