// The gRPC service and the client libraries, with three safekeepers inside the
// test process: a proposer elects, streams WAL the way Postgres writes it (tail
// page rewrites), waits for quorum flushes and reads back; a follower streams
// committed WAL; a new term starts at the last complete record and fences the old
// proposer; a branch starts mid-page; a lagging safekeeper is brought up to date
// from its peers, or from the archive once they trimmed; a deleted timeline ends
// its streams and stays deleted; a full disk stalls commits with a clear error and
// they resume once space is freed; a flipped byte in a segment is never served.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "safekeeper/control_file.h"
#include "safekeeper/safekeeper_client.h"
#include "safekeeper/timeline_storage.h"
#include "safekeeper/wal_proposer.h"
#include "tests/harness/temp_dir.h"
#include "tests/harness/wal_builder.h"
#include "tests/safekeeper/fault_file_system.h"
#include "tests/safekeeper/sk_harness.h"

namespace cambium::safekeeper {
namespace {

using ::cambium::testing::TempDir;
using testing::AppendAndWait;
using testing::AppendRefused;
using testing::DiskFull;
using testing::FaultFileSystem;
using ::testing::HasSubstr;
using testing::LocalSafekeeper;
using testing::MakeTestWal;
using testing::PostgresLikeWrites;
using testing::TestWal;

const TenantId kTenant(0xaaaa, 0xbbbb);
const Lsn kStart(0x1000000);

class SafekeeperServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create("cambium-sk-svc-");
    ASSERT_TRUE(dir.ok());
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    // Safekeepers 0 and 1 write through a FaultFileSystem (no faults unless a
    // test arms one), so that no test restarts them to inject faults: a
    // restarted safekeeper listens on a new port.
    for (int i = 0; i < 3; ++i) {
      ASSERT_NO_FATAL_FAILURE(StartSafekeeper(i, i < 2 ? &fault_fs_[i] : nullptr));
    }
  }
  virtual uint64_t SegmentSize() const { return kDefaultWalSegmentSize; }
  virtual uint64_t MaxUnarchivedWal() const { return SafekeeperOptions{}.max_unarchived_wal; }
  void StartSafekeeper(int i, FileSystem* fs = nullptr) {
    auto sk = LocalSafekeeper::Start(dir_->Sub("sk" + std::to_string(i)), "sk" + std::to_string(i),
                                     fs, SegmentSize(), MaxUnarchivedWal());
    ASSERT_TRUE(sk.ok()) << sk.status();
    if (static_cast<int>(sks_.size()) <= i) sks_.resize(i + 1);
    sks_[i] = std::move(*sk);
  }
  ProposerOptions Options(TimelineId timeline, Lsn start = kStart, const std::string& name = "p1") {
    std::vector<std::string> addresses;
    for (auto& sk : sks_) addresses.push_back(sk->address());
    return testing::TestProposerOptions(addresses, kTenant, timeline, start, name);
  }
  std::unique_ptr<WalProposer> Elected(const ProposerOptions& o, Lsn* start) {
    auto p = WalProposer::Create(o);
    EXPECT_TRUE(p.ok()) << p.status();
    auto s = (*p)->Elect();
    EXPECT_TRUE(s.ok()) << s.status();
    if (s.ok()) *start = *s;
    return std::move(*p);
  }
  // Streams `wal` as Postgres writes it, waiting for the quorum after each write.
  void Stream(WalProposer& p, const TestWal& wal, const std::vector<Lsn>& flush_points) {
    for (const auto& w : PostgresLikeWrites(wal.start, wal.bytes, flush_points)) {
      absl::Status flushed = AppendAndWait(p, w, absl::Seconds(10));
      ASSERT_TRUE(flushed.ok()) << flushed;
    }
  }
  // Committed WAL [from, to) as safekeeper i serves it.
  std::string ReadCommitted(int i, TimelineId timeline, Lsn from, Lsn to) {
    return testing::ExpectCommittedWal(sks_[i]->address(), kTenant, timeline, from, to);
  }

  std::unique_ptr<TempDir> dir_;
  FaultFileSystem fault_fs_[2];  // outlive the safekeepers that use them
  std::vector<std::unique_ptr<LocalSafekeeper>> sks_;
};

TEST_F(SafekeeperServiceTest, StreamsRewrittenPagesAndReadsBackCommittedWal) {
  const TimelineId tl(1, 1);
  Lsn start;
  auto p = Elected(Options(tl), &start);
  ASSERT_EQ(start, kStart);
  const TestWal wal = MakeTestWal(kStart, 300, 11);
  ASSERT_NO_FATAL_FAILURE(Stream(*p, wal, wal.record_ends));
  // Exactly what was appended is committed: the last write's zero-padded page,
  // never beyond it.
  EXPECT_EQ(p->commit_lsn(),
            PostgresLikeWrites(wal.start, wal.bytes, wal.record_ends).back().end());
  auto read = p->ReadWal(kStart, wal.end());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(*read == wal.bytes);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(ReadCommitted(i, tl, kStart, wal.end()) == wal.bytes) << "safekeeper " << i;
  }
}

TEST_F(SafekeeperServiceTest, FollowerReceivesWalAsItCommits) {
  const TimelineId tl(1, 2);
  Lsn start;
  auto p = Elected(Options(tl), &start);
  SafekeeperClient client(sks_[1]->address());
  auto follower = client.Follow(kTenant, tl, kStart);
  const TestWal wal = MakeTestWal(kStart, 100, 12);
  std::string received;
  std::thread reader([&] {
    while (kStart + received.size() < wal.end()) {
      auto chunk = follower->Next();
      ASSERT_TRUE(chunk.ok()) << chunk.status();
      ASSERT_TRUE(chunk->has_value());
      ASSERT_EQ((*chunk)->start, kStart + received.size());
      received += (*chunk)->data;
    }
  });
  ASSERT_NO_FATAL_FAILURE(Stream(*p, wal, wal.record_ends));
  reader.join();
  EXPECT_TRUE(received == wal.bytes);
  follower->Cancel();
  auto end = follower->Next();
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_FALSE(end->has_value());
}

TEST_F(SafekeeperServiceTest, ANewTermStartsAtTheLastCompleteRecordAndFencesTheOldProposer) {
  const TimelineId tl(1, 3);
  Lsn start;
  auto p1 = Elected(Options(tl), &start);
  const TestWal wal = MakeTestWal(kStart, 80, 13);
  ASSERT_NO_FATAL_FAILURE(Stream(*p1, wal, {wal.record_ends[40], wal.record_ends[60]}));
  // Record 61 only partly written (the rest of its page is still zero), flushed.
  const Lsn partial = wal.record_ends[60] + (wal.record_ends[61] - wal.record_ends[60]) / 2;
  ASSERT_NO_FATAL_FAILURE(Stream(*p1, wal, {partial}));

  Lsn start2;
  auto p2 = Elected(Options(tl, kStart, "p2"), &start2);
  EXPECT_EQ(start2, wal.record_ends[60]);
  EXPECT_GT(p2->term(), p1->term());

  ASSERT_TRUE(p1->Append(partial.PageStart(), std::string(kWalPageSize, 'z')).ok());
  absl::Status fenced = p1->WaitForFlush(partial.PageStart() + kWalPageSize, absl::Seconds(10));
  EXPECT_TRUE(absl::IsFailedPrecondition(fenced)) << fenced;
  EXPECT_THAT(fenced.message(), HasSubstr(absl::StrFormat("has term %u", p2->term())));

  // p2 continues the WAL after the last complete record.
  const TestWal more = MakeTestWal(kStart, 120, 13);  // same prefix, more records
  ASSERT_NO_FATAL_FAILURE(Stream(*p2, more, {more.record_ends[90], more.record_ends[119]}));
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(ReadCommitted(i, tl, kStart, more.end()) == more.bytes) << "safekeeper " << i;
  }
}

TEST_F(SafekeeperServiceTest, ABranchStartsMidPageAndIgnoresItsParentsWal) {
  const TimelineId tl(1, 4);
  const TestWal parent = MakeTestWal(kStart, 50, 14);
  const Lsn branch = parent.record_ends[30];
  ASSERT_FALSE(branch.IsPageBoundary());
  Lsn start;
  auto p = Elected(Options(tl, branch), &start);
  EXPECT_EQ(start, branch);
  // The compute rewrites the branch point's page: parent WAL below, its own after.
  ASSERT_NO_FATAL_FAILURE(Stream(*p, parent, {parent.record_ends[31], parent.record_ends[49]}));
  EXPECT_TRUE(ReadCommitted(0, tl, branch, parent.end()) == parent.bytes.substr(branch - kStart));
  SafekeeperClient client(sks_[0]->address());
  EXPECT_TRUE(absl::IsOutOfRange(client.ReadWal(kTenant, tl, kStart, branch).status()));
}

TEST_F(SafekeeperServiceTest, ALaggingSafekeeperIsBroughtUpToDateFromItsPeers) {
  const TimelineId tl(1, 5);
  sks_[2]->Stop();
  Lsn start;
  auto p = Elected(Options(tl), &start);
  // More than the proposer keeps for a safekeeper it never reached.
  const TestWal wal = MakeTestWal(kStart, 2500, 15);
  ASSERT_GT(wal.bytes.size(), 2u << 20);
  std::vector<Lsn> flushes;
  for (size_t i = 49; i < wal.record_ends.size(); i += 50) flushes.push_back(wal.record_ends[i]);
  flushes.push_back(wal.end());
  ASSERT_NO_FATAL_FAILURE(Stream(*p, wal, flushes));
  ASSERT_NO_FATAL_FAILURE(StartSafekeeper(2));
  // The restarted safekeeper listens on a new port: a new proposer term reaches it.
  Lsn start2;
  auto p2 = Elected(Options(tl, kStart, "p2"), &start2);
  EXPECT_EQ(start2, wal.end());
  EXPECT_TRUE(ReadCommitted(2, tl, kStart, wal.end()) == wal.bytes);
}

TEST_F(SafekeeperServiceTest, WaitForFlushNamesUnreachableSafekeepers) {
  const TimelineId tl(1, 6);
  Lsn start;
  auto p = Elected(Options(tl), &start);
  const std::string down1 = sks_[0]->address(), down2 = sks_[1]->address();
  sks_[0]->Stop();
  sks_[1]->Stop();
  const TestWal wal = MakeTestWal(kStart, 5, 16);
  ASSERT_TRUE(p->Append(kStart, wal.bytes).ok());
  absl::Status stalled = p->WaitForFlush(wal.end(), absl::Seconds(1));
  EXPECT_TRUE(absl::IsUnavailable(stalled)) << stalled;
  EXPECT_THAT(stalled.message(), HasSubstr(down1));
  EXPECT_THAT(stalled.message(), HasSubstr(down2));
}

// Polls `done` until it holds or 20 s passed (the safekeepers' maintenance runs
// every 100 ms here).
template <typename F>
bool Eventually(F done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

// `call()` (a unary call on a fresh channel), retried while it is UNAVAILABLE: on
// a loaded machine a first connection can time out.
template <typename F>
absl::Status Retried(F call) {
  absl::Status status;
  Eventually([&] {
    status = call();
    return !absl::IsUnavailable(status);
  });
  return status;
}

// 1 MiB segments (Postgres allows them), so that a few MiB of WAL span segments
// the safekeepers can remove.
class SafekeeperSmallSegmentServiceTest : public SafekeeperServiceTest {
 protected:
  static constexpr uint64_t kSeg = 1 << 20;
  uint64_t SegmentSize() const override { return kSeg; }
};

TEST_F(SafekeeperServiceTest, ADeletedTimelineEndsItsStreamsLosesItsFilesAndStaysDeleted) {
  const TimelineId tl(1, 7);
  Lsn start;
  auto p = Elected(Options(tl), &start);
  const TestWal wal = MakeTestWal(kStart, 100, 17);
  ASSERT_NO_FATAL_FAILURE(Stream(*p, wal, {wal.record_ends[50], wal.end()}));
  ASSERT_EQ(ReadCommitted(0, tl, kStart, wal.end()), wal.bytes);
  SafekeeperClient client0(sks_[0]->address());
  auto follower = client0.Follow(kTenant, tl, wal.end());  // waits for more WAL
  for (int i = 0; i < 3; ++i) {
    SafekeeperClient client(sks_[i]->address());
    absl::Status deleted = Retried([&] { return client.DeleteTimeline(kTenant, tl); });
    ASSERT_TRUE(deleted.ok()) << i << ": " << deleted;
    EXPECT_FALSE(
        std::filesystem::exists(TimelineDir(dir_->Sub("sk" + std::to_string(i)), kTenant, tl)))
        << "safekeeper " << i << " still has the directory";
  }
  // The follower's stream ends with the reason.
  auto next = follower->Next();
  EXPECT_TRUE(absl::IsFailedPrecondition(next.status())) << next.status();
  EXPECT_THAT(next.status().message(), HasSubstr("was deleted"));
  // The writer learns it at its next append, for good.
  const TestWal more = MakeTestWal(kStart, 120, 17);
  ASSERT_TRUE(
      p->Append(wal.end().PageStart(), more.bytes.substr(wal.end().PageStart() - kStart)).ok());
  absl::Status fenced = p->WaitForFlush(more.end(), absl::Seconds(10));
  EXPECT_TRUE(absl::IsFailedPrecondition(fenced)) << fenced;
  EXPECT_THAT(fenced.message(), HasSubstr("was deleted"));
  // A stale proposer cannot bring it back; readers are told why.
  auto stale = WalProposer::Create(Options(tl, kStart, "stale"));
  ASSERT_TRUE(stale.ok());
  auto elected = (*stale)->Elect();
  EXPECT_TRUE(absl::IsFailedPrecondition(elected.status())) << elected.status();
  EXPECT_THAT(elected.status().message(), HasSubstr("was deleted"));
  EXPECT_TRUE(absl::IsFailedPrecondition(client0.ReadWal(kTenant, tl, kStart).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(client0.Status(kTenant, tl).status()));
  EXPECT_TRUE(client0.DeleteTimeline(kTenant, tl).ok()) << "idempotent";
  // Also after a restart.
  sks_[0]->Stop();
  ASSERT_NO_FATAL_FAILURE(StartSafekeeper(0, &fault_fs_[0]));
  SafekeeperClient restarted(sks_[0]->address());
  absl::StatusOr<SafekeeperStatus> status;
  Eventually([&] {
    status = restarted.Status(kTenant, tl);
    return !absl::IsUnavailable(status.status());  // connecting to the new port
  });
  EXPECT_TRUE(absl::IsFailedPrecondition(status.status())) << status.status();
  EXPECT_FALSE(std::filesystem::exists(TimelineDir(dir_->Sub("sk0"), kTenant, tl)));
}

// Two safekeepers trimmed the WAL the pageserver archived while the third was
// down. The proposer brings it up to date from the archive, since no peer holds
// that WAL any more.
TEST_F(SafekeeperSmallSegmentServiceTest,
       ALaggingSafekeeperCatchesUpFromTheArchiveOnceItsPeersTrimmed) {
  const TimelineId tl(1, 8);
  const TestWal wal = MakeTestWal(kStart, 3000, 18, kSeg);
  ASSERT_GT(wal.end(), kStart + 2 * kSeg);
  std::vector<Lsn> flushes;
  for (size_t i = 99; i < wal.record_ends.size(); i += 100) flushes.push_back(wal.record_ends[i]);
  flushes.push_back(wal.end());
  const std::vector<testing::WalWrite> writes = PostgresLikeWrites(kStart, wal.bytes, flushes);
  Lsn start;
  auto p1 = Elected(Options(tl), &start);
  for (size_t i = 0; i < writes.size(); ++i) {
    if (i == 2) {
      // The third safekeeper has the first writes, then goes down.
      ASSERT_EQ(ReadCommitted(2, tl, kStart, flushes[1]), wal.bytes.substr(0, flushes[1] - kStart));
      sks_[2]->Stop();
    }
    absl::Status flushed = AppendAndWait(*p1, writes[i], absl::Seconds(10));
    ASSERT_TRUE(flushed.ok()) << flushed;
  }
  const Lsn lagging_at = flushes[1];
  p1.reset();
  for (int i = 0; i < 2; ++i) {
    SafekeeperClient client(sks_[i]->address());
    ASSERT_TRUE(Retried([&] { return client.ReportArchived(kTenant, tl, wal.end()); }).ok());
    ASSERT_TRUE(Eventually([&] {
      auto s = client.Status(kTenant, tl);
      return s.ok() && s->wal_start > lagging_at;
    })) << "safekeeper "
        << i << " did not trim";
  }
  ASSERT_NO_FATAL_FAILURE(StartSafekeeper(2));
  ProposerOptions o = Options(tl, kStart, "p2");
  o.wal_segment_size = kSeg;
  std::atomic<uint64_t> archived_bytes = 0;
  o.read_archived = [&](Lsn from, Lsn to) -> absl::StatusOr<std::string> {
    if (from < kStart || to > wal.end()) return absl::OutOfRangeError("not archived");
    archived_bytes += to - from;
    return wal.bytes.substr(from - kStart, to - from);
  };
  Lsn start2;
  auto p2 = Elected(o, &start2);
  EXPECT_EQ(start2, wal.end());
  EXPECT_TRUE(ReadCommitted(2, tl, kStart, wal.end()) == wal.bytes);
  EXPECT_GT(archived_bytes.load(), 0u);
}

// A safekeeper whose directory was wiped (rebuilt), after its peers trimmed, with
// no archive to read from: it skips to the first record boundary of the WAL its
// peers store and catches up from there (like a trimmed safekeeper).
TEST_F(SafekeeperSmallSegmentServiceTest, ARebuiltSafekeeperSkipsToTheWalItsPeersStillHold) {
  const TimelineId tl(1, 11);
  const TestWal wal = MakeTestWal(kStart, 3000, 23, kSeg);
  std::vector<Lsn> flushes;
  for (size_t i = 99; i < wal.record_ends.size(); i += 100) flushes.push_back(wal.record_ends[i]);
  flushes.push_back(wal.end());
  Lsn start;
  auto p1 = Elected(Options(tl), &start);
  ASSERT_NO_FATAL_FAILURE(Stream(*p1, wal, flushes));
  p1.reset();
  // The rebuild: stopped, directory wiped.
  sks_[2]->Stop();
  std::filesystem::remove_all(dir_->Sub("sk2"));
  Lsn lowest = Lsn::Max();
  for (int i = 0; i < 2; ++i) {
    SafekeeperClient client(sks_[i]->address());
    ASSERT_TRUE(Retried([&] { return client.ReportArchived(kTenant, tl, wal.end()); }).ok());
    ASSERT_TRUE(Eventually([&] {
      auto s = client.Status(kTenant, tl);
      if (s.ok() && s->wal_start > kStart + kSeg) lowest = std::min(lowest, s->wal_start);
      return s.ok() && s->wal_start > kStart + kSeg;
    })) << "safekeeper "
        << i << " did not trim";
  }
  ASSERT_NO_FATAL_FAILURE(StartSafekeeper(2));
  ProposerOptions o = Options(tl, kStart, "p2");
  o.wal_segment_size = kSeg;
  Lsn start2;
  auto p2 = Elected(o, &start2);
  EXPECT_EQ(start2, wal.end());
  SafekeeperClient rebuilt(sks_[2]->address());
  ASSERT_TRUE(Eventually([&] {
    auto s = rebuilt.Status(kTenant, tl);
    return s.ok() && s->committed_lsn >= wal.end();
  }));
  auto status = rebuilt.Status(kTenant, tl);
  ASSERT_TRUE(status.ok());
  // A record boundary at or above the WAL its peers still store: never below it.
  EXPECT_GE(status->wal_start, lowest);
  EXPECT_LT(status->wal_start, wal.end());
  EXPECT_TRUE(
      std::binary_search(wal.record_ends.begin(), wal.record_ends.end(), status->wal_start) ||
      status->wal_start.IsPageBoundary())
      << status->wal_start.ToString();
  const Lsn from = status->wal_start;
  EXPECT_TRUE(ReadCommitted(2, tl, from, wal.end()) == wal.bytes.substr(from - kStart));
  // A restart recovers it as it is.
  sks_[2]->Stop();
  ASSERT_NO_FATAL_FAILURE(StartSafekeeper(2));
  SafekeeperClient restarted(sks_[2]->address());
  absl::StatusOr<SafekeeperStatus> after;
  Eventually([&] {
    after = restarted.Status(kTenant, tl);
    return !absl::IsUnavailable(after.status());  // connecting to the new port
  });
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->wal_start, from);
  EXPECT_EQ(after->record_end, wal.end());
}

// Two safekeepers cannot write (a full copy-on-write disk): WaitForFlush says so
// and acknowledges nothing; once space is freed the same proposer resumes.
TEST_F(SafekeeperServiceTest, AFullDiskStallsCommitsWithAClearErrorAndTheyResumeOnceFreed) {
  const TimelineId tl(1, 9);
  FaultFileSystem& fs0 = fault_fs_[0];
  FaultFileSystem& fs1 = fault_fs_[1];
  Lsn start;
  auto p = Elected(Options(tl), &start);
  const TestWal wal = MakeTestWal(kStart, 200, 19);
  const auto writes = PostgresLikeWrites(wal.start, wal.bytes, {wal.record_ends[99], wal.end()});
  ASSERT_TRUE(AppendAndWait(*p, writes[0]).ok());
  fs0.SetDiskFull(DiskFull::kNoWrites);
  fs1.SetDiskFull(DiskFull::kNoWrites);
  const absl::Status stalled = AppendRefused(*p, writes[1]);
  ASSERT_TRUE(absl::IsResourceExhausted(stalled)) << stalled;
  EXPECT_THAT(stalled.message(), HasSubstr(sks_[0]->address()));
  EXPECT_THAT(stalled.message(), HasSubstr(sks_[1]->address()));
  EXPECT_THAT(stalled.message(), HasSubstr("disk"));
  EXPECT_LT(p->commit_lsn(), writes[1].end()) << "nothing acknowledged";
  fs0.SetDiskFull(DiskFull::kNo);
  fs1.SetDiskFull(DiskFull::kNo);
  absl::Status resumed = p->WaitForFlush(writes[1].end(), absl::Seconds(20));
  EXPECT_TRUE(resumed.ok()) << resumed;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(ReadCommitted(i, tl, kStart, wal.end()) == wal.bytes) << "safekeeper " << i;
  }
}

// Issue 14: WAL the pageserver has not made safe (archived; with an object store,
// uploaded) is bounded. New WAL beyond max_unarchived_wal past the archived LSN is
// refused: commits stall with RESOURCE_EXHAUSTED naming the safekeepers and the
// limit, nothing beyond is acknowledged, and they resume by themselves once the
// pageserver reports progress.
class SafekeeperBackpressureServiceTest : public SafekeeperServiceTest {
 protected:
  static constexpr uint64_t kLimit = 64 << 10;
  uint64_t MaxUnarchivedWal() const override { return kLimit; }
};

TEST_F(SafekeeperBackpressureServiceTest, WalBeyondTheUnarchivedLimitWaitsForThePageserver) {
  const TimelineId tl(1, 21);
  Lsn start;
  auto p = Elected(Options(tl), &start);
  const TestWal wal = MakeTestWal(kStart, 1200, 22);
  ASSERT_GT(wal.end(), kStart + 2 * kLimit) << "the test WAL is too short";
  // The last record ends below half the limit, and at most the limit past the first.
  auto last_end_below = [&](Lsn bound) {
    Lsn end;
    for (Lsn e : wal.record_ends) {
      if (e <= bound) end = e;
    }
    return end;
  };
  const Lsn first = last_end_below(kStart + kLimit / 2);
  const Lsn second = last_end_below(first + kLimit - 1);
  ASSERT_GT(second, kStart + kLimit);
  const auto writes = PostgresLikeWrites(wal.start, wal.bytes, {first, second});
  ASSERT_TRUE(AppendAndWait(*p, writes[0]).ok());
  const absl::Status stalled = AppendRefused(*p, writes[1]);
  ASSERT_TRUE(absl::IsResourceExhausted(stalled)) << stalled;
  for (int i = 0; i < 3; ++i) EXPECT_THAT(stalled.message(), HasSubstr(sks_[i]->address()));
  EXPECT_THAT(stalled.message(), HasSubstr("not archived"));
  EXPECT_THAT(stalled.message(), HasSubstr(absl::StrCat(kLimit)));
  EXPECT_LT(p->commit_lsn(), writes[1].end()) << "nothing beyond the limit is acknowledged";
  // The pageserver archives what was committed: the limit moves past the write.
  for (int i = 0; i < 3; ++i) {
    SafekeeperClient client(sks_[i]->address());
    ASSERT_TRUE(client.ReportArchived(kTenant, tl, p->commit_lsn()).ok());
  }
  absl::Status resumed = p->WaitForFlush(writes[1].end(), absl::Seconds(20));
  EXPECT_TRUE(resumed.ok()) << resumed;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ReadCommitted(i, tl, kStart, second), wal.bytes.substr(0, second - kStart))
        << "safekeeper " << i;
  }
}

// Flips one bit of a committed record in one safekeeper's segment while it runs
// (bit rot after the record was checked on arrival). Reads that include the
// record fail with DATA_LOSS naming the safekeeper and the segment; the other
// safekeepers, and reads after the record, are served.
TEST_F(SafekeeperServiceTest, AFlippedBitInASegmentIsNeverServed) {
  const TimelineId tl(1, 10);
  Lsn start;
  auto p = Elected(Options(tl), &start);
  const TestWal wal = MakeTestWal(kStart, 300, 20);
  ASSERT_NO_FATAL_FAILURE(Stream(*p, wal, {wal.record_ends[150], wal.end()}));
  ASSERT_EQ(ReadCommitted(0, tl, kStart, wal.end()), wal.bytes);
  // A record that spans a page boundary, damaged on its second page.
  size_t k = 100;
  while (wal.record_ends[k].PageStart() == wal.record_ends[k - 1].PageStart() ||
         wal.record_ends[k].PageOffset() < 100) {
    ++k;
  }
  const Lsn damaged = wal.record_ends[k] - 40;
  const std::string segment =
      TimelineDir(dir_->Sub("sk0"), kTenant, tl) + "/" + WalSegmentFileName(1, damaged.SegmentNo());
  const int fd = open(segment.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << segment;
  char byte;
  ASSERT_EQ(pread(fd, &byte, 1, damaged.SegmentOffset()), 1);
  byte ^= 0x10;
  ASSERT_EQ(pwrite(fd, &byte, 1, damaged.SegmentOffset()), 1);
  close(fd);

  SafekeeperClient client(sks_[0]->address());
  // From the start, from inside the record (its first page), from its second page.
  for (Lsn from : {kStart, wal.record_ends[k - 1] + 8, damaged.PageStart()}) {
    auto read = client.ReadWal(kTenant, tl, from, wal.end());
    EXPECT_TRUE(absl::IsDataLoss(read.status())) << from.ToString() << ": " << read.status();
    EXPECT_THAT(read.status().message(), HasSubstr("sk0"));
    EXPECT_THAT(read.status().message(), HasSubstr(WalSegmentFileName(1, damaged.SegmentNo())));
  }
  auto follower = client.Follow(kTenant, tl, kStart);
  std::string followed;
  absl::Status follow_end;
  while (kStart + followed.size() < wal.end()) {
    auto chunk = follower->Next();
    if (!chunk.ok() || !chunk->has_value()) {
      follow_end = chunk.status();
      break;
    }
    followed += (*chunk)->data;
  }
  EXPECT_TRUE(absl::IsDataLoss(follow_end)) << follow_end;
  EXPECT_LE(kStart + followed.size(), wal.record_ends[k - 1]) << "no byte of the record was served";
  EXPECT_EQ(followed, wal.bytes.substr(0, followed.size()));
  // After the damaged record, and on the other safekeepers, all is served.
  auto after = client.ReadWal(kTenant, tl, wal.record_ends[k], wal.end());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(*after == wal.bytes.substr(wal.record_ends[k] - kStart));
  EXPECT_TRUE(ReadCommitted(1, tl, kStart, wal.end()) == wal.bytes);
  // A proposer's recovery read does not take it from there either.
  auto recovered = p->ReadWal(kStart, wal.end());
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_TRUE(*recovered == wal.bytes);
}

}  // namespace
}  // namespace cambium::safekeeper
