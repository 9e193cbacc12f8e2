#include "auth/private_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "auth/token.h"
#include "common/files.h"
#include "common/status.h"

namespace cambium::auth {
namespace {

absl::Status FsyncDirectoryOf(const std::string& path) {
  // Initialised once: GCC 12 at -O3 reports a false -Wrestrict for assigning "."
  // to a std::string (GCC bug 105651).
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "open directory " + dir);
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  if (rc != 0) return ErrnoToStatus(err, "fsync directory " + dir);
  return absl::OkStatus();
}

}  // namespace

absl::Status WritePrivateFileAtomically(const std::string& path, std::string_view content) {
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoToStatus(errno, "create " + tmp);
  absl::Status s = PwriteAll(fd, content, 0, tmp);
  if (s.ok() && fchmod(fd, 0600) != 0) s = ErrnoToStatus(errno, "chmod " + tmp);
  if (s.ok() && fsync(fd) != 0) s = ErrnoToStatus(errno, "fsync " + tmp);
  close(fd);
  if (s.ok() && rename(tmp.c_str(), path.c_str()) != 0) s = ErrnoToStatus(errno, "rename " + tmp);
  if (!s.ok()) {
    unlink(tmp.c_str());
    return s;
  }
  return FsyncDirectoryOf(path);
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return ErrnoToStatus(errno, "secret file " + path);
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "secret file %s has mode %o: others may read it; chmod 600 it", path, st.st_mode & 0777));
  }
  CAMBIUM_ASSIGN_OR_RETURN(std::string content, ReadFileToString(path));
  std::string token(absl::StripAsciiWhitespace(content));
  if (token.empty()) {
    return absl::FailedPreconditionError(absl::StrFormat("secret file %s is empty", path));
  }
  return token;
}

absl::StatusOr<std::string> EnsureSecretFile(const std::string& path, std::string_view id) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0) return ReadSecretFile(path);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec) return absl::InternalError("create directory for " + path + ": " + ec.message());
  chmod(std::filesystem::path(path).parent_path().c_str(), 0700);
  CAMBIUM_ASSIGN_OR_RETURN(std::string token, MakeToken(id));
  CAMBIUM_RETURN_IF_ERROR(WritePrivateFileAtomically(path, token + "\n"));
  return token;
}

}  // namespace cambium::auth
