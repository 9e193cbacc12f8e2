#include "tests/safekeeper/fault_file_system.h"

#include <cerrno>

#include "common/status.h"

namespace cambium::safekeeper::testing {

class FaultFile : public File {
 public:
  FaultFile(FaultFileSystem* fs, std::unique_ptr<File> base) : fs_(fs), base_(std::move(base)) {}
  const std::string& path() const override { return base_->path(); }
  absl::Status Write(uint64_t offset, std::string_view data) override {
    if (fs_->Take(FaultFileSystem::Fault::kNoSpace, path())) {
      return ErrnoToStatus(ENOSPC, "pwrite " + path());
    }
    uint64_t keep = 0;
    if (fs_->Take(FaultFileSystem::Fault::kTear, path(), &keep)) {
      CAMBIUM_RETURN_IF_ERROR(base_->Write(offset, data.substr(0, keep)));
      return ErrnoToStatus(EIO, "pwrite " + path() + " (torn)");
    }
    return base_->Write(offset, data);
  }
  absl::Status Read(uint64_t offset, uint64_t size, std::string* out) override {
    return base_->Read(offset, size, out);
  }
  absl::Status DataSync() override {
    if (fs_->Take(FaultFileSystem::Fault::kSync, path())) {
      return ErrnoToStatus(EIO, "fdatasync " + path());
    }
    return base_->DataSync();
  }
  absl::Status Sync() override {
    if (fs_->Take(FaultFileSystem::Fault::kSync, path())) {
      return ErrnoToStatus(EIO, "fsync " + path());
    }
    return base_->Sync();
  }
  absl::StatusOr<uint64_t> Size() override { return base_->Size(); }

 private:
  FaultFileSystem* const fs_;
  std::unique_ptr<File> base_;
};

void FaultFileSystem::FailNextSync(const std::string& path_part) {
  absl::MutexLock lock(&mu_);
  sync_part_ = path_part;
}

void FaultFileSystem::FailNextWriteNoSpace(const std::string& path_part) {
  absl::MutexLock lock(&mu_);
  nospace_part_ = path_part;
}

void FaultFileSystem::TearNextWrite(const std::string& path_part, uint64_t keep) {
  absl::MutexLock lock(&mu_);
  tear_part_ = path_part;
  tear_keep_ = keep;
}

bool FaultFileSystem::Take(Fault kind, const std::string& path, uint64_t* keep) {
  absl::MutexLock lock(&mu_);
  std::string* part = kind == Fault::kSync      ? &sync_part_
                      : kind == Fault::kNoSpace ? &nospace_part_
                                                : &tear_part_;
  if (part->empty() || path.find(*part) == std::string::npos) return false;
  part->clear();
  if (keep != nullptr) *keep = tear_keep_;
  return true;
}

absl::StatusOr<std::unique_ptr<File>> FaultFileSystem::Open(const std::string& path,
                                                            OpenMode mode) {
  CAMBIUM_ASSIGN_OR_RETURN(std::unique_ptr<File> file, base_->Open(path, mode));
  return std::unique_ptr<File>(new FaultFile(this, std::move(file)));
}

absl::Status FaultFileSystem::SyncDir(const std::string& dir) {
  if (Take(Fault::kSync, dir)) return ErrnoToStatus(EIO, "fsync directory " + dir);
  return base_->SyncDir(dir);
}

}  // namespace cambium::safekeeper::testing
