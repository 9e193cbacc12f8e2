#include "tests/safekeeper/fault_file_system.h"

#include <cerrno>

#include "common/status.h"

namespace cambium::safekeeper::testing {

class FaultFile : public File {
 public:
  FaultFile(FaultFileSystem* fs, std::unique_ptr<File> base) : fs_(fs), base_(std::move(base)) {}
  const std::string& path() const override { return base_->path(); }
  absl::Status Write(uint64_t offset, std::string_view data) override {
    if (fs_->Take(FaultFileSystem::Fault::kNoSpace, path())) return NoSpace();
    uint64_t keep = 0;
    if (fs_->Take(FaultFileSystem::Fault::kTear, path(), &keep)) {
      CAMBIUM_RETURN_IF_ERROR(base_->Write(offset, data.substr(0, keep)));
      return ErrnoToStatus(EIO, "pwrite " + path() + " (torn)");
    }
    switch (fs_->disk_full()) {
      case DiskFull::kNo:
        break;
      case DiskFull::kNoWrites:
        return NoSpace();
      case DiskFull::kNoNewSpace: {
        CAMBIUM_ASSIGN_OR_RETURN(const uint64_t size, base_->Size());
        if (offset + data.size() <= size) break;
        // What fits in the allocated blocks lands, like a short pwrite.
        if (offset < size)
          CAMBIUM_RETURN_IF_ERROR(base_->Write(offset, data.substr(0, size - offset)));
        return NoSpace();
      }
    }
    return base_->Write(offset, data);
  }
  absl::Status Read(uint64_t offset, uint64_t size, std::string* out) override {
    return base_->Read(offset, size, out);
  }
  absl::Status DataSync() override {
    uint64_t error = 0;
    if (fs_->Take(FaultFileSystem::Fault::kSync, path(), &error)) {
      return ErrnoToStatus(static_cast<int>(error), "fdatasync " + path());
    }
    return base_->DataSync();
  }
  absl::Status Sync() override {
    uint64_t error = 0;
    if (fs_->Take(FaultFileSystem::Fault::kSync, path(), &error)) {
      return ErrnoToStatus(static_cast<int>(error), "fsync " + path());
    }
    return base_->Sync();
  }
  absl::StatusOr<uint64_t> Size() override { return base_->Size(); }

 private:
  absl::Status NoSpace() {
    fs_->CountRefusal();
    return ErrnoToStatus(ENOSPC, "pwrite " + path());
  }

  FaultFileSystem* const fs_;
  std::unique_ptr<File> base_;
};

void FaultFileSystem::FailNextSync(const std::string& path_part, int error) {
  absl::MutexLock lock(&mu_);
  sync_part_ = path_part;
  sync_errno_ = error;
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

void FaultFileSystem::FailNextRemove(const std::string& path_part) {
  absl::MutexLock lock(&mu_);
  remove_part_ = path_part;
}

void FaultFileSystem::SetDiskFull(DiskFull mode) {
  absl::MutexLock lock(&mu_);
  disk_full_ = mode;
}

DiskFull FaultFileSystem::disk_full() {
  absl::MutexLock lock(&mu_);
  return disk_full_;
}

void FaultFileSystem::CountRefusal() {
  absl::MutexLock lock(&mu_);
  ++refusals_;
}

int FaultFileSystem::no_space_refusals() {
  absl::MutexLock lock(&mu_);
  return refusals_;
}

bool FaultFileSystem::Take(Fault kind, const std::string& path, uint64_t* arg) {
  absl::MutexLock lock(&mu_);
  std::string* part = nullptr;
  switch (kind) {
    case Fault::kSync:
      part = &sync_part_;
      break;
    case Fault::kNoSpace:
      part = &nospace_part_;
      break;
    case Fault::kTear:
      part = &tear_part_;
      break;
    case Fault::kRemove:
      part = &remove_part_;
      break;
  }
  if (part->empty() || path.find(*part) == std::string::npos) return false;
  part->clear();
  if (arg != nullptr) *arg = kind == Fault::kTear ? tear_keep_ : static_cast<uint64_t>(sync_errno_);
  return true;
}

absl::StatusOr<std::unique_ptr<File>> FaultFileSystem::Open(const std::string& path,
                                                            OpenMode mode) {
  CAMBIUM_ASSIGN_OR_RETURN(std::unique_ptr<File> file, base_->Open(path, mode));
  return std::unique_ptr<File>(new FaultFile(this, std::move(file)));
}

absl::Status FaultFileSystem::Remove(const std::string& path) {
  if (Take(Fault::kRemove, path)) return ErrnoToStatus(EIO, "unlink " + path);
  return base_->Remove(path);
}

absl::Status FaultFileSystem::SyncDir(const std::string& dir) {
  uint64_t error = 0;
  if (Take(Fault::kSync, dir, &error)) {
    return ErrnoToStatus(static_cast<int>(error), "fsync directory " + dir);
  }
  return base_->SyncDir(dir);
}

}  // namespace cambium::safekeeper::testing
