// AuditLog: one JSON object per line for every management call and every refused
// authentication, appended to a 0600 file (DATA/pageserver/audit.log).
//
// A record: {"time": RFC 3339, "time_unix_micros", "token_id", "scope", "action",
// "tenant", "branch", "lsn" (when there is one), "result" (a gRPC code name),
// "message" (for failures)}. Secrets are never written: a refused token is named by
// its public id only.
//
// Each record is one write(2) to an O_APPEND descriptor, so concurrent appenders do
// not interleave lines. Records are not fsynced one by one (refusals of a brute
// force would each cost a disk flush); the page cache holds them across a process
// crash, not across a power loss.
//
// The log is bounded: once the file passes max_file_bytes it is renamed to
// PATH.1 (PATH.1 to PATH.2, ..., the oldest beyond keep_files removed) and a new
// PATH is started, so at most (keep_files + 1) x max_file_bytes (plus one record)
// stay on disk. Read goes through the kept files, oldest first.
//
// Thread-safety: thread-safe.
#ifndef CAMBIUM_AUTH_AUDIT_LOG_H_
#define CAMBIUM_AUTH_AUDIT_LOG_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace cambium::auth {

struct AuditRecord {
  absl::Time time;                 // Default: the epoch (Append uses now if unset).
  std::string token_id;            // Default: "" (no or unparsable token).
  std::string scope;               // "read", "develop", "admin", "service". Default: "".
  std::string action;              // the RPC method name. Default: "".
  std::string tenant;              // Default: "".
  std::string branch;              // Default: "".
  std::optional<std::string> lsn;  // Default: none.
  std::string result = "OK";       // a gRPC status code name. Default: "OK".
  std::string message;             // for failures. Default: "".
};

struct AuditLogOptions {
  // A file is rotated once it passes this. Default: 16 MiB.
  uint64_t max_file_bytes = 16 << 20;
  // Rotated files kept (PATH.1 ... PATH.N). Default: 4.
  int keep_files = 4;
};

class AuditLog {
 public:
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(std::string path,
                                                        AuditLogOptions options = {});
  ~AuditLog();

  // Appends one line. A failure is logged (and returned): the call it records has
  // already been decided.
  absl::Status Append(const AuditRecord& record);
  // Records at or after `since`, oldest first; with `limit` > 0 the newest `limit`.
  absl::StatusOr<std::vector<std::string>> Read(absl::Time since, uint32_t limit) const;

  const std::string& path() const { return path_; }

 private:
  AuditLog(std::string path, AuditLogOptions options, int fd, uint64_t size)
      : path_(std::move(path)), options_(options), fd_(fd), size_(size) {}
  // REQUIRES: mu_ held. Renames the files one up and opens a new PATH.
  absl::Status RotateLocked();

  const std::string path_;
  const AuditLogOptions options_;
  mutable std::mutex mu_;
  int fd_;         // guarded by mu_
  uint64_t size_;  // of the current file; guarded by mu_
};

}  // namespace cambium::auth

#endif  // CAMBIUM_AUTH_AUDIT_LOG_H_
