// FaultFileSystem: a FileSystem over the real one that fails on demand, for the
// safekeeper storage tests: a failed fdatasync/fsync (EIO, or any errno), ENOSPC
// on writes, a write that lands only partly (a torn write) before failing, a
// failed unlink, and a full disk that lasts until it is freed.
//
// One-shot faults apply to paths containing a substring (e.g. a segment name or
// "safekeeper.control"), once each. A full disk (SetDiskFull) applies to every
// file until it is turned off:
//   kNoNewSpace: writes within a file's current size succeed (the blocks are
//                allocated), writes past it write what fits and fail with ENOSPC;
//                this is a real disk with pre-allocated WAL segments;
//   kNoWrites:   every write fails with ENOSPC (a copy-on-write file system).
//
// Thread-safety: thread-safe.
#ifndef CAMBIUM_TESTS_SAFEKEEPER_FAULT_FILE_SYSTEM_H_
#define CAMBIUM_TESTS_SAFEKEEPER_FAULT_FILE_SYSTEM_H_

#include <cerrno>
#include <string>

#include "absl/synchronization/mutex.h"
#include "safekeeper/file_system.h"

namespace cambium::safekeeper::testing {

enum class DiskFull { kNo, kNoNewSpace, kNoWrites };

class FaultFileSystem : public FileSystem {
 public:
  explicit FaultFileSystem(FileSystem* base = FileSystem::Default()) : base_(base) {}

  // The next DataSync or Sync of a matching file (or SyncDir of a matching
  // directory) fails with `error`.
  void FailNextSync(const std::string& path_part, int error = EIO);
  // The next Write to a matching file fails with ENOSPC (nothing written).
  void FailNextWriteNoSpace(const std::string& path_part);
  // The next Write to a matching file writes only its first `keep` bytes, then
  // fails with EIO.
  void TearNextWrite(const std::string& path_part, uint64_t keep);
  // The next Remove of a matching file fails with EIO (nothing removed).
  void FailNextRemove(const std::string& path_part);
  // Fills or frees the disk (see above).
  void SetDiskFull(DiskFull mode);
  // Writes refused with ENOSPC so far.
  int no_space_refusals();

  absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override;
  absl::Status Rename(const std::string& from, const std::string& to, bool no_replace) override {
    return base_->Rename(from, to, no_replace);
  }
  absl::Status Remove(const std::string& path) override;
  absl::Status SyncDir(const std::string& dir) override;
  absl::Status CreateDir(const std::string& dir) override { return base_->CreateDir(dir); }
  absl::Status RemoveDir(const std::string& dir) override { return base_->RemoveDir(dir); }
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override {
    return base_->ListDir(dir);
  }
  bool Exists(const std::string& path) override { return base_->Exists(path); }

 private:
  friend class FaultFile;
  enum class Fault { kSync, kNoSpace, kTear, kRemove };
  // Consumes the armed fault of kind `kind` for `path`, if any.
  bool Take(Fault kind, const std::string& path, uint64_t* arg = nullptr);
  DiskFull disk_full();
  void CountRefusal();

  FileSystem* const base_;
  absl::Mutex mu_;
  std::string sync_part_ ABSL_GUARDED_BY(mu_);
  int sync_errno_ ABSL_GUARDED_BY(mu_) = EIO;
  std::string nospace_part_ ABSL_GUARDED_BY(mu_);
  std::string tear_part_ ABSL_GUARDED_BY(mu_);
  uint64_t tear_keep_ ABSL_GUARDED_BY(mu_) = 0;
  std::string remove_part_ ABSL_GUARDED_BY(mu_);
  DiskFull disk_full_ ABSL_GUARDED_BY(mu_) = DiskFull::kNo;
  int refusals_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace cambium::safekeeper::testing

#endif  // CAMBIUM_TESTS_SAFEKEEPER_FAULT_FILE_SYSTEM_H_
