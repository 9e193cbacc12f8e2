#include "common/files.h"

#include <cerrno>
#include <fstream>
#include <sstream>

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

}  // namespace cambium
