// The console without a stack or a browser: the checks every request passes (peer,
// Host, token, method), identifier quoting for previews, and the embedded page.
#include <string>

#include "absl/strings/str_format.h"
#include "common/ids.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/harness/temp_dir.h"
#include "tools/console/assets.h"
#include "tools/console/console_api.h"
#include "tools/console/console_server.h"

namespace cambium::console {
namespace {

using ::testing::HasSubstr;

TEST(ConsoleQuoting, TableNamesBecomeQuotedIdentifiersOrAreRefused) {
  EXPECT_EQ(QuoteTableName("public.orders").value(), R"("public"."orders")");
  EXPECT_EQ(QuoteTableName("orders").value(), R"("public"."orders")");
  EXPECT_EQ(QuoteTableName("Sales Data.Q1-2026$").value(), R"("Sales Data"."Q1-2026$")");
  EXPECT_EQ(QuoteTableName("s.t\xc3\xa4").value(), "\"s\".\"t\xc3\xa4\"");
  for (const char* bad : {"", ".", "a.", ".b", "a.b.c", R"(a"b)", R"(x"; DROP TABLE y; --)", "a;b",
                          "a'b", "a\nb", "a\\b", "a)b"}) {
    EXPECT_EQ(QuoteTableName(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(QuoteTableName(std::string(64, 'a')).ok());
  EXPECT_TRUE(QuoteTableName(std::string(63, 'a')).ok());
}

TEST(ConsoleQuoting, BranchNamesFollowThePageserversRule) {
  EXPECT_TRUE(cambium::ValidateName("branch", "main").ok());
  EXPECT_TRUE(cambium::ValidateName("branch", "preview-42_old.1").ok());
  for (const char* bad : {"", "-x", ".x", "a/b", "a b", "a\"b"}) {
    EXPECT_FALSE(cambium::ValidateName("branch", bad).ok()) << bad;
  }
}

TEST(ConsoleChecks, OnlyThisServersHostAndLoopbackPeersPass) {
  EXPECT_TRUE(HostAllowed("127.0.0.1:7480", 7480));
  EXPECT_TRUE(HostAllowed("localhost:7480", 7480));
  EXPECT_TRUE(HostAllowed("LocalHost:7480", 7480));
  EXPECT_FALSE(HostAllowed("127.0.0.1:7481", 7480));
  EXPECT_FALSE(HostAllowed("127.0.0.1", 7480));
  EXPECT_FALSE(HostAllowed("evil.example:7480", 7480));
  EXPECT_FALSE(HostAllowed("localhost.evil.example:7480", 7480));
  EXPECT_FALSE(HostAllowed("", 7480));
  EXPECT_TRUE(LoopbackPeer("127.0.0.1"));
  EXPECT_TRUE(LoopbackPeer("127.1.2.3"));
  EXPECT_TRUE(LoopbackPeer("::1"));
  EXPECT_TRUE(LoopbackPeer("::ffff:127.0.0.1"));
  EXPECT_FALSE(LoopbackPeer("10.0.0.1"));
  EXPECT_FALSE(LoopbackPeer("::ffff:10.0.0.1"));
  EXPECT_FALSE(LoopbackPeer(""));
}

TEST(ConsoleAssets, ThePageIsEmbeddedWithItsScriptAndStyle) {
  std::map<std::string, std::string> types;
  size_t total = 0;
  for (const Asset& a : Assets()) {
    types[std::string(a.path)] = std::string(a.content_type);
    total += a.body.size();
    EXPECT_FALSE(a.body.empty()) << a.path;
  }
  EXPECT_THAT(types["/index.html"], HasSubstr("text/html"));
  EXPECT_THAT(types["/console.js"], HasSubstr("text/javascript"));
  EXPECT_THAT(types["/console.css"], HasSubstr("text/css"));
  // Small enough to read: no framework, no bundled fonts.
  EXPECT_LT(total, 64u * 1024);
}

class ConsoleServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<testing::TempDir>(testing::TempDir::Create("cambium-console-").value());
    auto server = ConsoleServer::Start({.listen = "127.0.0.1:0", .data_dir = dir_->path()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }
  httplib::Headers Host(const std::string& host) { return {{"Host", host}}; }
  std::string Self() const { return absl::StrFormat("127.0.0.1:%d", server_->port()); }

  std::unique_ptr<testing::TempDir> dir_;
  std::unique_ptr<ConsoleServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(ConsoleServerTest, ServesThePageWithItsTokenAndStrictHeaders) {
  auto res = client_->Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->body, HasSubstr(server_->token()));
  EXPECT_THAT(res->body, ::testing::Not(HasSubstr("__CAMBIUM_CONSOLE_TOKEN__")));
  EXPECT_THAT(res->get_header_value("Content-Security-Policy"), HasSubstr("default-src 'none'"));
  EXPECT_EQ(res->get_header_value("Cache-Control"), "no-store");
  EXPECT_EQ(res->get_header_value("X-Frame-Options"), "DENY");
  res = client_->Get("/console.js");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->get_header_value("Content-Type"), HasSubstr("javascript"));
  res = client_->Get("/nope");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST_F(ConsoleServerTest, RefusesAnotherHostName) {
  // What a page of evil.example gets after rebinding its name to 127.0.0.1.
  auto res = client_->Get("/", Host(absl::StrFormat("evil.example:%d", server_->port())));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 403);
  EXPECT_THAT(res->body, ::testing::Not(HasSubstr(server_->token())));
  res = client_->Get("/", Host(absl::StrFormat("localhost:%d", server_->port())));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(ConsoleServerTest, ApiCallsNeedThePagesTokenAndGetOnly) {
  auto res = client_->Get("/api/info");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 403);
  res = client_->Get("/api/info", {{"X-Cambium-Console", "0123"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 403);
  const httplib::Headers token = {{"X-Cambium-Console", server_->token()}};
  res = client_->Get("/api/info", token);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(nlohmann::json::parse(res->body).contains("command_options"));
  // No stack in the directory: an error object, never a crash.
  res = client_->Get("/api/branches", token);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404) << res->body;
  EXPECT_TRUE(nlohmann::json::parse(res->body).contains("error"));
  // Bad input is refused before anything runs.
  res = client_->Get("/api/preview?branch=main&at=-1m&table=a%22b", token);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400) << res->body;
  res = client_->Get("/api/history?branch=..%2Fetc", token);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400) << res->body;
  // Read-only: nothing but GET.
  res = client_->Post("/api/branches", token, "{}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
  res = client_->Delete("/api/branches", token);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
}

TEST(ConsoleServer, ListensOnLoopbackOnly) {
  EXPECT_EQ(ConsoleServer::Start({.listen = "0.0.0.0:0"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto first = ConsoleServer::Start({.listen = "127.0.0.1:0"});
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = ConsoleServer::Start({.listen = absl::StrFormat("127.0.0.1:%d", (*first)->port())});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace cambium::console
