#include "safekeeper/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "absl/strings/str_format.h"
#include "common/files.h"
#include "common/status.h"

namespace cambium::safekeeper {
namespace {

class PosixFile : public File {
 public:
  PosixFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixFile() override { close(fd_); }

  const std::string& path() const override { return path_; }

  absl::Status Write(uint64_t offset, std::string_view data) override {
    return PwriteAll(fd_, data, offset, path_);
  }

  absl::Status Read(uint64_t offset, uint64_t size, std::string* out) override {
    out->resize(size);
    CAMBIUM_ASSIGN_OR_RETURN(const size_t done, PreadFull(fd_, out->data(), size, offset, path_));
    out->resize(done);
    return absl::OkStatus();
  }

  absl::Status DataSync() override {
    if (fdatasync(fd_) != 0) return ErrnoToStatus(errno, "fdatasync " + path_);
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    if (fsync(fd_) != 0) return ErrnoToStatus(errno, "fsync " + path_);
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> Size() override {
    struct stat st;
    if (fstat(fd_, &st) != 0) return ErrnoToStatus(errno, "fstat " + path_);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  const std::string path_;
  const int fd_;
};

class PosixFileSystem : public FileSystem {
 public:
  absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override {
    int flags = O_CLOEXEC;
    switch (mode) {
      case OpenMode::kRead:
        flags |= O_RDONLY;
        break;
      case OpenMode::kReadWrite:
        flags |= O_RDWR;
        break;
      case OpenMode::kCreateNew:
        flags |= O_RDWR | O_CREAT | O_EXCL;
        break;
      case OpenMode::kCreateOrTruncate:
        flags |= O_RDWR | O_CREAT | O_TRUNC;
        break;
    }
    const int fd = open(path.c_str(), flags, 0600);
    if (fd < 0) return ErrnoToStatus(errno, "open " + path);
    return std::make_unique<PosixFile>(path, fd);
  }

  absl::Status Rename(const std::string& from, const std::string& to, bool no_replace) override {
    const int rc = no_replace
                       ? renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE)
                       : rename(from.c_str(), to.c_str());
    if (rc != 0) return ErrnoToStatus(errno, absl::StrFormat("rename %s to %s", from, to));
    return absl::OkStatus();
  }

  absl::Status Remove(const std::string& path) override {
    if (unlink(path.c_str()) != 0) return ErrnoToStatus(errno, "unlink " + path);
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) override {
    const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoToStatus(errno, "open directory " + dir);
    const int rc = fsync(fd);
    const int saved = errno;
    close(fd);
    if (rc != 0) return ErrnoToStatus(saved, "fsync directory " + dir);
    return absl::OkStatus();
  }

  absl::Status CreateDir(const std::string& dir) override {
    if (mkdir(dir.c_str(), 0700) == 0) return absl::OkStatus();
    if (errno == EEXIST) {
      struct stat st;
      if (stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return absl::OkStatus();
    }
    return ErrnoToStatus(errno, "mkdir " + dir);
  }

  absl::Status RemoveDir(const std::string& dir) override {
    if (rmdir(dir.c_str()) != 0) return ErrnoToStatus(errno, "rmdir " + dir);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return ErrnoToStatus(errno, "opendir " + dir);
    std::vector<std::string> names;
    while (struct dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    closedir(d);
    return names;
  }

  bool Exists(const std::string& path) override {
    struct stat st;
    return stat(path.c_str(), &st) == 0;
  }
};

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

FileSystem* FileSystem::Default() {
  static PosixFileSystem* fs = new PosixFileSystem();
  return fs;
}

namespace {

absl::Status WriteTemporary(FileSystem* fs, const std::string& tmp, std::string_view data) {
  CAMBIUM_ASSIGN_OR_RETURN(std::unique_ptr<File> file, fs->Open(tmp, OpenMode::kCreateOrTruncate));
  CAMBIUM_RETURN_IF_ERROR(file->Write(0, data));
  // A failed fsync of a file that is then thrown away loses nothing.
  return file->Sync();
}

}  // namespace

absl::Status WriteFileAtomically(FileSystem* fs, const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
  absl::Status written = WriteTemporary(fs, tmp, data);
  if (written.ok()) written = fs->Rename(tmp, path);
  if (!written.ok()) {
    // The old file is untouched; give back the space the temporary file took.
    if (fs->Exists(tmp)) fs->Remove(tmp).IgnoreError();
    return written;
  }
  absl::Status synced = fs->SyncDir(DirName(path));
  return synced.ok() ? synced : SyncFailure(synced);
}

absl::Status SyncFailure(const absl::Status& status) {
  if (status.ok()) return status;
  return absl::UnavailableError(absl::StrFormat(
      "%s (after a failed sync the page cache no longer says what is on disk)", status.message()));
}

absl::Status DiskFullError(std::string_view who, std::string_view dir, const absl::Status& cause) {
  if (!absl::IsResourceExhausted(cause)) return cause;
  return absl::ResourceExhaustedError(absl::StrFormat(
      "safekeeper %s: the disk holding %s is full (%s); nothing was acknowledged, and the "
      "safekeeper resumes by itself once space is freed",
      who, dir, cause.message()));
}

absl::StatusOr<std::string> ReadWholeFile(FileSystem* fs, const std::string& path) {
  CAMBIUM_ASSIGN_OR_RETURN(std::unique_ptr<File> file, fs->Open(path, OpenMode::kRead));
  CAMBIUM_ASSIGN_OR_RETURN(const uint64_t size, file->Size());
  std::string out;
  CAMBIUM_RETURN_IF_ERROR(file->Read(0, size, &out));
  return out;
}

}  // namespace cambium::safekeeper
