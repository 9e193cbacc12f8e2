#include "objstore/local_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/status.h"
#include "objstore/object_key.h"

namespace cambium::objstore {
namespace {

namespace fs = std::filesystem;

constexpr char kTempMarker[] = ".tmp-";

// Creates the directories of `path` below `root` (fsyncing each parent it extends,
// so a durable object's directory entry chain is durable too).
absl::Status MakeParents(const std::string& root, const fs::path& path) {
  fs::path dir = path.parent_path();
  std::vector<fs::path> missing;
  for (fs::path p = dir; p.string().size() > root.size() && !fs::exists(p); p = p.parent_path()) {
    missing.push_back(p);
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0700) != 0 && errno != EEXIST)
      return ErrnoToStatus(errno, absl::StrCat("mkdir ", it->string()));
    CAMBIUM_RETURN_IF_ERROR(SyncDirectoryOf(it->string()));
  }
  return absl::OkStatus();
}

std::string RandomSuffix() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrCat(kTempMarker, absl::Hex(rng()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<LocalObjectStore>> LocalObjectStore::Open(const std::string& root) {
  if (root.empty() || root[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("file:// object store needs an absolute path, got '", root, "'"));
  }
  std::string normalized = root;
  while (normalized.size() > 1 && normalized.back() == '/') normalized.pop_back();
  struct stat st;
  if (::stat(normalized.c_str(), &st) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("object store directory ", normalized));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("object store ", normalized, " is not a directory"));
  }
  if (::access(normalized.c_str(), R_OK | W_OK | X_OK) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("object store directory ", normalized));
  }
  return std::unique_ptr<LocalObjectStore>(new LocalObjectStore(normalized));
}

absl::Status LocalObjectStore::Put(std::string_view key, std::string_view bytes) {
  CAMBIUM_RETURN_IF_ERROR(ValidateObjectKey(key));
  fs::path path = fs::path(root_) / std::string(key);
  CAMBIUM_RETURN_IF_ERROR(MakeParents(root_, path));
  std::string tmp = path.string() + RandomSuffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("create ", tmp));
  absl::Status status = PwriteAll(fd, bytes, 0, tmp);
  if (status.ok() && ::fsync(fd) != 0) status = ErrnoToStatus(errno, absl::StrCat("fsync ", tmp));
  ::close(fd);
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    status = ErrnoToStatus(errno, absl::StrCat("rename ", tmp));
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status;
  }
  return SyncDirectoryOf(path.string());
}

absl::StatusOr<std::string> LocalObjectStore::Get(std::string_view key) {
  CAMBIUM_RETURN_IF_ERROR(ValidateObjectKey(key));
  std::string path = (fs::path(root_) / std::string(key)).string();
  auto bytes = ReadFileToString(path);
  if (!bytes.ok() && absl::IsNotFound(bytes.status())) {
    return absl::NotFoundError(absl::StrCat("no object ", std::string(key), " in ", Describe()));
  }
  return bytes;
}

absl::StatusOr<std::vector<ObjectInfo>> LocalObjectStore::List(std::string_view prefix) {
  std::vector<ObjectInfo> out;
  // Walk only the deepest directory the prefix names in full.
  std::string_view dir_part =
      prefix.substr(0, prefix.rfind('/') == std::string_view::npos ? 0 : prefix.rfind('/'));
  fs::path start = dir_part.empty() ? fs::path(root_) : fs::path(root_) / std::string(dir_part);
  std::error_code ec;
  if (!fs::is_directory(start, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(start, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string key = it->path().string().substr(root_.size() + 1);
    if (!key.starts_with(prefix) || key.find(kTempMarker) != std::string::npos) continue;
    out.push_back(ObjectInfo{key, static_cast<uint64_t>(it->file_size(ec))});
  }
  if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("list ", start.string()));
  std::sort(out.begin(), out.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return out;
}

absl::Status LocalObjectStore::Delete(std::string_view key) {
  CAMBIUM_RETURN_IF_ERROR(ValidateObjectKey(key));
  fs::path path = fs::path(root_) / std::string(key);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoToStatus(errno, absl::StrCat("delete ", path.string()));
  }
  return SyncDirectoryOf(path.string());
}

}  // namespace cambium::objstore
