#include "auth/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <deque>
#include <filesystem>

#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/logging.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace cambium::auth {

namespace {

// Opens (creating) PATH for appending, 0600, never through a symbolic link.
absl::StatusOr<int> OpenForAppend(const std::string& path, uint64_t* size) {
  const int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoToStatus(errno, "open audit log " + path);
  struct stat st;
  if (fchmod(fd, 0600) != 0 || fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return ErrnoToStatus(err, "chmod audit log " + path);
  }
  *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

std::string Rotated(const std::string& path, int n) { return path + "." + std::to_string(n); }

}  // namespace

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(std::string path,
                                                         AuditLogOptions options) {
  uint64_t size = 0;
  CAMBIUM_ASSIGN_OR_RETURN(const int fd, OpenForAppend(path, &size));
  return std::unique_ptr<AuditLog>(new AuditLog(std::move(path), options, fd, size));
}

AuditLog::~AuditLog() { close(fd_); }

absl::Status AuditLog::RotateLocked() {
  std::error_code ec;
  std::filesystem::remove(Rotated(path_, options_.keep_files), ec);
  for (int n = options_.keep_files - 1; n >= 1; --n) {
    if (rename(Rotated(path_, n).c_str(), Rotated(path_, n + 1).c_str()) != 0 && errno != ENOENT) {
      return ErrnoToStatus(errno, "rotate audit log " + Rotated(path_, n));
    }
  }
  if (options_.keep_files <= 0) {
    std::filesystem::remove(path_, ec);
  } else if (rename(path_.c_str(), Rotated(path_, 1).c_str()) != 0) {
    return ErrnoToStatus(errno, "rotate audit log " + path_);
  }
  uint64_t size = 0;
  CAMBIUM_ASSIGN_OR_RETURN(const int fd, OpenForAppend(path_, &size));
  close(fd_);
  fd_ = fd;
  size_ = size;
  return absl::OkStatus();
}

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
  std::lock_guard<std::mutex> lock(mu_);
  const ssize_t n = write(fd_, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    absl::Status s = n < 0 ? ErrnoToStatus(errno, "append to audit log " + path_)
                           : absl::ResourceExhaustedError("short write to audit log " + path_);
    LogError("audit_append_failed", {{"path", path_}, {"status", s}});
    return s;
  }
  size_ += line.size();
  if (size_ >= options_.max_file_bytes) {
    // The record is written; a failed rotation only delays the next one.
    if (absl::Status rotated = RotateLocked(); !rotated.ok()) {
      LogError("audit_rotate_failed", {{"path", path_}, {"status", rotated}});
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> AuditLog::Read(absl::Time since, uint32_t limit) const {
  // Under the lock, so that no rotation moves a file between two reads.
  std::lock_guard<std::mutex> lock(mu_);
  std::string content;
  for (int n = options_.keep_files; n >= 0; --n) {
    const std::string file = n == 0 ? path_ : Rotated(path_, n);
    absl::StatusOr<std::string> part = ReadFileToString(file);
    if (!part.ok()) {
      if (n > 0 && absl::IsNotFound(part.status())) continue;
      return part.status();
    }
    content += *part;
  }
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
