// Every daemon's HTTP endpoints on a real stack (issue 13): a pageserver, three
// safekeepers and a shim under Postgres, each with --http-listen. Each /metrics body
// passes `promtool check metrics`, carries the daemon's own metrics (with values
// the workload moved), /healthz and /readyz answer 200, and a real Prometheus
// scraping all five sees every target up.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/proto_convert.h"
#include "common/subprocess.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/harness/net.h"
#include "tests/harness/promtool.h"
#include "tests/harness/stack.h"
#include "tests/harness/temp_dir.h"

namespace cambium {
namespace {

using testing::Endpoint;
using testing::TestStack;

struct Target {
  std::string job;      // Prometheus job: pageserver, safekeeper or shim
  std::string address;  // 127.0.0.1:PORT
  std::string log;      // the daemon's log (it must name its HTTP address)
};

httplib::Result HttpGet(const std::string& address, const std::string& path) {
  const size_t colon = address.rfind(':');
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(address.substr(colon + 1), &port)) << address;
  httplib::Client client(address.substr(0, colon), port);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  return client.Get(path);
}

// Polls /readyz until it answers 200 (the daemon's readiness is set just after the
// harness sees it listening or mounted).
::testing::AssertionResult BecomesReady(const std::string& address) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  std::string last = "no answer";
  while (absl::Now() < deadline) {
    auto r = HttpGet(address, "/readyz");
    if (r && r->status == 200) return ::testing::AssertionSuccess();
    if (r) last = absl::StrFormat("%d %s", r->status, r->body);
    absl::SleepFor(absl::Milliseconds(50));
  }
  return ::testing::AssertionFailure() << address << "/readyz: " << last;
}

int SampleLines(const std::string& body) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (!line.empty() && line[0] != '#') ++n;
  }
  return n;
}

// The value of the sample `series` (name and labels exactly as exposed); -1 if absent.
double Value(const std::string& body, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (!absl::StartsWith(line, series + " ")) continue;
    double v = 0;
    if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
  }
  return -1;
}

std::string PrometheusConfig(const std::vector<Target>& targets) {
  std::string config =
      "global:\n"
      "  scrape_interval: 1s\n"
      "  scrape_timeout: 1s\n"
      "scrape_configs:\n";
  for (const char* job : {"pageserver", "safekeeper", "shim"}) {
    absl::StrAppend(&config, "  - job_name: ", job, "\n    static_configs:\n      - targets: [");
    bool first = true;
    for (const Target& t : targets) {
      if (t.job != job) continue;
      absl::StrAppend(&config, first ? "" : ", ", "'", t.address, "'");
      first = false;
    }
    absl::StrAppend(&config, "]\n");
  }
  return config;
}

// Runs a real Prometheus scraping `targets` every second and waits until every one
// of them is up == 1. The Prometheus process is killed when this returns, whatever
// happened (Subprocess's destructor; die_with_parent if the test itself is killed).
::testing::AssertionResult PrometheusSeesAllUp(const std::vector<Target>& targets) {
  auto dir = testing::TempDir::Create("cambium-prometheus-");
  if (!dir.ok()) return ::testing::AssertionFailure() << dir.status();
  absl::Status written = WriteFileAtomically(dir->Sub("prometheus.yml"), PrometheusConfig(targets));
  if (!written.ok()) return ::testing::AssertionFailure() << written;
  auto port = testing::FreePort();
  if (!port.ok()) return ::testing::AssertionFailure() << port.status();
  const std::string web = absl::StrFormat("127.0.0.1:%d", *port);
  auto prometheus = Subprocess::Start(
      {.argv = {testing::kPrometheus, "--config.file=" + dir->Sub("prometheus.yml"),
                "--storage.tsdb.path=" + dir->Sub("data"), "--web.listen-address=" + web},
       .stdout_file = dir->Sub("prometheus.log"),
       .stderr_file = dir->Sub("prometheus.log"),
       .die_with_parent = true});
  if (!prometheus.ok()) return ::testing::AssertionFailure() << prometheus.status();
  const absl::Time deadline = absl::Now() + absl::Seconds(90);
  std::string last = "no answer";
  while (absl::Now() < deadline) {
    if (!(*prometheus)->running()) break;
    absl::SleepFor(absl::Milliseconds(500));
    auto r = HttpGet(web, "/api/v1/query?query=up");
    if (!r || r->status != 200) continue;
    last = r->body;
    nlohmann::json j = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || j["status"] != "success") continue;
    const nlohmann::json& result = j["data"]["result"];
    const bool all_up = result.size() == targets.size() &&
                        std::all_of(result.begin(), result.end(), [](const nlohmann::json& s) {
                          return s["value"].size() == 2 && s["value"][1] == "1";
                        });
    if (all_up) return ::testing::AssertionSuccess();
  }
  auto targets_state = HttpGet(web, "/api/v1/targets");
  return ::testing::AssertionFailure()
         << "Prometheus did not see every target up; last `up`: " << last
         << "\ntargets: " << (targets_state ? targets_state->body : "no answer") << "\nlog:\n"
         << FileTail(dir->Sub("prometheus.log"), 3000);
}

TEST(MetricsStack, EveryDaemonServesMetricsThatPrometheusScrapes) {
  if (!testing::HavePromtool() || access(testing::kPrometheus, X_OK) != 0) {
    GTEST_SKIP() << "promtool or prometheus is not installed (Debian package prometheus)";
  }
  auto stack = TestStack::Create({.http = true});
  ASSERT_TRUE(stack.ok()) << stack.status();
  TestStack& s = **stack;
  auto ep = s.StartEndpoint("main", {.http = true});
  ASSERT_TRUE(ep.ok()) << ep.status();
  // Reads (catalog pages), commits (WAL to the safekeepers) and a checkpoint (data
  // mutations to the pageserver) move the daemons' figures.
  auto out = (*ep)->pg().Sql(
      "CREATE TABLE m AS SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 20000) g; "
      "CHECKPOINT; SELECT count(*) FROM m;");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, "20000");
  auto main = s.GetBranch("main");
  ASSERT_TRUE(main.ok()) << main.status();
  const std::string ids = absl::StrFormat("{tenant=\"%s\",timeline=\"%s\"}",
                                          IdHex(main->tenant_id()), IdHex(main->timeline_id()));

  std::vector<Target> targets = {
      {"pageserver", s.pageserver_http(), s.pageserver().LogTail(1 << 20)}};
  for (int i = 0; i < s.safekeeper_count(); ++i) {
    targets.push_back({"safekeeper", s.safekeeper_http(i), s.safekeeper(i).LogTail(1 << 20)});
  }
  targets.push_back({"shim", (*ep)->http_address(), (*ep)->ShimLogTail(1 << 20)});

  for (const Target& t : targets) {
    SCOPED_TRACE(t.job + " " + t.address);
    ASSERT_FALSE(t.address.empty());
    EXPECT_TRUE(absl::StrContains(t.log, "http_started http_listen=" + t.address));
    auto health = HttpGet(t.address, "/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    EXPECT_TRUE(BecomesReady(t.address));
    auto missing = HttpGet(t.address, "/debug");
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->status, 404);
    auto metrics = HttpGet(t.address, "/metrics");
    ASSERT_TRUE(metrics);
    ASSERT_EQ(metrics->status, 200);
    EXPECT_EQ(metrics->get_header_value("Content-Type"),
              "text/plain; version=0.0.4; charset=utf-8");
    const std::string& body = metrics->body;
    absl::Status checked = testing::PromtoolCheckMetrics(body);
    EXPECT_TRUE(checked.ok()) << checked << "\n" << body;
    EXPECT_GE(SampleLines(body), 10) << body;
    std::printf("%s %s: /metrics %zu bytes, %d samples\n", t.job.c_str(), t.address.c_str(),
                body.size(), SampleLines(body));
    EXPECT_GT(Value(body, "process_resident_memory_bytes"), 0) << body;
    EXPECT_EQ(Value(body, "cambium_build_info{version=\"0.1.0\"}"), 1) << body;
    if (t.job == "pageserver") {
      EXPECT_GT(Value(body, "cambium_pageserver_pages_served_total"), 0) << body;
      EXPECT_GT(Value(body, "cambium_pageserver_getpages_seconds_count"), 0) << body;
      EXPECT_GT(Value(body, "cambium_pageserver_mutations_total"), 0) << body;
      EXPECT_GT(Value(body, "cambium_pageserver_mutation_batch_seconds_count{sync=\"true\"}"), 0)
          << body;
      EXPECT_GE(Value(body, "cambium_pageserver_timelines"), 1) << body;
      const std::string branch =
          absl::StrFormat("{tenant=\"%s\",timeline=\"%s\",branch=\"main\"}",
                          IdHex(main->tenant_id()), IdHex(main->timeline_id()));
      EXPECT_GT(Value(body, "cambium_pageserver_branch_logical_size_bytes" + branch), 1 << 20)
          << body;
      // Sized by a listing first (a scrape never scans versions).
      EXPECT_GT(Value(body, "cambium_pageserver_branch_unique_size_bytes" + branch), 0) << body;
      EXPECT_GE(Value(body, "cambium_pageserver_rocksdb_sst_files_bytes{cf=\"blocks\"}"), 0)
          << body;
      EXPECT_EQ(Value(body, "cambium_pageserver_rocksdb_write_stopped"), 0) << body;
      EXPECT_GE(Value(body, "cambium_pageserver_wal_archive_lag_bytes" + ids), 0) << body;
    } else if (t.job == "safekeeper") {
      EXPECT_GT(Value(body, "cambium_safekeeper_wal_appended_bytes_total"), 0) << body;
      EXPECT_GT(Value(body, "cambium_safekeeper_wal_append_seconds_count"), 0) << body;
      EXPECT_GT(Value(body, "cambium_safekeeper_wal_fsyncs_total"), 0) << body;
      EXPECT_EQ(Value(body, "cambium_safekeeper_timelines"), 1) << body;
      EXPECT_GT(Value(body, "cambium_safekeeper_flush_lsn" + ids), 0) << body;
      EXPECT_GT(Value(body, "cambium_safekeeper_commit_lsn" + ids), 0) << body;
    } else {
      EXPECT_GT(Value(body, "cambium_shim_wal_quorum_flush_seconds_count"), 0) << body;
      EXPECT_GT(Value(body, "cambium_shim_wal_appended_bytes_total"), 0) << body;
      EXPECT_GT(Value(body, "cambium_shim_getpages_seconds_count"), 0) << body;
      EXPECT_GT(Value(body, "cambium_shim_block_cache_misses_total"), 0) << body;
      EXPECT_GT(Value(body, "cambium_shim_mutation_batches_sent_total"), 0) << body;
      EXPECT_GT(Value(body, "cambium_shim_fuse_operations_total{op=\"write\"}"), 0) << body;
      EXPECT_GE(Value(body, "cambium_shim_mutation_queue_bytes"), 0) << body;
    }
  }
  EXPECT_TRUE(PrometheusSeesAllUp(targets));
  EXPECT_TRUE((*ep)->Stop().ok());
}

}  // namespace
}  // namespace cambium
