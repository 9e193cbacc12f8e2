// Structured logging: one line per event, `key=value` fields, UTC timestamps.
//
//   LogInfo("branch_created", {{"tenant", tenant}, {"branch", name}, {"lsn", lsn}});
//   -> 2026-11-21T19:31:29.123456Z I branch_created tenant=acme branch=preview-42 lsn=0/1500718
//
// Values with spaces, quotes or '=' are quoted. Errors are logged where they are
// handled, not at every level they pass through. The sink (stderr or a file) is
// chosen once at process start with InitLogging; spdlog does the I/O.
//
// Thread-safety: all functions are thread-safe.
#ifndef CAMBIUM_COMMON_LOGGING_H_
#define CAMBIUM_COMMON_LOGGING_H_

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "common/ids.h"
#include "common/lsn.h"

namespace cambium {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

struct LogOptions {
  // Append to this file; empty = stderr. Default: stderr.
  std::string file;
  // Events below this level are dropped. Default: info.
  LogLevel level = LogLevel::kInfo;
};

// Configures the process-wide sink. Safe to call more than once (last call wins).
absl::Status InitLogging(const LogOptions& options);
// Parses "debug", "info", "warning", "error".
absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name);

// One key=value field. Construct from strings, integers, Lsn, ids or Status.
struct LogField {
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const char* v) : key(k), value(v) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(v) {}
  template <std::integral T>
  LogField(std::string_view k, T v) : key(k), value(std::to_string(v)) {}
  LogField(std::string_view k, Lsn v) : key(k), value(v.ToString()) {}
  LogField(std::string_view k, const TenantId& v) : key(k), value(v.ToString()) {}
  LogField(std::string_view k, const TimelineId& v) : key(k), value(v.ToString()) {}
  LogField(std::string_view k, const absl::Status& v) : key(k), value(v.ToString()) {}

  std::string_view key;
  std::string value;
};

void LogEvent(LogLevel level, std::string_view event, std::initializer_list<LogField> fields);

inline void LogDebug(std::string_view event, std::initializer_list<LogField> fields = {}) {
  LogEvent(LogLevel::kDebug, event, fields);
}
inline void LogInfo(std::string_view event, std::initializer_list<LogField> fields = {}) {
  LogEvent(LogLevel::kInfo, event, fields);
}
inline void LogWarning(std::string_view event, std::initializer_list<LogField> fields = {}) {
  LogEvent(LogLevel::kWarning, event, fields);
}
inline void LogError(std::string_view event, std::initializer_list<LogField> fields = {}) {
  LogEvent(LogLevel::kError, event, fields);
}

// Formats an event line without the timestamp and level (exposed for tests).
std::string FormatLogLine(std::string_view event, std::initializer_list<LogField> fields);

}  // namespace cambium

#endif  // CAMBIUM_COMMON_LOGGING_H_
