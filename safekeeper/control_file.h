// The per-timeline control file: what a safekeeper promised and knows about a
// timeline, besides the WAL itself.
//
// Binary, little endian: magic "CMBSKCTL", format version, payload length,
// payload (ids, term, term history, timeline start, commit/archived/flush LSNs, the
// lowest stored LSN), then Checksum64 (xxh3) of everything before it. Written
// atomically (temporary file, fsync, rename, fsync of the directory), so a crash
// leaves the old or the new file. A file that fails to decode is DATA_LOSS naming
// the file: the safekeeper refuses to serve the timeline rather than forget a
// promised term.
//
// The commit LSN stored here is always the end of a complete WAL record that was
// durable when the file was written; startup recovery treats any WAL damage
// below it as corruption, never as a torn tail.
//
// Thread-safety: pure functions.
#ifndef CAMBIUM_SAFEKEEPER_CONTROL_FILE_H_
#define CAMBIUM_SAFEKEEPER_CONTROL_FILE_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/ids.h"
#include "common/lsn.h"
#include "safekeeper/acceptor.h"
#include "safekeeper/file_system.h"

namespace cambium::safekeeper {

inline constexpr uint32_t kControlFileVersion = 1;
inline constexpr char kControlFileName[] = "safekeeper.control";

struct ControlFileData {
  uint32_t format_version = kControlFileVersion;
  TenantId tenant;
  TimelineId timeline;
  AcceptorState acceptor;
  // WAL below this was removed (archived by the pageserver): the lowest stored LSN,
  // the timeline start or a segment start.
  Lsn wal_start;
  // The flush LSN when the file was written (informational; recovery decodes).
  Lsn flush_lsn;
  bool operator==(const ControlFileData&) const = default;
};

std::string EncodeControlFile(const ControlFileData& data);
// DATA_LOSS (naming `path`) if the bytes are not a valid control file.
absl::StatusOr<ControlFileData> DecodeControlFile(std::string_view bytes, const std::string& path);

absl::Status WriteControlFile(FileSystem* fs, const std::string& path, const ControlFileData& data);
absl::StatusOr<ControlFileData> ReadControlFile(FileSystem* fs, const std::string& path);

}  // namespace cambium::safekeeper

#endif  // CAMBIUM_SAFEKEEPER_CONTROL_FILE_H_
