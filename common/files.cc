#include "common/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "common/status.h"

namespace cambium {

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoToStatus(errno, "open " + path);
  std::ostringstream data;
  data << in.rdbuf();
  if (in.bad()) return ErrnoToStatus(errno, "read " + path);
  return std::move(data).str();
}

std::string FileTail(const std::string& path, size_t bytes) {
  absl::StatusOr<std::string> s = ReadFileToString(path);
  if (!s.ok()) return "";
  return s->size() > bytes ? s->substr(s->size() - bytes) : *std::move(s);
}

namespace {

absl::Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, "write " + path);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status SyncDirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "open " + dir);
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  return rc == 0 ? absl::OkStatus() : ErrnoToStatus(err, "fsync " + dir);
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, std::string_view content) {
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, "open " + tmp);
  absl::Status written = WriteAll(fd, content, tmp);
  if (written.ok() && fsync(fd) != 0) written = ErrnoToStatus(errno, "fsync " + tmp);
  close(fd);
  if (written.ok() && rename(tmp.c_str(), path.c_str()) != 0) {
    written = ErrnoToStatus(errno, "rename " + tmp);
  }
  if (!written.ok()) {
    unlink(tmp.c_str());
    return written;
  }
  return SyncDirectoryOf(path);
}

}  // namespace cambium
