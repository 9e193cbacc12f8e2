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
// Thread-safety: thread-safe.
#ifndef CAMBIUM_AUTH_AUDIT_LOG_H_
#define CAMBIUM_AUTH_AUDIT_LOG_H_

#include <cstdint>
#include <memory>
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

class AuditLog {
 public:
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(std::string path);
  ~AuditLog();

  // Appends one line. A failure is logged (and returned): the call it records has
  // already been decided.
  absl::Status Append(const AuditRecord& record);
  // Records at or after `since`, oldest first; with `limit` > 0 the newest `limit`.
  absl::StatusOr<std::vector<std::string>> Read(absl::Time since, uint32_t limit) const;

  const std::string& path() const { return path_; }

 private:
  AuditLog(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  const std::string path_;
  const int fd_;
};

}  // namespace cambium::auth

#endif  // CAMBIUM_AUTH_AUDIT_LOG_H_
