// The seams between the components (issue 9) on a real stack: the pageserver, three
// safekeepers, a shim and Postgres on loopback.
//
//  - a branch at head includes every commit acknowledged before it was asked for,
//    under load, and also when the writer died right after its commit;
//  - every safekeeper trims the WAL the pageserver archived, not only the followed one;
//  - an idle endpoint stays its timeline's writer across a pageserver restart;
//  - open(O_TRUNC) truncates through the mount.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "cambium/v1/page_service.grpc.pb.h"
#include "common/proto_convert.h"
#include "common/service.h"
#include "gtest/gtest.h"
#include "safekeeper/safekeeper_client.h"
#include "tests/harness/stack.h"

namespace cambium {
namespace {

using testing::Endpoint;
using testing::TestStack;

int64_t Number(Endpoint& ep, const std::string& sql) {
  auto out = ep.pg().Sql(sql);
  EXPECT_TRUE(out.ok()) << out.status();
  int64_t n = -1;
  EXPECT_TRUE(out.ok() && absl::SimpleAtoi(*out, &n)) << (out.ok() ? *out : "");
  return n;
}

// Commits marker `i` and returns the WAL insert position read inside its transaction
// before the insert: the commit record ends above it.
Lsn CommitMarker(Endpoint& ep, int i) {
  auto out = ep.pg().Sql(absl::StrFormat(
      "BEGIN; SELECT pg_current_wal_insert_lsn(); INSERT INTO marker VALUES (%d); COMMIT;", i));
  EXPECT_TRUE(out.ok()) << out.status();
  std::vector<std::string> lines = absl::StrSplit(out.value_or(""), '\n', absl::SkipEmpty());
  EXPECT_FALSE(lines.empty());
  return lines.empty() ? Lsn() : Lsn::Parse(lines[0]).value_or(Lsn());
}

TEST(SeamsStack, ABranchAtHeadIncludesEveryAcknowledgedCommitUnderLoad) {
  auto stack = TestStack::Create();
  ASSERT_TRUE(stack.ok()) << stack.status();
  auto ep = (*stack)->StartEndpoint("main");
  ASSERT_TRUE(ep.ok()) << ep.status();
  ASSERT_TRUE((*ep)->pg().Pgbench({"-i", "-s", "2", "-q"}).ok());
  ASSERT_TRUE((*ep)->pg().Sql("CREATE TABLE marker(id int primary key)").ok());
  std::atomic<bool> stop{false};
  std::thread load([&] {
    while (!stop) (void)(*ep)->pg().Pgbench({"-n", "-c", "2", "-T", "2"});
  });
  std::thread checkpoints([&] {
    while (!stop) {
      (void)(*ep)->pg().Sql("CHECKPOINT");
      absl::SleepFor(absl::Milliseconds(700));
    }
  });
  int misses = 0;
  constexpr int kBranches = 40;
  for (int i = 1; i <= kBranches; ++i) {
    const Lsn before = CommitMarker(**ep, i);
    auto b = (*stack)->CreateBranch(absl::StrFormat("h%d", i), "main");
    ASSERT_TRUE(b.ok()) << b.status();
    if (Lsn(b->ancestor_lsn()) <= before) {
      ++misses;
      ADD_FAILURE() << "branch h" << i << " at " << Lsn(b->ancestor_lsn()).ToString()
                    << " misses the commit of marker " << i << " (after " << before.ToString()
                    << ")";
    }
  }
  stop = true;
  load.join();
  checkpoints.join();
  EXPECT_EQ(misses, 0);
  // The last one, on an endpoint: every marker is there.
  auto last = (*stack)->StartEndpoint(absl::StrFormat("h%d", kBranches));
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(Number(**last, "SELECT count(*) FROM marker"), kBranches);
}

TEST(SeamsStack, ABranchAtHeadAfterTheWriterDiedIncludesItsLastCommit) {
  auto stack = TestStack::Create();
  ASSERT_TRUE(stack.ok()) << stack.status();
  auto ep = (*stack)->StartEndpoint("main");
  ASSERT_TRUE(ep.ok()) << ep.status();
  ASSERT_TRUE((*ep)->pg().Sql("CREATE TABLE marker(id int primary key)").ok());
  for (int i = 1; i <= 3; ++i) {
    const Lsn before = CommitMarker(**ep, i);
    ASSERT_TRUE((*ep)->KillShim().ok());  // at once: it may not have announced the commit
    auto b = (*stack)->CreateBranch(absl::StrFormat("after-kill-%d", i), "main");
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_GT(Lsn(b->ancestor_lsn()), before);
    auto child = (*stack)->StartEndpoint(b->name());
    ASSERT_TRUE(child.ok()) << child.status();
    EXPECT_EQ(Number(**child, "SELECT count(*) FROM marker"), i);
    ASSERT_TRUE((*child)->Stop().ok());
    ASSERT_TRUE((*ep)->Restart().ok());
  }
}

TEST(SeamsStack, EverySafekeeperTrimsWhatThePageserverArchived) {
  auto stack = TestStack::Create();
  ASSERT_TRUE(stack.ok()) << stack.status();
  auto ep = (*stack)->StartEndpoint("main");
  ASSERT_TRUE(ep.ok()) << ep.status();
  ASSERT_TRUE((*ep)->pg().Pgbench({"-i", "-s", "8", "-q"}).ok());  // several segments of WAL
  ASSERT_TRUE((*ep)->pg().Sql("CHECKPOINT").ok());
  auto lsn = (*ep)->pg().Sql("SELECT pg_current_wal_flush_lsn()");
  ASSERT_TRUE(lsn.ok());
  const Lsn flushed = Lsn::Parse(*lsn).value();
  ASSERT_TRUE((*stack)->WaitForArchive("main", flushed, absl::Seconds(60)).ok());
  auto b = (*stack)->GetBranch("main");
  ASSERT_TRUE(b.ok());
  const TenantId tenant(b->tenant_id().hi(), b->tenant_id().lo());
  const TimelineId timeline(b->timeline_id().hi(), b->timeline_id().lo());
  // Each safekeeper removes the segments wholly below what the pageserver archived.
  for (int i = 0; i < 3; ++i) {
    safekeeper::SafekeeperClient sk((*stack)->safekeeper(i).address());
    Lsn wal_start;
    for (absl::Time deadline = absl::Now() + absl::Seconds(60); absl::Now() < deadline;) {
      auto s = sk.Status(tenant, timeline);
      ASSERT_TRUE(s.ok()) << s.status();
      wal_start = s->wal_start;
      if (wal_start >= flushed.SegmentStart()) break;
      absl::SleepFor(absl::Milliseconds(200));
    }
    EXPECT_GE(wal_start, flushed.SegmentStart())
        << "safekeeper " << i << " keeps WAL from " << wal_start.ToString()
        << " though everything up to " << flushed.ToString() << " is archived";
  }
}

TEST(SeamsStack, AnIdleEndpointStaysTheWriterAcrossAPageserverRestart) {
  auto stack = TestStack::Create({.pageserver_args = {"--writer-lease", "2s"}});
  ASSERT_TRUE(stack.ok()) << stack.status();
  auto ep = (*stack)->StartEndpoint("main");
  ASSERT_TRUE(ep.ok()) << ep.status();
  ASSERT_TRUE((*ep)->pg().Sql("CREATE TABLE t(x int); INSERT INTO t VALUES (1)").ok());
  ASSERT_TRUE((*stack)->pageserver().Kill().ok());
  ASSERT_TRUE((*stack)->pageserver().Restart().ok()) << (*stack)->pageserver().LogTail();
  absl::SleepFor(absl::Seconds(5));  // well past the lease; the endpoint does nothing
  auto b = (*stack)->GetBranch("main");
  ASSERT_TRUE(b.ok());
  auto pages = v1::PageService::NewStub(MakeChannel((*stack)->pageserver().address()));
  v1::GetTimelineInfoRequest info_req;
  *info_req.mutable_timeline()->mutable_tenant_id() = b->tenant_id();
  *info_req.mutable_timeline()->mutable_timeline_id() = b->timeline_id();
  v1::TimelineInfo info;
  grpc::ClientContext ctx;
  ASSERT_TRUE(pages->GetTimelineInfo(&ctx, info_req, &info).ok());
  EXPECT_TRUE(info.writer_active()) << "an idle, running endpoint was taken for dead";
  // Nobody can take its timeline without --takeover, and it keeps working and archiving.
  v1::AttachWriterRequest attach;
  *attach.mutable_timeline() = info_req.timeline();
  attach.set_endpoint("intruder");
  attach.set_start_lsn(info.last_record_lsn());
  v1::AttachWriterResponse attached;
  grpc::ClientContext ctx2;
  EXPECT_EQ(pages->AttachWriter(&ctx2, attach, &attached).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE((*ep)->pg().Sql("INSERT INTO t VALUES (2)").ok());
  auto lsn = (*ep)->pg().Sql("SELECT pg_current_wal_flush_lsn()");
  ASSERT_TRUE(lsn.ok());
  EXPECT_TRUE((*stack)->WaitForArchive("main", Lsn::Parse(*lsn).value(), absl::Seconds(30)).ok());
  EXPECT_EQ(Number(**ep, "SELECT sum(x) FROM t"), 3);
}

// Issue 9, item 12: every read-only endpoint and `cambium query` is an ephemeral
// branch; its WAL on the safekeepers must go with it.
TEST(SeamsStack, DeletingABranchDeletesItsWalOnEverySafekeeper) {
  auto stack = TestStack::Create();
  ASSERT_TRUE(stack.ok()) << stack.status();
  auto b = (*stack)->CreateBranch("ephemeral", "main");
  ASSERT_TRUE(b.ok()) << b.status();
  {
    auto ep = (*stack)->StartEndpoint("ephemeral");
    ASSERT_TRUE(ep.ok()) << ep.status();
    ASSERT_TRUE((*ep)->pg().Sql("CREATE TABLE t AS SELECT 1 AS x").ok());
    ASSERT_TRUE((*ep)->Stop().ok());
  }
  const TenantId tenant(b->tenant_id().hi(), b->tenant_id().lo());
  const TimelineId timeline(b->timeline_id().hi(), b->timeline_id().lo());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(safekeeper::SafekeeperClient((*stack)->safekeeper(i).address())
                    .Status(tenant, timeline)
                    .ok());
  }
  v1::DeleteBranchRequest del;
  del.set_tenant((*stack)->tenant());
  del.set_name("ephemeral");
  del.set_purge(true);  // not to the trash
  v1::DeleteBranchResponse deleted;
  grpc::ClientContext ctx;
  ASSERT_TRUE((*stack)->mgmt().DeleteBranch(&ctx, del, &deleted).ok());
  for (int i = 0; i < 3; ++i) {
    safekeeper::SafekeeperClient sk((*stack)->safekeeper(i).address());
    absl::Status s;
    for (absl::Time deadline = absl::Now() + absl::Seconds(30); absl::Now() < deadline;) {
      s = sk.Status(tenant, timeline).status();
      if (!s.ok()) break;
      absl::SleepFor(absl::Milliseconds(200));
    }
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << "safekeeper " << i << ": " << s;
  }
}

TEST(SeamsStack, OpenWithOTruncTruncatesThroughTheMount) {
  auto stack = TestStack::Create();
  ASSERT_TRUE(stack.ok()) << stack.status();
  auto ep = (*stack)->StartEndpoint("main");
  ASSERT_TRUE(ep.ok()) << ep.status();
  const std::string path = (*ep)->mountpoint() + "/cambium_o_trunc_test";
  {
    std::ofstream out(path);
    out << "abcdefgh";
  }
  {
    std::ofstream out(path, std::ios::trunc);  // what `printf ab > file` does
    out << "ab";
  }
  std::ifstream in(path);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "ab");
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace cambium
