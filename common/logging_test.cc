#include "common/logging.h"

#include <fstream>
#include <sstream>

#include "common/files.h"
#include "gtest/gtest.h"

namespace cambium {
namespace {

TEST(Logging, FormatsKeyValueFields) {
  EXPECT_EQ(FormatLogLine("branch_created",
                          {{"tenant", "acme"}, {"lsn", Lsn(0x1500718)}, {"blocks", 42}}),
            "branch_created tenant=acme lsn=0/1500718 blocks=42");
}

TEST(Logging, QuotesValuesThatWouldBreakParsing) {
  EXPECT_EQ(FormatLogLine("e", {{"msg", "two words"}, {"empty", ""}, {"q", "a\"b"}}),
            "e msg=\"two words\" empty=\"\" q=\"a\\\"b\"");
  EXPECT_EQ(FormatLogLine("e", {{"status", absl::NotFoundError("gone")}}),
            "e status=\"NOT_FOUND: gone\"");
}

TEST(Logging, WritesToTheConfiguredFile) {
  std::string path = ::testing::TempDir() + "/cambium_logging_test.log";
  std::remove(path.c_str());
  ASSERT_TRUE(InitLogging({.file = path, .level = LogLevel::kInfo}).ok());
  LogDebug("dropped_event");
  LogInfo("kept_event", {{"k", "v"}});
  ASSERT_TRUE(InitLogging({}).ok());  // back to stderr
  const std::string log = ReadFileToString(path).value_or("");
  EXPECT_NE(log.find(" I kept_event k=v"), std::string::npos) << log;
  EXPECT_EQ(log.find("dropped_event"), std::string::npos);
  std::remove(path.c_str());
}

TEST(Logging, ParsesLevels) {
  EXPECT_EQ(ParseLogLevel("debug").value(), LogLevel::kDebug);
  EXPECT_EQ(ParseLogLevel("warning").value(), LogLevel::kWarning);
  EXPECT_FALSE(ParseLogLevel("loud").ok());
}

}  // namespace
}  // namespace cambium
