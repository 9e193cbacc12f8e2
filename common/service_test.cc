#include "common/service.h"

#include "gtest/gtest.h"

namespace cambium {
namespace {

TEST(ParseHumanDuration, AcceptsUnitsAndCombinations) {
  EXPECT_EQ(ParseHumanDuration("7d").value(), absl::Hours(24 * 7));
  EXPECT_EQ(ParseHumanDuration("36h").value(), absl::Hours(36));
  EXPECT_EQ(ParseHumanDuration("1h30m").value(), absl::Minutes(90));
  EXPECT_EQ(ParseHumanDuration("250ms").value(), absl::Milliseconds(250));
  EXPECT_EQ(ParseHumanDuration("2w").value(), absl::Hours(24 * 14));
  EXPECT_EQ(ParseHumanDuration("1.5h").value(), absl::Minutes(90));
}

TEST(ParseHumanDuration, RejectsGarbage) {
  for (const char* bad : {"", "d", "7", "7x", "h7", "-1h", "1h-"}) {
    EXPECT_FALSE(ParseHumanDuration(bad).ok()) << bad;
  }
}

TEST(CheckLoopbackAddress, AcceptsOnlyLoopback) {
  EXPECT_TRUE(CheckLoopbackAddress("127.0.0.1:6400").ok());
  EXPECT_TRUE(CheckLoopbackAddress("localhost:0").ok());
  EXPECT_FALSE(CheckLoopbackAddress("0.0.0.0:6400").ok());
  EXPECT_FALSE(CheckLoopbackAddress("10.0.0.1:6400").ok());
  EXPECT_FALSE(CheckLoopbackAddress("127.0.0.1").ok());
  EXPECT_FALSE(CheckLoopbackAddress("127.0.0.1:99999").ok());
}

TEST(ServiceFlags, ConfigFileIsOverriddenByFlags) {
  std::string path = ::testing::TempDir() + "/cambium_service_test.toml";
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("listen = \"127.0.0.1:7000\"\nlog-level = \"debug\"\ncache-mb = 64\n", f);
  fclose(f);
  CLI::App app;
  LogOptions log;
  std::string listen = "127.0.0.1:1";
  int cache_mb = 1;
  app.add_option("--listen", listen);
  app.add_option("--cache-mb", cache_mb);
  AddServiceFlags(app, &log);
  const char* argv[] = {"prog", "--config", path.c_str(), "--cache-mb", "128"};
  app.parse(5, const_cast<char**>(argv));
  EXPECT_EQ(listen, "127.0.0.1:7000");
  EXPECT_EQ(cache_mb, 128);
  EXPECT_EQ(log.level, LogLevel::kDebug);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace cambium
