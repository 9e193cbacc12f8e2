#include "metrics/registry.h"

#include <cstdlib>

#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "metrics/process_metrics.h"
#include "tests/harness/promtool.h"

namespace cambium::metrics {
namespace {

TEST(Registry, ExposesACounterAndAGaugeInTextFormat) {
  Registry r;
  Family<Counter>* c = Must(r.AddCounter("cambium_test_requests_total", "Requests served."));
  Family<Gauge>* g = Must(r.AddGauge("cambium_test_queue_bytes", "Bytes queued.", {"tenant"}));
  c->Get().Increment();
  c->Get().Increment(41);
  g->WithLabels({"b"}).Set(2.5);
  g->WithLabels({"a"}).Add(-3);
  EXPECT_EQ(r.Exposition(),
            "# HELP cambium_test_queue_bytes Bytes queued.\n"
            "# TYPE cambium_test_queue_bytes gauge\n"
            "cambium_test_queue_bytes{tenant=\"a\"} -3\n"
            "cambium_test_queue_bytes{tenant=\"b\"} 2.5\n"
            "# HELP cambium_test_requests_total Requests served.\n"
            "# TYPE cambium_test_requests_total counter\n"
            "cambium_test_requests_total 42\n");
}

TEST(Registry, ExposesAHistogramWithLabelsCumulatively) {
  Registry r;
  Family<Histogram>* h = Must(r.AddHistogram("cambium_test_latency_seconds", "Latency.",
                                             {0.001, 0.01, 0.1}, {"tenant", "timeline"}));
  Histogram& s = h->WithLabels({"t1", "tl1"});
  s.Observe(0.0005);
  s.Observe(0.001);  // le is inclusive
  s.Observe(0.05);
  s.Observe(3);
  const std::string sum = FormatValue(0.0005 + 0.001 + 0.05 + 3);
  EXPECT_EQ(r.Exposition(),
            "# HELP cambium_test_latency_seconds Latency.\n"
            "# TYPE cambium_test_latency_seconds histogram\n"
            "cambium_test_latency_seconds_bucket{tenant=\"t1\",timeline=\"tl1\",le=\"0.001\"} 2\n"
            "cambium_test_latency_seconds_bucket{tenant=\"t1\",timeline=\"tl1\",le=\"0.01\"} 2\n"
            "cambium_test_latency_seconds_bucket{tenant=\"t1\",timeline=\"tl1\",le=\"0.1\"} 3\n"
            "cambium_test_latency_seconds_bucket{tenant=\"t1\",timeline=\"tl1\",le=\"+Inf\"} 4\n"
            "cambium_test_latency_seconds_sum{tenant=\"t1\",timeline=\"tl1\"} " +
                sum +
                "\n"
                "cambium_test_latency_seconds_count{tenant=\"t1\",timeline=\"tl1\"} 4\n");
}

TEST(Registry, UnlabelledHistogramIsExposedAtZeroBeforeAnyObservation) {
  Registry r;
  Must(r.AddHistogram("cambium_test_seconds", "Help.", {1}));
  EXPECT_EQ(r.Exposition(),
            "# HELP cambium_test_seconds Help.\n"
            "# TYPE cambium_test_seconds histogram\n"
            "cambium_test_seconds_bucket{le=\"1\"} 0\n"
            "cambium_test_seconds_bucket{le=\"+Inf\"} 0\n"
            "cambium_test_seconds_sum 0\n"
            "cambium_test_seconds_count 0\n");
}

TEST(Registry, EscapesLabelValuesAndHelp) {
  Registry r;
  Family<Gauge>* g = Must(r.AddGauge("cambium_test_g", "Line one\nback\\slash \"quoted\"", {"v"}));
  g->WithLabels({"a\\b\"c\nd"}).Set(1);
  EXPECT_EQ(r.Exposition(),
            "# HELP cambium_test_g Line one\\nback\\\\slash \"quoted\"\n"
            "# TYPE cambium_test_g gauge\n"
            "cambium_test_g{v=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(Registry, FamiliesWithoutSamplesAreLeftOut) {
  Registry r;
  Must(r.AddCounter("cambium_test_ops_total", "Ops.", {"op"}));
  EXPECT_EQ(r.Exposition(), "");
}

TEST(Registry, FormatsSpecialAndFractionalValues) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(123456789), "123456789");
  EXPECT_EQ(FormatValue(100000), "100000");
  EXPECT_EQ(FormatValue(-3), "-3");
  EXPECT_EQ(FormatValue(1e22), "1e+22");
  EXPECT_EQ(FormatValue(0.00005), "5e-05");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
}

TEST(Registry, CounterAddsFractionsAndIgnoresNegativeAmounts) {
  Counter c;
  c.Increment(2);
  c.Add(0.5);
  c.Add(-7);
  c.Add(3);
  EXPECT_DOUBLE_EQ(c.Value(), 5.5);
}

TEST(Registry, RejectsInvalidNames) {
  Registry r;
  EXPECT_EQ(r.AddCounter("1abc_total", "x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.AddCounter("a-b_total", "x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.AddCounter("", "x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.AddGauge("ok", "x", {"__reserved"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.AddGauge("ok", "x", {"a:b"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.AddGauge("ok", "x", {"a", "a"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.AddHistogram("h", "x", {1}, {"le"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.AddHistogram("h", "x", {2, 1}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.AddHistogram("h", "x", {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(r.AddCounter("ns:sub_name_total", "x").ok());
}

TEST(Registry, RegisteringTheSameFamilyAgainReturnsIt) {
  Registry r;
  Family<Counter>* a = Must(r.AddCounter("cambium_test_total", "x", {"op"}));
  EXPECT_EQ(Must(r.AddCounter("cambium_test_total", "x", {"op"})), a);
  EXPECT_EQ(r.AddCounter("cambium_test_total", "other help", {"op"}).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(r.AddGauge("cambium_test_total", "x", {"op"}).status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST(Registry, CallbacksReportAtScrapeTimeUntilTheirHandleGoes) {
  Registry r;
  double value = 7;
  CallbackHandle h = Must(r.AddCallback(
      MetricType::kGauge, "cambium_test_lsn", "LSN.", {"timeline"}, [&](std::vector<Sample>* out) {
        out->push_back({.label_values = {"b"}, .value = value});
        out->push_back({.label_values = {"a"}, .value = 1});
        out->push_back({.label_values = {"x", "too many"}, .value = 1});  // dropped
      }));
  // A second instance of the same component: equal labels add up.
  CallbackHandle h2 = Must(r.AddCallback(
      MetricType::kGauge, "cambium_test_lsn", "LSN.", {"timeline"},
      [](std::vector<Sample>* out) { out->push_back({.label_values = {"a"}, .value = 2}); }));
  value = 8;
  EXPECT_EQ(r.Exposition(),
            "# HELP cambium_test_lsn LSN.\n"
            "# TYPE cambium_test_lsn gauge\n"
            "cambium_test_lsn{timeline=\"a\"} 3\n"
            "cambium_test_lsn{timeline=\"b\"} 8\n");
  h.Reset();
  h2 = CallbackHandle();
  EXPECT_EQ(r.Exposition(), "");
}

TEST(Registry, ConcurrentUpdatesAreAllCounted) {
  Registry r;
  Counter& c = Must(r.AddCounter("cambium_test_total", "x"))->Get();
  Histogram& h = Must(r.AddHistogram("cambium_test_seconds", "x", LatencyBuckets()))->Get();
  Family<Gauge>* g = Must(r.AddGauge("cambium_test_g", "x", {"thread"}));
  constexpr int kThreads = 4, kIterations = 100000;
  std::vector<std::thread> threads;
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    while (!done) EXPECT_FALSE(r.Exposition().empty());
  });
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Gauge& mine = g->WithLabels({std::to_string(t)});
      for (int i = 0; i < kIterations; ++i) {
        c.Increment();
        h.Observe(0.001);
        mine.Add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  done = true;
  scraper.join();
  EXPECT_EQ(c.Value(), kThreads * kIterations);
  const Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.cumulative.back(), static_cast<uint64_t>(kThreads * kIterations));
  EXPECT_NEAR(s.sum, kThreads * kIterations * 0.001, 1e-6);
  EXPECT_TRUE(absl::StrContains(r.Exposition(), "cambium_test_g{thread=\"3\"} 100000\n"));
}

TEST(ProcessMetrics, AreReadFromProc) {
  auto s = ReadProcessStats();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_GT(s->resident_bytes, 0);
  EXPECT_GT(s->virtual_bytes, s->resident_bytes);
  EXPECT_GT(s->open_fds, 2);
  EXPECT_GT(s->max_fds, s->open_fds);
  const double now = absl::ToUnixSeconds(absl::Now());
  EXPECT_LE(s->start_time_seconds, now + 1);
  EXPECT_GT(s->start_time_seconds, now - 3600);
}

TEST(ProcessMetrics, DefaultRegistryHasThemAndTheBuildInfo) {
  const std::string text = DefaultRegistry().Exposition();
  for (const char* name :
       {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
        "process_virtual_memory_bytes ", "process_open_fds ", "process_max_fds ",
        "process_start_time_seconds ", "cambium_build_info{version=\"" CAMBIUM_VERSION "\"} 1\n"}) {
    EXPECT_TRUE(absl::StrContains(text, name)) << name << "\n" << text;
  }
  EXPECT_EQ(CambiumVersion(), "0.1.0");
}

// A body like a daemon's: process metrics, a labelled histogram, callbacks, escaping.
TEST(ProcessMetrics, ReportTheSupervisorsRestartCountWhenItSetOne) {
  {
    Registry r;
    unsetenv(kRestartsEnv);
    ASSERT_TRUE(AddProcessMetrics(r).ok());
    EXPECT_EQ(r.Exposition().find("cambium_supervisor_restarts"), std::string::npos);
  }
  Registry r;
  setenv(kRestartsEnv, "3", 1);
  ASSERT_TRUE(AddProcessMetrics(r).ok());
  unsetenv(kRestartsEnv);
  EXPECT_NE(r.Exposition().find("\ncambium_supervisor_restarts 3\n"), std::string::npos)
      << r.Exposition();
}

TEST(Registry, ExpositionPassesPromtool) {
  if (!testing::HavePromtool()) GTEST_SKIP() << "promtool is not installed";
  Registry r;
  ASSERT_TRUE(AddProcessMetrics(r).ok());
  Must(r.AddCounter("cambium_test_pages_served_total", "Pages."))->Get().Increment(3);
  Family<Histogram>* h = Must(r.AddHistogram("cambium_test_getpages_seconds", "GetPages latency.",
                                             LatencyBuckets(), {"tenant", "timeline"}));
  h->WithLabels({"0123", "abcd"}).Observe(0.002);
  h->WithLabels({"0123", "ef01"}).Observe(20);
  Must(r.AddGauge("cambium_test_info", "Odd \\ help\nwith a newline.", {"v"}))
      ->WithLabels({"quote\" backslash\\ newline\n"})
      .Set(1);
  CallbackHandle cb = Must(r.AddCallback(
      MetricType::kCounter, "cambium_test_hits_total", "Hits.", {"op"},
      [](std::vector<Sample>* out) { out->push_back({.label_values = {"read"}, .value = 1.5}); }));
  const std::string text = r.Exposition();
  absl::Status checked = testing::PromtoolCheckMetrics(text);
  EXPECT_TRUE(checked.ok()) << checked << "\n" << text;
}

}  // namespace
}  // namespace cambium::metrics
