// TempDir: a fresh directory removed (recursively) when the object dies.
//
// When the test runs as root, the directory is handed to the `postgres` user so a
// Postgres started inside it can write there (Postgres refuses to run as root).
//
// Thread-safety: not thread-safe.
#ifndef CAMBIUM_TESTS_HARNESS_TEMP_DIR_H_
#define CAMBIUM_TESTS_HARNESS_TEMP_DIR_H_

#include <string>

#include "absl/status/statusor.h"

namespace cambium::testing {

class TempDir {
 public:
  // Creates $TMPDIR/<prefix>XXXXXX (or /tmp/...).
  static absl::StatusOr<TempDir> Create(const std::string& prefix = "cambium-test-");

  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }
  // path()/name
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Makes `path` owned by `user` (recursively) when running as root; no-op otherwise.
absl::Status ChownToUser(const std::string& path, const std::string& user);

}  // namespace cambium::testing

#endif  // CAMBIUM_TESTS_HARNESS_TEMP_DIR_H_
