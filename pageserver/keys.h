// Key encodings of the pageserver's column families (docs/pageserver.md, "Storage").
//
//   blocks:  timeline(16) | path | 0x00 | block(4, BE) | ~lsn(8, BE)
//   files:   timeline(16) | path | 0x00 | ~lsn(8, BE)
//   wal:     timeline(16) | start_lsn(8, BE)
//   commits: timeline(16) | 'T' | max_commit_time(8, BE) | end_lsn(8, BE) -> ""
//            timeline(16) | 'L' | end_lsn(8, BE) -> max_commit_time(8, LE)
//
// The inverted LSN sorts versions of one block (or file) newest first, so the newest
// version at or below X is the first key at or after Key(..., X). The 0x00 after the
// path ends the path, so each path's keys are contiguous and no path's range contains
// another's. Callers validate paths (no NUL) before encoding.
//
// Thread-safety: pure functions; the prefix extractor is immutable.
#ifndef CAMBIUM_PAGESERVER_KEYS_H_
#define CAMBIUM_PAGESERVER_KEYS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/ids.h"
#include "common/lsn.h"
#include "rocksdb/slice_transform.h"

namespace cambium::pageserver::keys {

inline constexpr size_t kTimelineBytes = 16;

std::string TimelinePrefix(const TimelineId& timeline);
// timeline | path | 0x00: the prefix of every block and file key of one path.
std::string PathPrefix(const TimelineId& timeline, std::string_view path);
// PathPrefix | block: the prefix of every version of one block.
std::string BlockPrefix(const TimelineId& timeline, std::string_view path, uint32_t block);
std::string BlockKey(const TimelineId& timeline, std::string_view path, uint32_t block, Lsn lsn);
std::string FileKey(const TimelineId& timeline, std::string_view path, Lsn lsn);
std::string WalKey(const TimelineId& timeline, Lsn start);
// Commit index by time: (max commit time so far, commit end), ordered by both.
std::string CommitKey(const TimelineId& timeline, int64_t max_commit_time, Lsn end);
// Commit index by LSN: commit end -> max commit time so far.
std::string CommitLsnKey(const TimelineId& timeline, Lsn end);

// The smallest key after every key of `prefix` (prefix with its last byte bumped);
// REQUIRES: prefix ends with a byte < 0xFF (true for every prefix built here).
std::string PrefixEnd(std::string_view prefix);

struct ParsedBlockKey {
  TimelineId timeline;
  std::string_view path;
  uint32_t block = 0;
  Lsn lsn;
};
struct ParsedFileKey {
  TimelineId timeline;
  std::string_view path;
  Lsn lsn;
};
// False if the key is not a well-formed key of that family.
bool ParseBlockKey(std::string_view key, ParsedBlockKey* out);
bool ParseFileKey(std::string_view key, ParsedFileKey* out);
bool ParseWalKey(std::string_view key, TimelineId* timeline, Lsn* start);
bool ParseCommitKey(std::string_view key, TimelineId* timeline, int64_t* max_time, Lsn* end);

// Prefix extractor for the blocks and files families: timeline | path | 0x00. With a
// prefix bloom filter, a lookup of a file a timeline never wrote skips SST files.
std::shared_ptr<const rocksdb::SliceTransform> NewPathPrefixExtractor();

// Big-endian fixed-width integers.
void AppendBigEndian64(std::string* out, uint64_t v);
void AppendBigEndian32(std::string* out, uint32_t v);
uint64_t LoadBigEndian64(const char* p);
uint32_t LoadBigEndian32(const char* p);

}  // namespace cambium::pageserver::keys

#endif  // CAMBIUM_PAGESERVER_KEYS_H_
