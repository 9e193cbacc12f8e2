// The `cambium` CLI end to end, against the real stack and real Postgres, in its own
// data directory: up, branches (at a time or an LSN), endpoints, PITR, restore,
// protection, TTL, delete, read-only endpoints, --json and human output, usage errors,
// crash restarts and down/up, pinned durability settings, control calls through a
// stalled pageserver, the exact head, writer release and the daemon supervisor. The
// cases share one stack and run in order; each starts with `up`.
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "common/lsn.h"
#include "common/subprocess.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cli/cli_fixture.h"
#include "tests/harness/exit_guard.h"
#include "tests/harness/postgres_process.h"
#include "tests/harness/temp_dir.h"

namespace cambium {
namespace {

using nlohmann::json;

using CliTest = testing::CliStackTest;

TEST_F(CliTest, BranchesEndpointsPitrAndProtectionThroughTheCli) {
  Result up = Cambium({"up"});
  ASSERT_EQ(up.code, 0) << up.err;
  ASSERT_TRUE(up.out.is_object()) << up.out;
  const std::string main = up.out["connection_string"].get<std::string>();
  // The tenant's owner, with its password (issue 10): nobody gets in without one.
  EXPECT_EQ(main.rfind("postgresql://cambium_owner:", 0), 0u) << main;
  EXPECT_NE(PasswordOf(main), "") << main;
  // `up` again is a no-op that reports the same endpoint.
  EXPECT_EQ(Cambium({"up"}).out["connection_string"], main);

  Psql(main, "CREATE TABLE items (id int PRIMARY KEY, note text)");
  Psql(main, "INSERT INTO items SELECT g, 'first' FROM generate_series(1, 100) g");
  absl::SleepFor(absl::Milliseconds(1500));
  const std::string t_first =
      absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone());
  absl::SleepFor(absl::Milliseconds(1500));
  Psql(main, "INSERT INTO items SELECT g, 'second' FROM generate_series(101, 150) g");
  absl::SleepFor(absl::Seconds(2));  // archived

  // A branch and an endpoint on it; writes isolated both ways.
  Result created = Cambium({"branch", "create", "dev"});
  ASSERT_EQ(created.code, 0) << created.err;
  for (const char* field :
       {"name", "parent", "branch_lsn", "created", "unique_size_bytes", "protected", "expires"}) {
    EXPECT_TRUE(created.out.contains(field)) << field;
  }
  Result dev_ep = Cambium({"endpoint", "start", "dev"});
  ASSERT_EQ(dev_ep.code, 0) << dev_ep.err;
  const std::string dev = dev_ep.out["connection_string"].get<std::string>();
  EXPECT_EQ(Psql(dev, "SELECT count(*) FROM items"), "150");
  Psql(dev, "INSERT INTO items VALUES (1000, 'dev only')");
  Psql(main, "INSERT INTO items VALUES (2000, 'main only')");
  EXPECT_EQ(Psql(dev, "SELECT count(*) FROM items WHERE id = 2000"), "0");
  EXPECT_EQ(Psql(main, "SELECT count(*) FROM items WHERE id = 1000"), "0");

  // Endpoint list has the documented fields.
  Result list = Cambium({"endpoint", "list"});
  ASSERT_TRUE(list.out.is_array());
  ASSERT_GE(list.out.size(), 2u);
  for (const auto& ep : list.out) {
    for (const char* field : {"branch", "connection_string", "pid", "shim_pid", "read_only"}) {
      EXPECT_TRUE(ep.contains(field)) << field;
    }
  }

  // PITR by timestamp: a branch at t_first sees exactly the first 100 rows.
  Result pitr = Cambium({"branch", "create", "at-first", "--at", t_first});
  ASSERT_EQ(pitr.code, 0) << pitr.err;
  Result q = Cambium({"query", "main", "--at", t_first, "--", "SELECT count(*) FROM items"});
  ASSERT_EQ(q.code, 0) << q.err;
  EXPECT_EQ(q.out["rows"][0]["count"], 100) << q.out;
  Result lsn = Cambium({"lsn", "main", "--at", t_first});
  EXPECT_EQ(lsn.out["lsn"], pitr.out["branch_lsn"]);

  // Read-only endpoint: refuses writes, sees the data, leaves the branch untouched.
  Result ro = Cambium({"endpoint", "start", "dev", "--read-only"});
  ASSERT_EQ(ro.code, 0) << ro.err;
  EXPECT_TRUE(ro.out["read_only"].get<bool>());
  bool ok = true;
  Psql(ro.out["connection_string"], "INSERT INTO items VALUES (3000, 'nope')", &ok);
  EXPECT_FALSE(ok);
  EXPECT_EQ(Psql(ro.out["connection_string"], "SELECT count(*) FROM items"), "151");
  EXPECT_EQ(Cambium({"endpoint", "stop", ro.out["name"]}).code, 0);

  // Protection: delete and reset refused.
  ASSERT_EQ(Cambium({"branch", "protect", "dev"}).code, 0);
  Result del = Cambium({"endpoint", "stop", "dev"});
  ASSERT_EQ(del.code, 0) << del.err;
  del = Cambium({"branch", "delete", "dev"});
  EXPECT_NE(del.code, 0);
  EXPECT_NE(del.err.find("protected"), std::string::npos) << del.err;
  Result reset = Cambium({"branch", "reset", "dev"});
  EXPECT_NE(reset.code, 0);
  ASSERT_EQ(Cambium({"branch", "unprotect", "dev"}).code, 0);
  reset = Cambium({"branch", "reset", "dev"});
  ASSERT_EQ(reset.code, 0) << reset.err;

  // main is protected from `up` on (issue 10): no delete, reset or restore until
  // unprotected.
  Result main_del = Cambium({"branch", "delete", "main"});
  EXPECT_NE(main_del.code, 0);
  EXPECT_NE(main_del.err.find("protected"), std::string::npos) << main_del.err;
  ASSERT_EQ(Cambium({"branch", "unprotect", "main"}).code, 0);

  // Restore main in place to t_first, under its running endpoint: the endpoint is
  // stopped for it and runs on the restored state after; the old head is kept.
  Result restored = Cambium({"branch", "restore", "main", "--at", t_first});
  ASSERT_EQ(restored.code, 0) << restored.err;
  EXPECT_TRUE(restored.out["endpoint_restarted"].get<bool>()) << restored.out;
  const std::string backup = restored.out["backup"]["name"].get<std::string>();
  EXPECT_EQ(backup.rfind("main_old_", 0), 0u) << backup;
  std::string main_url;
  for (const auto& e : Cambium({"endpoint", "list"}).out) {
    if (e["name"] == "main" && e["running"].get<bool>()) main_url = e["connection_string"];
  }
  ASSERT_FALSE(main_url.empty());
  EXPECT_EQ(Psql(main_url, "SELECT count(*) FROM items"), "100");
  Result old = Cambium({"endpoint", "start", backup});
  ASSERT_EQ(old.code, 0) << old.err;
  EXPECT_EQ(Psql(old.out["connection_string"], "SELECT count(*) FROM items"), "151");
  EXPECT_EQ(Cambium({"endpoint", "stop", backup}).code, 0);

  // TTL: the branch disappears by itself.
  ASSERT_EQ(Cambium({"branch", "create", "short-lived", "--ttl", "2s"}).code, 0);
  bool gone = false;
  for (int i = 0; i < 60 && !gone; ++i) {
    absl::SleepFor(absl::Milliseconds(250));
    gone = !HasBranch("short-lived");
  }
  EXPECT_TRUE(gone);

  // Errors: a missing branch is a non-zero exit with a JSON error naming it.
  Result missing = Cambium({"branch", "delete", "preview-42"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("preview-42"), std::string::npos) << missing.err;
}

// The longest branch name (63 characters) runs read-write and read-only endpoints:
// its socket path fits in 107 bytes, and its read-only copy's name in 63.
TEST_F(CliTest, TheLongestBranchNameRunsEndpoints) {
  ASSERT_EQ(Cambium({"up"}).code, 0);
  const std::string name(63, 'n');
  ASSERT_EQ(Cambium({"branch", "create", name}).code, 0);
  Result rw = Cambium({"endpoint", "start", name});
  ASSERT_EQ(rw.code, 0) << rw.err;
  EXPECT_TRUE(Connects(rw.out["connection_string"].get<std::string>()));
  Result ro = Cambium({"endpoint", "start", name, "--read-only"});
  ASSERT_EQ(ro.code, 0) << ro.err;
  EXPECT_LE(ro.out["name"].get<std::string>().size(), 63u) << ro.out;
  EXPECT_TRUE(Connects(ro.out["connection_string"].get<std::string>()));
  Result q = Cambium({"query", name, "--at", "-0s", "--", "SELECT 1"});
  EXPECT_EQ(q.code, 0) << q.err;
  ASSERT_EQ(Cambium({"endpoint", "stop", ro.out["name"].get<std::string>()}).code, 0);
  ASSERT_EQ(Cambium({"endpoint", "stop", name}).code, 0);
  ASSERT_EQ(Cambium({"branch", "delete", name}).code, 0);
}

TEST_F(CliTest, BranchAtAnLsnDeleteHumanOutputAndUsageErrors) {
  Result up = Cambium({"up"});
  ASSERT_EQ(up.code, 0) << up.err;
  const std::string main = up.out["connection_string"].get<std::string>();
  Psql(main, "CREATE TABLE at_lsn (id int)");
  Psql(main, "INSERT INTO at_lsn SELECT generate_series(1, 10)");
  // The LSN `cambium lsn` reports once the pageserver has the 10 rows.
  const Lsn written = Lsn::Parse(Psql(main, "SELECT pg_current_wal_flush_lsn()")).value();
  std::string lsn;
  for (int i = 0; i < 600; ++i) {
    Result r = Cambium({"lsn", "main"});
    ASSERT_EQ(r.code, 0) << r.err;
    lsn = r.out["lsn"].get<std::string>();
    if (Lsn::Parse(lsn).value() >= written) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_GE(Lsn::Parse(lsn).value(), written) << lsn;
  Psql(main, "INSERT INTO at_lsn SELECT generate_series(11, 15)");

  // A branch at that LSN sees main as it was then.
  Result created = Cambium({"branch", "create", "at-lsn", "--lsn", lsn});
  ASSERT_EQ(created.code, 0) << created.err;
  EXPECT_EQ(created.out["parent"], "main");
  Result ep = Cambium({"endpoint", "start", "at-lsn"});
  ASSERT_EQ(ep.code, 0) << ep.err;
  EXPECT_EQ(Psql(ep.out["connection_string"], "SELECT count(*) FROM at_lsn"), "10");
  EXPECT_EQ(Psql(main, "SELECT count(*) FROM at_lsn"), "15");

  // A start that fails after the shim mounted (Postgres rejects the port) leaves no
  // process, no endpoint and, for a read-only one, no ephemeral branch behind.
  Result failed = Cambium({"endpoint", "start", "at-lsn", "--read-only", "--port", "70000"});
  EXPECT_EQ(failed.code, 1);
  EXPECT_NE(failed.err.find("did not start"), std::string::npos) << failed.err;
  EXPECT_FALSE(ProcessWith("/endpoints/at-lsn-ro-"));
  EXPECT_FALSE(ProcessWith("/ep/at-lsn-ro-"));
  for (const auto& e : Cambium({"endpoint", "list"}).out) {
    EXPECT_TRUE(e["branch"] != "at-lsn" || !e["read_only"].get<bool>()) << e;
  }
  for (const auto& b : Cambium({"branch", "list"}).out) EXPECT_NE(b["parent"], "at-lsn") << b;

  // Without --json: human text, not JSON.
  Result text = Cambium({"endpoint", "list"}, /*json_output=*/false);
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_TRUE(text.out.is_discarded()) << text.text;
  EXPECT_EQ(text.text.rfind("NAME", 0), 0u) << text.text;
  EXPECT_NE(text.text.find("at-lsn"), std::string::npos) << text.text;
  EXPECT_NE(text.text.find("running"), std::string::npos) << text.text;

  // A successful delete: the branch is gone from the list, into the trash (issue 10).
  ASSERT_EQ(Cambium({"endpoint", "stop", "at-lsn"}).code, 0);
  Result del = Cambium({"branch", "delete", "at-lsn"});
  ASSERT_EQ(del.code, 0) << del.err;
  EXPECT_TRUE(del.out["deleted"].get<bool>()) << del.out;
  EXPECT_FALSE(del.out["purged"].get<bool>()) << del.out;
  EXPECT_TRUE(del.out["purge_after"].is_string()) << del.out;
  EXPECT_FALSE(HasBranch("at-lsn"));
  // The trash (also expired branches of other tests of this stack go there).
  auto trashed = [&](const std::string& name) {
    Result trash = Cambium({"branch", "list", "--deleted"});
    EXPECT_EQ(trash.code, 0) << trash.err;
    std::vector<nlohmann::json> found;
    for (const auto& b : trash.out) {
      if (b["name"] == name) found.push_back(b);
    }
    return found;
  };
  ASSERT_EQ(trashed("at-lsn").size(), 1u);
  EXPECT_TRUE(trashed("at-lsn")[0]["deleted"].is_string());
  Result gone = Cambium({"endpoint", "start", "at-lsn"});
  EXPECT_EQ(gone.code, 1);
  EXPECT_NE(gone.err.find("undelete"), std::string::npos) << gone.err;
  // Undelete brings back the same data; purge frees it for good.
  Result undeleted = Cambium({"branch", "undelete", "at-lsn"});
  ASSERT_EQ(undeleted.code, 0) << undeleted.err;
  ep = Cambium({"endpoint", "start", "at-lsn"});
  ASSERT_EQ(ep.code, 0) << ep.err;
  EXPECT_EQ(Psql(ep.out["connection_string"], "SELECT count(*) FROM at_lsn"), "10");
  ASSERT_EQ(Cambium({"endpoint", "stop", "at-lsn"}).code, 0);
  Result purged = Cambium({"branch", "delete", "at-lsn", "--purge"});
  ASSERT_EQ(purged.code, 0) << purged.err;
  EXPECT_TRUE(purged.out["purged"].get<bool>()) << purged.out;
  EXPECT_TRUE(trashed("at-lsn").empty());
  EXPECT_EQ(Cambium({"branch", "undelete", "at-lsn"}).code, 1);

  // Usage errors exit with 2 and change nothing; a bad LSN is an error (1).
  EXPECT_EQ(Cambium({"branch", "create", "bad", "--no-such-flag"}).code, 2);
  EXPECT_EQ(Cambium({"branch", "create", "bad", "--lsn", lsn, "--at", "@0"}).code, 2);
  Result bad_lsn = Cambium({"branch", "create", "bad", "--lsn", "not-an-lsn"});
  EXPECT_EQ(bad_lsn.code, 1);
  EXPECT_NE(bad_lsn.err.find("not-an-lsn"), std::string::npos) << bad_lsn.err;
  EXPECT_FALSE(HasBranch("bad"));
}

TEST_F(CliTest, CrashedEndpointsRestartAndDownUpKeepsEverything) {
  Result up = Cambium({"up"});
  ASSERT_EQ(up.code, 0) << up.err;
  const std::string main = up.out["connection_string"].get<std::string>();
  Psql(main, "CREATE TABLE IF NOT EXISTS durable (id int)");
  for (int i = 0; i < 20; ++i) Psql(main, absl::StrFormat("INSERT INTO durable VALUES (%d)", i));
  // kill -9 of postgres and of the shim of main.
  Result list = Cambium({"endpoint", "list"});
  int pg_pid = 0, shim_pid = 0;
  for (const auto& ep : list.out) {
    if (ep["name"] == "main") {
      pg_pid = ep["pid"];
      shim_pid = ep["shim_pid"];
    }
  }
  ASSERT_GT(pg_pid, 0);
  ASSERT_GT(shim_pid, 0);
  kill(-shim_pid, SIGKILL);
  kill(-pg_pid, SIGKILL);
  absl::SleepFor(absl::Milliseconds(500));
  Result restarted = Cambium({"endpoint", "start", "main"});
  ASSERT_EQ(restarted.code, 0) << restarted.err;
  EXPECT_EQ(Psql(restarted.out["connection_string"], "SELECT count(*) FROM durable"), "20");
  // down / up brings the same endpoints and data back.
  ASSERT_EQ(Cambium({"down"}).code, 0);
  Result status = Cambium({"status"});
  EXPECT_FALSE(status.out["pageserver"]["running"].get<bool>());
  Result again = Cambium({"up"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(Psql(again.out["connection_string"], "SELECT count(*) FROM durable"), "20");
  status = Cambium({"status"});
  EXPECT_TRUE(status.out["pageserver"]["running"].get<bool>());
  EXPECT_EQ(status.out["safekeepers"].size(), 3u);
}

// Issue 9 item 7: durability settings come from the command line, which beats
// ALTER SYSTEM, before and after a restart of the endpoint.
TEST_F(CliTest, DurabilitySettingsCannotBeTurnedOff) {
  Result up = Cambium({"up"});
  ASSERT_EQ(up.code, 0) << up.err;
  // ALTER SYSTEM is the superuser's: the maintenance socket.
  std::string main;
  for (const auto& ep : up.out["endpoints"]) {
    if (ep["name"] == "main") main = ep["maintenance_connection_string"].get<std::string>();
  }
  ASSERT_FALSE(main.empty()) << up.out;
  Psql(main, "ALTER SYSTEM SET fsync = off");
  Psql(main, "ALTER SYSTEM SET full_page_writes = off");
  Psql(main, "ALTER SYSTEM SET wal_sync_method = open_datasync");
  // Not a durability setting, but the CLI's too: recovery's prefetching reads
  // through the mount what replay overwrites (issue 11).
  Psql(main, "ALTER SYSTEM SET recovery_prefetch = try");
  Psql(main, "SELECT pg_reload_conf()");
  absl::SleepFor(absl::Milliseconds(500));  // the reload is asynchronous
  const std::map<std::string, std::string> pinned = {{"fsync", "on"},
                                                     {"full_page_writes", "on"},
                                                     {"wal_sync_method", "fdatasync"},
                                                     {"recovery_prefetch", "off"}};
  for (const auto& [name, value] : pinned) EXPECT_EQ(Psql(main, "SHOW " + name), value) << name;
  ASSERT_EQ(Cambium({"endpoint", "stop", "main"}).code, 0);
  Result again = Cambium({"endpoint", "start", "main"});
  ASSERT_EQ(again.code, 0) << again.err;
  main = again.out["maintenance_connection_string"].get<std::string>();
  for (const auto& [name, value] : pinned) EXPECT_EQ(Psql(main, "SHOW " + name), value) << name;
  Psql(main, "ALTER SYSTEM RESET ALL");
  Psql(main, "SELECT pg_reload_conf()");
}

// Issue 11: D/shim.toml sets every endpoint shim's flags (here: the kernel's
// writeback cache for relation files, on by default), read at each endpoint start;
// data written either way reads back after a restart.
TEST_F(CliTest, ShimSettingsComeFromShimToml) {
  Result up = Cambium({"up"});
  ASSERT_EQ(up.code, 0) << up.err;
  auto start_main = [&](const std::string& settings) -> json {
    const std::string config = dir_->Sub("shim.toml");
    if (settings.empty()) {
      std::filesystem::remove(config);
    } else {
      std::ofstream(config) << settings << "\n";
    }
    EXPECT_EQ(Cambium({"endpoint", "stop", "main"}).code, 0);
    Result started = Cambium({"endpoint", "start", "main"});
    EXPECT_EQ(started.code, 0) << started.err;
    return started.out;
  };
  auto writeback_logged = [](const json& ep) {
    std::ifstream in(ep["shim_log"].get<std::string>());
    std::string line, last;
    while (std::getline(in, line)) {
      if (line.find(" fuse_init ") != std::string::npos) last = line;
    }
    return last;
  };
  json ep = start_main("writeback-cache = false");
  EXPECT_NE(writeback_logged(ep).find("writeback_cache=0"), std::string::npos)
      << writeback_logged(ep);
  auto url = [](const json& ep) { return ep["maintenance_connection_string"].get<std::string>(); };
  Psql(url(ep), "CREATE TABLE through AS SELECT generate_series(1, 20000) AS n");
  ep = start_main("");
  EXPECT_NE(writeback_logged(ep).find("writeback_cache=1"), std::string::npos)
      << writeback_logged(ep);
  Psql(url(ep), "CREATE TABLE back AS SELECT n FROM through");
  Psql(url(ep), "CHECKPOINT");
  ep = start_main("");
  EXPECT_EQ(Psql(url(ep), "SELECT count(*) || ' ' || sum(n) FROM back"), "20000 200010000");
}

// Issue 9 item 14: a control call waits for a pageserver that is slow to answer
// (here: stopped for 1.5 s) instead of failing with "failed to connect to all
// addresses".
TEST_F(CliTest, ControlCallsWaitForAStalledPageserver) {
  Result up = Cambium({"up"});
  ASSERT_EQ(up.code, 0) << up.err;
  const int pageserver = Cambium({"status"}).out["pageserver"]["pid"].get<int>();
  ASSERT_GT(pageserver, 0);
  const std::string out = dir_->Sub("stalled-branch-list.out");
  ASSERT_EQ(kill(pageserver, SIGSTOP), 0);
  auto command = Subprocess::Start(
      {.argv = {CAMBIUM_CLI_BIN, "--data-dir", dir_->path(), "--json", "branch", "list"},
       .stdout_file = out,
       .stderr_file = out});
  absl::SleepFor(absl::Milliseconds(1500));
  kill(pageserver, SIGCONT);
  ASSERT_TRUE(command.ok()) << command.status();
  absl::StatusOr<int> code = (*command)->Wait(absl::Minutes(2));
  ASSERT_TRUE(code.ok()) << code.status();
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(*code, 0) << text;
}

// Issue 9 item 3: `endpoint stop` of an endpoint whose postgres and shim were
// killed releases its writer at the pageserver, so a plain start works at once and
// loses no acknowledged commit; a failed start leaves nothing that blocks the next.
TEST_F(CliTest, StopOfACrashedEndpointReleasesItsWriter) {
  Result up = Cambium({"up"});
  ASSERT_EQ(up.code, 0) << up.err;
  const std::string main = up.out["connection_string"].get<std::string>();
  Psql(main, "CREATE TABLE acked (id int)");
  for (int i = 0; i < 20; ++i) Psql(main, absl::StrFormat("INSERT INTO acked VALUES (%d)", i));
  KillEndpoint("main");
  Result stop = Cambium({"endpoint", "stop", "main"});
  ASSERT_EQ(stop.code, 0) << stop.err;
  Result start = Cambium({"endpoint", "start", "main"});
  ASSERT_EQ(start.code, 0) << start.err;
  EXPECT_EQ(Psql(start.out["connection_string"], "SELECT count(*) FROM acked"), "20");

  // A read-write start that fails after its shim attached (Postgres rejects the
  // port) leaves no process and no endpoint; the next plain start works.
  ASSERT_EQ(Cambium({"branch", "create", "fails-once"}).code, 0);
  Result failed = Cambium({"endpoint", "start", "fails-once", "--port", "70000"});
  EXPECT_EQ(failed.code, 1);
  EXPECT_FALSE(ProcessWith(dir_->Sub("endpoints/fails-once/")));
  for (const auto& e : Cambium({"endpoint", "list"}).out) EXPECT_NE(e["name"], "fails-once") << e;
  Result works = Cambium({"endpoint", "start", "fails-once"});
  ASSERT_EQ(works.code, 0) << works.err;
  EXPECT_EQ(Psql(works.out["connection_string"], "SELECT count(*) FROM acked"), "20");
  // A writer left behind with no endpoint record (lost, or a start interrupted
  // before it wrote one): `endpoint stop` of the branch still releases it.
  KillEndpoint("fails-once");
  std::filesystem::remove(dir_->Sub("endpoints/fails-once/endpoint.json"));
  Result orphan = Cambium({"endpoint", "stop", "fails-once"});
  ASSERT_EQ(orphan.code, 0) << orphan.err;
  EXPECT_EQ(orphan.out["released_writer"], "fails-once") << orphan.out;
  works = Cambium({"endpoint", "start", "fails-once"});
  ASSERT_EQ(works.code, 0) << works.err;
  EXPECT_EQ(Cambium({"endpoint", "stop", "fails-once"}).code, 0);
  // Nothing left to stop or release: done (issue 13: stop is idempotent).
  Result again = Cambium({"endpoint", "stop", "fails-once"});
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_TRUE(again.out["already_stopped"].get<bool>()) << again.out;
}

// Issue 9 item 1: `cambium lsn BRANCH` is the exact head: every commit acknowledged
// before the command is at or below it, however far the WAL archive trails (it
// trails most on a timeline whose writer just started).
TEST_F(CliTest, LsnIsTheExactHead) {
  Result up = Cambium({"up"});
  ASSERT_EQ(up.code, 0) << up.err;
  for (int round = 0; round < 4; ++round) {
    const std::string branch = absl::StrFormat("head-%d", round);
    ASSERT_EQ(Cambium({"branch", "create", branch}).code, 0);
    Result ep = Cambium({"endpoint", "start", branch});
    ASSERT_EQ(ep.code, 0) << ep.err;
    const std::string conn = ep.out["connection_string"].get<std::string>();
    for (int i = 0; i < 2; ++i) {
      // The insert position before a commit: its commit record ends above it.
      const Lsn before = Lsn::Parse(Psql(conn, "SELECT pg_current_wal_insert_lsn()")).value();
      Psql(conn, absl::StrFormat("CREATE TABLE head_%d (id int)", i));
      Result lsn = Cambium({"lsn", branch});
      ASSERT_EQ(lsn.code, 0) << lsn.err;
      EXPECT_GT(Lsn::Parse(lsn.out["lsn"].get<std::string>()).value(), before)
          << branch << " commit " << i << ": " << lsn.out;
    }
    EXPECT_EQ(Cambium({"endpoint", "stop", branch}).code, 0);
  }
}

// Issue 9 item 15: the supervisor `up` starts restarts a killed pageserver and a
// killed safekeeper on their ports; the endpoint keeps working without `cambium up`;
// status shows the restarts; `up` restarts a dead supervisor (adopting the running
// daemons); `down` leaves no process behind.
// The scope table of docs/security.md, command by command: each scope may do exactly
// its list; a refusal is exit 1 with PERMISSION_DENIED naming the scope needed; a
// bogus, revoked or expired token is UNAUTHENTICATED.
TEST_F(CliTest, EachScopeCanDoExactlyItsCommands) {
  ASSERT_EQ(Cambium({"up"}).code, 0);
  auto token = [](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"token", "create"};
    argv.insert(argv.end(), args.begin(), args.end());
    Result r = Cambium(argv);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_FALSE(r.out.value("id", "").empty()) << r.out;
    return r.out.value("token", "");
  };
  const std::string read = token({"--scope", "read", "--description", "dashboard"});
  const std::string develop = token({"--scope", "develop"});
  const std::string preview = token({"--scope", "develop", "--branches", "preview-*"});
  const std::string admin = token({"--scope", "admin"});
  // Admin's own branches to act on: one unprotected, one protected.
  ASSERT_EQ(Cambium({"branch", "create", "scoped"}).code, 0);
  ASSERT_EQ(Cambium({"branch", "create", "guarded"}).code, 0);
  ASSERT_EQ(Cambium({"branch", "protect", "guarded"}).code, 0);
  // Main as `up` makes it (an earlier case may have unprotected it).
  bool main_was_protected = false;
  for (const auto& b : Cambium({"branch", "list"}).out) {
    if (b["name"] == "main") main_was_protected = b.value("protected", false);
  }
  ASSERT_EQ(Cambium({"branch", "protect", "main"}).code, 0);

  enum Expect { kAllowed, kDenied };
  struct Row {
    std::string token_name;
    std::vector<std::string> command;
    Expect expect;
  };
  const std::map<std::string, std::string> tokens = {
      {"read", read}, {"develop", develop}, {"preview", preview}, {"admin", admin}};
  const std::vector<Row> table = {
      // read: lists, status, lsn; nothing that changes a branch, no tokens, no audit.
      {"read", {"branch", "list"}, kAllowed},
      {"read", {"lsn", "main"}, kAllowed},
      {"read", {"branch", "create", "r1"}, kDenied},
      {"read", {"branch", "reset", "scoped"}, kDenied},
      {"read", {"branch", "delete", "scoped"}, kDenied},
      {"read", {"branch", "protect", "scoped"}, kDenied},
      {"read", {"token", "list"}, kDenied},
      {"read", {"token", "create", "--scope", "read"}, kDenied},
      {"read", {"audit"}, kDenied},
      // read: read-only endpoints (an ephemeral read-only copy, gone at stop),
      // time-travel queries and read-only connection strings, never the owner's.
      {"read", {"endpoint", "start", "scoped", "--read-only"}, kAllowed},
      {"read", {"endpoint", "stop", "scoped"}, kAllowed},
      {"read", {"query", "main", "--at", "-1s", "--", "SELECT 1"}, kAllowed},
      {"read", {"connection-string", "main", "--read-only"}, kAllowed},
      {"read", {"connection-string", "main"}, kDenied},
      {"read", {"endpoint", "start", "scoped"}, kDenied},
      // develop: also create, reset, delete unprotected branches.
      {"develop", {"branch", "list"}, kAllowed},
      {"develop", {"branch", "create", "d1"}, kAllowed},
      {"develop", {"branch", "reset", "d1"}, kAllowed},
      {"develop", {"branch", "delete", "d1"}, kAllowed},
      {"develop", {"branch", "reset", "guarded"}, kDenied},
      {"develop", {"branch", "delete", "guarded"}, kDenied},
      {"develop", {"branch", "unprotect", "guarded"}, kDenied},
      {"develop", {"branch", "protect", "scoped"}, kDenied},
      {"develop", {"token", "create", "--scope", "admin"}, kDenied},
      {"develop", {"token", "list"}, kDenied},
      {"develop", {"audit"}, kDenied},
      {"develop", {"endpoint", "start", "scoped"}, kAllowed},
      {"develop", {"endpoint", "stop", "scoped"}, kAllowed},
      {"develop", {"endpoint", "start", "guarded"}, kDenied},
      {"develop", {"connection-string", "main"}, kDenied},
      // develop limited to preview-*: only those branches.
      {"preview", {"branch", "create", "preview-1"}, kAllowed},
      {"preview", {"branch", "delete", "preview-1"}, kAllowed},
      {"preview", {"branch", "create", "p1"}, kDenied},
      {"preview", {"branch", "reset", "scoped"}, kDenied},
      {"preview", {"branch", "delete", "scoped"}, kDenied},
      // admin: everything.
      {"admin", {"branch", "create", "a1"}, kAllowed},
      {"admin", {"branch", "protect", "a1"}, kAllowed},
      {"admin", {"branch", "unprotect", "a1"}, kAllowed},
      {"admin", {"branch", "delete", "a1"}, kAllowed},
      {"admin", {"token", "list"}, kAllowed},
      {"admin", {"audit"}, kAllowed},
  };
  for (const Row& row : table) {
    Result r = Cambium(row.command, /*json_output=*/true, tokens.at(row.token_name));
    std::string what = row.token_name + ":";
    for (const auto& a : row.command) what += " " + a;
    if (row.expect == kAllowed) {
      EXPECT_EQ(r.code, 0) << what << ": " << r.err;
      continue;
    }
    EXPECT_EQ(r.code, 1) << what << " was allowed";
    json err = json::parse(r.err, nullptr, false);
    EXPECT_EQ(err.is_object() ? err["error"].value("code", "") : "", "PERMISSION_DENIED")
        << what << ": " << r.err;
    EXPECT_NE(r.err.find("needs scope"), std::string::npos) << what << ": " << r.err;
  }
  for (const char* gone : {"r1", "p1"}) EXPECT_FALSE(HasBranch(gone)) << gone;
  // The read-only copies went with their endpoint and query.
  for (const auto& b : Cambium({"branch", "list"}).out) {
    const std::string name = b["name"].get<std::string>();
    EXPECT_TRUE(name.find("-ro-") == std::string::npos && name.find("-q-") == std::string::npos)
        << name;
  }

  // Bogus, revoked and expired tokens: UNAUTHENTICATED, nothing listed.
  auto unauthenticated = [&](const std::string& t, const std::string& why) {
    Result r = Cambium({"branch", "list"}, true, t);
    EXPECT_EQ(r.code, 1) << why;
    EXPECT_NE(r.err.find("UNAUTHENTICATED"), std::string::npos) << why << ": " << r.err;
  };
  unauthenticated("bogus", "a bogus token");
  Result list = Cambium({"token", "list"});
  std::string read_id;
  for (const auto& t : list.out["tokens"]) {
    if (t.value("description", "") == "dashboard") read_id = t.value("id", "");
  }
  ASSERT_FALSE(read_id.empty()) << list.out;
  ASSERT_EQ(Cambium({"token", "revoke", read_id}).code, 0);
  unauthenticated(read, "a revoked token");
  const std::string brief = token({"--scope", "admin", "--ttl", "1s"});
  absl::SleepFor(absl::Milliseconds(1100));
  unauthenticated(brief, "an expired token");
  EXPECT_NE(read.find(read_id), std::string::npos);
  EXPECT_EQ(Cambium({"token", "list"}).text.find(read.substr(read.rfind('_') + 1)),
            std::string::npos)
      << "token list shows a secret";

  // The audit log has the allowed and the refused calls, with token ids.
  Result audit = Cambium({"audit", "--since", "-10m"});
  ASSERT_EQ(audit.code, 0) << audit.err;
  bool created = false, refused = false, unauth = false;
  for (const auto& rec : audit.out["records"]) {
    created |= rec["action"] == "CreateBranch" && rec["branch"] == "d1" && rec["result"] == "OK" &&
               rec.contains("lsn");
    refused |= rec["action"] == "DeleteBranch" && rec["branch"] == "guarded" &&
               rec["result"] == "PERMISSION_DENIED";
    unauth |= rec["result"] == "UNAUTHENTICATED";
  }
  EXPECT_TRUE(created);
  EXPECT_TRUE(refused);
  EXPECT_TRUE(unauth);
  ASSERT_EQ(Cambium({"branch", "unprotect", "guarded"}).code, 0);
  for (const char* b : {"scoped", "guarded"}) EXPECT_EQ(Cambium({"branch", "delete", b}).code, 0);
  if (!main_was_protected) {
    EXPECT_EQ(Cambium({"branch", "unprotect", "main"}).code, 0);
  }
}

TEST_F(CliTest, SupervisorRestartsCrashedDaemonsOnTheirPorts) {
  Result up = Cambium({"up"});
  ASSERT_EQ(up.code, 0) << up.err;
  const std::string main = up.out["connection_string"].get<std::string>();
  Psql(main, "CREATE TABLE supervised (id int)");
  Psql(main, "INSERT INTO supervised VALUES (1)");
  const json before = Cambium({"status"}).out;
  ASSERT_TRUE(before.contains("supervisor")) << before;
  ASSERT_TRUE(before["supervisor"]["running"].get<bool>()) << before;
  const json ps = before["pageserver"];
  const json sk = before["safekeepers"][1];
  ASSERT_TRUE(ps["running"].get<bool>() && sk["running"].get<bool>()) << before;
  kill(ps["pid"].get<int>(), SIGKILL);
  kill(sk["pid"].get<int>(), SIGKILL);

  json after;
  auto restarted = [&](const json& now, const json& old) {
    return now["running"].get<bool>() && now["pid"] != old["pid"];
  };
  for (int i = 0; i < 600; ++i) {
    after = Cambium({"status"}).out;
    if (after.is_object() && restarted(after["pageserver"], ps) &&
        restarted(after["safekeepers"][1], sk)) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  for (const auto& [now, old] :
       {std::pair{after["pageserver"], ps}, std::pair{after["safekeepers"][1], sk}}) {
    ASSERT_TRUE(restarted(now, old)) << after;
    EXPECT_EQ(now["address"], old["address"]) << now;
    EXPECT_GE(now["restarts"].get<int>(), 1) << now;
    EXPECT_FALSE(now["last_restart"].is_null()) << now;
    EXPECT_NE(now["last_exit"].get<std::string>().find("signal 9"), std::string::npos) << now;
  }
  EXPECT_EQ(after["safekeepers"][0]["restarts"], 0) << after;
  Result text = Cambium({"status"}, /*json_output=*/false);
  EXPECT_NE(text.text.find("supervisor"), std::string::npos) << text.text;
  EXPECT_NE(text.text.find("restarts 1"), std::string::npos) << text.text;

  // The endpoint was never restarted and still commits.
  Psql(main, "INSERT INTO supervised VALUES (2)");
  EXPECT_EQ(Psql(main, "SELECT count(*) FROM supervised"), "2");

  // A killed supervisor is restarted by `up`, which adopts the running daemons.
  const int supervisor = after["supervisor"]["pid"].get<int>();
  kill(supervisor, SIGKILL);
  Result again = Cambium({"up"});
  ASSERT_EQ(again.code, 0) << again.err;
  const json adopted = Cambium({"status"}).out;
  EXPECT_TRUE(adopted["supervisor"]["running"].get<bool>()) << adopted;
  EXPECT_NE(adopted["supervisor"]["pid"], supervisor) << adopted;
  EXPECT_EQ(adopted["pageserver"]["pid"], after["pageserver"]["pid"]) << adopted;
  EXPECT_EQ(adopted["pageserver"]["restarts"], after["pageserver"]["restarts"]) << adopted;

  // `down` stops the supervisor first: nothing comes back, nothing is left.
  ASSERT_EQ(Cambium({"down"}).code, 0);
  absl::SleepFor(absl::Seconds(1));  // a restart would come within 0.2 s
  EXPECT_FALSE(ProcessWith(dir_->path() + "/")) << "a process of the stack survived down";
  EXPECT_FALSE(ProcessWith("supervise --data-dir " + dir_->path()));
  const json down = Cambium({"status"}).out;
  EXPECT_FALSE(down["supervisor"]["running"].get<bool>()) << down;
  EXPECT_FALSE(down["pageserver"]["running"].get<bool>()) << down;

  // A recorded port that another program binds while the stack is down, not yet
  // listening (so `up` cannot tell it is taken; the race with a parallel test that
  // picked the same free port): the safekeeper cannot serve its metrics there, and
  // `up` starts it again on new ports instead of failing. (The HTTP port: its
  // connections leave no TIME_WAIT that would keep the test from binding it.)
  const std::string old_url = down["safekeepers"][1]["metrics_url"].get<std::string>();
  int taken_port = 0;
  ASSERT_EQ(sscanf(old_url.c_str(), "http://127.0.0.1:%d/", &taken_port), 1) << old_url;
  const int thief = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(thief, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(taken_port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(thief, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
  Result moved = Cambium({"up"});
  close(thief);
  ASSERT_EQ(moved.code, 0) << moved.err;
  const json now = Cambium({"status"}).out;
  EXPECT_TRUE(now["safekeepers"][1]["running"].get<bool>()) << now;
  EXPECT_NE(now["safekeepers"][1]["metrics_url"], old_url) << now;
  EXPECT_EQ(
      Psql(moved.out["connection_string"].get<std::string>(), "SELECT count(*) FROM supervised"),
      "2");
  ASSERT_EQ(Cambium({"down"}).code, 0);
}

// Issue 9 (disk full, chaos seed 100): a postgres that exits by itself (killed, or
// giving up when crash recovery hits ENOSPC) is started again by the supervisor,
// on the same port, with nothing lost; a dead shim brings the whole endpoint back.
// An endpoint stopped with `endpoint stop` stays stopped.
TEST_F(CliTest, TheSupervisorRestartsACrashedEndpoint) {
  Result up = Cambium({"up"});
  ASSERT_EQ(up.code, 0) << up.err;
  const std::string main = up.out["connection_string"].get<std::string>();
  Psql(main, "CREATE TABLE endpoint_supervised (id int)");
  for (int i = 0; i < 10; ++i) {
    Psql(main, absl::StrFormat("INSERT INTO endpoint_supervised VALUES (%d)", i));
  }
  // Waits (bounded) until main runs with other pids than `old` and answers.
  auto back = [&](std::pair<int, int> old) {
    for (int i = 0; i < 1200; ++i) {
      auto now = EndpointPids("main");
      if (now.first > 0 && now.first != old.first && ProcessAlive(now.first) &&
          ProcessAlive(now.second) && Connects(main)) {
        return now;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    return std::pair<int, int>{0, 0};
  };
  // The supervisor's count of main's restarts, once it reaches `want` (the restart
  // is recorded when its command has exited, just after main is back).
  auto restarts = [&](int want) {
    int n = -1;
    for (int i = 0; i < 100 && n < want; ++i) {
      const json status = Cambium({"status"}).out;
      for (const auto& ep : status["endpoints"]) {
        if (ep["name"] == "main") n = ep.value("restarts", -1);
      }
      if (n < want) absl::SleepFor(absl::Milliseconds(100));
    }
    return n;
  };

  // The postmaster alone (its backends notice and exit): the shim stays.
  const std::pair<int, int> first = EndpointPids("main");
  ASSERT_GT(first.first, 0);
  kill(first.first, SIGKILL);
  const std::pair<int, int> second = back(first);
  ASSERT_GT(second.first, 0) << "main was not restarted after kill -9 of its postmaster";
  EXPECT_EQ(second.second, first.second) << "the live shim was replaced";
  EXPECT_EQ(Psql(main, "SELECT count(*) FROM endpoint_supervised"), "10");
  EXPECT_GE(restarts(1), 1);
  Psql(main, "INSERT INTO endpoint_supervised VALUES (10)");

  // Postgres and the shim: the whole endpoint comes back (taking over its writer).
  KillEndpoint("main");
  const std::pair<int, int> third = back(second);
  ASSERT_GT(third.first, 0) << "main was not restarted after kill -9 of postgres and the shim";
  EXPECT_NE(third.second, second.second);
  EXPECT_EQ(Psql(main, "SELECT count(*) FROM endpoint_supervised"), "11");
  EXPECT_GE(restarts(2), 2);
  Result text = Cambium({"endpoint", "list"}, /*json_output=*/false);
  EXPECT_NE(text.text.find("RESTARTS"), std::string::npos) << text.text;

  // `endpoint start` of the running endpoint answers with it (scripts may repeat it).
  Result again = Cambium({"endpoint", "start", "main"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out["pid"], third.first) << again.out;
  EXPECT_TRUE(again.out.value("already_running", false)) << again.out;

  // Stopped on purpose: not restarted.
  ASSERT_EQ(Cambium({"endpoint", "stop", "main"}).code, 0);
  absl::SleepFor(absl::Seconds(3));  // the supervisor looks every second
  EXPECT_EQ(EndpointPids("main").first, 0);
  EXPECT_FALSE(ProcessWith(dir_->Sub("endpoints/main/")));
  ASSERT_EQ(Cambium({"endpoint", "start", "main"}).code, 0);
}

// Issue 10 item 6: `endpoint start B --read-only --follow` is a read replica of B: a
// hot standby that keeps replaying B's new WAL as it commits (a row committed on B
// shows up within a bounded lag, reported by `endpoint list`), refuses writes, and
// is stopped when B is reset (B's history after its start is gone).
TEST_F(CliTest, AFollowerReplaysItsBranchAndIsStoppedByAReset) {
  ASSERT_EQ(Cambium({"up"}).code, 0);
  ASSERT_EQ(Cambium({"branch", "create", "lead"}).code, 0);
  Result lead = Cambium({"endpoint", "start", "lead"});
  ASSERT_EQ(lead.code, 0) << lead.err;
  const std::string primary = lead.out["connection_string"].get<std::string>();
  Psql(primary, "CREATE TABLE followed (id int)");
  Psql(primary, "INSERT INTO followed VALUES (1)");

  Result follower = Cambium({"endpoint", "start", "lead", "--read-only", "--follow"});
  ASSERT_EQ(follower.code, 0) << follower.err;
  EXPECT_TRUE(follower.out.value("follow", false)) << follower.out;
  const std::string name = follower.out["name"].get<std::string>();
  const std::string replica = follower.out["connection_string"].get<std::string>();
  EXPECT_EQ(Psql(replica, "SELECT count(*) FROM followed"), "1");

  // Committed on the primary after the follower started: replayed.
  Psql(primary, "INSERT INTO followed VALUES (2)");
  std::string seen;
  for (int i = 0; i < 600 && seen != "2"; ++i) {
    bool ok = false;
    seen = Psql(replica, "SELECT count(*) FROM followed", &ok);
    if (seen != "2") absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(seen, "2") << "the follower did not replay a commit of its branch within 60 s";
  bool wrote = true;
  Psql(replica, "INSERT INTO followed VALUES (3)", &wrote);
  EXPECT_FALSE(wrote) << "a follower accepted a write";

  // Its replay position and lag, behind the branch's exact head.
  json listed;
  for (const auto& ep : Cambium({"endpoint", "list"}).out) {
    if (ep["name"] == name) listed = ep;
  }
  ASSERT_TRUE(listed.is_object()) << name;
  EXPECT_TRUE(listed.value("follow", false)) << listed;
  EXPECT_TRUE(listed["replay_lsn"].is_string()) << listed;
  EXPECT_TRUE(listed["lag_bytes"].is_number()) << listed;

  // A reset replaces the history the follower replayed: it is stopped.
  Result reset = Cambium({"branch", "reset", "lead"});
  ASSERT_EQ(reset.code, 0) << reset.err;
  ASSERT_TRUE(reset.out["followers_stopped"].is_array()) << reset.out;
  EXPECT_EQ(reset.out["followers_stopped"].size(), 1u) << reset.out;
  for (const auto& ep : Cambium({"endpoint", "list"}).out) EXPECT_NE(ep["name"], name) << ep;
  EXPECT_FALSE(ProcessWith(dir_->Sub("endpoints/" + name + "/")));
  ASSERT_EQ(Cambium({"endpoint", "stop", "lead"}).code, 0);
  ASSERT_EQ(Cambium({"branch", "delete", "lead"}).code, 0);
}

// Issue 10 (part B, docs/security.md): nobody connects without a password; the
// read-only role cannot write in any way; a read-only endpoint is a hot standby that
// refuses even the superuser; a child branch's password does not open its parent;
// the data directory is private; no password reaches a log or a command line.
TEST_F(CliTest, CredentialsReadOnlyEnforcementAndAPrivateDataDir) {
  ASSERT_EQ(chmod(dir_->path().c_str(), 0755), 0);  // as someone else made it
  Result up = Cambium({"up"});
  ASSERT_EQ(up.code, 0) << up.err;
  struct stat st;
  ASSERT_EQ(stat(dir_->path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  for (const std::string& what : {dir_->path(), dir_->Sub("stack.json")}) {
    auto r = RunCommand({.argv = {"runuser", "-u", "nobody", "--", "cat", what}});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_NE(r->exit_code, 0) << "user nobody read " << what;
  }
  json main_ep;
  for (const auto& ep : up.out["endpoints"]) {
    if (ep["name"] == "main") main_ep = ep;
  }
  ASSERT_TRUE(main_ep.is_object()) << up.out;
  const std::string main = up.out["connection_string"].get<std::string>();
  const int port = main_ep["port"].get<int>();

  // Over TCP nobody gets in without the password: not the superuser (it has none),
  // not the tenant's roles.
  for (const char* user : {"postgres", "cambium_owner", "cambium_reader"}) {
    EXPECT_FALSE(
        Connects(absl::StrFormat("host=127.0.0.1 port=%d user=%s dbname=postgres", port, user)))
        << user;
    EXPECT_FALSE(Connects(absl::StrFormat(
        "host=127.0.0.1 port=%d user=%s password=wrong dbname=postgres", port, user)))
        << user;
  }
  EXPECT_EQ(Psql(main_ep["maintenance_connection_string"], "SELECT current_user"), "postgres");
  EXPECT_EQ(Psql(main,
                 "SELECT current_user || ' ' || rolsuper FROM pg_roles "
                 "WHERE rolname = current_user"),
            "cambium_owner false");
  Psql(main, "CREATE TABLE owned (id int); INSERT INTO owned VALUES (1)");

  // The read-only role reads and cannot write in any way.
  Result cs = Cambium({"connection-string", "main", "--read-only"});
  ASSERT_EQ(cs.code, 0) << cs.err;
  const std::string reader = cs.out["read_only_connection_string"].get<std::string>();
  EXPECT_EQ(cs.out["connection_string"], reader);
  EXPECT_EQ(reader.rfind("postgresql://cambium_reader:", 0), 0u) << reader;
  EXPECT_EQ(Psql(reader, "SELECT count(*) FROM owned"), "1");
  // What `SET default_transaction_read_only = off` does, for every statement of the
  // session: only the missing privileges stop these.
  const std::string off = "?options=-c%20default_transaction_read_only%3Doff";
  for (const char* write :
       {"INSERT INTO owned VALUES (2)", "UPDATE owned SET id = 3", "DELETE FROM owned",
        "TRUNCATE owned", "COPY owned FROM STDIN", "CREATE TABLE public.ro_probe (x int)",
        "CREATE TEMP TABLE ro_temp (x int)", "CREATE SCHEMA ro_schema", "SELECT lo_create(0)",
        "CREATE DATABASE ro_db", "CREATE ROLE ro_role", "ALTER TABLE owned ADD COLUMN y int",
        "DROP TABLE owned"}) {
    bool ok = true;
    Psql(reader + off, write, &ok);
    EXPECT_FALSE(ok) << "the read-only role ran: " << write;
  }
  bool rw_ok = true;
  Psql(reader, "BEGIN READ WRITE; CREATE TABLE ro_probe (x int); COMMIT", &rw_ok);
  EXPECT_FALSE(rw_ok);
  EXPECT_EQ(Psql(main, "SELECT count(*) FROM owned"), "1");

  // A read-only endpoint is a hot standby: even the superuser cannot write there.
  Result ro = Cambium({"endpoint", "start", "main", "--read-only"});
  ASSERT_EQ(ro.code, 0) << ro.err;
  const std::string su = ro.out["maintenance_connection_string"].get<std::string>();
  EXPECT_EQ(Psql(su, "SELECT pg_is_in_recovery()"), "t");
  for (const auto& [conn, write] :
       {std::pair{su, "BEGIN READ WRITE; CREATE TABLE ro_probe2 (x int); COMMIT"},
        std::pair{su + "&options=-c%20default_transaction_read_only%3Doff",
                  "INSERT INTO owned VALUES (5)"},
        std::pair{su + "&options=-c%20default_transaction_read_only%3Doff",
                  "CREATE TABLE ro_probe3 (x int)"}}) {
    bool ok = true;
    Psql(conn, write, &ok);
    EXPECT_FALSE(ok) << "the superuser wrote on a read-only endpoint: " << write;
  }
  // Its URL is the read-only role's, with main's read-only password.
  const std::string ro_url = ro.out["connection_string"].get<std::string>();
  EXPECT_EQ(ro_url.rfind("postgresql://cambium_reader:", 0), 0u) << ro_url;
  EXPECT_EQ(PasswordOf(ro_url), PasswordOf(reader));
  EXPECT_EQ(Psql(ro_url, "SELECT count(*) FROM owned"), "1");
  EXPECT_EQ(Cambium({"endpoint", "stop", ro.out["name"]}).code, 0);

  // Per-branch passwords: a child's do not open its parent, nor the parent's the child.
  ASSERT_EQ(Cambium({"branch", "create", "child-creds"}).code, 0);
  Result child = Cambium({"endpoint", "start", "child-creds"});
  ASSERT_EQ(child.code, 0) << child.err;
  const std::string child_url = child.out["connection_string"].get<std::string>();
  EXPECT_EQ(Psql(child_url, "SELECT count(*) FROM owned"), "1");
  const std::string main_pw = PasswordOf(main), child_pw = PasswordOf(child_url);
  ASSERT_NE(main_pw, "");
  EXPECT_NE(child_pw, main_pw);
  const int child_port = child.out["port"].get<int>();
  EXPECT_FALSE(Connects(
      absl::StrFormat("postgresql://cambium_owner:%s@127.0.0.1:%d/postgres", child_pw, port)));
  EXPECT_FALSE(Connects(
      absl::StrFormat("postgresql://cambium_owner:%s@127.0.0.1:%d/postgres", main_pw, child_port)));
  // A read-only endpoint of a branch that never ran read-write: the branch's own
  // read-only password, not its parent's.
  ASSERT_EQ(Cambium({"branch", "create", "never-started"}).code, 0);
  Result ro2 = Cambium({"endpoint", "start", "never-started", "--read-only"});
  ASSERT_EQ(ro2.code, 0) << ro2.err;
  const std::string ro2_url = ro2.out["connection_string"].get<std::string>();
  EXPECT_NE(PasswordOf(ro2_url), PasswordOf(reader));
  EXPECT_EQ(Psql(ro2_url, "SELECT count(*) FROM owned"), "1");
  EXPECT_FALSE(Connects(absl::StrFormat("postgresql://cambium_reader:%s@127.0.0.1:%d/postgres",
                                        PasswordOf(reader), ro2.out["port"].get<int>())));

  // No password in a command line or a log.
  for (const std::string& pw : {main_pw, child_pw, PasswordOf(reader)}) {
    EXPECT_FALSE(ProcessWith(pw));
    // Daemon, supervisor, shim and Postgres logs (not RocksDB's own WAL files, which
    // are the pageserver's store where the passwords are kept).
    std::vector<std::filesystem::directory_entry> logs;
    for (const char* sub : {"logs", "endpoints"}) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(dir_->Sub(sub))) {
        logs.push_back(e);
      }
    }
    for (const auto& entry : logs) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path());
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      EXPECT_EQ(text.find(pw), std::string::npos) << entry.path();
    }
  }
  EXPECT_EQ(Cambium({"endpoint", "stop", ro2.out["name"]}).code, 0);
  EXPECT_EQ(Cambium({"endpoint", "stop", "child-creds"}).code, 0);
}

}  // namespace
}  // namespace cambium
