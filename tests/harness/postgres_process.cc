#include "tests/harness/postgres_process.h"

#include <signal.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "common/files.h"
#include "common/net.h"
#include "common/status.h"

namespace cambium::testing {
namespace {

// How long startup (including crash recovery) may take.
constexpr absl::Duration kStartTimeout = absl::Minutes(2);

}  // namespace

std::string PostgresBinDir() {
  const char* dir = std::getenv("CAMBIUM_PG_BINDIR");
  return dir && *dir ? dir : "/usr/lib/postgresql/15/bin";
}

std::string PostgresBin(const std::string& name) { return PostgresBinDir() + "/" + name; }

absl::StatusOr<std::string> RunSql(const std::string& connection_string, const std::string& sql) {
  auto out = CheckCommand({.argv = {PostgresBin("psql"), "-X", "-A", "-t", "-q", "-v",
                                    "ON_ERROR_STOP=1", "-d", connection_string, "-c", sql}},
                          absl::Minutes(5));
  if (!out.ok()) return out.status();
  std::string result = std::move(*out);
  while (!result.empty() && result.back() == '\n') result.pop_back();
  return result;
}

PostgresProcess::~PostgresProcess() {
  if (server_) (void)Stop();
}

std::string PostgresProcess::LogTail(size_t bytes) const {
  return FileTail(options_.log_file, bytes);
}

absl::Status PostgresProcess::Start() {
  if (server_) return absl::FailedPreconditionError("server already running");
  // The port was free when it was picked; a test running beside this one may have
  // taken it since (seen in CI: "could not bind ... Address already in use"). Then
  // another free port is tried: nobody holds a connection string before Start.
  for (int attempt = 1;; ++attempt) {
    // A failed start's status carries the log's tail.
    absl::Status started = StartOnce();
    if (started.ok() || attempt == 5 ||
        !absl::StrContains(started.message(), "Address already in use")) {
      return started;
    }
    CAMBIUM_ASSIGN_OR_RETURN(options_.port, FreeLoopbackPort());
  }
}

absl::Status PostgresProcess::StartOnce() {
  SubprocessOptions postgres;
  postgres.argv = {PostgresBin("postgres"),
                   "-D",
                   options_.pgdata,
                   "-p",
                   std::to_string(options_.port),
                   "-c",
                   "listen_addresses=127.0.0.1",
                   "-c",
                   "unix_socket_directories=" + options_.socket_dir};
  for (const auto& [name, value] : options_.settings) {
    postgres.argv.push_back("-c");
    postgres.argv.push_back(name + "=" + value);
  }
  postgres.user = "postgres";
  postgres.stdout_file = options_.log_file;
  postgres.stderr_file = options_.log_file;
  postgres.die_with_parent = true;
  auto server = Subprocess::Start(postgres);
  if (!server.ok()) return server.status();
  server_ = std::move(*server);
  absl::Status ready = WaitUntilReady();
  if (!ready.ok()) {
    (void)server_->Stop(SIGKILL, absl::Seconds(5));
    server_.reset();
    return absl::Status(ready.code(),
                        absl::StrFormat("%s; log tail:\n%s", ready.message(), LogTail()));
  }
  return absl::OkStatus();
}

absl::Status PostgresProcess::WaitUntilReady() {
  const absl::Time deadline = absl::Now() + kStartTimeout;
  while (absl::Now() < deadline) {
    if (!server_->running()) return absl::InternalError("postgres exited during startup");
    auto r = RunCommand({.argv = {PostgresBin("pg_isready"), "-q", "-h", options_.socket_dir, "-p",
                                  std::to_string(options_.port)}},
                        absl::Seconds(10));
    if (r.ok() && r->exit_code == 0) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrFormat(
      "postgres did not accept connections within %s", absl::FormatDuration(kStartTimeout)));
}

absl::Status PostgresProcess::Stop() {
  if (!server_) return absl::OkStatus();
  // SIGINT = fast shutdown; escalate to SIGQUIT (immediate), then SIGKILL.
  server_->Signal(SIGINT);
  auto code = server_->Wait(absl::Seconds(120));
  if (!code.ok()) code = server_->Stop(SIGQUIT, absl::Seconds(10));
  server_.reset();
  if (!code.ok()) return code.status();
  if (*code != 0) {
    return absl::InternalError(
        absl::StrFormat("postgres exited with code %d; log tail:\n%s", *code, LogTail(2000)));
  }
  return absl::OkStatus();
}

absl::Status PostgresProcess::Crash() {
  if (!server_) return absl::FailedPreconditionError("server not running");
  auto code = server_->Stop(SIGKILL, absl::Seconds(10));
  server_.reset();
  return code.status();
}

std::string PostgresProcess::connection_string(const std::string& db) const {
  // The superuser has no password: the peer-authenticated socket (WritePeerAccess).
  return absl::StrFormat("postgresql://postgres@/%s?host=%s&port=%d", db, options_.socket_dir,
                         options_.port);
}

absl::Status WritePeerAccess(const std::string& pgdata) {
  std::ofstream hba(pgdata + "/pg_hba.conf", std::ios::trunc);
  hba << "# Cambium test harness: no trust (docs/security.md).\n"
         "local all all peer map=cambium\n"
         "host all all 127.0.0.1/32 scram-sha-256\n"
         "host all all ::1/128 scram-sha-256\n";
  std::ofstream ident(pgdata + "/pg_ident.conf", std::ios::trunc);
  ident << "cambium root postgres\ncambium postgres postgres\n";
  hba.close();
  ident.close();
  if (!hba || !ident) return absl::InternalError("could not write pg_hba.conf/pg_ident.conf");
  return absl::OkStatus();
}

absl::StatusOr<std::string> PostgresProcess::Sql(const std::string& sql,
                                                 const std::string& db) const {
  return RunSql(connection_string(db), sql);
}

absl::StatusOr<std::string> PostgresProcess::Pgbench(const std::vector<std::string>& args,
                                                     const std::string& db) const {
  SubprocessOptions pgbench;
  pgbench.argv = {PostgresBin("pgbench"),        "-h", options_.socket_dir, "-p",
                  std::to_string(options_.port), "-U", "postgres"};
  pgbench.argv.insert(pgbench.argv.end(), args.begin(), args.end());
  pgbench.argv.push_back(db);
  return CheckCommand(pgbench, absl::Minutes(20));
}

}  // namespace cambium::testing
