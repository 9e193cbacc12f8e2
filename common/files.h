// Whole-file reads for configuration, state and log files.
//
// Thread-safety: pure functions (each call opens its own stream).
#ifndef CAMBIUM_COMMON_FILES_H_
#define CAMBIUM_COMMON_FILES_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace cambium {

// The whole content of `path` (binary). A missing or unreadable file is an error
// naming the path (NOT_FOUND, PERMISSION_DENIED, ...).
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// The last `bytes` bytes of `path`, or "" if it cannot be read: for error messages
// that quote a log.
std::string FileTail(const std::string& path, size_t bytes);

}  // namespace cambium

#endif  // CAMBIUM_COMMON_FILES_H_
