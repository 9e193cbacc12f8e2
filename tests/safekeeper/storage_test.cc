// The safekeeper's disk storage: control files, WAL segments, startup recovery
// (torn tails are cut, damage below the commit LSN refuses to start), failed
// fsyncs and full disks never acknowledged, truncation on election, tail-page
// rewrites, segment removal. WAL is valid PostgreSQL 15 WAL from WalBuilder.
#include <fcntl.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "safekeeper/control_file.h"
#include "safekeeper/safekeeper.h"
#include "safekeeper/timeline.h"
#include "tests/harness/temp_dir.h"
#include "tests/harness/wal_builder.h"
#include "tests/safekeeper/fault_file_system.h"
#include "tests/safekeeper/sk_harness.h"

namespace cambium::safekeeper {
namespace {

using ::cambium::testing::TempDir;
using testing::FaultFileSystem;
using ::testing::HasSubstr;
using testing::MakeTestWal;
using testing::PostgresLikeWrites;
using testing::TestWal;

const TenantId kTenant(0x1111, 0x2222);
const TimelineId kTimeline(0x3333, 0x4444);
const Lsn kStorageStart(0x1000000);  // segment 1

// Overwrites `n` bytes at `offset` of a file.
void Scribble(const std::string& path, uint64_t offset, const std::string& bytes) {
  const int fd = open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(pwrite(fd, bytes.data(), bytes.size(), offset), static_cast<ssize_t>(bytes.size()));
  close(fd);
}

TEST(SafekeeperControlFile, RoundTripsEveryField) {
  ControlFileData data;
  data.tenant = kTenant;
  data.timeline = kTimeline;
  data.acceptor.term = 7;
  data.acceptor.history = TermHistory({{2, kStorageStart}, {7, kStorageStart + 800}});
  data.acceptor.timeline_start = kStorageStart;
  data.acceptor.commit_lsn = kStorageStart + 500;
  data.acceptor.archived_lsn = kStorageStart + 100;
  data.wal_start = kStorageStart;
  data.flush_lsn = kStorageStart + 900;
  auto decoded = DecodeControlFile(EncodeControlFile(data), "x");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, data);
}

// The bytes of a control file are a format on disk: they must not change
// without a new format version.
TEST(SafekeeperControlFile, EncodingIsStable) {
  ControlFileData data;
  data.tenant = TenantId(0x0102030405060708, 0x1112131415161718);
  data.timeline = TimelineId(0x2122232425262728, 0x3132333435363738);
  data.acceptor.term = 0x0A0B0C0D0E0F1011;
  data.acceptor.history = TermHistory({{2, kStorageStart}, {7, kStorageStart + 0x320}});
  data.acceptor.timeline_start = kStorageStart;
  data.acceptor.commit_lsn = kStorageStart + 0x200;
  data.acceptor.archived_lsn = kStorageStart + 0x100;
  data.wal_start = kStorageStart;
  data.flush_lsn = kStorageStart + 0x400;
  EXPECT_EQ(absl::BytesToHexString(EncodeControlFile(data)),
            "434d42534b43544c0100000074000000"  // magic, version 1, payload length
            "01020304050607081112131415161718"  // tenant
            "21222324252627283132333435363738"  // timeline
            "11100f0e0d0c0b0a0000000100000000"  // term, timeline start
            "00020001000000000001000100000000"  // commit LSN, archived LSN
            "00000001000000000004000100000000"  // lowest stored LSN, flush LSN
            "02000000"                          // history: 2 entries
            "02000000000000000000000100000000"
            "07000000000000002003000100000000"
            "6e1cc7a15d245fb6");  // Checksum64
}

TEST(SafekeeperControlFile, DetectsCorruptionAndNamesTheFile) {
  auto dir = TempDir::Create();
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->Sub(kControlFileName);
  ControlFileData data;
  data.tenant = kTenant;
  data.timeline = kTimeline;
  data.acceptor.term = 3;
  ASSERT_TRUE(WriteControlFile(FileSystem::Default(), path, data).ok());
  std::string bytes = *ReadWholeFile(FileSystem::Default(), path);
  for (size_t at : {size_t{0}, size_t{20}, bytes.size() - 3}) {
    std::string bad = bytes;
    bad[at] ^= 1;
    auto decoded = DecodeControlFile(bad, path);
    EXPECT_TRUE(absl::IsDataLoss(decoded.status())) << at << ": " << decoded.status();
    EXPECT_THAT(decoded.status().message(), HasSubstr(path));
  }
  EXPECT_TRUE(absl::IsDataLoss(DecodeControlFile(bytes.substr(0, 30), path).status()));
}

// A timeline on disk driven through its Acceptor, as the service does.
class SafekeeperTimelineTest : public ::testing::Test {
 protected:
  virtual uint64_t SegmentSize() const { return kDefaultWalSegmentSize; }
  void SetUp() override {
    auto dir = TempDir::Create("cambium-sk-test-");
    ASSERT_TRUE(dir.ok());
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    tl_dir_ = TimelineDir(dir_->path(), kTenant, kTimeline);
    ASSERT_TRUE(fs_.CreateDir(dir_->path() + "/" + kTenant.ToString()).ok());
    auto tl =
        Timeline::Create(&fs_, tl_dir_, "sk1", kTenant, kTimeline, kStorageStart, SegmentSize());
    ASSERT_TRUE(tl.ok()) << tl.status();
    tl_ = std::move(*tl);
  }
  absl::Status Reopen() {
    tl_.reset();
    auto tl = Timeline::Open(&fs_, tl_dir_, "sk1", SegmentSize());
    if (!tl.ok()) return tl.status();
    tl_ = std::move(*tl);
    return absl::OkStatus();
  }
  // Elects `term` and starts a stream at `start`; returns the stream token.
  uint64_t Start(Term term, TermHistory history = {}) {
    if (history.empty()) history = TermHistory({{term, kStorageStart}});
    EXPECT_TRUE(tl_->Vote({term, kStorageStart}).ok());
    auto ack = tl_->AppendStart({term, history, history.back().start, kStorageStart});
    EXPECT_TRUE(ack.ok()) << ack.status();
    return ack.ok() ? ack->stream : 0;
  }
  // Writes `wal` as Postgres would, flushing at every record end; the last write's
  // commit LSN covers everything.
  void WriteAll(Term term, uint64_t stream, const TestWal& wal, Lsn commit = Lsn()) {
    for (const auto& w : PostgresLikeWrites(wal.start, wal.bytes, wal.record_ends)) {
      auto ack = tl_->AppendData({term, stream, w.lsn, w.bytes, commit});
      ASSERT_TRUE(ack.ok()) << ack.status();
    }
  }
  std::string ReadStored(Lsn from, Lsn to) {
    std::string out;
    EXPECT_TRUE(tl_->Read(from, to - from, /*term=*/0, &out).ok());
    return out;
  }
  std::string SegmentPath(uint64_t segno) const {
    return tl_dir_ + "/" + WalSegmentFileName(1, segno, SegmentSize());
  }
  // Names in the timeline directory that are temporary files.
  std::vector<std::string> TemporaryFiles() {
    std::vector<std::string> tmp;
    const auto names = fs_.ListDir(tl_dir_);
    for (const std::string& name : names.value()) {
      if (name.find(".tmp") != std::string::npos) tmp.push_back(name);
    }
    return tmp;
  }

  FaultFileSystem fs_;
  std::unique_ptr<TempDir> dir_;
  std::string tl_dir_;
  std::unique_ptr<Timeline> tl_;
};

TEST_F(SafekeeperTimelineTest, RecoversTheEndOfWalByDecodingAfterARestart) {
  const TestWal wal = MakeTestWal(kStorageStart, 60, 1);
  const uint64_t s = Start(1);
  WriteAll(1, s, wal);
  auto before = tl_->Status();
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->record_end, wal.end());
  ASSERT_TRUE(Reopen().ok());
  auto after = tl_->Status();
  ASSERT_TRUE(after.ok());
  // The zero padding of the last page is not WAL: the end is the last record's.
  EXPECT_EQ(after->flush_lsn, wal.end());
  EXPECT_EQ(after->term, 1u);
  EXPECT_EQ(after->history, TermHistory({{1, kStorageStart}}));
  EXPECT_EQ(ReadStored(kStorageStart, wal.end()), wal.bytes);
}

TEST_F(SafekeeperTimelineTest, CutsATornTailAtStartup) {
  const TestWal wal = MakeTestWal(kStorageStart, 30, 2);
  const uint64_t s = Start(1);
  WriteAll(1, s, wal);
  // An unacknowledged write that only partly reached the disk: half a record.
  TestWal longer = MakeTestWal(kStorageStart, 31, 2);
  const std::string torn = longer.bytes.substr(wal.bytes.size(), 20);
  Scribble(SegmentPath(1), wal.end().SegmentOffset(), torn + std::string(5, 'x'));
  ASSERT_TRUE(Reopen().ok());
  auto status = tl_->Status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->flush_lsn, wal.end());
  EXPECT_EQ(ReadStored(kStorageStart, wal.end()), wal.bytes);
  EXPECT_EQ(ReadStored(wal.end(), wal.end() + 25), std::string(25, '\0')) << "tail zeroed";
}

TEST_F(SafekeeperTimelineTest, DamageBelowTheCommitLsnRefusesToStartNamingTheSegment) {
  const TestWal wal = MakeTestWal(kStorageStart, 40, 3);
  const uint64_t s = Start(1);
  WriteAll(1, s, wal, wal.end());
  ASSERT_TRUE(tl_->Checkpoint().ok());  // persists the commit LSN
  tl_.reset();
  Scribble(SegmentPath(1), (wal.record_ends[10] - kStorageStart) + 40, "garbage");
  absl::Status reopened = Reopen();
  EXPECT_TRUE(absl::IsDataLoss(reopened)) << reopened;
  EXPECT_THAT(reopened.message(), HasSubstr(SegmentPath(1)));

  // The whole safekeeper refuses to start, with the same explanation.
  SafekeeperOptions options;
  options.data_dir = dir_->path();
  auto sk = Safekeeper::Open(options);
  EXPECT_TRUE(absl::IsDataLoss(sk.status())) << sk.status();
  EXPECT_THAT(sk.status().message(), HasSubstr("000000010000000000000001"));
}

TEST_F(SafekeeperTimelineTest, ACorruptControlFileRefusesToStartNamingTheFile) {
  Start(4);
  tl_.reset();
  Scribble(tl_dir_ + "/" + kControlFileName, 30, "\x55\x66");
  SafekeeperOptions options;
  options.data_dir = dir_->path();
  auto sk = Safekeeper::Open(options);
  EXPECT_TRUE(absl::IsDataLoss(sk.status())) << sk.status();
  EXPECT_THAT(sk.status().message(), HasSubstr(tl_dir_ + "/" + kControlFileName));
}

TEST_F(SafekeeperTimelineTest, AFailedFsyncIsNeverAcknowledged) {
  const TestWal wal = MakeTestWal(kStorageStart, 20, 4);
  const uint64_t s = Start(1);
  const auto writes = PostgresLikeWrites(wal.start, wal.bytes, wal.record_ends);
  ASSERT_GT(writes.size(), 3u);
  for (size_t i = 0; i < 2; ++i)
    ASSERT_TRUE(tl_->AppendData({1, s, writes[i].lsn, writes[i].bytes, Lsn()}).ok());
  const Lsn acked = writes[1].end();
  fs_.FailNextSync(WalSegmentFileName(1, 1));
  auto failed = tl_->AppendData({1, s, writes[2].lsn, writes[2].bytes, Lsn()});
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(tl_->Status()->flush_lsn, acked);
  // Nothing more is accepted until a restart recovers from what is on disk.
  auto refused = tl_->AppendData({1, s, writes[2].lsn, writes[2].bytes, Lsn()});
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_FALSE(tl_->Vote({2, kStorageStart}).ok());
  ASSERT_TRUE(Reopen().ok());
  EXPECT_GE(tl_->Status()->flush_lsn, wal.record_ends[1]);
  EXPECT_EQ(ReadStored(kStorageStart, wal.record_ends[1]),
            wal.bytes.substr(0, wal.record_ends[1] - kStorageStart));
}

TEST_F(SafekeeperTimelineTest, AFullDiskOrATornWriteIsNeverAcknowledged) {
  const TestWal wal = MakeTestWal(kStorageStart, 20, 5);
  const uint64_t s = Start(1);
  const auto writes = PostgresLikeWrites(wal.start, wal.bytes, wal.record_ends);
  ASSERT_TRUE(tl_->AppendData({1, s, writes[0].lsn, writes[0].bytes, Lsn()}).ok());
  fs_.TearNextWrite(WalSegmentFileName(1, 1), 100);
  EXPECT_FALSE(tl_->AppendData({1, s, writes[1].lsn, writes[1].bytes, Lsn()}).ok());
  EXPECT_EQ(tl_->Status()->flush_lsn, writes[0].end());
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(ReadStored(kStorageStart, wal.record_ends[0]),
            wal.bytes.substr(0, wal.record_ends[0] - kStorageStart));

  const uint64_t s2 = Start(2, TermHistory({{2, kStorageStart}}));
  fs_.FailNextWriteNoSpace(WalSegmentFileName(1, 1));
  auto full = tl_->AppendData({2, s2, writes[0].lsn, writes[0].bytes, Lsn()});
  EXPECT_TRUE(absl::IsResourceExhausted(full.status())) << full.status();
}

// A failed fdatasync stops the timeline even when its errno is ENOSPC: unlike a
// refused write, it leaves a page cache that no longer says what is on disk.
TEST_F(SafekeeperTimelineTest, AFailedFsyncStopsTheTimelineEvenWhenItSaysTheDiskIsFull) {
  const TestWal wal = MakeTestWal(kStorageStart, 20, 8);
  const uint64_t s = Start(1);
  const auto writes = PostgresLikeWrites(wal.start, wal.bytes, wal.record_ends);
  ASSERT_TRUE(tl_->AppendData({1, s, writes[0].lsn, writes[0].bytes, Lsn()}).ok());
  fs_.FailNextSync(WalSegmentFileName(1, 1), ENOSPC);
  auto failed = tl_->AppendData({1, s, writes[1].lsn, writes[1].bytes, Lsn()});
  EXPECT_FALSE(failed.ok());
  EXPECT_FALSE(absl::IsResourceExhausted(failed.status())) << failed.status();
  auto refused = tl_->AppendData({1, s, writes[1].lsn, writes[1].bytes, Lsn()});
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_EQ(tl_->Status()->flush_lsn, writes[0].end());
}

// A vote needs a control file rewrite: on a full disk it is refused, nothing is
// promised, and the timeline goes on in its current term.
TEST_F(SafekeeperTimelineTest, AFullDiskDuringAVoteGrantsNothingAndKeepsTheTimelineUsable) {
  const TestWal wal = MakeTestWal(kStorageStart, 20, 10);
  const uint64_t s = Start(1);
  const auto writes = PostgresLikeWrites(wal.start, wal.bytes, wal.record_ends);
  ASSERT_TRUE(tl_->AppendData({1, s, writes[0].lsn, writes[0].bytes, Lsn()}).ok());
  fs_.SetDiskFull(testing::DiskFull::kNoNewSpace);
  auto vote = tl_->Vote({2, kStorageStart});
  EXPECT_TRUE(absl::IsResourceExhausted(vote.status())) << vote.status();
  EXPECT_THAT(vote.status().message(), HasSubstr("sk1"));
  EXPECT_THAT(vote.status().message(), HasSubstr(tl_dir_));
  EXPECT_THAT(vote.status().message(), HasSubstr("disk"));
  EXPECT_TRUE(TemporaryFiles().empty());
  // Appends of term 1 land in the allocated segment and are acknowledged.
  for (size_t i = 1; i < writes.size(); ++i) {
    auto ack = tl_->AppendData({1, s, writes[i].lsn, writes[i].bytes, Lsn()});
    ASSERT_TRUE(ack.ok()) << i << ": " << ack.status();
  }
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(tl_->Status()->term, 1u) << "the refused vote left no promise on disk";
  EXPECT_EQ(tl_->Status()->flush_lsn, wal.end());
  fs_.SetDiskFull(testing::DiskFull::kNo);
  auto granted = tl_->Vote({2, kStorageStart});
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_TRUE(granted->granted);
}

// 1 MiB segments (Postgres allows them), so that appends cross segments quickly.
class SafekeeperSmallSegmentTest : public SafekeeperTimelineTest {
 protected:
  static constexpr uint64_t kSeg = 1 << 20;
  uint64_t SegmentSize() const override { return kSeg; }
};

// Appends inside an allocated segment need no space; the one that needs the next
// segment is refused (RESOURCE_EXHAUSTED, nothing acknowledged, the timeline not
// stopped) until space is freed, then it and the rest go through with no restart.
TEST_F(SafekeeperSmallSegmentTest, AFullDiskRefusesTheAppendThatNeedsANewSegmentUntilFreed) {
  const TestWal wal = MakeTestWal(kStorageStart, 1500, 17, kSeg);
  ASSERT_GT(wal.end(), kStorageStart + kSeg + kSeg / 4);
  std::vector<Lsn> flushes;
  for (size_t i = 4; i < wal.record_ends.size(); i += 5) flushes.push_back(wal.record_ends[i]);
  const auto writes = PostgresLikeWrites(wal.start, wal.bytes, flushes);
  const uint64_t s = Start(1);
  ASSERT_TRUE(tl_->AppendData({1, s, writes[0].lsn, writes[0].bytes, Lsn()}).ok());
  fs_.SetDiskFull(testing::DiskFull::kNoNewSpace);
  const Lsn next_segment = kStorageStart + kSeg;
  size_t i = 1;
  for (; writes[i].end() <= next_segment; ++i) {
    auto ack = tl_->AppendData({1, s, writes[i].lsn, writes[i].bytes, writes[i - 1].end()});
    ASSERT_TRUE(ack.ok()) << "within the allocated segment: " << ack.status();
  }
  const Lsn acked = writes[i - 1].end();
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto full = tl_->AppendData({1, s, writes[i].lsn, writes[i].bytes, acked});
    EXPECT_TRUE(absl::IsResourceExhausted(full.status())) << attempt << ": " << full.status();
    EXPECT_THAT(full.status().message(), HasSubstr("sk1"));
    EXPECT_THAT(full.status().message(), HasSubstr(tl_dir_));
    EXPECT_THAT(full.status().message(), HasSubstr("full"));
    EXPECT_EQ(tl_->Status()->flush_lsn, acked) << "nothing acknowledged";
    EXPECT_TRUE(TemporaryFiles().empty()) << "the partial segment gave its space back";
    // The maintenance thread keeps trying to create the segment, and fails cleanly.
    absl::Status checkpoint = tl_->Checkpoint();
    EXPECT_TRUE(absl::IsResourceExhausted(checkpoint)) << checkpoint;
  }
  EXPECT_GT(fs_.no_space_refusals(), 0);
  fs_.SetDiskFull(testing::DiskFull::kNo);
  ASSERT_TRUE(tl_->Checkpoint().ok());
  EXPECT_TRUE(fs_.Exists(SegmentPath(next_segment.SegmentNo(kSeg))));
  for (; i < writes.size(); ++i) {
    auto ack = tl_->AppendData({1, s, writes[i].lsn, writes[i].bytes, writes[i - 1].end()});
    ASSERT_TRUE(ack.ok()) << ack.status();
  }
  EXPECT_EQ(ReadStored(kStorageStart, wal.end()), wal.bytes);
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(tl_->Status()->flush_lsn, wal.end());
  EXPECT_EQ(ReadStored(kStorageStart, wal.end()), wal.bytes);
}

// A refused write may leave complete records above the flush LSN (the part that
// fit in the allocated segment). A new term whose history continues at the flush
// LSN must not inherit them: after a restart they would be read as its WAL.
TEST_F(SafekeeperSmallSegmentTest, ARefusedWriteLeavesNothingANewTermCouldInherit) {
  const TestWal wal = MakeTestWal(kStorageStart, 1500, 21, kSeg);
  const Lsn boundary = kStorageStart + kSeg;
  size_t k = 0;
  while (wal.record_ends[k + 3] < boundary - 1024) ++k;
  size_t j = k;
  while (wal.record_ends[j] <= boundary) ++j;
  const Lsn acked = wal.record_ends[k];
  const uint64_t s = Start(1);
  ASSERT_TRUE(
      tl_->AppendData({1, s, kStorageStart, wal.bytes.substr(0, acked - kStorageStart), Lsn()})
          .ok());
  fs_.SetDiskFull(testing::DiskFull::kNoNewSpace);
  auto refused = tl_->AppendData(
      {1, s, acked, wal.bytes.substr(acked - kStorageStart, wal.record_ends[j] - acked), Lsn()});
  ASSERT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  fs_.SetDiskFull(testing::DiskFull::kNo);
  const TermHistory h2({{1, kStorageStart}, {2, acked}});
  ASSERT_TRUE(tl_->Vote({2, kStorageStart}).ok());
  ASSERT_TRUE(tl_->AppendStart({2, h2, acked, kStorageStart}).ok());
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(tl_->Status()->flush_lsn, acked);
  EXPECT_EQ(tl_->Status()->history, h2);
  EXPECT_EQ(ReadStored(acked, acked + 64), std::string(64, '\0'));
}

// A safekeeper whose WAL ends below what its peers still store is told to skip:
// it drops its WAL and stores from a record boundary at or below the commit LSN,
// exactly like one that removed its archived segments; a restart recovers it.
TEST_F(SafekeeperSmallSegmentTest, SkipsAheadToARecordBoundaryBelowTheCommitLsn) {
  const TestWal wal = MakeTestWal(kStorageStart, 1500, 22, kSeg);
  const uint64_t s = Start(1);
  const Lsn held = wal.record_ends[10];
  ASSERT_TRUE(
      tl_->AppendData({1, s, kStorageStart, wal.bytes.substr(0, held - kStorageStart), held}).ok());
  size_t k = 0;
  while (wal.record_ends[k] <= kStorageStart + kSeg) ++k;
  const Lsn skip = wal.record_ends[k];
  const std::string rest = wal.bytes.substr(skip - kStorageStart);
  // Only to a committed point.
  auto refused = tl_->AppendData({1, s, skip, rest, skip - 8, /*skip_to_start=*/true});
  EXPECT_TRUE(absl::IsInvalidArgument(refused.status())) << refused.status();
  auto skipped = tl_->AppendData({1, s, skip, rest, wal.end(), /*skip_to_start=*/true});
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_EQ(skipped->flush_lsn, wal.end());
  EXPECT_FALSE(fs_.Exists(SegmentPath(kStorageStart.SegmentNo(kSeg))))
      << "the WAL below is dropped";
  EXPECT_TRUE(absl::IsOutOfRange(tl_->ReadLimit(held, Lsn(), 0).status()));
  EXPECT_EQ(ReadStored(skip, wal.end()), rest);
  ASSERT_TRUE(Reopen().ok());
  auto status = tl_->Status();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->wal_start, skip);
  EXPECT_EQ(status->flush_lsn, wal.end());
  EXPECT_EQ(status->record_end, wal.end());
  EXPECT_EQ(ReadStored(skip, wal.end()), rest);
}

// The control file cannot be rewritten on a full disk; the lazily persisted
// commit LSN waits, appends go on, and it is persisted once space is back.
TEST_F(SafekeeperSmallSegmentTest, AFullDiskDelaysTheLazyControlFileWriteWithoutStoppingAppends) {
  const TestWal wal = MakeTestWal(kStorageStart, 60, 18, kSeg);
  const auto writes = PostgresLikeWrites(wal.start, wal.bytes, wal.record_ends);
  const uint64_t s = Start(1);
  fs_.SetDiskFull(testing::DiskFull::kNoNewSpace);
  auto first = tl_->AppendData({1, s, writes[0].lsn, writes[0].bytes, Lsn()});
  EXPECT_TRUE(absl::IsResourceExhausted(first.status())) << "the first segment needs space";
  fs_.SetDiskFull(testing::DiskFull::kNo);
  ASSERT_TRUE(tl_->AppendData({1, s, writes[0].lsn, writes[0].bytes, Lsn()}).ok());
  fs_.SetDiskFull(testing::DiskFull::kNoNewSpace);
  for (size_t i = 1; i < writes.size(); ++i) {
    auto ack = tl_->AppendData({1, s, writes[i].lsn, writes[i].bytes, writes[i - 1].end()});
    ASSERT_TRUE(ack.ok()) << ack.status();
  }
  EXPECT_TRUE(absl::IsResourceExhausted(tl_->Checkpoint()));
  EXPECT_TRUE(TemporaryFiles().empty());
  EXPECT_EQ(ReadControlFile(&fs_, tl_dir_ + "/" + kControlFileName)->acceptor.commit_lsn,
            kStorageStart);
  fs_.SetDiskFull(testing::DiskFull::kNo);
  ASSERT_TRUE(tl_->Checkpoint().ok());
  EXPECT_GT(ReadControlFile(&fs_, tl_dir_ + "/" + kControlFileName)->acceptor.commit_lsn,
            kStorageStart);
}

TEST_F(SafekeeperTimelineTest, ElectionTruncatesDivergentWalDurably) {
  const TestWal wal = MakeTestWal(kStorageStart, 30, 6);
  const uint64_t s = Start(1);
  WriteAll(1, s, wal);
  const Lsn cut = wal.record_ends[9];
  const TermHistory h3({{1, kStorageStart}, {3, cut}});
  ASSERT_TRUE(tl_->Vote({3, kStorageStart}).ok());
  auto ack = tl_->AppendStart({3, h3, cut, kStorageStart});
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_EQ(ack->flush_lsn, cut);
  ASSERT_TRUE(Reopen().ok());
  auto status = tl_->Status();
  EXPECT_EQ(status->flush_lsn, cut);
  EXPECT_EQ(status->history, h3);
  EXPECT_EQ(status->term, 3u);
  EXPECT_EQ(ReadStored(cut, cut + 64), std::string(64, '\0'));
}

TEST_F(SafekeeperTimelineTest, ServesOnlyCompleteCommittedRecordsWithoutATerm) {
  const TestWal wal = MakeTestWal(kStorageStart, 10, 7);
  const uint64_t s = Start(1);
  // Commit LSN in the middle of record 6: readers get records 0..5.
  const Lsn commit = wal.record_ends[5] + 10;
  WriteAll(1, s, wal, commit);
  auto window = tl_->ReadLimit(kStorageStart, Lsn(), 0);
  ASSERT_TRUE(window.ok());
  EXPECT_EQ(window->limit, wal.record_ends[5]);
  // A proposer of the current term may read up to the flush LSN.
  auto recovery = tl_->ReadLimit(kStorageStart, wal.end(), 1);
  ASSERT_TRUE(recovery.ok());
  EXPECT_EQ(recovery->limit, wal.end());
  EXPECT_EQ(tl_->ReadLimit(kStorageStart, wal.end(), 7)->limit, wal.record_ends[5]);
}

// Postgres rewrites its last partial page: the zeros after the last record become
// records, and the commit LSN (the zero-padded page end) comes back to the same
// value. Readers must then get the new records, not a result cached for the old
// bytes (a follower once waited forever for them).
TEST_F(SafekeeperTimelineTest, ARewrittenTailPageBecomesReadableAtTheSameCommitLsn) {
  const TestWal wal = MakeTestWal(kStorageStart, 40, 9);
  size_t i = 0;
  while (i + 1 < wal.record_ends.size() &&
         (wal.record_ends[i].IsPageBoundary() ||
          wal.record_ends[i].PageStart() != wal.record_ends[i + 1].PageStart() ||
          wal.record_ends[i + 1].IsPageBoundary())) {
    ++i;
  }
  ASSERT_LT(i + 1, wal.record_ends.size()) << "no two records end in one page";
  const Lsn first = wal.record_ends[i], second = wal.record_ends[i + 1];
  const Lsn page_end = first.PageStart() + kWalPageSize;
  const uint64_t s = Start(1);
  for (const auto& w : PostgresLikeWrites(wal.start, wal.bytes, {first})) {
    ASSERT_TRUE(tl_->AppendData({1, s, w.lsn, w.bytes, page_end}).ok());
  }
  ASSERT_EQ(tl_->ReadLimit(kStorageStart, Lsn(), 0)->limit, first);
  // The page again, now with one more record; the commit LSN is the page end again.
  const auto rewrite = PostgresLikeWrites(wal.start, wal.bytes, {first, second}).back();
  ASSERT_EQ(rewrite.lsn, first.PageStart());
  ASSERT_TRUE(tl_->AppendData({1, s, rewrite.lsn, rewrite.bytes, page_end}).ok());
  EXPECT_EQ(tl_->Status()->commit_lsn, page_end);
  EXPECT_EQ(tl_->ReadLimit(kStorageStart, Lsn(), 0)->limit, second);
  EXPECT_EQ(tl_->Status()->committed_record_lsn, second);
}

// A single flipped bit in a committed record is found at startup and refuses it,
// naming the segment (not cut as if it were a torn tail).
TEST_F(SafekeeperTimelineTest, AFlippedBitBelowTheCommitLsnRefusesToStart) {
  const TestWal wal = MakeTestWal(kStorageStart, 40, 19);
  const uint64_t s = Start(1);
  WriteAll(1, s, wal, wal.end());
  ASSERT_TRUE(tl_->Checkpoint().ok());
  tl_.reset();
  const Lsn at = wal.record_ends[20] + 30;  // inside record 21
  std::string byte;
  ASSERT_TRUE(ReadWholeFile(&fs_, SegmentPath(1)).ok());
  byte = ReadWholeFile(&fs_, SegmentPath(1))->substr(at.SegmentOffset(), 1);
  byte[0] ^= 0x01;
  Scribble(SegmentPath(1), at.SegmentOffset(), byte);
  absl::Status reopened = Reopen();
  EXPECT_TRUE(absl::IsDataLoss(reopened)) << reopened;
  EXPECT_THAT(reopened.message(), HasSubstr(SegmentPath(1)));
}

// DeleteTimeline leaves a tombstone first: a crash part-way (here a failed
// unlink) is finished at the next startup, even though what is left would not
// open as a timeline, and the timeline can never be created again.
TEST(SafekeeperDeletion, ACrashPartWayIsFinishedAtStartupAndTheTimelineStaysDeleted) {
  auto dir = TempDir::Create("cambium-sk-test-");
  ASSERT_TRUE(dir.ok());
  FaultFileSystem fs;
  SafekeeperOptions options;
  options.data_dir = dir->path();
  options.fs = &fs;
  const TimelineKey key{kTenant, kTimeline};
  const std::string tl_dir = TimelineDir(dir->path(), kTenant, kTimeline);
  {
    auto sk = Safekeeper::Open(options);
    ASSERT_TRUE(sk.ok()) << sk.status();
    auto tl = (*sk)->GetOrCreate(key, kStorageStart);
    ASSERT_TRUE(tl.ok()) << tl.status();
    const TestWal wal = MakeTestWal(kStorageStart, 50, 20);
    ASSERT_TRUE((*tl)->Vote({1, kStorageStart}).ok());
    auto ack =
        (*tl)->AppendStart({1, TermHistory({{1, kStorageStart}}), kStorageStart, kStorageStart});
    ASSERT_TRUE(ack.ok());
    ASSERT_TRUE((*tl)->AppendData({1, ack->stream, kStorageStart, wal.bytes, wal.end()}).ok());
    ASSERT_TRUE((*tl)->Checkpoint().ok());
    // The segment goes, the control file stays: the crash point.
    fs.FailNextRemove(kControlFileName);
    absl::Status deleted = (*sk)->DeleteTimeline(key);
    EXPECT_FALSE(deleted.ok());
    ASSERT_TRUE(fs.Exists(tl_dir + "/" + kControlFileName));
    // Already unusable, also through the reference a handler may still hold.
    EXPECT_TRUE(absl::IsFailedPrecondition((*tl)->Vote({2, kStorageStart}).status()));
    EXPECT_TRUE(absl::IsFailedPrecondition((*sk)->Get(key).status()));
  }
  // The WAL below the commit LSN is gone but the control file is not: opened as
  // a timeline this would refuse to start. The tombstone says to finish instead.
  fs.Remove(tl_dir + "/" + WalSegmentFileName(1, 1)).IgnoreError();
  auto sk = Safekeeper::Open(options);
  ASSERT_TRUE(sk.ok()) << sk.status();
  EXPECT_FALSE(fs.Exists(tl_dir));
  auto recreated = (*sk)->GetOrCreate(key, kStorageStart);
  EXPECT_TRUE(absl::IsFailedPrecondition(recreated.status())) << recreated.status();
  EXPECT_THAT(recreated.status().message(), HasSubstr("was deleted"));
  EXPECT_TRUE((*sk)->DeleteTimeline(key).ok()) << "idempotent";
  // A timeline this safekeeper never saw is tombstoned too.
  const TimelineKey unseen{kTenant, TimelineId(9, 9)};
  EXPECT_TRUE((*sk)->DeleteTimeline(unseen).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition((*sk)->GetOrCreate(unseen, kStorageStart).status()));
}

// A reader of an old segment (the pageserver catching up) while the writer keeps
// newer ones open: the segment just reopened is the oldest in the open-file cache and
// must not be evicted under the reader (a use-after-free that crashed safekeepers
// during a 2 GB pgbench -i).
TEST(SafekeeperWalStorage, ReadsAnOldSegmentWhileManyNewerOnesAreOpen) {
  auto dir = TempDir::Create("cambium-sk-test-");
  ASSERT_TRUE(dir.ok());
  constexpr uint64_t kSeg = 1 << 20;
  WalStorage wal(FileSystem::Default(), dir->path(), kSeg);
  constexpr int kSegments = 12;  // more than the open-file cache holds
  for (int i = 1; i <= kSegments; ++i) {
    ASSERT_TRUE(
        wal.Write(Lsn(i * kSeg), std::string(kWalPageSize, static_cast<char>('a' + i))).ok());
    ASSERT_TRUE(wal.Sync().ok());
  }
  for (int round = 0; round < 3; ++round) {
    for (int i = 1; i <= kSegments; ++i) {
      std::string out;
      ASSERT_TRUE(wal.Read(Lsn(i * kSeg), 100, &out).ok()) << i;
      EXPECT_EQ(out, std::string(100, static_cast<char>('a' + i))) << i;
      // The writer touches the newest segment in between, as Postgres does.
      ASSERT_TRUE(wal.Write(Lsn(kSegments * kSeg),
                            std::string(kWalPageSize, static_cast<char>('a' + kSegments)))
                      .ok());
    }
  }
}

TEST(SafekeeperWalStorage, RemovesArchivedSegmentsAndDecodesAcrossSegments) {
  auto dir = TempDir::Create("cambium-sk-test-");
  ASSERT_TRUE(dir.ok());
  constexpr uint64_t kSeg = 1 << 20;  // Postgres allows 1 MiB segments
  FileSystem* fs = FileSystem::Default();
  ASSERT_TRUE(fs->CreateDir(dir->Sub(kTenant.ToString())).ok());
  const std::string tl_dir = TimelineDir(dir->path(), kTenant, kTimeline);
  auto tl = Timeline::Create(fs, tl_dir, "sk1", kTenant, kTimeline, Lsn(kSeg), kSeg);
  ASSERT_TRUE(tl.ok());
  cambium::testing::WalBuilder builder(Lsn(kSeg), {.segment_size = kSeg});
  while (builder.end() < Lsn(4 * kSeg)) builder.AddWithTotalLen(5000);
  ASSERT_TRUE((*tl)->Vote({1, Lsn(kSeg)}).ok());
  auto ack = (*tl)->AppendStart({1, TermHistory({{1, Lsn(kSeg)}}), Lsn(kSeg), Lsn(kSeg)});
  ASSERT_TRUE(ack.ok());
  for (size_t off = 0; off < builder.bytes().size(); off += 256 * 1024) {
    ASSERT_TRUE((*tl)
                    ->AppendData({1, ack->stream, Lsn(kSeg) + off,
                                  builder.bytes().substr(off, 256 * 1024), builder.end()})
                    .ok());
  }
  (*tl)->ReportArchived(Lsn(3 * kSeg) + 10);
  ASSERT_TRUE((*tl)->Checkpoint().ok());
  WalStorage wal(fs, tl_dir, kSeg);
  auto segments = wal.ListSegments();
  ASSERT_TRUE(segments.ok());
  EXPECT_EQ(segments->front(), 3u) << "segments 1 and 2 are archived and committed";
  EXPECT_TRUE(absl::IsOutOfRange((*tl)->ReadLimit(Lsn(2 * kSeg), Lsn(), 0).status()));
  tl->reset();
  auto reopened = Timeline::Open(fs, tl_dir, "sk1", kSeg);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->Status()->flush_lsn, builder.end());
}

// Once an append passes a quarter of a segment, the next segment is created in the
// background straight away, not at the next checkpoint (an hour away here) nor by
// the append that reaches it (a zero fill and two fsyncs in the commit path).
TEST(SafekeeperPreallocation, TheNextSegmentIsMadeOnceAnAppendPassesAQuarter) {
  constexpr uint64_t kSeg = 1 << 20;
  auto dir = TempDir::Create("cambium-sk-prealloc-");
  ASSERT_TRUE(dir.ok());
  SafekeeperOptions options;
  options.data_dir = dir->path();
  options.id = "sk1";
  options.segment_size = kSeg;
  options.checkpoint_interval = absl::Hours(1);
  auto sk = Safekeeper::Open(options);
  ASSERT_TRUE(sk.ok()) << sk.status();
  (*sk)->StartMaintenance();
  auto tl = (*sk)->GetOrCreate({kTenant, kTimeline}, kStorageStart);
  ASSERT_TRUE(tl.ok()) << tl.status();
  const TestWal wal = MakeTestWal(kStorageStart, 1500, 5, kSeg);
  ASSERT_GT(wal.end(), kStorageStart + kSeg + kSeg / 4);
  std::vector<Lsn> flushes;
  for (size_t i = 4; i < wal.record_ends.size(); i += 5) flushes.push_back(wal.record_ends[i]);
  const auto writes = PostgresLikeWrites(wal.start, wal.bytes, flushes);
  ASSERT_TRUE((*tl)->Vote({1, kStorageStart}).ok());
  auto started =
      (*tl)->AppendStart({1, TermHistory({{1, kStorageStart}}), kStorageStart, kStorageStart});
  ASSERT_TRUE(started.ok()) << started.status();
  const uint64_t s = started->stream;
  const std::string next = TimelineDir(dir->path(), kTenant, kTimeline) + "/" +
                           WalSegmentFileName(1, kStorageStart.SegmentNo(kSeg) + 1, kSeg);
  size_t i = 0;
  for (; writes[i].end() <= kStorageStart + kSeg / 2; ++i) {
    auto ack = (*tl)->AppendData({1, s, writes[i].lsn, writes[i].bytes, Lsn()});
    ASSERT_TRUE(ack.ok()) << ack.status();
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (access(next.c_str(), F_OK) != 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(access(next.c_str(), F_OK), 0) << next << " was not created ahead of the appends";
  for (; i < writes.size(); ++i) {
    auto ack = (*tl)->AppendData({1, s, writes[i].lsn, writes[i].bytes, Lsn()});
    ASSERT_TRUE(ack.ok()) << ack.status();
  }
  std::string stored;
  ASSERT_TRUE((*tl)->Read(kStorageStart, wal.bytes.size(), /*term=*/0, &stored).ok());
  EXPECT_EQ(stored, wal.bytes);
}

}  // namespace
}  // namespace cambium::safekeeper
