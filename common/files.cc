#include "common/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "absl/strings/str_format.h"
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

absl::Status PwriteAll(int fd, std::string_view data, uint64_t offset, std::string_view what) {
  while (!data.empty()) {
    const ssize_t n = pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, absl::StrFormat("write %s at %u", what, offset));
    if (n == 0) return ErrnoToStatus(EIO, absl::StrFormat("write %s at %u", what, offset));
    data.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> PreadFull(int fd, char* out, size_t size, uint64_t offset,
                                 std::string_view what) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = pread(fd, out + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, absl::StrFormat("read %s at %u", what, offset + done));
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view content) {
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, "open " + tmp);
  absl::Status written = PwriteAll(fd, content, 0, tmp);
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
