// Repository::GetCommitHistory and the ManagementService RPC over it: commits at
// known timestamps, counted per bucket over a branch's history (ancestors below the
// branch point included), and the restorable range a restore really accepts.
#include "common/pg/wal_format.h"
#include "common/pg/wal_records.h"
#include "gtest/gtest.h"
#include "pageserver/archive_test_fixture.h"
#include "pageserver/management_service.h"
#include "pageserver/repository.h"
#include "pageserver/test_util.h"
#include "tests/harness/temp_dir.h"
#include "tests/harness/wal_builder.h"

namespace cambium::pageserver {
namespace {

using namespace ::cambium::pageserver::testing;  // NOLINT
using ::cambium::testing::WalBuilder;

class CommitHistoryTest : public ArchiveTest {
 protected:
  // A commit at T(seconds) on main's WAL; returns its end.
  Lsn Commit(int seconds) {
    wal_->AddCommit(static_cast<uint32_t>(100 + seconds), PgT(seconds));
    return wal_->end();
  }
  std::shared_ptr<Timeline> Of(const std::string& branch) {
    auto b = repo_->GetBranch("acme", branch);
    EXPECT_TRUE(b.ok()) << b.status();
    return repo_->GetTimeline(repo_->GetTenant("acme")->id, b->timeline_id).value();
  }
  BranchHistory History(const std::string& branch, int from, int to, int bucket_seconds) {
    auto h = repo_->GetCommitHistory(
        "acme", branch, {.from = T(from), .to = T(to), .bucket = absl::Seconds(bucket_seconds)});
    EXPECT_TRUE(h.ok()) << h.status();
    return h.ok() ? *h : BranchHistory();
  }
  // (seconds after T(0) of the bucket's start, commits) of every bucket.
  static std::vector<std::pair<int64_t, uint64_t>> Counts(const BranchHistory& h) {
    std::vector<std::pair<int64_t, uint64_t>> out;
    for (const CommitBucket& b : h.commits.buckets) {
      out.emplace_back(absl::ToInt64Seconds(b.start - T(0)), b.commits);
    }
    return out;
  }
};

using Counted = std::vector<std::pair<int64_t, uint64_t>>;

TEST_F(CommitHistoryTest, CountsCommitsPerBucketAtTheirTimes) {
  const Lsn e10 = Commit(10);
  Commit(11);
  const Lsn e15 = Commit(15);
  const Lsn e70 = Commit(70);
  const Lsn e75 = Commit(75);
  ArchiveMain();
  const BranchHistory h = History("main", 0, 120, 60);
  EXPECT_EQ(Counts(h), (Counted{{0, 3}, {60, 2}}));
  ASSERT_EQ(h.commits.buckets.size(), 2u);
  const CommitBucket& first = h.commits.buckets[0];
  EXPECT_EQ(first.first.end, e10);
  EXPECT_EQ(first.first.time, T(10));
  EXPECT_EQ(first.last.end, e15);
  EXPECT_EQ(first.last.time, T(15));
  EXPECT_EQ(h.commits.buckets[1].first.end, e70);
  EXPECT_EQ(h.commits.buckets[1].last.end, e75);
  EXPECT_FALSE(h.commits.truncated);
  // The bucket's last commit time is a time `--at` lands exactly on its last commit.
  for (const CommitBucket& b : h.commits.buckets) {
    auto at = repo_->LsnByTimestamp("acme", "main", b.last.time);
    ASSERT_TRUE(at.ok()) << at.status();
    EXPECT_EQ(at->kind, LsnLookupKind::kPresent);
    EXPECT_EQ(at->lsn, b.last.end);
  }
  // `from` is inclusive, `to` exclusive; buckets align to `from`.
  EXPECT_EQ(Counts(History("main", 11, 70, 1)), (Counted{{11, 1}, {15, 1}}));
  EXPECT_EQ(Counts(History("main", 5, 80, 10)), (Counted{{5, 2}, {15, 1}, {65, 1}, {75, 1}}));
  EXPECT_TRUE(History("main", 20, 60, 5).commits.buckets.empty());
}

TEST_F(CommitHistoryTest, ABranchSeesItsAncestorsCommitsBelowItsBranchPointOnly) {
  Commit(10);
  const Lsn e20 = Commit(20);
  ArchiveMain();
  ASSERT_TRUE(repo_->CreateBranch("acme", "dev", "main", {.lsn = e20}, std::nullopt).ok());
  // From the branch point on, main and dev write different WAL.
  WalBuilder dev_wal = *wal_;
  Commit(30);
  ArchiveMain();
  dev_wal.AddCommit(400, PgT(40));
  const Lsn e40 = dev_wal.end();
  ASSERT_TRUE(
      repo_->archive()
          .Append(*Of("dev"), e20, std::string_view(dev_wal.bytes()).substr(e20 - kSeg1), false)
          .ok());
  EXPECT_EQ(Counts(History("dev", 0, 100, 10)), (Counted{{10, 1}, {20, 1}, {40, 1}}));
  EXPECT_EQ(Counts(History("main", 0, 100, 10)), (Counted{{10, 1}, {20, 1}, {30, 1}}));
  const BranchHistory dev = History("dev", 0, 100, 100);
  ASSERT_EQ(dev.commits.buckets.size(), 1u);
  EXPECT_EQ(dev.commits.buckets[0].commits, 3u);
  EXPECT_EQ(dev.commits.buckets[0].last.end, e40);
  EXPECT_EQ(dev.restorable.latest_lsn, e40);
  EXPECT_EQ(dev.restorable.latest_commit_time, T(40));
}

TEST_F(CommitHistoryTest, TheRestorableRangeIsWhatARestoreAccepts) {
  Commit(10);
  const Lsn e20 = Commit(20);
  const Lsn e30 = Commit(30);
  ArchiveMain();
  // Before any GC: from the import (the root's first boundary) to the head.
  BranchHistory h = History("main", 0, 100, 10);
  EXPECT_EQ(h.restorable.earliest_lsn, kSeg1);
  EXPECT_EQ(h.restorable.earliest_time,
            absl::FromUnixMicros(main_->record().created_unix_micros()));
  EXPECT_EQ(h.restorable.latest_lsn, wal_->end());
  EXPECT_EQ(h.restorable.latest_commit_time, T(30));
  EXPECT_EQ(h.restorable.pitr_window, absl::Hours(24));

  ASSERT_TRUE(repo_->CreateBranch("acme", "old", "main", {.lsn = e20}, std::nullopt).ok());
  ASSERT_TRUE(repo_->GcTimeline(main_->id(), e30).ok());
  // main: from the GC cutoff, reached by the time of the commit that ends there.
  h = History("main", 0, 100, 10);
  EXPECT_EQ(h.restorable.earliest_lsn, e30);
  ASSERT_TRUE(h.restorable.earliest_time.has_value());
  EXPECT_EQ(*h.restorable.earliest_time, T(30));
  auto at = repo_->CreateBranch("acme", "at-earliest", "main", {.time = T(30)}, std::nullopt);
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_EQ(at->ancestor_lsn, e30);
  EXPECT_FALSE(
      repo_->CreateBranch("acme", "too-early", "main", {.time = T(29)}, std::nullopt).ok());
  // old: main's cutoff passed its branch point, which GC kept: that point is its
  // earliest, reached at the time of the commit that ends there.
  h = History("old", 0, 100, 10);
  EXPECT_EQ(h.restorable.earliest_lsn, e20);
  EXPECT_EQ(h.restorable.earliest_time, T(20));
  at = repo_->CreateBranch("acme", "old-earliest", "old", {.time = T(20)}, std::nullopt);
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_EQ(at->ancestor_lsn, e20);
  // The default range starts at the earliest restorable time.
  auto defaults = repo_->GetCommitHistory("acme", "main", {.bucket = absl::Seconds(3600)});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->from, T(30));
  EXPECT_EQ(Counts(*defaults), (Counted{{30, 1}}));
}

// GetBranch and ListBranches carry the same range (`branch list` and `branch show`
// read it from there: no history call per branch).
TEST_F(CommitHistoryTest, GetBranchAndListBranchesCarryTheRestorableRange) {
  Commit(10);
  const Lsn e20 = Commit(20);
  ArchiveMain();
  ASSERT_TRUE(repo_->CreateBranch("acme", "child", "main", {.lsn = e20}, std::nullopt).ok());
  for (const std::string branch : {"main", "child"}) {
    const RestorableRange want = History(branch, 0, 100, 10).restorable;
    auto got = repo_->GetBranch("acme", branch);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(got->restorable.has_value()) << branch;
    EXPECT_EQ(got->restorable->earliest_lsn, want.earliest_lsn) << branch;
    EXPECT_EQ(got->restorable->earliest_time, want.earliest_time) << branch;
    EXPECT_EQ(got->restorable->latest_lsn, want.latest_lsn) << branch;
    EXPECT_EQ(got->restorable->latest_commit_time, want.latest_commit_time) << branch;
    EXPECT_EQ(got->restorable->pitr_window, absl::Hours(24)) << branch;
  }
  auto listed = repo_->ListBranches("acme");
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  for (const BranchInfo& b : *listed) {
    ASSERT_TRUE(b.restorable.has_value()) << b.name;
    EXPECT_EQ(b.restorable->latest_commit_time, T(20)) << b.name;
  }
}

TEST_F(CommitHistoryTest, StopsAfterMaxCommitsAndSaysWhere) {
  for (int s = 1; s <= 5; ++s) Commit(s);
  ArchiveMain();
  auto h = repo_->GetCommitHistory(
      "acme", "main", {.from = T(0), .to = T(10), .bucket = absl::Seconds(10), .max_commits = 2});
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_TRUE(h->commits.truncated);
  EXPECT_EQ(h->commits.counted_to, T(3));
  EXPECT_EQ(Counts(*h), (Counted{{0, 2}}));
}

TEST_F(CommitHistoryTest, RefusesEmptyRangesTinyBucketsAndUnknownBranches) {
  Commit(1);
  ArchiveMain();
  auto code = [&](const std::string& branch, CommitHistoryQuery q) {
    return repo_->GetCommitHistory("acme", branch, q).status().code();
  };
  EXPECT_EQ(code("main", {.from = T(10), .to = T(10), .bucket = absl::Seconds(1)}),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code("main", {.from = T(0), .to = T(10), .bucket = absl::Milliseconds(10)}),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code("main", {.from = T(0), .to = T(0) + absl::Hours(48), .bucket = absl::Seconds(1)}),
            absl::StatusCode::kInvalidArgument);  // 172800 buckets
  EXPECT_EQ(code("nope", {.from = T(0), .to = T(10), .bucket = absl::Seconds(1)}),
            absl::StatusCode::kNotFound);
}

TEST_F(CommitHistoryTest, TheRpcCarriesBucketsAndTheRange) {
  const Lsn e10 = Commit(10);
  const Lsn e12 = Commit(12);
  ArchiveMain();
  ManagementServiceImpl service(repo_.get());
  grpc::ServerContext ctx;
  v1::GetCommitHistoryRequest req;
  req.set_tenant("acme");
  req.set_branch("main");
  req.set_from_unix_micros(absl::ToUnixMicros(T(0)));
  req.set_to_unix_micros(absl::ToUnixMicros(T(60)));
  req.set_bucket_seconds(60);
  v1::GetCommitHistoryResponse resp;
  ASSERT_TRUE(service.GetCommitHistory(&ctx, &req, &resp).ok());
  ASSERT_EQ(resp.buckets_size(), 1);
  EXPECT_EQ(resp.buckets(0).start_unix_micros(), absl::ToUnixMicros(T(0)));
  EXPECT_EQ(resp.buckets(0).commits(), 2u);
  EXPECT_EQ(resp.buckets(0).first_lsn(), e10.value());
  EXPECT_EQ(resp.buckets(0).last_lsn(), e12.value());
  EXPECT_EQ(resp.buckets(0).last_commit_unix_micros(), absl::ToUnixMicros(T(12)));
  EXPECT_EQ(resp.restorable().earliest_lsn(), kSeg1.value());
  EXPECT_EQ(resp.restorable().latest_lsn(), wal_->end().value());
  EXPECT_EQ(resp.restorable().latest_commit_unix_micros(), absl::ToUnixMicros(T(12)));
  EXPECT_EQ(resp.restorable().pitr_window_seconds(), 24u * 3600);
  req.set_bucket_seconds(0);
  EXPECT_EQ(service.GetCommitHistory(&ctx, &req, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace cambium::pageserver
