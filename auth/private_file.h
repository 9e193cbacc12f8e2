// Files that hold secrets or security records: created 0600, replaced atomically,
// and refused when others may read them (as ssh refuses a private key).
//
// Thread-safety: pure functions.
#ifndef CAMBIUM_AUTH_PRIVATE_FILE_H_
#define CAMBIUM_AUTH_PRIVATE_FILE_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace cambium::auth {

// Replaces `path` with `content` (mode 0600) so that a reader sees the old or the
// whole new file, also across a crash: `path`.tmp, fsync, rename, fsync of the
// directory.
absl::Status WritePrivateFileAtomically(const std::string& path, std::string_view content);

// The token in `path`, without surrounding whitespace. FAILED_PRECONDITION if the
// file is readable or writable by group or others, or empty.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

// Creates `path` with a new token "cmb_<id>_<secret>" (mode 0600) unless it exists;
// returns the token either way. Used by `cambium up` for the stack's secrets.
absl::StatusOr<std::string> EnsureSecretFile(const std::string& path, std::string_view id);

}  // namespace cambium::auth

#endif  // CAMBIUM_AUTH_PRIVATE_FILE_H_
