// FileSystem: the small file API the safekeeper's storage uses, so tests can
// inject failures (a failed fsync, ENOSPC, a torn write) without touching disks.
//
// Only what the WAL segments and control files need: positional reads and writes,
// fdatasync/fsync, atomic rename, directory sync and listing. Every error is a
// Status naming the file and the system call (ErrnoToStatus); a full disk
// (ENOSPC) is RESOURCE_EXHAUSTED.
//
// Two kinds of failure are told apart above this layer. A write, create or
// rename that fails leaves the page cache truthful: the caller can undo or retry
// (a full disk is refused and resumes once space is freed). A failed
// fdatasync/fsync does not: the kernel may have dropped the dirty pages it could
// not write, so the page cache no longer says what is on disk. SyncFailure()
// turns the latter into a status that is never RESOURCE_EXHAUSTED, so it can
// never be mistaken for a refusal that leaves the state intact.
//
// Thread-safety: FileSystem implementations are thread-safe. A File may be used by
// several threads for positional I/O (pread/pwrite are), but Sync/Truncate
// calls must not race with each other.
#ifndef CAMBIUM_SAFEKEEPER_FILE_SYSTEM_H_
#define CAMBIUM_SAFEKEEPER_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cambium::safekeeper {

class File {
 public:
  virtual ~File() = default;
  virtual const std::string& path() const = 0;
  // Writes all of `data` at `offset`.
  virtual absl::Status Write(uint64_t offset, std::string_view data) = 0;
  // Reads up to `size` bytes at `offset` into *out (fewer only at end of file).
  virtual absl::Status Read(uint64_t offset, uint64_t size, std::string* out) = 0;
  // fdatasync: the data written so far (and the size) is durable.
  virtual absl::Status DataSync() = 0;
  // fsync.
  virtual absl::Status Sync() = 0;
  virtual absl::StatusOr<uint64_t> Size() = 0;
};

enum class OpenMode {
  kRead,       // existing file, read only
  kReadWrite,  // existing file
  kCreateNew,  // a new empty file, read-write; ALREADY_EXISTS if present
  kCreateOrTruncate,
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // The process-wide POSIX file system.
  static FileSystem* Default();

  virtual absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) = 0;
  // rename(2); with no_replace, ALREADY_EXISTS if `to` exists (renameat2
  // RENAME_NOREPLACE).
  virtual absl::Status Rename(const std::string& from, const std::string& to,
                              bool no_replace = false) = 0;
  virtual absl::Status Remove(const std::string& path) = 0;
  // fsync of a directory: makes creations, renames and removals in it durable.
  virtual absl::Status SyncDir(const std::string& dir) = 0;
  // mkdir; OK if it already exists as a directory.
  virtual absl::Status CreateDir(const std::string& dir) = 0;
  // rmdir of an empty directory.
  virtual absl::Status RemoveDir(const std::string& dir) = 0;
  // Names in `dir` (no "." or "..").
  virtual absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  virtual bool Exists(const std::string& path) = 0;
};

// Writes `data` to path via a temporary file (write, fsync, rename, fsync the
// directory), so a crash leaves either the old or the new content. If anything
// fails before the rename, the temporary file is removed and the old file is
// untouched (a full disk is RESOURCE_EXHAUSTED); a failed directory sync after
// it is a SyncFailure (the new name may or may not be durable).
absl::Status WriteFileAtomically(FileSystem* fs, const std::string& path, std::string_view data);

// A failed fdatasync/fsync (also of a directory): the page cache may no longer
// say what is on disk. The message is kept; the code is UNAVAILABLE whatever the
// errno was (even ENOSPC), so that no caller treats it as a harmless refusal.
absl::Status SyncFailure(const absl::Status& status);

// `cause` unchanged unless it is RESOURCE_EXHAUSTED (a full disk): then the same
// code with a message naming the safekeeper `who` and the directory, saying that
// the disk is full and that nothing was acknowledged.
absl::Status DiskFullError(std::string_view who, std::string_view dir, const absl::Status& cause);

// The whole content of a file.
absl::StatusOr<std::string> ReadWholeFile(FileSystem* fs, const std::string& path);

}  // namespace cambium::safekeeper

#endif  // CAMBIUM_SAFEKEEPER_FILE_SYSTEM_H_
