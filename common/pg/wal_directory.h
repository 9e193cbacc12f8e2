// Reading WAL out of a pg_wal directory: segment files named by timeline and
// segment number, 16 MiB each.
//
// Used to import a freshly initdb-ed PGDATA (its WAL from the checkpoint's redo
// point on must be kept) and by tests that compare the decoder with pg_waldump.
//
// Thread-safety: pure functions over the file system.
#ifndef CAMBIUM_COMMON_PG_WAL_DIRECTORY_H_
#define CAMBIUM_COMMON_PG_WAL_DIRECTORY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/lsn.h"

namespace cambium::pg {

// The WAL segment files in `dir`, sorted by (timeline, segment number). Other
// files (.partial, .history, archive_status/) are ignored.
absl::StatusOr<std::vector<WalSegmentName>> ListWalSegments(
    const std::string& dir, uint64_t seg_size = kDefaultWalSegmentSize);

// The WAL bytes in [from, to) of `timeline_id`, read from the segment files in
// `dir`. NOT_FOUND names the first missing segment.
absl::StatusOr<std::string> ReadWalRange(const std::string& dir, uint32_t timeline_id, Lsn from,
                                         Lsn to, uint64_t seg_size = kDefaultWalSegmentSize);

}  // namespace cambium::pg

#endif  // CAMBIUM_COMMON_PG_WAL_DIRECTORY_H_
