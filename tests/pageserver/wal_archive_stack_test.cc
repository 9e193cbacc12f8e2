// The pageserver's WAL archive fed by real Postgres WAL through the safekeepers:
// archived WAL is byte-identical to the pg_wal segments Postgres wrote (read through
// the mount) and to what the safekeepers serve, and timestamp -> LSN agrees with the
// commit timestamps pg_waldump reads from the same WAL.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cambium/v1/page_service.grpc.pb.h"
#include "common/pg/wal_decoder.h"
#include "common/pg/wal_directory.h"
#include "common/pg/wal_records.h"
#include "common/service.h"
#include "gtest/gtest.h"
#include "safekeeper/safekeeper_client.h"
#include "tests/harness/stack.h"
#include "tests/harness/temp_dir.h"

namespace cambium {
namespace {

TEST(WalArchiveStack, ArchiveEqualsWhatPostgresWroteAndTimestampsMatchPgWaldump) {
  auto stack = testing::TestStack::Create();
  ASSERT_TRUE(stack.ok()) << stack.status();
  auto ep = (*stack)->StartEndpoint("main");
  ASSERT_TRUE(ep.ok()) << ep.status();
  auto& pg = (*ep)->pg();
  ASSERT_TRUE(pg.Pgbench({"-i", "-s", "1", "-q"}).ok());
  ASSERT_TRUE(pg.Pgbench({"-c", "2", "-T", "3", "-n"}).ok());
  ASSERT_TRUE(pg.Sql("SELECT pg_switch_wal()").ok());  // a segment boundary mid-archive
  ASSERT_TRUE(pg.Pgbench({"-c", "2", "-T", "2", "-n"}).ok());
  auto lsn_text = pg.Sql("SELECT pg_current_wal_flush_lsn()");
  ASSERT_TRUE(lsn_text.ok());
  const Lsn flushed = Lsn::Parse(*lsn_text).value();
  ASSERT_TRUE((*stack)->WaitForArchive("main", flushed, absl::Seconds(60)).ok());
  auto branch = (*stack)->GetBranch("main");
  ASSERT_TRUE(branch.ok());
  const Lsn start = (*ep)->start_lsn();
  const Lsn end(branch->last_record_lsn());
  ASSERT_GE(end, flushed);

  // The archive (GetWal).
  auto pages = v1::PageService::NewStub(MakeChannel((*stack)->pageserver().address()));
  v1::GetWalRequest req;
  *req.mutable_timeline()->mutable_tenant_id() = branch->tenant_id();
  *req.mutable_timeline()->mutable_timeline_id() = branch->timeline_id();
  req.set_start_lsn(start.SegmentStart().value());
  req.set_end_lsn(end.value());
  grpc::ClientContext ctx;
  auto reader = pages->GetWal(&ctx, req);
  std::string archived;
  v1::WalChunk chunk;
  while (reader->Read(&chunk)) archived += chunk.data();
  grpc::Status finished = reader->Finish();
  ASSERT_TRUE(finished.ok()) << finished.error_message();
  ASSERT_EQ(archived.size(), end - start.SegmentStart());

  // What Postgres wrote, read back through the mount.
  auto written = pg::ReadWalRange((*ep)->mountpoint() + "/pg_wal", 1, start.SegmentStart(), end);
  ASSERT_TRUE(written.ok()) << written.status();
  ASSERT_EQ(written->size(), archived.size());
  EXPECT_TRUE(*written == archived) << "archived WAL differs from pg_wal";

  // What a safekeeper serves, from where it still keeps WAL (it removes segments the
  // pageserver has archived).
  safekeeper::SafekeeperClient sk((*stack)->safekeeper(0).address());
  const TenantId tenant(branch->tenant_id().hi(), branch->tenant_id().lo());
  const TimelineId timeline(branch->timeline_id().hi(), branch->timeline_id().lo());
  auto status = sk.Status(tenant, timeline);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_GT(status->archived_lsn, start);  // the pageserver reported its progress
  const Lsn from = std::max(start, status->wal_start);
  ASSERT_LT(from, end);
  auto served = sk.ReadWal(tenant, timeline, from, end);
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_TRUE(*served == archived.substr(from - start.SegmentStart())) << "safekeeper WAL differs";

  // Commit timestamps: pg_waldump over the archived bytes laid out as segments.
  auto dir = testing::TempDir::Create("cambium-waldump-");
  ASSERT_TRUE(dir.ok());
  for (uint64_t seg = start.SegmentNo(); seg <= (end - 1).SegmentNo(); ++seg) {
    std::string bytes =
        archived.substr(SegmentStartLsn(seg) - start.SegmentStart(), kDefaultWalSegmentSize);
    bytes.resize(kDefaultWalSegmentSize, '\0');
    std::ofstream(dir->Sub(WalSegmentFileName(1, seg)), std::ios::binary) << bytes;
  }
  auto dump = RunCommand({.argv = {testing::PostgresBin("pg_waldump"), "-p", dir->path(), "-s",
                                   start.ToString(), "-e", end.ToString(), "-r", "Transaction"},
                          .env = {{"TZ", "UTC"}}});
  ASSERT_TRUE(dump.ok());
  // Expected: for a commit at time t, the end of the last commit before the first
  // commit later than t (Postgres' recovery_target_time), from our decoder's ends.
  pg::WalDecoder decoder(start);
  decoder.Feed(std::string_view(archived).substr(start - start.SegmentStart()));
  std::vector<std::pair<int64_t, Lsn>> commits;  // (xact_time, end)
  for (;;) {
    auto rec = decoder.Next();
    if (!rec.ok() || !rec->has_value()) break;
    auto x = pg::DecodeXact(**rec);
    if (x.ok() && x->has_value() && (*x)->kind == pg::XactKind::kCommit) {
      commits.emplace_back((*x)->xact_time, (*rec)->end);
      // pg_waldump printed the same timestamp for this commit.
      EXPECT_NE(dump->out.find("COMMIT " + pg::FormatPgTimestampUtc((*x)->xact_time)),
                std::string::npos);
    }
  }
  ASSERT_GT(commits.size(), 100u);
  auto mgmt = v1::ManagementService::NewStub(MakeChannel((*stack)->pageserver().address()));
  int checked = 0;
  for (size_t i = 0; i < commits.size(); i += commits.size() / 25 + 1) {
    const int64_t t = commits[i].first;
    Lsn expected;
    for (const auto& [time, lsn] : commits) {
      if (time > t) break;
      expected = lsn;
    }
    v1::GetLsnByTimestampRequest q;
    q.set_tenant((*stack)->tenant());
    q.set_branch("main");
    q.set_at_unix_micros(absl::ToUnixMicros(pg::PgTimestampToTime(t)));
    v1::GetLsnByTimestampResponse r;
    grpc::ClientContext c;
    ASSERT_TRUE(mgmt->GetLsnByTimestamp(&c, q, &r).ok());
    EXPECT_EQ(r.kind(), v1::LSN_LOOKUP_KIND_PRESENT);
    EXPECT_EQ(Lsn(r.lsn()), expected) << "commit " << i << " at " << pg::FormatPgTimestampUtc(t);
    ++checked;
  }
  EXPECT_GT(checked, 10);
}

}  // namespace
}  // namespace cambium
