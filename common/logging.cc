#include "common/logging.h"

#include <memory>
#include <mutex>

#include "absl/strings/str_format.h"
#include "spdlog/sinks/basic_file_sink.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace cambium {
namespace {

spdlog::level::level_enum ToSpdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarning:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

bool NeedsQuotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\n' || c == '\t') return true;
  }
  return false;
}

void AppendValue(std::string* out, std::string_view v) {
  if (!NeedsQuotes(v)) {
    out->append(v.data(), v.size());
    return;
  }
  out->push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') out->push_back('\\');
    if (c == '\n') {
      out->append("\\n");
      continue;
    }
    out->push_back(c);
  }
  out->push_back('"');
}

std::shared_ptr<spdlog::logger> MakeLogger(const LogOptions& options) {
  std::shared_ptr<spdlog::logger> logger;
  if (options.file.empty()) {
    logger = std::make_shared<spdlog::logger>("cambium",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
  } else {
    logger = std::make_shared<spdlog::logger>(
        "cambium", std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.file));
  }
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %L %v", spdlog::pattern_time_type::utc);
  logger->set_level(ToSpdlog(options.level));
  logger->flush_on(spdlog::level::debug);  // every line reaches the file: logs explain crashes
  return logger;
}

std::once_flag default_logger_once;

// Until InitLogging is called, events go to stderr in our format.
void EnsureLogger() {
  std::call_once(default_logger_once, [] {
    if (spdlog::default_logger_raw()->name() != "cambium") {
      spdlog::set_default_logger(MakeLogger(LogOptions{}));
    }
  });
}

}  // namespace

absl::Status InitLogging(const LogOptions& options) {
  EnsureLogger();
  try {
    spdlog::set_default_logger(MakeLogger(options));
  } catch (const spdlog::spdlog_ex& e) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cannot open log file %s: %s", options.file, e.what()));
  }
  return absl::OkStatus();
}

absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warning" || name == "warn") return LogLevel::kWarning;
  if (name == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(
      absl::StrFormat("unknown log level \"%s\": use debug, info, warning or error", name));
}

std::string FormatLogLine(std::string_view event, std::initializer_list<LogField> fields) {
  std::string line(event);
  for (const LogField& f : fields) {
    line.push_back(' ');
    line.append(f.key.data(), f.key.size());
    line.push_back('=');
    AppendValue(&line, f.value);
  }
  return line;
}

void LogEvent(LogLevel level, std::string_view event, std::initializer_list<LogField> fields) {
  EnsureLogger();
  auto logger = spdlog::default_logger_raw();
  const auto spd_level = ToSpdlog(level);
  if (!logger->should_log(spd_level)) return;
  logger->log(spd_level, "{}", FormatLogLine(event, fields));
}

}  // namespace cambium
