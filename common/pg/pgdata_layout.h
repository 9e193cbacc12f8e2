// Which paths of a PostgreSQL 15 data directory Cambium versions.
//
// The compute shim and the pageserver's import agree on this through these
// functions. Versioned paths are stored in the pageserver by LSN. Local-only paths
// are process-local state that a restarted or branched compute must not inherit
// (postmaster.pid, statistics temp files, subtransaction and notification SLRUs,
// temporary relations, ...) and stay on the compute's local scratch. WAL (pg_wal/)
// is neither: its bytes go to the safekeepers and the shim keeps a local copy.
//
// Paths are PGDATA-relative, '/'-separated, without a leading '/'.
//
// Thread-safety: pure functions.
#ifndef CAMBIUM_COMMON_PG_PGDATA_LAYOUT_H_
#define CAMBIUM_COMMON_PG_PGDATA_LAYOUT_H_

#include <string_view>

#include "absl/status/status.h"

namespace cambium::pg {

enum class PathClass {
  kVersioned,  // stored in the pageserver by LSN
  kLocal,      // process-local: on the compute's scratch, never versioned
  kWal,        // pg_wal contents: safekeepers + local copy
};

// Classifies a file path (a directory itself is always versioned; see
// IsLocalDirectory for the directories whose contents are local).
PathClass ClassifyPath(std::string_view path);

// Directories whose entire contents are local (pg_stat_tmp, pg_notify, ...).
bool IsLocalDirectory(std::string_view path);

// A temporary relation file: t<backend>_<relfilenode>[_fork][.segment].
bool IsTempRelationFile(std::string_view file_name);

// A versioned relation file (base/, global/ or a tablespace, named
// <relfilenode>[_fork][.segment]): PostgreSQL reads and writes it in whole
// BLCKSZ blocks only.
bool IsRelationFile(std::string_view path);

// INVALID_ARGUMENT unless `path` is a clean relative path: non-empty, no leading or
// trailing '/', no empty, "." or ".." components, no NUL, at most 1024 bytes.
absl::Status ValidateRelativePath(std::string_view path);

// The parent directory of a relative path ("" for a top-level entry).
std::string_view ParentPath(std::string_view path);
// The last component of a path.
std::string_view BaseName(std::string_view path);

}  // namespace cambium::pg

#endif  // CAMBIUM_COMMON_PG_PGDATA_LAYOUT_H_
