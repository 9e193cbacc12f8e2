#include "auth/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <deque>

#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/logging.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace cambium::auth {

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(std::string path) {
  const int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoToStatus(errno, "open audit log " + path);
  if (fchmod(fd, 0600) != 0) {
    const int err = errno;
    close(fd);
    return ErrnoToStatus(err, "chmod audit log " + path);
  }
  return std::unique_ptr<AuditLog>(new AuditLog(std::move(path), fd));
}

AuditLog::~AuditLog() { close(fd_); }

absl::Status AuditLog::Append(const AuditRecord& r) {
  const absl::Time time = r.time == absl::UnixEpoch() ? absl::Now() : r.time;
  nlohmann::json j = {{"time", absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone())},
                      {"time_unix_micros", absl::ToUnixMicros(time)},
                      {"token_id", r.token_id},
                      {"scope", r.scope},
                      {"action", r.action},
                      {"tenant", r.tenant},
                      {"branch", r.branch},
                      {"result", r.result}};
  if (r.lsn) j["lsn"] = *r.lsn;
  if (!r.message.empty()) j["message"] = r.message;
  const std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  const ssize_t n = write(fd_, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    absl::Status s = n < 0 ? ErrnoToStatus(errno, "append to audit log " + path_)
                           : absl::ResourceExhaustedError("short write to audit log " + path_);
    LogError("audit_append_failed", {{"path", path_}, {"status", s}});
    return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> AuditLog::Read(absl::Time since, uint32_t limit) const {
  CAMBIUM_ASSIGN_OR_RETURN(std::string content, ReadFileToString(path_));
  std::deque<std::string> out;
  const int64_t since_us = absl::ToUnixMicros(since);
  for (absl::string_view line : absl::StrSplit(content, '\n', absl::SkipEmpty())) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    // A torn last line (a crash mid-write) is skipped, not an error.
    if (j.is_discarded() || !j.is_object() || !j.contains("time_unix_micros")) continue;
    if (!j["time_unix_micros"].is_number_integer()) continue;
    if (j["time_unix_micros"].get<int64_t>() < since_us) continue;
    out.emplace_back(line);
    if (limit > 0 && out.size() > limit) out.pop_front();
  }
  return std::vector<std::string>(out.begin(), out.end());
}

}  // namespace cambium::auth
