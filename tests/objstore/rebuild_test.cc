// The pageserver's history in a real S3 service (Ceph's RADOS Gateway started by
// tools/object-store.sh on loopback) and `cambium pageserver rebuild` with a real
// Postgres: after the pageserver's data is deleted, every acknowledged commit and
// every branch comes back from the object store and the safekeepers
// (docs/pageserver.md "Remote history"). Skips when Ceph is not installed.
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/lsn.h"
#include "httplib.h"
#include "tests/cli/cli_fixture.h"
#include "tests/harness/object_store.h"

namespace cambium::testing {
namespace {

class RebuildTest : public CliStackTest {
 protected:
  static void SetUpTestSuite() {
    CliStackTest::SetUpTestSuite();
    const std::string rgw = dir_->Sub("rgw");
    rgw_guard_ = new ExitGuard(
        ExitGuard::Start(absl::StrFormat("CAMBIUM_OBJECT_STORE_DIR=%s %s stop --purge",
                                         ShellQuote(rgw), ShellQuote(ObjectStoreScript())))
            .value());
    auto instance = StartObjectStore(rgw, "cambium-rebuild");
    ASSERT_TRUE(instance.ok()) << instance.status();
    if (!instance->available) GTEST_SKIP() << "no Ceph: " << instance->why;
    url_ = instance->url;
    key_ = instance->access_key_id;
    secret_ = instance->secret_access_key;
    credentials_ = dir_->Sub("s3.credentials");
    std::ofstream(credentials_) << "AWS_ACCESS_KEY_ID=" << key_
                                << "\nAWS_SECRET_ACCESS_KEY=" << secret_ << "\n";
    ASSERT_EQ(chmod(credentials_.c_str(), 0600), 0);
    started_ = true;
  }

  static void TearDownTestSuite() {
    // The stack first (its pageserver uploads to the gateway), then the gateway, then
    // the directory both live in.
    if (started_) {
      (void)RunCommand({.argv = {CAMBIUM_CLI_BIN, "down", "--data-dir", dir_->path()}},
                       absl::Minutes(3));
      StopObjectStore(dir_->Sub("rgw"));
    }
    delete rgw_guard_;
    rgw_guard_ = nullptr;
    CliStackTest::TearDownTestSuite();
  }

  void SetUp() override {
    if (!started_) GTEST_SKIP() << "object store not started";
  }

  static int64_t Number(const std::string& conn, const std::string& sql) {
    int64_t n = -1;
    EXPECT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(Psql(conn, sql)), &n)) << sql;
    return n;
  }

  // cambium_safekeeper_archived_lsn of `timeline` at a safekeeper's /metrics; -1 if
  // absent.
  static double ArchivedLsnOn(const std::string& metrics_url, const std::string& timeline) {
    return SampleOn(metrics_url, "cambium_safekeeper_archived_lsn{",
                    "timeline=\"" + timeline + "\"");
  }

  // The first sample at `metrics_url` whose line starts with `prefix` and contains
  // `label`; -1 if there is none.
  static double SampleOn(const std::string& metrics_url, const std::string& prefix,
                         const std::string& label = "") {
    const size_t path = metrics_url.find('/', metrics_url.find("://") + 3);
    httplib::Client http(metrics_url.substr(0, path));
    auto res = http.Get(metrics_url.substr(path));
    EXPECT_TRUE(res && res->status == 200) << metrics_url;
    if (!res) return -1;
    for (absl::string_view line : absl::StrSplit(res->body, '\n')) {
      if (!absl::StartsWith(line, prefix) || !absl::StrContains(line, label)) continue;
      double v = -1;
      EXPECT_TRUE(absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &v)) << line;
      return v;
    }
    return -1;
  }

  static inline ExitGuard* rgw_guard_ = nullptr;
  static inline bool started_ = false;
  static inline std::string url_;
  static inline std::string credentials_;
  static inline std::string key_, secret_;
};

TEST_F(RebuildTest, ARebuiltPageserverKeepsEveryAcknowledgedCommitAndBranch) {
  // Without an object store there is nothing to rebuild from: refused, nothing deleted.
  Result up = Cambium({"up"});
  ASSERT_EQ(up.code, 0) << up.err;
  Result refused = Cambium({"pageserver", "rebuild"});
  EXPECT_NE(refused.code, 0);
  EXPECT_NE((refused.text + refused.err).find("no object store"), std::string::npos)
      << refused.text << refused.err;
  ASSERT_EQ(Cambium({"down"}).code, 0);

  up = Cambium({"up", "--object-store", url_, "--object-store-credentials", credentials_});
  ASSERT_EQ(up.code, 0) << up.err;
  const std::string main = up.out["connection_string"];
  Result status = Cambium({"status"});
  EXPECT_EQ(status.out["object_store"], url_);
  bool doctor_checked = false;
  const Result doctor = Cambium({"doctor"});
  for (const auto& check : doctor.out["checks"]) {
    if (check["name"] != "object_store") continue;
    doctor_checked = true;
    EXPECT_EQ(check["status"], "ok") << check;
  }
  EXPECT_TRUE(doctor_checked);
  EXPECT_TRUE(status.out["remote_lag_bytes"].contains("main")) << status.text;
  Psql(main,
       "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 100000) g;"
       "CREATE TABLE acks(id int PRIMARY KEY)");
  Result before = Cambium({"branch", "create", "before", "--parent", "main"});
  ASSERT_EQ(before.code, 0) << before.err;
  const std::string before_sum = Psql(main, "SELECT sum(length(v)) + sum(id) FROM t");
  // Another stack on the same prefix would adopt this history (its empty pageserver
  // restores it): refused before anything starts.
  {
    auto other = RunCommand(
        {.argv = {CAMBIUM_CLI_BIN, "up", "--json", "--data-dir", dir_->Sub("other-stack"),
                  "--object-store", url_, "--object-store-credentials", credentials_}},
        absl::Minutes(2));
    ASSERT_TRUE(other.ok()) << other.status();
    EXPECT_EQ(other->exit_code, 1) << other->out << other->err;
    EXPECT_NE(other->err.find("already holds a pageserver's history"), std::string::npos)
        << other->err;
    EXPECT_FALSE(ProcessWith(dir_->Sub("other-stack")));
    std::filesystem::remove_all(dir_->Sub("other-stack"));
  }
  // Commits acknowledged one by one, some of them after the last upload.
  for (int i = 1; i <= 300; ++i) Psql(main, absl::StrFormat("INSERT INTO acks VALUES (%d)", i));
  Psql(main, "UPDATE t SET v = 'changed' WHERE id <= 1000");

  Result rebuilt = Cambium({"pageserver", "rebuild"});
  ASSERT_EQ(rebuilt.code, 0) << rebuilt.err << rebuilt.text;
  EXPECT_EQ(rebuilt.out["rebuilt"], true);
  EXPECT_TRUE(absl::StartsWith(rebuilt.out.value("restored_index", ""), "index/")) << rebuilt.text;
  EXPECT_EQ(rebuilt.out["connection_string"], main);  // same port and credentials

  EXPECT_EQ(Number(main, "SELECT count(*) FROM acks"), 300);
  EXPECT_EQ(Number(main, "SELECT count(*) FROM t WHERE v = 'changed'"), 1000);
  Result b = Cambium({"endpoint", "start", "before"});
  ASSERT_EQ(b.code, 0) << b.err << b.text;
  const std::string before_url = b.out["connection_string"];
  EXPECT_EQ(Psql(before_url, "SELECT sum(length(v)) + sum(id) FROM t"), before_sum);
  EXPECT_EQ(Number(before_url, "SELECT count(*) FROM t WHERE v = 'changed'"), 0);
  // The stack goes on: writes, a new branch, and a second rebuild.
  Psql(main, "INSERT INTO acks VALUES (301)");
  ASSERT_EQ(Cambium({"branch", "create", "after", "--parent", "main"}).code, 0);
  rebuilt = Cambium({"pageserver", "rebuild"});
  ASSERT_EQ(rebuilt.code, 0) << rebuilt.err << rebuilt.text;
  EXPECT_EQ(Number(main, "SELECT count(*) FROM acks"), 301);
  EXPECT_TRUE(HasBranch("after"));
}

// Runs on the stack the first case leaves up with its object store.
TEST_F(RebuildTest, AnObjectStoreOutageUnderLoadLosesNothingAndTheLagRecovers) {
  Result status = Cambium({"status"});
  ASSERT_EQ(status.out["object_store"], url_) << "needs the first case's stack";
  Result cs = Cambium({"connection-string", "main"});
  ASSERT_EQ(cs.code, 0) << cs.err;
  const std::string main = cs.out["connection_string"];
  Psql(main, "CREATE TABLE outage(id int PRIMARY KEY)");
  std::ifstream pid_file(dir_->Sub("rgw/run/rgw.pid"));
  int rgw = 0;
  pid_file >> rgw;
  ASSERT_GT(rgw, 0);
  auto lag = [&] {
    Result s = Cambium({"status"});
    return s.out["remote_lag_bytes"].is_object() ? s.out["remote_lag_bytes"].value("main", -1)
                                                 : int64_t{-1};
  };
  // The gateway stops answering (its connections stay open: uploads stall, as with a
  // slow or partitioned service) for 30 s while commits go on.
  ASSERT_EQ(kill(rgw, SIGSTOP), 0);
  int acked = 0;
  const absl::Time until = absl::Now() + absl::Seconds(30);
  while (absl::Now() < until) {
    bool ok = false;
    Psql(main, absl::StrFormat("INSERT INTO outage VALUES (%d)", acked + 1), &ok);
    if (!ok) break;
    ++acked;
  }
  // Tens of MB of WAL no upload holds: the safekeepers must keep all of it, however
  // much the pageserver archived (they trim whole 16 MB segments).
  Psql(main,
       "CREATE TABLE bulk AS SELECT g AS id, repeat(md5(g::text), 16) AS v "
       "FROM generate_series(1, 100000) g");
  absl::SleepFor(absl::Seconds(3));  // the archive reports once a second
  Result show = Cambium({"branch", "show", "main"});
  const Lsn uploaded = Lsn::Parse(show.out.value("uploaded_lsn", "")).value_or(Lsn());
  const Lsn archived = Lsn::Parse(show.out.value("last_record_lsn", "")).value_or(Lsn());
  EXPECT_GT(archived.value(), uploaded.value() + (32u << 20)) << show.text;
  const Result stack = Cambium({"status"});
  ASSERT_EQ(stack.out["safekeepers"].size(), 3u) << stack.text;
  for (const auto& sk : stack.out["safekeepers"]) {
    const double told = ArchivedLsnOn(sk["metrics_url"], show.out["timeline_id"]);
    EXPECT_GE(told, 0) << sk["name"] << " shows no archived LSN for main";
    EXPECT_LE(told, static_cast<double>(uploaded.value()))
        << sk["name"] << " was told WAL is archived that no upload holds";
  }
  const int64_t lag_during = lag();
  ASSERT_EQ(kill(rgw, SIGCONT), 0);
  EXPECT_GT(acked, 0);
  EXPECT_GT(lag_during, 0) << "the outage did not hold uploads back";
  // Uploads catch up.
  int64_t lag_after = lag_during;
  for (absl::Time deadline = absl::Now() + absl::Minutes(4);
       absl::Now() < deadline && (lag_after < 0 || lag_after >= lag_during);) {
    absl::SleepFor(absl::Seconds(2));
    lag_after = lag();
  }
  EXPECT_GE(lag_after, 0);
  EXPECT_LT(lag_after, lag_during);
  // And nothing acknowledged during the outage depends on the lost disk.
  Result rebuilt = Cambium({"pageserver", "rebuild"});
  ASSERT_EQ(rebuilt.code, 0) << rebuilt.err << rebuilt.text;
  EXPECT_EQ(Number(main, "SELECT count(*) FROM outage"), acked);
}

// Issue 14: backpressure. While the object store does not answer, the safekeepers
// keep every byte of WAL no upload covers; past --max-unarchived-wal (16 MiB here,
// from D/safekeeper.toml) they refuse new WAL, so a bulk write waits instead of
// filling their disks: every safekeeper counts refusals and the write does not
// commit. Once the store answers, uploads catch up, the write commits by itself
// and nothing is lost.
TEST_F(RebuildTest, PastTheUnarchivedBoundCommitsWaitForTheObjectStore) {
  Result status = Cambium({"status"});
  ASSERT_EQ(status.out["object_store"], url_) << "needs the first case's stack";
  const std::string config = dir_->Sub("safekeeper.toml");
  std::ofstream(config) << "max-unarchived-wal = " << (16 << 20) << "\n";
  // Daemon settings are read when the stack starts.
  auto restart = [&] {
    Result down = Cambium({"down"});
    EXPECT_EQ(down.code, 0) << down.err;
    Result up = Cambium({"up"});
    EXPECT_EQ(up.code, 0) << up.err;
    return down.code == 0 && up.code == 0;
  };
  absl::Cleanup restore = [&] {
    std::filesystem::remove(config);
    restart();
  };
  ASSERT_TRUE(restart());
  status = Cambium({"status"});
  ASSERT_EQ(status.out["safekeepers"].size(), 3u) << status.text;
  ASSERT_TRUE(ProcessWith("--config " + config)) << "no safekeeper was given " << config;
  Result cs = Cambium({"connection-string", "main"});
  ASSERT_EQ(cs.code, 0) << cs.err;
  const std::string main = cs.out["connection_string"];
  std::ifstream pid_file(dir_->Sub("rgw/run/rgw.pid"));
  int rgw = 0;
  pid_file >> rgw;
  ASSERT_GT(rgw, 0);
  auto refusals = [&](const nlohmann::json& sk) {
    return SampleOn(sk["metrics_url"], "cambium_safekeeper_wal_backpressure_refusals_total");
  };
  ASSERT_EQ(kill(rgw, SIGSTOP), 0);
  absl::Cleanup resume = [rgw] { kill(rgw, SIGCONT); };
  std::atomic<bool> done{false};
  bool ok = false;
  std::thread writer([&] {
    Psql(main,
         "CREATE TABLE pressed AS SELECT g AS id, repeat(md5(g::text), 16) AS v "
         "FROM generate_series(1, 100000) g",
         &ok);
    done = true;
  });
  bool all_refused = false;
  for (absl::Time deadline = absl::Now() + absl::Minutes(2);
       !all_refused && !done && absl::Now() < deadline;) {
    absl::SleepFor(absl::Seconds(1));
    all_refused = true;
    for (const auto& sk : status.out["safekeepers"]) all_refused &= refusals(sk) > 0;
  }
  EXPECT_TRUE(all_refused) << "not every safekeeper refused WAL past the bound";
  const std::string timeline = Cambium({"branch", "show", "main"}).out.value("timeline_id", "");
  int backpressured = 0;
  for (const auto& sk : status.out["safekeepers"]) {
    backpressured += SampleOn(sk["metrics_url"], "cambium_safekeeper_wal_backpressure{",
                              "timeline=\"" + timeline + "\"") == 1;
  }
  EXPECT_GE(backpressured, 2) << "cambium_safekeeper_wal_backpressure does not show main waiting";
  // And `cambium status` names them under main's endpoint.
  Result waiting = Cambium({"status"});
  nlohmann::json main_ep;
  for (const auto& ep : waiting.out["endpoints"]) {
    if (ep["name"] == "main") main_ep = ep;
  }
  ASSERT_TRUE(main_ep.contains("wal_backpressure")) << waiting.out;
  EXPECT_GE(main_ep["wal_backpressure"].size(), 2u) << main_ep;
  EXPECT_NE(Cambium({"status"}, /*json_output=*/false).text.find("commits wait: "),
            std::string::npos);
  absl::SleepFor(absl::Seconds(3));
  EXPECT_FALSE(done) << "the write committed while the bound held its WAL back";
  ASSERT_EQ(kill(rgw, SIGCONT), 0);
  for (absl::Time deadline = absl::Now() + absl::Minutes(4); !done && absl::Now() < deadline;) {
    absl::SleepFor(absl::Seconds(1));
  }
  EXPECT_TRUE(done) << "the write did not complete after the object store came back";
  writer.join();  // psql gives up by itself after 5 minutes
  EXPECT_TRUE(ok);
  EXPECT_EQ(Number(main, "SELECT count(*) FROM pressed"), 100000);
  for (const auto& ep : Cambium({"status"}).out["endpoints"]) {
    if (ep["name"] != "main") continue;
    EXPECT_EQ(ep["wal_backpressure"], nlohmann::json::array()) << ep;
  }
}

// s3cmd against the gateway, in the bucket of url_.
TEST_F(RebuildTest, ADamagedUploadFailsTheRebuildAndKeepsTheOldData) {
  Result cs = Cambium({"connection-string", "main"});
  ASSERT_EQ(cs.code, 0) << cs.err;
  const std::string main = cs.out["connection_string"];
  Psql(main, "CREATE TABLE kept AS SELECT 42 AS x");
  ASSERT_EQ(Cambium({"down"}).code, 0);  // no upload after the damage below
  // s3://BUCKET/PREFIX?endpoint=http://HOST:PORT&...
  const std::string bucket_prefix = url_.substr(5, url_.find('?') - 5);
  const size_t at = url_.find("endpoint=http://") + 16;
  const std::string host = url_.substr(at, url_.find('&', at) - at);
  auto s3cmd = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"s3cmd",    "--host=" + host,       "--host-bucket=",
                                     "--no-ssl", "--access_key=" + key_, "--secret_key=" + secret_};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = RunCommand({.argv = argv}, absl::Minutes(1));
    EXPECT_TRUE(r.ok() && r->exit_code == 0) << (r.ok() ? r->err : r.status().ToString());
    return r.ok() ? r->out : "";
  };
  // The newest index: the last line of the listing ("DATE TIME SIZE s3://...").
  const std::string listing = s3cmd({"ls", "s3://" + bucket_prefix + "/index/"});
  std::vector<std::string> lines = absl::StrSplit(listing, '\n', absl::SkipEmpty());
  ASSERT_FALSE(lines.empty()) << listing;
  const std::string newest = lines.back().substr(lines.back().find("s3://"));
  const std::string garbage = dir_->Sub("garbage");
  std::ofstream(garbage) << "not an index";
  s3cmd({"put", garbage, newest});

  Result rebuilt = Cambium({"pageserver", "rebuild"});
  EXPECT_NE(rebuilt.code, 0);
  EXPECT_NE(rebuilt.err.find("pageserver.before-rebuild"), std::string::npos) << rebuilt.err;
  EXPECT_TRUE(std::filesystem::exists(dir_->Sub("pageserver.before-rebuild")));
  // The operator returns to the old data; nothing was lost.
  std::filesystem::rename(dir_->Sub("pageserver.before-rebuild"), dir_->Sub("pageserver"));
  Result up = Cambium({"up"});
  ASSERT_EQ(up.code, 0) << up.err << up.text;
  EXPECT_EQ(Number(main, "SELECT x FROM kept"), 42);
}

}  // namespace
}  // namespace cambium::testing
