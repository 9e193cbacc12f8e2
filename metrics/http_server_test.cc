#include "metrics/http_server.h"

#include <atomic>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/harness/promtool.h"

namespace cambium::metrics {
namespace {

httplib::Result Get(const HttpServer& server, const std::string& path) {
  httplib::Client client("127.0.0.1", server.port());
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  return client.Get(path);
}

TEST(HttpServer, ServesMetricsHealthAndReadiness) {
  Registry registry;
  Must(registry.AddCounter("cambium_test_requests_total", "Requests."))->Get().Increment(5);
  std::atomic<bool> ready{false};
  auto server = HttpServer::Start(
      "127.0.0.1:0",
      [&]() -> absl::Status {
        return ready ? absl::OkStatus() : absl::UnavailableError("repository still loading");
      },
      &registry);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  EXPECT_EQ((*server)->address(), "127.0.0.1:" + std::to_string((*server)->port()));

  auto metrics = Get(**server, "/metrics");
  ASSERT_TRUE(metrics) << httplib::to_string(metrics.error());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(metrics->body, registry.Exposition());
  EXPECT_TRUE(absl::StrContains(metrics->body, "cambium_test_requests_total 5\n"));

  auto health = Get(**server, "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");

  auto not_ready = Get(**server, "/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_TRUE(absl::StrContains(not_ready->body, "repository still loading")) << not_ready->body;
  ready = true;
  auto is_ready = Get(**server, "/readyz");
  ASSERT_TRUE(is_ready);
  EXPECT_EQ(is_ready->status, 200);

  auto missing = Get(**server, "/nothing-here");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  httplib::Client client("127.0.0.1", (*server)->port());
  auto post = client.Post("/metrics", "x", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 404);
}

TEST(HttpServer, DefaultRegistryBodyPassesPromtool) {
  if (!testing::HavePromtool()) GTEST_SKIP() << "promtool is not installed";
  auto server = HttpServer::Start("localhost:0", nullptr);
  ASSERT_TRUE(server.ok()) << server.status();
  auto metrics = Get(**server, "/metrics");
  ASSERT_TRUE(metrics);
  absl::Status checked = testing::PromtoolCheckMetrics(metrics->body);
  EXPECT_TRUE(checked.ok()) << checked << "\n" << metrics->body;
}

TEST(HttpServer, PortInUseIsAnError) {
  auto first = HttpServer::Start("127.0.0.1:0", nullptr);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = HttpServer::Start((*first)->address(), nullptr);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
  // The first one still serves.
  auto health = Get(**first, "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST(HttpServer, RefusesAddressesThatAreNotLoopback) {
  for (const char* bad : {"0.0.0.0:0", "10.1.2.3:9100", "127.0.0.1", "127.0.0.1:70000", ""}) {
    EXPECT_EQ(HttpServer::Start(bad, nullptr).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(HttpServer, StopsAtOnceAndTwice) {
  for (int i = 0; i < 20; ++i) {
    auto server = HttpServer::Start("127.0.0.1:0", nullptr);
    ASSERT_TRUE(server.ok()) << server.status();
    (*server)->Stop();
    (*server)->Stop();
  }
}

TEST(HttpServer, StopsWhileAClientKeepsItsConnection) {
  auto server = HttpServer::Start("127.0.0.1:0", nullptr);
  ASSERT_TRUE(server.ok());
  httplib::Client client("127.0.0.1", (*server)->port());
  client.set_keep_alive(true);
  ASSERT_TRUE(client.Get("/healthz"));
  const absl::Time start = absl::Now();
  (*server)->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
}

TEST(HttpFlags, ListenIsAFlagAndAConfigKey) {
  std::string path = ::testing::TempDir() + "/cambium_http_flags_test.toml";
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("http-listen = \"127.0.0.1:9187\"\n", f);
  fclose(f);
  {
    CLI::App app;
    app.set_config("--config");
    HttpOptions o;
    AddHttpFlags(app, &o);
    std::vector<std::string> args = {"--config", path};
    std::reverse(args.begin(), args.end());
    app.parse(args);
    EXPECT_EQ(o.listen, "127.0.0.1:9187");
  }
  {
    CLI::App app;
    app.set_config("--config");
    HttpOptions o;
    AddHttpFlags(app, &o);
    std::vector<std::string> args = {"--config", path, "--http-listen", "127.0.0.1:1"};
    std::reverse(args.begin(), args.end());
    app.parse(args);
    EXPECT_EQ(o.listen, "127.0.0.1:1");
  }
  CLI::App app;
  HttpOptions o;
  AddHttpFlags(app, &o);
  app.parse(std::vector<std::string>{});
  EXPECT_EQ(o.listen, "");  // no HTTP server by default
}

}  // namespace
}  // namespace cambium::metrics
