// Import of a PostgreSQL data directory as the root timeline of a tenant.
//
// The directory must be cleanly shut down (e.g. fresh from initdb). Its files become
// versions tagged with E, the end of the shutdown checkpoint record, and the WAL from
// the start of the checkpoint's segment up to E goes into the archive: a compute
// started at E finds the checkpoint record in pg_wal and starts without replay.
//
// Thread-safety: uses the Repository's thread-safe API.
#ifndef CAMBIUM_PAGESERVER_IMPORT_H_
#define CAMBIUM_PAGESERVER_IMPORT_H_

#include <string>

#include "absl/status/statusor.h"
#include "pageserver/repository.h"

namespace cambium::pageserver {

// With a non-empty `import_dir`, `pgdata` must resolve to a directory inside it
// (PERMISSION_DENIED otherwise). Symbolic links inside `pgdata` are refused, and
// files are opened without following one (O_NOFOLLOW), so whoever made the
// directory (the `postgres` user, for initdb) cannot make the pageserver read
// another file.
absl::StatusOr<BranchInfo> ImportPgdata(Repository& repo, const std::string& tenant,
                                        const std::string& branch, const std::string& pgdata,
                                        const std::string& import_dir = "");

}  // namespace cambium::pageserver

#endif  // CAMBIUM_PAGESERVER_IMPORT_H_
