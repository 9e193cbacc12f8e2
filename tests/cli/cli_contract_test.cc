// The CLI contract scripts rely on (issue 13 item 4), against a real stack: the
// version, help and usage errors (as JSON too), idempotent start and stop, an
// endpoint's port across stop/start and restarts, --port honoured or refused, the
// data directory found the same way from anywhere and never created by `status`,
// endpoint records that go with their branch, restore/reset restarting the endpoint
// on its port with its credentials (or refusing with --no-restart), the internal
// branches of read-only endpoints hidden from `branch list`.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/lsn.h"
#include "httplib.h"
#include "tests/cli/cli_fixture.h"
#include "tests/harness/promtool.h"

namespace cambium {
namespace {

using CliContractTest = testing::CliStackTest;
using nlohmann::json;

// The last line of `text` parsed as JSON (discarded if it is not).
json LastLineJson(const std::string& text) {
  std::string line = text;
  while (!line.empty() && line.back() == '\n') line.pop_back();
  const size_t nl = line.rfind('\n');
  if (nl != std::string::npos) line = line.substr(nl + 1);
  return json::parse(line, nullptr, false);
}

// Runs the CLI with exactly `args` (no --data-dir added) and `env`.
CommandResult RunRaw(const std::vector<std::string>& args,
                     const std::map<std::string, std::string>& env = {},
                     const std::string& cwd = "") {
  std::vector<std::string> argv = {CAMBIUM_CLI_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  SubprocessOptions options{.argv = argv, .env = env};
  if (!cwd.empty()) options.cwd = cwd;
  absl::StatusOr<CommandResult> r = RunCommand(options, absl::Minutes(3));
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : CommandResult{};
}

// A socket listening on a loopback port the test holds: "another program".
class PortHolder {
 public:
  // `port` 0: any free one.
  explicit PortHolder(int port = 0) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd_, 1) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot hold a port";
    }
    port_ = ntohs(addr.sin_port);
  }
  ~PortHolder() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST_F(CliContractTest, VersionHelpAndUsageErrorsAreJsonWithJson) {
  Result version = Cambium({"--version"});
  EXPECT_EQ(version.code, 0) << version.err;
  EXPECT_TRUE(version.out["version"].is_string()) << version.text;
  Result text_version = Cambium({"--version"}, /*json_output=*/false);
  EXPECT_EQ(text_version.text.rfind("cambium ", 0), 0u) << text_version.text;

  // Unknown commands, at the top and below it: exit 2, one JSON error object.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"frobnicate"}, {"branch", "frobnicate"}}) {
    Result r = Cambium(args);
    EXPECT_EQ(r.code, 2) << r.err;
    json err = LastLineJson(r.err);
    ASSERT_FALSE(err.is_discarded()) << r.err;
    EXPECT_EQ(err["error"]["code"], "INVALID_ARGUMENT") << err;
    EXPECT_NE(err["error"]["message"].get<std::string>().find("unknown command"), std::string::npos)
        << err;
    EXPECT_TRUE(r.text.empty()) << r.text;
  }
  // Other usage errors: the same shape.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"branch", "create"},
        {"branch", "create", "x", "--no-such-flag"},
        {"endpoint", "start", "main", "--port", "not-a-number"}}) {
    Result r = Cambium(args);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(LastLineJson(r.err)["error"]["code"], "INVALID_ARGUMENT") << r.err;
  }
  Result plain = Cambium({"frobnicate"}, /*json_output=*/false);
  EXPECT_EQ(plain.code, 2);
  EXPECT_NE(plain.err.find("unknown command 'frobnicate'"), std::string::npos) << plain.err;

  // help COMMAND: the command's usage; unknown ones are usage errors.
  Result help = Cambium({"help", "branch", "create"});
  ASSERT_EQ(help.code, 0) << help.err;
  EXPECT_EQ(help.out["command"], "cambium branch create") << help.out;
  EXPECT_NE(help.out["usage"].get<std::string>().find("--parent"), std::string::npos);
  Result top = Cambium({"help"});
  ASSERT_EQ(top.code, 0) << top.err;
  bool lists_branch = false;
  for (const auto& c : top.out["subcommands"]) {
    lists_branch |= c["name"] == "branch";
    EXPECT_NE(c["name"], "supervise") << "hidden commands are not listed";
  }
  EXPECT_TRUE(lists_branch) << top.out;
  Result help_text = Cambium({"help", "endpoint", "stop"}, /*json_output=*/false);
  EXPECT_EQ(help_text.code, 0);
  EXPECT_NE(help_text.text.find("--all"), std::string::npos) << help_text.text;
  EXPECT_EQ(Cambium({"help", "nosuch"}).code, 2);
}

TEST_F(CliContractTest, ACommandWithoutAStackSaysSoAndCreatesNothing) {
  const std::string nowhere = dir_->path() + "-nowhere";
  for (const char* command : {"status", "down", "branch"}) {
    std::vector<std::string> args = {"--json", "--data-dir", nowhere, command};
    if (std::string(command) == "branch") args.push_back("list");
    CommandResult r = RunRaw(args);
    EXPECT_EQ(r.exit_code, 1) << command << ": " << r.err;
    json err = LastLineJson(r.err);
    EXPECT_EQ(err["error"]["code"], "NOT_FOUND") << command << ": " << r.err;
    EXPECT_NE(r.err.find("cambium up"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(nowhere)) << command << " created " << nowhere;
  }
}

TEST_F(CliContractTest, TheDataDirectoryIsFoundTheSameWayFromAnywhere) {
  ASSERT_EQ(Cambium({"up"}).code, 0);
  // $CAMBIUM_DATA_DIR, from another working directory.
  CommandResult env = RunRaw({"--json", "status"}, {{"CAMBIUM_DATA_DIR", dir_->path()}}, "/");
  ASSERT_EQ(env.exit_code, 0) << env.err;
  EXPECT_EQ(json::parse(env.out)["data_dir"], dir_->path());
  // A config file's data_dir ($CAMBIUM_CONFIG; /etc/cambium/cambium.toml otherwise).
  const std::string config = dir_->path() + "-cambium.toml";
  ASSERT_TRUE(WriteFileAtomically(config, "data_dir = \"" + dir_->path() + "\"\n").ok());
  CommandResult from_config =
      RunRaw({"--json", "status"}, {{"CAMBIUM_CONFIG", config}, {"CAMBIUM_DATA_DIR", ""}}, "/");
  std::filesystem::remove(config);
  ASSERT_EQ(from_config.exit_code, 0) << from_config.err;
  EXPECT_EQ(json::parse(from_config.out)["data_dir"], dir_->path());
  // A config that cannot be read is an error, not a silent default.
  CommandResult bad = RunRaw({"--json", "status"},
                             {{"CAMBIUM_CONFIG", config + ".missing"}, {"CAMBIUM_DATA_DIR", ""}});
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
}

TEST_F(CliContractTest, StartAndStopAreIdempotentAndAnEndpointKeepsItsPort) {
  Result up = Cambium({"up"});
  ASSERT_EQ(up.code, 0) << up.err;
  const std::string main = up.out["connection_string"];
  // Start on a running endpoint: its connection string, exit 0.
  Result again = Cambium({"endpoint", "start", "main"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out["connection_string"], main);
  EXPECT_TRUE(again.out["already_running"].get<bool>());
  // Stop, stop again: both exit 0; the endpoint stays listed, stopped, with its port.
  Result stop = Cambium({"endpoint", "stop", "main"});
  ASSERT_EQ(stop.code, 0) << stop.err;
  EXPECT_EQ(stop.out["stopped"], json::array({"main"}));
  Result stop2 = Cambium({"endpoint", "stop", "main"});
  ASSERT_EQ(stop2.code, 0) << stop2.err;
  EXPECT_TRUE(stop2.out["already_stopped"].get<bool>()) << stop2.out;
  int port = 0;
  for (const auto& ep : Cambium({"endpoint", "list"}).out) {
    if (ep["name"] != "main") continue;
    EXPECT_EQ(ep["state"], "stopped") << ep;
    port = ep["port"];
  }
  EXPECT_GT(port, 0);
  // Stopping a branch that does not exist is an error.
  EXPECT_EQ(Cambium({"endpoint", "stop", "no-such-branch"}).code, 1);
  // Started again: the same connection string (port and password).
  Result restarted = Cambium({"endpoint", "start", "main"});
  ASSERT_EQ(restarted.code, 0) << restarted.err;
  EXPECT_EQ(restarted.out["connection_string"], main);
  EXPECT_EQ(Psql(main, "SELECT 1"), "1");

  // --port is honoured, or the start fails saying the port is taken.
  ASSERT_EQ(Cambium({"branch", "create", "ports"}).code, 0);
  {
    PortHolder taken;
    Result refused =
        Cambium({"endpoint", "start", "ports", "--port", std::to_string(taken.port())});
    EXPECT_EQ(refused.code, 1);
    EXPECT_NE(refused.err.find("taken"), std::string::npos) << refused.err;
  }
  int free_port = 0;
  {
    PortHolder probe;  // a port free once released
    free_port = probe.port();
  }
  Result on_port = Cambium({"endpoint", "start", "ports", "--port", std::to_string(free_port)});
  ASSERT_EQ(on_port.code, 0) << on_port.err;
  EXPECT_EQ(on_port.out["port"], free_port);
  const std::string ports_url = on_port.out["connection_string"];
  ASSERT_EQ(Cambium({"endpoint", "stop", "ports"}).code, 0);
  {
    // Its own port taken while it was stopped: refused, never a silent other port.
    PortHolder squatter(free_port);
    Result elsewhere = Cambium({"endpoint", "start", "ports"});
    EXPECT_EQ(elsewhere.code, 1) << elsewhere.out;
    EXPECT_NE(elsewhere.err.find("taken"), std::string::npos) << elsewhere.err;
  }
  Result same = Cambium({"endpoint", "start", "ports"});
  ASSERT_EQ(same.code, 0) << same.err;
  EXPECT_EQ(same.out["connection_string"], ports_url);
  // `up` does not start what `endpoint stop` stopped; down/up keeps ports.
  ASSERT_EQ(Cambium({"endpoint", "stop", "ports"}).code, 0);
  ASSERT_EQ(Cambium({"down"}).code, 0);
  Result up2 = Cambium({"up"});
  ASSERT_EQ(up2.code, 0) << up2.err;
  EXPECT_EQ(up2.out["connection_string"], main);
  for (const auto& ep : Cambium({"endpoint", "list"}).out) {
    if (ep["name"] == "ports") {
      EXPECT_EQ(ep["state"], "stopped") << ep;
    }
  }
  Result back = Cambium({"endpoint", "start", "ports"});
  ASSERT_EQ(back.code, 0) << back.err;
  EXPECT_EQ(back.out["connection_string"], ports_url);
  // A stopped endpoint's record goes with its branch.
  ASSERT_EQ(Cambium({"endpoint", "stop", "ports"}).code, 0);
  ASSERT_EQ(Cambium({"branch", "delete", "ports", "--purge"}).code, 0);
  for (const auto& ep : Cambium({"endpoint", "list"}).out) EXPECT_NE(ep["name"], "ports") << ep;
}

TEST_F(CliContractTest, UpDropsTheRecordOfAnEndpointWhoseBranchIsGone) {
  ASSERT_EQ(Cambium({"up"}).code, 0);
  // A record left by an older version, or a branch deleted behind the stack's back.
  const std::string stale = dir_->path() + "/endpoints/gone-branch";
  std::filesystem::create_directories(stale);
  ASSERT_TRUE(WriteFileAtomically(stale + "/endpoint.json",
                                  R"({"name": "gone-branch", "branch": "gone-branch",
                                      "port": 1, "postgres_pid": 0, "shim_pid": 0})")
                  .ok());
  ASSERT_EQ(Cambium({"down"}).code, 0);
  Result up = Cambium({"up"});
  ASSERT_EQ(up.code, 0) << up.err;
  for (const auto& ep : Cambium({"endpoint", "list"}).out) {
    EXPECT_NE(ep["name"], "gone-branch") << ep;
  }
  EXPECT_FALSE(std::filesystem::exists(stale));
}

TEST_F(CliContractTest, RestoreAndResetRestartTheEndpointOnItsPortUnlessNoRestart) {
  Result up = Cambium({"up"});
  ASSERT_EQ(up.code, 0) << up.err;
  const std::string main = up.out["connection_string"];
  Psql(main, "CREATE TABLE IF NOT EXISTS contract (id int)");
  ASSERT_EQ(Cambium({"branch", "create", "rr"}).code, 0);
  Result ep = Cambium({"endpoint", "start", "rr"});
  ASSERT_EQ(ep.code, 0) << ep.err;
  const std::string url = ep.out["connection_string"];
  Psql(url, "INSERT INTO contract VALUES (1)");
  const std::string lsn = Cambium({"lsn", "rr"}).out["lsn"];
  Psql(url, "INSERT INTO contract VALUES (2)");

  // --no-restart: refused while the endpoint runs; nothing changes.
  Result refused = Cambium({"branch", "restore", "rr", "--lsn", lsn, "--no-restart"});
  EXPECT_EQ(refused.code, 1) << refused.out;
  EXPECT_EQ(Psql(url, "SELECT count(*) FROM contract"), "2");
  // Default: the endpoint restarts on the restored state, same URL; the old head
  // is kept under --backup-name.
  Result restored = Cambium({"branch", "restore", "rr", "--lsn", lsn, "--backup-name", "rr-was"});
  ASSERT_EQ(restored.code, 0) << restored.err;
  EXPECT_TRUE(restored.out["endpoint_restarted"].get<bool>());
  EXPECT_EQ(restored.out["backup"]["name"], "rr-was");
  EXPECT_EQ(Psql(url, "SELECT count(*) FROM contract"), "1");
  // Reset: main's head (no rows), on the same URL.
  Result reset_refused = Cambium({"branch", "reset", "rr", "--no-restart"});
  EXPECT_EQ(reset_refused.code, 1);
  Result reset = Cambium({"branch", "reset", "rr"});
  ASSERT_EQ(reset.code, 0) << reset.err;
  EXPECT_EQ(Psql(url, "SELECT count(*) FROM contract"), "0");

  // Read-only endpoints' internal branches: hidden from branch list unless --all;
  // `endpoint stop rr --all` stops them with rr's own.
  Result ro = Cambium({"endpoint", "start", "rr", "--read-only"});
  ASSERT_EQ(ro.code, 0) << ro.err;
  const std::string internal = ro.out["name"];
  auto listed = [&](const std::vector<std::string>& args) {
    for (const auto& b : Cambium(args).out) {
      if (b["name"] == internal) return true;
    }
    return false;
  };
  EXPECT_FALSE(listed({"branch", "list"}));
  EXPECT_TRUE(listed({"branch", "list", "--all"}));
  Result all = Cambium({"endpoint", "stop", "rr", "--all"});
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_EQ(all.out["stopped"].size(), 2u) << all.out;
  for (const auto& e : Cambium({"endpoint", "list"}).out) {
    EXPECT_NE(e["name"], internal) << e;
    if (e["name"] == "rr") {
      EXPECT_EQ(e["state"], "stopped") << e;
    }
  }
}

TEST_F(CliContractTest, QueryReturnsTypedRowsAndSqlErrorsWithTheirSqlstate) {
  Result up = Cambium({"up"});
  ASSERT_EQ(up.code, 0) << up.err;
  Result q = Cambium({"query", "main", "--at", "-0s", "--",
                      "SELECT 1::int AS n, 'x'::text AS s, NULL::int AS z, true AS b, "
                      "2.5::float8 AS f, 1.10::numeric AS d, '{\"k\": [1]}'::jsonb AS j, "
                      "9007199254740993::int8 AS big, 1 AS n"});
  ASSERT_EQ(q.code, 0) << q.err;
  ASSERT_EQ(q.out["rows"].size(), 1u) << q.out;
  const json& row = q.out["rows"][0];
  EXPECT_EQ(row["n"], 1);
  EXPECT_EQ(row["s"], "x");
  EXPECT_TRUE(row["z"].is_null());
  EXPECT_EQ(row["b"], true);
  EXPECT_EQ(row["f"], 2.5);
  EXPECT_EQ(row["d"], "1.10");  // numeric keeps its precision as text
  EXPECT_EQ(row["j"]["k"][0], 1);
  EXPECT_EQ(row["big"], "9007199254740993");  // beyond a double's exact integers
  EXPECT_EQ(row["n_2"], 1);                   // a repeated column name
  EXPECT_EQ(q.out["columns"][0]["type"], "int4") << q.out;
  EXPECT_EQ(q.out["row_count"], 1);
  // An SQL error: its SQLSTATE and position, no command line, host or port.
  Result bad = Cambium({"query", "main", "--at", "-0s", "--", "SELECT nosuchcolumn"});
  EXPECT_EQ(bad.code, 1);
  json err = LastLineJson(bad.err);
  ASSERT_FALSE(err.is_discarded()) << bad.err;
  EXPECT_EQ(err["error"]["sqlstate"], "42703") << err;
  EXPECT_EQ(err["error"]["position"], 8) << err;
  const std::string error_line = err.dump();  // (progress events come before it)
  EXPECT_EQ(error_line.find("127.0.0.1"), std::string::npos) << error_line;
  EXPECT_EQ(error_line.find("psql"), std::string::npos) << error_line;
  EXPECT_EQ(error_line.find("port"), std::string::npos) << error_line;
  // A write on the time-travel copy: refused by Postgres (read-only transaction).
  Result write = Cambium({"query", "main", "--at", "-0s", "--", "CREATE TABLE nope (x int)"});
  EXPECT_EQ(write.code, 1);
  EXPECT_EQ(LastLineJson(write.err)["error"]["sqlstate"], "25006") << write.err;
  // Human output: an aligned table.
  Result text = Cambium({"query", "main", "--at", "-0s", "--", "SELECT 42 AS answer"},
                        /*json_output=*/false);
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.text.find("answer"), std::string::npos) << text.text;
  EXPECT_NE(text.text.find("(1 row)"), std::string::npos) << text.text;
}

// Issue 13 item 1: status --json gives every daemon's and every running endpoint's
// shim's metrics_url; each serves a Prometheus exposition promtool accepts.
TEST_F(CliContractTest, StatusGivesEachDaemonsAndShimsMetricsUrl) {
  ASSERT_EQ(Cambium({"up"}).code, 0);
  Result status = Cambium({"status"});
  ASSERT_EQ(status.code, 0) << status.err;
  std::vector<json> parts = {status.out["pageserver"]};
  for (const auto& sk : status.out["safekeepers"]) parts.push_back(sk);
  for (const auto& ep : status.out["endpoints"]) {
    if (!ep["running"].get<bool>()) continue;
    parts.push_back(ep);
    // Issue 14: which safekeepers refuse the endpoint's new WAL (none here).
    EXPECT_EQ(ep["wal_backpressure"], json::array()) << ep;
  }
  ASSERT_GE(parts.size(), 5u) << status.out;
  for (const json& part : parts) {
    ASSERT_TRUE(part["metrics_url"].is_string()) << part;
    const std::string url = part["metrics_url"];
    const std::string prefix = "http://127.0.0.1:";
    ASSERT_EQ(url.rfind(prefix, 0), 0u) << url;
    const int port = std::stoi(url.substr(prefix.size()));
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(10);
    auto metrics = client.Get("/metrics");
    ASSERT_TRUE(metrics) << url;
    EXPECT_EQ(metrics->status, 200) << url;
    if (testing::HavePromtool()) {
      EXPECT_TRUE(testing::PromtoolCheckMetrics(metrics->body).ok()) << url;
    }
    auto ready = client.Get("/readyz");
    ASSERT_TRUE(ready) << url;
    EXPECT_EQ(ready->status, 200) << url << ": " << ready->body;
  }
}

// Long commands report progress on stderr: NDJSON events with --json (stdout stays
// one document), nothing when stderr is not a terminal.
TEST_F(CliContractTest, LongCommandsReportProgressAsNdjsonOnStderr) {
  ASSERT_EQ(Cambium({"up"}).code, 0);
  ASSERT_EQ(Cambium({"branch", "create", "progress"}).code, 0);
  Result start = Cambium({"endpoint", "start", "progress"});
  ASSERT_EQ(start.code, 0) << start.err;
  EXPECT_TRUE(start.out.is_object()) << start.text;  // stdout: one JSON document
  std::set<std::string> stages;
  for (absl::string_view line : absl::StrSplit(start.err, '\n', absl::SkipEmpty())) {
    json event = json::parse(line.begin(), line.end(), nullptr, false);
    ASSERT_FALSE(event.is_discarded()) << line;
    EXPECT_EQ(event["event"], "progress") << line;
    EXPECT_TRUE(event["message"].is_string()) << line;
    EXPECT_TRUE(event["elapsed_ms"].is_number()) << line;
    stages.insert(event["stage"].get<std::string>());
  }
  EXPECT_TRUE(stages.count("mount")) << start.err;
  EXPECT_TRUE(stages.count("postgres")) << start.err;
  ASSERT_EQ(Cambium({"endpoint", "stop", "progress"}).code, 0);
  Result quiet = Cambium({"endpoint", "start", "progress"}, /*json_output=*/false);
  ASSERT_EQ(quiet.code, 0) << quiet.err;
  EXPECT_EQ(quiet.err, "");
  ASSERT_EQ(Cambium({"endpoint", "stop", "progress"}).code, 0);
  ASSERT_EQ(Cambium({"branch", "delete", "progress", "--purge"}).code, 0);
}

// The restorable range of a branch and the PITR window, in branch show and list.
TEST_F(CliContractTest, BranchShowAndListGiveTheRestorableRange) {
  Result up = Cambium({"up"});
  ASSERT_EQ(up.code, 0) << up.err;
  Psql(up.out["connection_string"], "CREATE TABLE IF NOT EXISTS ranged (x int)");
  Psql(up.out["connection_string"], "INSERT INTO ranged VALUES (1)");
  const Lsn head = Lsn::Parse(Cambium({"lsn", "main"}).out["lsn"].get<std::string>()).value();
  Result show = Cambium({"branch", "show", "main"});
  ASSERT_EQ(show.code, 0) << show.err;
  const json& r = show.out["restorable"];
  EXPECT_EQ(show.out["name"], "main");
  EXPECT_EQ(r["pitr_window_seconds"], 7 * 24 * 3600) << r;
  const Lsn earliest = Lsn::Parse(r["earliest_lsn"].get<std::string>()).value();
  const Lsn latest = Lsn::Parse(r["latest_lsn"].get<std::string>()).value();
  EXPECT_LE(earliest, latest) << r;
  EXPECT_GE(latest, head) << r;
  ASSERT_TRUE(r["latest_time"].is_string()) << r;
  EXPECT_TRUE(r["earliest_time"].is_string()) << r;
  bool listed = false;
  for (const auto& b : Cambium({"branch", "list"}).out) {
    if (b["name"] == "main") listed = b["restorable"]["latest_lsn"].is_string();
  }
  EXPECT_TRUE(listed);
  Result text = Cambium({"branch", "show", "main"}, /*json_output=*/false);
  EXPECT_NE(text.text.find("restorable"), std::string::npos) << text.text;
  EXPECT_EQ(Cambium({"branch", "show", "no-such-branch"}).code, 1);
}

TEST_F(CliContractTest, LogsShowAndFollowEachDaemonAndEndpoint) {
  ASSERT_EQ(Cambium({"up"}).code, 0);
  Result pageserver = Cambium({"logs", "pageserver", "-n", "5"});
  ASSERT_EQ(pageserver.code, 0) << pageserver.err;
  ASSERT_EQ(pageserver.out["logs"].size(), 1u) << pageserver.out;
  EXPECT_EQ(pageserver.out["logs"][0]["name"], "pageserver");
  EXPECT_GE(pageserver.out["logs"][0]["lines"].size(), 1u);
  EXPECT_LE(pageserver.out["logs"][0]["lines"].size(), 5u);
  Result everything = Cambium({"logs"});
  ASSERT_EQ(everything.code, 0) << everything.err;
  EXPECT_EQ(everything.out["logs"].size(), 5u) << everything.out;  // pageserver, 3 sk, supervisor
  Result endpoint = Cambium({"logs", "main"}, /*json_output=*/false);
  ASSERT_EQ(endpoint.code, 0) << endpoint.err;
  EXPECT_NE(endpoint.text.find("==> main/postgres"), std::string::npos) << endpoint.text;
  EXPECT_NE(endpoint.text.find("==> main/shim"), std::string::npos) << endpoint.text;
  Result unknown = Cambium({"logs", "no-such-thing"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_EQ(LastLineJson(unknown.err)["error"]["code"], "NOT_FOUND") << unknown.err;

  // -f prints what is appended, as NDJSON with --json, and holds no lock: other
  // commands run meanwhile.
  const std::string out = dir_->path() + "-follow.out";
  auto follower = Subprocess::Start({.argv = {CAMBIUM_CLI_BIN, "--data-dir", dir_->path(), "--json",
                                              "logs", "sk1", "-n", "0", "-f"},
                                     .stdout_file = out});
  ASSERT_TRUE(follower.ok()) << follower.status();
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(Cambium({"status"}).code, 0);
  const std::string sk1_log = Cambium({"status"}).out["safekeepers"][1]["log"];
  {
    std::ofstream append(sk1_log, std::ios::app);
    append << "{\"msg\":\"contract-test-marker\"}\n";
  }
  std::string seen;
  for (int i = 0; i < 50 && seen.find("contract-test-marker") == std::string::npos; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    seen = ReadFileToString(out).value_or("");
  }
  (void)(*follower)->Stop(SIGTERM, absl::Seconds(5));
  std::filesystem::remove(out);
  ASSERT_NE(seen.find("contract-test-marker"), std::string::npos) << seen;
  json line = LastLineJson(seen);
  EXPECT_EQ(line["name"], "sk1") << seen;
}

TEST_F(CliContractTest, DoctorChecksTheMachineAndSaysWhatToFix) {
  ASSERT_EQ(Cambium({"up"}).code, 0);
  Result doctor = Cambium({"doctor"});
  ASSERT_EQ(doctor.code, 0) << doctor.text << doctor.err;
  EXPECT_TRUE(doctor.out["ok"].get<bool>());
  std::map<std::string, std::string> status;
  for (const auto& c : doctor.out["checks"]) status[c["name"]] = c["status"];
  for (const char* name : {"root", "fuse_device", "postgres", "cambium-shim", "data_dir",
                           "disk_space", "pageserver", "sk0"}) {
    EXPECT_EQ(status[name], "ok") << name << ": " << doctor.out;
  }
  // Not root: a failed check with its fix, exit 1.
  absl::StatusOr<CommandResult> r =
      RunCommand({.argv = {"runuser", "-u", "postgres", "--", CAMBIUM_CLI_BIN, "--json", "doctor",
                           "--data-dir", "/tmp/cambium-doctor-nowhere"},
                  .cwd = "/"},
                 absl::Minutes(1));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 1) << r->out << r->err;
  json report = json::parse(r->out, nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << r->out;
  EXPECT_FALSE(report["ok"].get<bool>());
  bool root_failed = false;
  for (const auto& c : report["checks"]) {
    if (c["name"] == "root") {
      root_failed = c["status"] == "error" && !c["fix"].get<std::string>().empty();
    }
  }
  EXPECT_TRUE(root_failed) << report;
}

}  // namespace
}  // namespace cambium
