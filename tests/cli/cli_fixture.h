// The fixture of the `cambium` CLI's end-to-end tests (cli_test, cli_contract_test):
// one stack per test binary in its own data directory, started by the cases (`up`)
// and taken down after the suite, also when ctest kills the binary (an exit guard
// runs `cambium down`); helpers to run the CLI, psql and look at processes.
//
// Thread-safety: for GoogleTest's one thread.
#ifndef CAMBIUM_TESTS_CLI_CLI_FIXTURE_H_
#define CAMBIUM_TESTS_CLI_CLI_FIXTURE_H_

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/subprocess.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/harness/exit_guard.h"
#include "tests/harness/postgres_process.h"
#include "tests/harness/temp_dir.h"

namespace cambium::testing {

class CliStackTest : public ::testing::Test {
 protected:
  using json = nlohmann::json;

  static void SetUpTestSuite() {
    dir_ = new testing::TempDir(testing::TempDir::Create("cambium-cli-").value());
    // The daemons `cambium up` detaches outlive this process if ctest kills it.
    const std::string quoted = testing::ShellQuote(dir_->path());
    guard_ = new testing::ExitGuard(
        testing::ExitGuard::Start(
            absl::StrFormat("%s down --data-dir %s; rm -rf %s", CAMBIUM_CLI_BIN, quoted, quoted))
            .value());
  }
  static void TearDownTestSuite() {
    (void)RunCommand({.argv = {CAMBIUM_CLI_BIN, "down", "--data-dir", dir_->path()}},
                     absl::Minutes(3));
    delete dir_;
    delete guard_;
  }

  // Runs `cambium ARGS [--json] --data-dir DIR`; returns (exit code, parsed stdout,
  // raw stdout, stderr).
  struct Result {
    int code = -1;
    json out;
    std::string text;
    std::string err;
  };
  static Result Cambium(std::vector<std::string> args, bool json_output = true,
                        const std::string& token = "") {
    std::vector<std::string> argv = {CAMBIUM_CLI_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    // Options after `--` would be SQL: put ours first.
    auto dashdash = std::find(argv.begin(), argv.end(), "--");
    dashdash = argv.insert(dashdash, {"--data-dir", dir_->path()});
    if (json_output) argv.insert(dashdash, "--json");
    SubprocessOptions options{.argv = argv};
    // Without CAMBIUM_TOKEN the CLI uses the stack's admin token (DATA/secrets).
    if (!token.empty()) options.env["CAMBIUM_TOKEN"] = token;
    auto r = RunCommand(options, absl::Minutes(5));
    Result res;
    if (!r.ok()) {
      res.err = std::string(r.status().message());
      return res;
    }
    res.code = r->exit_code;
    res.text = r->out;
    res.err = r->err;
    res.out = json::parse(r->out, nullptr, false);
    return res;
  }

  // SQL through psql; an unexpected error fails the test unless `ok` is given.
  static std::string Psql(const std::string& conn, const std::string& sql, bool* ok = nullptr) {
    absl::StatusOr<std::string> out = testing::RunSql(conn, sql);
    if (ok) {
      *ok = out.ok();
    } else if (!out.ok()) {
      ADD_FAILURE() << sql << ": " << out.status();
    }
    return out.ok() ? *out : "";
  }

  // True if psql logs in with `conninfo` (never prompting for a password).
  static bool Connects(const std::string& conninfo) {
    auto r = RunCommand(
        {.argv = {testing::PostgresBin("psql"), "-X", "-w", "-d", conninfo, "-c", "SELECT 1"},
         .env = {{"PGPASSFILE", "/dev/null"}, {"PGPASSWORD", ""}}},
        absl::Minutes(1));
    return r.ok() && r->exit_code == 0;
  }

  // The password in postgresql://USER:PASSWORD@HOST...
  static std::string PasswordOf(const std::string& url) {
    const size_t colon = url.find(':', url.find("://") + 3);
    const size_t at = url.find('@');
    return colon < at && at != std::string::npos ? url.substr(colon + 1, at - colon - 1) : "";
  }

  // True if a live process has `needle` in its command line.
  static bool ProcessWith(const std::string& needle) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
      std::ifstream in(entry.path() / "cmdline");
      std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
      if (cmdline.find(needle) != std::string::npos) return true;
    }
    return false;
  }

  // The pids of the postgres and the shim of endpoint `name` (0 if not listed).
  static std::pair<int, int> EndpointPids(const std::string& name) {
    for (const auto& ep : Cambium({"endpoint", "list"}).out) {
      if (ep["name"] == name) return {ep["pid"].get<int>(), ep["shim_pid"].get<int>()};
    }
    return {0, 0};
  }

  // kill -9 of an endpoint's postgres and shim (each its own process group).
  static void KillEndpoint(const std::string& name) {
    auto [pg_pid, shim_pid] = EndpointPids(name);
    ASSERT_GT(pg_pid, 0);
    ASSERT_GT(shim_pid, 0);
    kill(-shim_pid, SIGKILL);
    kill(-pg_pid, SIGKILL);
    for (int i = 0; i < 100 && (ProcessAlive(pg_pid) || ProcessAlive(shim_pid)); ++i) {
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  // True if `pid` exists and is not a zombie.
  static bool ProcessAlive(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (pid <= 0 || !std::getline(in, line)) return false;
    const size_t close = line.rfind(')');
    return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
  }

  static bool HasBranch(const std::string& name) {
    for (const auto& b : Cambium({"branch", "list"}).out) {
      if (b["name"] == name) return true;
    }
    return false;
  }

  static testing::TempDir* dir_;
  static testing::ExitGuard* guard_;
};

}  // namespace cambium::testing

#endif  // CAMBIUM_TESTS_CLI_CLI_FIXTURE_H_
