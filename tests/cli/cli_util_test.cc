// ParseTimestamp and FormatTimestamp (tools/cli_util.h): every form of a time the CLI
// documents (--at of branch create, branch restore, lsn and query), and garbage.
// DirWatch: a wait woken by a file written into the directory.
#include "tools/cli_util.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace cambium::cli {
namespace {

// 2026-11-21T19:30:00Z
absl::Time Reference() {
  return absl::FromCivil(absl::CivilSecond(2026, 11, 21, 19, 30, 0), absl::UTCTimeZone());
}

absl::Time Parse(const std::string& text) {
  absl::StatusOr<absl::Time> t = ParseTimestamp(text);
  EXPECT_TRUE(t.ok()) << text << ": " << t.status();
  return t.value_or(absl::InfinitePast());
}

TEST(ParseTimestamp, ReadsRfc3339WithZOrAnOffset) {
  EXPECT_EQ(Parse("2026-11-21T19:30:00Z"), Reference());
  EXPECT_EQ(Parse("2026-11-21T21:30:00+02:00"), Reference());
  EXPECT_EQ(Parse("2026-11-21T14:30:00-05:00"), Reference());
  EXPECT_EQ(Parse("2026-11-21T19:30:00.250Z"), Reference() + absl::Milliseconds(250));
}

TEST(ParseTimestamp, ReadsATimeWithoutAZoneAsUtc) {
  EXPECT_EQ(Parse("2026-11-21T19:30:00"), Reference());
}

TEST(ParseTimestamp, ReadsWhatPostgresPrints) {
  EXPECT_EQ(Parse("2026-11-21 19:30:00+00"), Reference());
  EXPECT_EQ(Parse("2026-11-21 19:30:00.123456+00"), Reference() + absl::Microseconds(123456));
  EXPECT_EQ(Parse("2026-11-21 14:30:00-05"), Reference());
  EXPECT_EQ(Parse("2026-11-22 01:00:00+05:30"), Reference());
}

TEST(ParseTimestamp, ReadsUnixSeconds) {
  EXPECT_EQ(Parse(absl::StrCat("@", absl::ToUnixSeconds(Reference()))), Reference());
  EXPECT_EQ(Parse("@0"), absl::UnixEpoch());
  EXPECT_EQ(Parse("@1700000000.25"), absl::FromUnixMillis(1700000000250));
}

TEST(ParseTimestamp, ReadsATimeRelativeToNow) {
  for (const auto& [text, ago] :
       std::vector<std::pair<std::string, absl::Duration>>{{"-10m", absl::Minutes(10)},
                                                           {"-90s", absl::Seconds(90)},
                                                           {"-2h", absl::Hours(2)},
                                                           {"-1h30m", absl::Minutes(90)},
                                                           {"-7d", absl::Hours(24 * 7)}}) {
    const absl::Time before = absl::Now();
    const absl::Time t = Parse(text);
    const absl::Time after = absl::Now();
    EXPECT_GE(t, before - ago) << text;
    EXPECT_LE(t, after - ago) << text;
  }
}

TEST(ParseTimestamp, RejectsGarbageWithAMessageNamingTheForms) {
  for (const char* text :
       {"", "yesterday", "-", "-10", "-10x", "+10m", "@", "@soon", "@12abc", "2026-11-21",
        "2026-13-01T00:00:00Z", "2026-11-21T25:00:00Z", "2026-11-21T19:30:00Zjunk", "19:30:00"}) {
    absl::StatusOr<absl::Time> t = ParseTimestamp(text);
    ASSERT_FALSE(t.ok()) << '"' << text << "\" parsed as " << absl::FormatTime(*t);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_NE(t.status().message().find("RFC 3339"), std::string::npos) << t.status();
  }
}

TEST(FormatTimestamp, PrintsRfc3339InUtcWithMicrosecondsAndParsesBack) {
  const absl::Time t = Reference() + absl::Microseconds(42);
  EXPECT_EQ(FormatTimestamp(t), "2026-11-21T19:30:00.000042Z");
  EXPECT_EQ(Parse(FormatTimestamp(t)), t);
}

// The change happens before Wait (as when Postgres writes its pid file between the
// CLI's check and its wait): the event is queued, Wait does not sleep out its
// maximum. And a change while waiting wakes it.
TEST(DirWatch, AWriteBeforeOrDuringTheWaitWakesIt) {
  char tmpl[] = "/tmp/dirwatch_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  constexpr absl::Duration kLong = absl::Seconds(60);
  {
    DirWatch watch(dir);
    std::ofstream(dir + "/ready.tmp") << "x";
    std::filesystem::rename(dir + "/ready.tmp", dir + "/ready");
    absl::Time began = absl::Now();
    watch.Wait(kLong);
    EXPECT_LT(absl::Now() - began, kLong / 2) << "the rename before the wait was lost";

    std::thread writer([&] {
      absl::SleepFor(absl::Milliseconds(50));
      std::ofstream(dir + "/postmaster.pid", std::ios::app) << "ready\n";
    });
    began = absl::Now();
    watch.Wait(kLong);
    EXPECT_LT(absl::Now() - began, kLong / 2) << "the write during the wait did not wake it";
    writer.join();
  }
  std::filesystem::remove_all(dir);
}

// Nothing changes: Wait returns after its maximum; a directory inotify cannot watch
// (it does not exist) makes it a plain sleep.
TEST(DirWatch, WithoutAChangeItReturnsAfterItsMaximum) {
  DirWatch missing("/nonexistent/dirwatch");
  const absl::Time began = absl::Now();
  missing.Wait(absl::Milliseconds(20));
  EXPECT_GE(absl::Now() - began, absl::Milliseconds(20));
  char tmpl[] = "/tmp/dirwatch_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  {
    DirWatch quiet(tmpl);
    quiet.Wait(absl::Milliseconds(20));  // returns
  }
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace cambium::cli
