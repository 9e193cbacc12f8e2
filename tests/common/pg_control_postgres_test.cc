// The pg_control reader against pg_controldata on real clusters: running, after a
// checkpoint, after a clean shutdown; and torn or foreign files are rejected.
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_format.h"
#include "common/files.h"
#include "common/pg/pg_control.h"
#include "gtest/gtest.h"
#include "tests/harness/pg_cluster.h"

namespace cambium::pg {
namespace {

using ::cambium::testing::PgCluster;
using ::cambium::testing::PostgresBin;

std::map<std::string, std::string> PgControldata(const std::string& pgdata) {
  auto out = CheckCommand(
      {.argv = {PostgresBin("pg_controldata"), pgdata}, .env = {{"LC_ALL", "C"}, {"TZ", "UTC"}}});
  EXPECT_TRUE(out.ok()) << out.status();
  std::map<std::string, std::string> fields;
  std::istringstream in(out.ok() ? *out : "");
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    size_t v = line.find_first_not_of(' ', colon + 1);
    fields[line.substr(0, colon)] = v == std::string::npos ? "" : line.substr(v);
  }
  return fields;
}

void ExpectMatchesPgControldata(const std::string& pgdata) {
  auto control = ReadPgControl(pgdata);
  ASSERT_TRUE(control.ok()) << control.status();
  auto f = PgControldata(pgdata);
  EXPECT_EQ(std::to_string(control->system_identifier), f["Database system identifier"]);
  EXPECT_EQ(DbStateName(control->state), f["Database cluster state"]);
  EXPECT_EQ(control->checkpoint.ToString(), f["Latest checkpoint location"]);
  EXPECT_EQ(control->redo().ToString(), f["Latest checkpoint's REDO location"]);
  EXPECT_EQ(std::to_string(control->timeline_id()), f["Latest checkpoint's TimeLineID"]);
  EXPECT_EQ(absl::StrFormat("%u:%u", control->checkpoint_copy.next_xid >> 32,
                            control->checkpoint_copy.next_xid & 0xFFFFFFFF),
            f["Latest checkpoint's NextXID"]);
  EXPECT_EQ(std::to_string(control->checkpoint_copy.next_oid), f["Latest checkpoint's NextOID"]);
  EXPECT_EQ(std::to_string(control->checkpoint_copy.oldest_xid),
            f["Latest checkpoint's oldestXID"]);
  EXPECT_EQ(control->checkpoint_copy.full_page_writes ? "on" : "off",
            f["Latest checkpoint's full_page_writes"]);
  EXPECT_EQ(control->min_recovery_point.ToString(), f["Minimum recovery ending location"]);
  EXPECT_EQ(std::to_string(control->max_connections), f["max_connections setting"]);
  EXPECT_EQ(std::to_string(control->xlog_seg_size), f["Bytes per WAL segment"]);
  EXPECT_EQ(std::to_string(control->blcksz), f["Database block size"]);
  EXPECT_EQ(std::to_string(control->relseg_size), f["Blocks per segment of large relation"]);
  EXPECT_EQ(std::to_string(control->catalog_version), f["Catalog version number"]);
}

TEST(PgControlPostgres, MatchesPgControldataWhileRunningAndAfterShutdown) {
  auto cluster = PgCluster::Create();
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  PgCluster& pg = **cluster;
  ASSERT_TRUE(pg.Sql("CREATE TABLE x AS SELECT generate_series(1, 10000) i").ok());
  ASSERT_TRUE(pg.Sql("CHECKPOINT").ok());
  ExpectMatchesPgControldata(pg.pgdata());
  auto running = ReadPgControl(pg.pgdata());
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(running->state, DbState::kInProduction);

  ASSERT_TRUE(pg.Stop().ok());
  ExpectMatchesPgControldata(pg.pgdata());
  auto stopped = ReadPgControl(pg.pgdata());
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(stopped->state, DbState::kShutdowned);
  // A shutdown checkpoint's redo point is the checkpoint record itself.
  EXPECT_EQ(stopped->redo(), stopped->checkpoint);
  EXPECT_GT(stopped->checkpoint, running->checkpoint);
}

TEST(PgControlPostgres, RejectsTornTruncatedAndForeignFiles) {
  auto cluster = PgCluster::Create({.start = false});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  const std::string good =
      ReadFileToString((*cluster)->pgdata() + "/global/pg_control").value_or("");
  ASSERT_EQ(good.size(), kPgControlFileSize);
  ASSERT_TRUE(ParsePgControl(good).ok());

  std::string torn = good;
  torn[40] ^= 0x01;  // inside checkPointCopy
  EXPECT_EQ(ParsePgControl(torn).status().code(), absl::StatusCode::kDataLoss);

  EXPECT_EQ(ParsePgControl(good.substr(0, 100)).status().code(), absl::StatusCode::kDataLoss);

  std::string pg14 = good;
  const uint32_t v1300 = 1300, v1201 = 1201;
  ASSERT_EQ(std::memcmp(pg14.data() + 8, &v1300, 4), 0);
  std::memcpy(pg14.data() + 8, &v1201, 4);
  auto foreign = ParsePgControl(pg14);
  EXPECT_EQ(foreign.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(foreign.status().message().find("1201"), std::string::npos);

  EXPECT_EQ(ReadPgControl("/nonexistent-pgdata").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace cambium::pg
