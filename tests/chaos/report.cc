#include "tests/chaos/report.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace cambium::chaos {
namespace fs = std::filesystem;

void Reporter::Log(const std::string& line) {
  const std::string stamped =
      absl::FormatTime("%H:%M:%E3S ", absl::Now(), absl::LocalTimeZone()) + line;
  std::lock_guard<std::mutex> lock(mu_);
  std::fprintf(stderr, "chaos: %s\n", stamped.c_str());
  std::fflush(stderr);
  lines_.push_back(stamped);
}

void Reporter::AddDefect(Defect d) {
  Log(absl::StrFormat("DEFECT CHAOS_SEED=%d fault=%s check=%s\n  expected: %s\n  actual:   %s%s",
                      d.seed, d.fault, d.check, d.expected, d.actual,
                      d.logs.empty() ? "" : "\n  logs:\n" + d.logs));
  std::lock_guard<std::mutex> lock(mu_);
  defects_.push_back(std::move(d));
}

std::vector<Defect> Reporter::Defects() const {
  std::lock_guard<std::mutex> lock(mu_);
  return defects_;
}

size_t Reporter::defect_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return defects_.size();
}

void Reporter::WriteLog(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  std::ofstream out(path, std::ios::app);
  for (const std::string& l : lines_) out << l << "\n";
}

std::string ErrorLines(const std::string& path, int max_lines) {
  std::ifstream in(path);
  if (!in) return "";
  std::deque<std::string> keep;
  std::string line;
  while (std::getline(in, line)) {
    const bool error = absl::StrContains(line, "Z E ") || absl::StrContains(line, "ERROR") ||
                       absl::StrContains(line, "FATAL") || absl::StrContains(line, "PANIC") ||
                       absl::StrContains(line, " W ") || absl::StrContains(line, "error=");
    if (!error) continue;
    if (line.size() > 400) line = line.substr(0, 400) + "...";
    // A retried failure logs the same event again and again: keep one of a run.
    const size_t stamp = line.find(' ');
    auto body = [&](const std::string& l) { return l.substr(std::min(l.size(), stamp + 1)); };
    if (!keep.empty() && stamp != std::string::npos && body(keep.back()) == body(line)) {
      keep.back() = line;
      continue;
    }
    keep.push_back(line);
    if (static_cast<int>(keep.size()) > max_lines) keep.pop_front();
  }
  std::string out;
  const std::string name =
      fs::path(path).parent_path().filename().string() + "/" + fs::path(path).filename().string();
  for (const std::string& l : keep) out += "    [" + name + "] " + l + "\n";
  return out;
}

void CopyLogs(const std::string& data_dir, const std::string& dest) {
  std::error_code ec;
  fs::remove_all(dest, ec);  // copy() skips existing files: start empty
  fs::create_directories(dest, ec);
  fs::copy(data_dir + "/logs", dest + "/logs", fs::copy_options::recursive, ec);
  for (const auto& ep : fs::directory_iterator(data_dir + "/endpoints", ec)) {
    const std::string to = dest + "/endpoints/" + ep.path().filename().string();
    fs::create_directories(to, ec);
    for (const char* f : {"postgres.log", "shim.log", "shim.out", "endpoint.json"}) {
      fs::copy(ep.path() / f, to + "/" + f, ec);
    }
  }
  fs::copy(data_dir + "/stack.json", dest + "/stack.json", ec);
}

}  // namespace cambium::chaos
