// Reporter: what a chaos round found. A defect names the seed, the fault that was
// active (or "none"), the check, what was expected and what happened, and quotes
// the log lines that matter; the round's logs are copied to the artifact directory
// before the stack is removed. Everything is printed as it happens, prefixed with
// "chaos:", so a CI log reads as the round's story.
//
// Thread-safety: thread-safe (the round's brancher thread records defects too).
#ifndef CAMBIUM_TESTS_CHAOS_REPORT_H_
#define CAMBIUM_TESTS_CHAOS_REPORT_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace cambium::chaos {

struct Defect {
  uint64_t seed = 0;
  std::string fault;  // the fault in effect or just recovered from
  std::string check;  // a stable name: acked-commits, branch-exact, ...
  std::string expected;
  std::string actual;
  std::string logs;  // relevant log lines
};

class Reporter {
 public:
  // Prints "chaos: <line>" (and keeps it for the summary file).
  void Log(const std::string& line);
  void AddDefect(Defect d);
  std::vector<Defect> Defects() const;
  size_t defect_count() const;
  // Appends every line logged so far to `path` (the run's log in the artifacts).
  void WriteLog(const std::string& path) const;

 private:
  mutable std::mutex mu_;
  std::vector<Defect> defects_;
  std::vector<std::string> lines_;
};

// The last `max_lines` lines of `path` that look like errors (structured `E`
// level, ERROR/FATAL/PANIC, "error" fields), each prefixed with the file name.
std::string ErrorLines(const std::string& path, int max_lines = 8);

// Copies logs (not data, not mounts) of the stack in `data_dir` to `dest`.
void CopyLogs(const std::string& data_dir, const std::string& dest);

}  // namespace cambium::chaos

#endif  // CAMBIUM_TESTS_CHAOS_REPORT_H_
