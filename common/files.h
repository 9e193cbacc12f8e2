// Whole-file reads and atomic replacement for configuration, state and log files,
// and positional I/O that finishes what it starts (short transfers and EINTR retried).
//
// Thread-safety: pure functions (each call opens its own stream).
#ifndef CAMBIUM_COMMON_FILES_H_
#define CAMBIUM_COMMON_FILES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace cambium {

// The whole content of `path` (binary). A missing or unreadable file is an error
// naming the path (NOT_FOUND, PERMISSION_DENIED, ...).
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// The last `bytes` bytes of `path`, or "" if it cannot be read: for error messages
// that quote a log.
std::string FileTail(const std::string& path, size_t bytes);

// Replaces `path` with `content` so that a reader sees either the old file or the
// whole new one, never a prefix, also across a crash: writes `path`.tmp, fsyncs it,
// renames it over `path` and fsyncs the directory.
absl::Status WriteFileAtomically(const std::string& path, std::string_view content);

// fsyncs the directory holding `path`, so that a rename or create in it is durable.
absl::Status SyncDirectoryOf(const std::string& path);

// Writes all of `data` at `offset` of `fd`. `what` names the file in an error.
absl::Status PwriteAll(int fd, std::string_view data, uint64_t offset, std::string_view what);

// Reads `size` bytes at `offset` of `fd` into `out`; returns how many it read, fewer
// than `size` only at end of file. `what` names the file in an error.
absl::StatusOr<size_t> PreadFull(int fd, char* out, size_t size, uint64_t offset,
                                 std::string_view what);

}  // namespace cambium

#endif  // CAMBIUM_COMMON_FILES_H_
