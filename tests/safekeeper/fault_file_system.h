// FaultFileSystem: a FileSystem over the real one that fails on demand, for the
// safekeeper storage tests: a failed fdatasync/fsync (EIO), ENOSPC on writes, or
// a write that lands only partly (a torn write) before failing.
//
// Faults apply to paths containing a substring (e.g. a segment name or
// "safekeeper.control"), once each, in the order they were armed.
//
// Thread-safety: thread-safe.
#ifndef CAMBIUM_TESTS_SAFEKEEPER_FAULT_FILE_SYSTEM_H_
#define CAMBIUM_TESTS_SAFEKEEPER_FAULT_FILE_SYSTEM_H_

#include <string>

#include "absl/synchronization/mutex.h"
#include "safekeeper/file_system.h"

namespace cambium::safekeeper::testing {

class FaultFileSystem : public FileSystem {
 public:
  explicit FaultFileSystem(FileSystem* base = FileSystem::Default()) : base_(base) {}

  // The next DataSync or Sync of a matching file fails with EIO.
  void FailNextSync(const std::string& path_part);
  // The next Write to a matching file fails with ENOSPC (nothing written).
  void FailNextWriteNoSpace(const std::string& path_part);
  // The next Write to a matching file writes only its first `keep` bytes, then
  // fails with EIO.
  void TearNextWrite(const std::string& path_part, uint64_t keep);

  absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path, OpenMode mode) override;
  absl::Status Rename(const std::string& from, const std::string& to, bool no_replace) override {
    return base_->Rename(from, to, no_replace);
  }
  absl::Status Remove(const std::string& path) override { return base_->Remove(path); }
  absl::Status SyncDir(const std::string& dir) override;
  absl::Status CreateDir(const std::string& dir) override { return base_->CreateDir(dir); }
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override {
    return base_->ListDir(dir);
  }
  bool Exists(const std::string& path) override { return base_->Exists(path); }

 private:
  friend class FaultFile;
  enum class Fault { kNone, kSync, kNoSpace, kTear };
  // Consumes and returns the armed fault of kind `kind` for `path`, if any.
  bool Take(Fault kind, const std::string& path, uint64_t* keep = nullptr);

  FileSystem* const base_;
  absl::Mutex mu_;
  std::string sync_part_ ABSL_GUARDED_BY(mu_);
  std::string nospace_part_ ABSL_GUARDED_BY(mu_);
  std::string tear_part_ ABSL_GUARDED_BY(mu_);
  uint64_t tear_keep_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace cambium::safekeeper::testing

#endif  // CAMBIUM_TESTS_SAFEKEEPER_FAULT_FILE_SYSTEM_H_
