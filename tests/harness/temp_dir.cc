#include "tests/harness/temp_dir.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/status.h"

namespace cambium::testing {

absl::StatusOr<TempDir> TempDir::Create(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = absl::StrFormat("%s/%sXXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) return ErrnoToStatus(errno, "mkdtemp " + pattern);
  TempDir dir(buf.data());
  absl::Status s = ChownToUser(dir.path(), "postgres");
  if (!s.ok()) return s;
  return dir;
}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    if (!path_.empty()) std::filesystem::remove_all(path_);
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

absl::Status ChownToUser(const std::string& path, const std::string& user) {
  if (geteuid() != 0) return absl::OkStatus();
  struct passwd* pw = getpwnam(user.c_str());
  if (pw == nullptr) return absl::NotFoundError("user " + user + " does not exist");
  if (chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0)
    return ErrnoToStatus(errno, "chown " + path);
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (lchown(it->path().c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      return ErrnoToStatus(errno, "chown " + it->path().string());
    }
  }
  return absl::OkStatus();
}

}  // namespace cambium::testing
