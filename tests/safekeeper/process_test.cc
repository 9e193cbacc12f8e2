// Three real cambium-safekeeper processes on loopback and a WalProposer:
//  - kill -9 of one during a stream of appends: appends continue, and after it
//    restarts every safekeeper serves every acknowledged byte;
//  - two down: WaitForFlush stalls with UNAVAILABLE naming them; one back: resumes;
//  - a second proposer fences the first (FAILED_PRECONDITION);
//  - SIGTERM exits cleanly; a corrupt control file stops startup with its name;
//  - on a real full disk (a small tmpfs) appends stall without acknowledging,
//    and resume by themselves, losing nothing, once space is freed.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "safekeeper/control_file.h"
#include "safekeeper/safekeeper_client.h"
#include "safekeeper/timeline_storage.h"
#include "safekeeper/wal_proposer.h"
#include "tests/harness/temp_dir.h"
#include "tests/safekeeper/sk_harness.h"

namespace cambium::safekeeper {
namespace {

using ::cambium::testing::ServiceProcess;
using ::cambium::testing::TempDir;
using testing::AppendAndWait;
using testing::AppendRefused;
using ::testing::HasSubstr;
using testing::MakeTestWal;
using testing::PostgresLikeWrites;
using testing::TestWal;
using testing::WalWrite;

const TenantId kTenant(0x5151, 0x5252);
const TimelineId kTimeline(0x6161, 0x6262);
const Lsn kStart(0x2000000);

class SafekeeperProcessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto dir = TempDir::Create("cambium-sk-proc-");
    ASSERT_TRUE(dir.ok());
    dir_ = new TempDir(std::move(*dir));
    for (int i = 0; i < 3; ++i) {
      auto sk = testing::StartSafekeeperProcess(dir_->Sub("sk" + std::to_string(i)),
                                                "sk" + std::to_string(i));
      ASSERT_TRUE(sk.ok()) << sk.status();
      sks_[i] = sk->release();
    }
    wal_ = new TestWal(MakeTestWal(kStart, 4000, 21));
    flushes_ = new std::vector<Lsn>();
    for (size_t i = 4; i < wal_->record_ends.size(); i += 5)
      flushes_->push_back(wal_->record_ends[i]);
    if (flushes_->back() != wal_->end()) flushes_->push_back(wal_->end());
    writes_ = new std::vector<WalWrite>(PostgresLikeWrites(kStart, wal_->bytes, *flushes_));
    ASSERT_EQ(writes_->size(), flushes_->size());
  }
  static void TearDownTestSuite() {
    for (auto*& sk : sks_) {
      delete sk;  // SIGTERM
      sk = nullptr;
    }
    delete writes_;
    delete flushes_;
    delete wal_;
    delete dir_;
  }
  static ProposerOptions Options(const std::string& name) {
    std::vector<std::string> addresses;
    for (auto* sk : sks_) addresses.push_back(sk->address());
    return testing::TestProposerOptions(addresses, kTenant, kTimeline, kStart, name);
  }
  // Committed WAL [kStart, to) as safekeeper i serves it.
  static std::string ReadCommitted(int i, Lsn to) {
    return testing::ExpectCommittedWal(sks_[i]->address(), kTenant, kTimeline, kStart, to);
  }

  static TempDir* dir_;
  static ServiceProcess* sks_[3];
  static TestWal* wal_;
  static std::vector<WalWrite>* writes_;
  static std::vector<Lsn>* flushes_;  // the record end each write flushes
  static std::unique_ptr<WalProposer> proposer_;
  static size_t next_write_;
};

TempDir* SafekeeperProcessTest::dir_ = nullptr;
ServiceProcess* SafekeeperProcessTest::sks_[3] = {};
TestWal* SafekeeperProcessTest::wal_ = nullptr;
std::vector<WalWrite>* SafekeeperProcessTest::writes_ = nullptr;
std::vector<Lsn>* SafekeeperProcessTest::flushes_ = nullptr;
std::unique_ptr<WalProposer> SafekeeperProcessTest::proposer_;
size_t SafekeeperProcessTest::next_write_ = 0;

// The tests below run in order and share the cluster and the proposer.
TEST_F(SafekeeperProcessTest, KillingOneSafekeeperLosesNoAcknowledgedWal) {
  auto p = WalProposer::Create(Options("p1"));
  ASSERT_TRUE(p.ok());
  proposer_ = std::move(*p);
  auto start = proposer_->Elect();
  ASSERT_TRUE(start.ok()) << start.status();
  ASSERT_EQ(*start, kStart);
  const size_t stop_at = writes_->size() * 2 / 3;
  Lsn acked = kStart;
  // kill -9 while appends are in flight, once a few have gone through.
  std::atomic<bool> killed = false;
  int acked_after_kill = 0;
  std::thread killer;
  // Joined however the test leaves (a failed ASSERT returns from here).
  absl::Cleanup join_killer = [&killer] {
    if (killer.joinable()) killer.join();
  };
  for (; next_write_ < stop_at; ++next_write_) {
    const WalWrite& w = (*writes_)[next_write_];
    if (next_write_ == 50) {
      killer = std::thread([&] {
        absl::SleepFor(absl::Milliseconds(30));
        ASSERT_TRUE(sks_[1]->Kill().ok());
        killed = true;
      });
    }
    absl::Status flushed = AppendAndWait(*proposer_, w);
    ASSERT_TRUE(flushed.ok()) << "write " << next_write_ << ": " << flushed;
    acked = (*flushes_)[next_write_];
    if (killed) ++acked_after_kill;
  }
  // The kill landed while appends were still going, and they went on without it.
  ASSERT_TRUE(killed) << "all " << stop_at << " appends finished before the kill";
  EXPECT_GT(acked_after_kill, 0);
  std::move(join_killer).Invoke();
  // Every record whose flush was acknowledged.
  const Lsn records_end = acked;
  const std::string expected = wal_->bytes.substr(0, records_end - kStart);
  EXPECT_TRUE(ReadCommitted(0, records_end) == expected);
  EXPECT_TRUE(ReadCommitted(2, records_end) == expected);
  ASSERT_TRUE(sks_[1]->Restart().ok());
  EXPECT_TRUE(ReadCommitted(1, records_end) == expected) << "the restarted safekeeper caught up";
}

TEST_F(SafekeeperProcessTest, TwoSafekeepersDownStallsWithAClearStatusAndOneBackResumes) {
  ASSERT_NE(proposer_, nullptr);
  ASSERT_TRUE(sks_[0]->Kill().ok());
  ASSERT_TRUE(sks_[2]->Kill().ok());
  const WalWrite& w = (*writes_)[next_write_++];
  ASSERT_TRUE(proposer_->Append(w.lsn, w.bytes).ok());
  absl::Status stalled = proposer_->WaitForFlush(w.end(), absl::Seconds(1));
  EXPECT_TRUE(absl::IsUnavailable(stalled)) << stalled;
  EXPECT_THAT(stalled.message(), HasSubstr(sks_[0]->address()));
  EXPECT_THAT(stalled.message(), HasSubstr(sks_[2]->address()));
  ASSERT_TRUE(sks_[2]->Restart().ok());
  absl::Status resumed = proposer_->WaitForFlush(w.end(), absl::Seconds(20));
  EXPECT_TRUE(resumed.ok()) << resumed;
  for (; next_write_ < writes_->size() * 5 / 6; ++next_write_) {
    absl::Status flushed = AppendAndWait(*proposer_, (*writes_)[next_write_]);
    ASSERT_TRUE(flushed.ok()) << flushed;
  }
  ASSERT_TRUE(sks_[0]->Restart().ok());
}

TEST_F(SafekeeperProcessTest, ASecondProposerFencesTheFirst) {
  ASSERT_NE(proposer_, nullptr);
  auto p2 = WalProposer::Create(Options("p2"));
  ASSERT_TRUE(p2.ok());
  auto start2 = (*p2)->Elect();
  ASSERT_TRUE(start2.ok()) << start2.status();
  // The new term starts at the end of the last complete record the first wrote.
  EXPECT_EQ(*start2, (*flushes_)[next_write_ - 1]);
  const WalWrite& w = (*writes_)[next_write_];
  ASSERT_TRUE(proposer_->Append(w.lsn, w.bytes).ok());
  absl::Status fenced = proposer_->WaitForFlush(w.end(), absl::Seconds(20));
  EXPECT_TRUE(absl::IsFailedPrecondition(fenced)) << fenced;
  EXPECT_THAT(fenced.message(), HasSubstr("term"));
  // The new proposer continues the timeline.
  for (size_t i = next_write_; i < writes_->size(); ++i) {
    absl::Status flushed = AppendAndWait(**p2, (*writes_)[i]);
    ASSERT_TRUE(flushed.ok()) << flushed;
  }
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(ReadCommitted(i, wal_->end()) == wal_->bytes) << i;
  proposer_.reset();
}

TEST_F(SafekeeperProcessTest, SigtermExitsCleanlyAndACorruptControlFileStopsStartup) {
  absl::StatusOr<int> code = sks_[2]->Stop();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  const std::string log = testing::SafekeeperLogFile(dir_->Sub("sk2"));
  EXPECT_THAT(ReadFileToString(log).value_or(""), HasSubstr("safekeeper_stopped"));
  const std::string control =
      TimelineDir(dir_->Sub("sk2"), kTenant, kTimeline) + "/" + kControlFileName;
  const int fd = open(control.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "XX", 2, 40), 2);
  close(fd);
  EXPECT_FALSE(sks_[2]->Restart().ok());
  EXPECT_THAT(ReadFileToString(log).value_or(""),
              HasSubstr("cannot start: control file " + control));
}

// Fills the file system holding `dir` with a file `dir`/filler until it is full.
// Returns the bytes written.
absl::StatusOr<uint64_t> FillDisk(const std::string& dir) {
  const std::string path = dir + "/filler";
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return absl::InternalError("cannot create " + path);
  const std::string chunk(64 * 1024, 'f');
  uint64_t written = 0;
  for (;;) {
    const ssize_t n = write(fd, chunk.data(), chunk.size());
    if (n <= 0) break;
    written += static_cast<uint64_t>(n);
  }
  const int error = errno;
  close(fd);
  if (error != ENOSPC)
    return absl::InternalError("filling the disk stopped with " + std::to_string(error));
  return written;
}

// Three cambium-safekeeper processes (data in DATA_ROOT/skN, logs in
// LOG_DIR/skN.log, `extra_args` on each command line) and a proposer elected for a
// new timeline that starts at kSegmentStart.
constexpr Lsn kSegmentStart(0x3000000);
struct ProposerOnThree {
  std::unique_ptr<ServiceProcess> sks[3];
  std::vector<std::string> addresses;
  std::unique_ptr<WalProposer> proposer;
};
void StartProposerOnThree(const std::string& data_root, const std::string& log_dir,
                          TimelineId timeline, const std::string& name,
                          const std::vector<std::string>& extra_args, ProposerOnThree* out) {
  for (int i = 0; i < 3; ++i) {
    const std::string id = "sk" + std::to_string(i);
    auto sk = testing::StartSafekeeperProcess(data_root + "/" + id, id, log_dir + "/" + id + ".log",
                                              extra_args);
    ASSERT_TRUE(sk.ok()) << sk.status();
    out->sks[i] = std::move(*sk);
    out->addresses.push_back(out->sks[i]->address());
  }
  auto p = WalProposer::Create(
      testing::TestProposerOptions(out->addresses, kTenant, timeline, kSegmentStart, name));
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE((*p)->Elect().ok());
  out->proposer = std::move(*p);
}

// Each of the three serves exactly `wal` as committed.
void ExpectEachHolds(const ProposerOnThree& three, TimelineId timeline, const TestWal& wal) {
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(testing::ExpectCommittedWal(three.addresses[i], kTenant, timeline, wal.start,
                                            wal.end()) == wal.bytes)
        << "safekeeper " << i;
  }
}

// The writes that flush `wal` 50 records at a time; *flushes gets their flush points.
std::vector<WalWrite> WritesEvery50Records(const TestWal& wal, std::vector<Lsn>* flushes) {
  for (size_t i = 49; i < wal.record_ends.size(); i += 50) flushes->push_back(wal.record_ends[i]);
  if (flushes->empty() || flushes->back() != wal.end()) flushes->push_back(wal.end());
  return PostgresLikeWrites(wal.start, wal.bytes, *flushes);
}

// Three safekeeper processes whose data directories share a 112 MiB tmpfs: room
// for the first 16 MiB segment of each, and 64 MiB that a filler file then
// takes (when it is deleted, each safekeeper has room for its next segment). Appends inside the
// allocated segments go on; the append that needs the next segment is not acknowledged, and
// WaitForFlush says the disks are full; once the filler is deleted the same processes and proposer
// resume.
TEST(SafekeeperDiskFullProcessTest, AppendsStallOnAFullDiskAndResumeOnceSpaceIsFreed) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  auto dir = TempDir::Create("cambium-sk-full-");
  ASSERT_TRUE(dir.ok());
  const std::string mnt = dir->Sub("mnt");
  ASSERT_EQ(mkdir(mnt.c_str(), 0700), 0);
  ASSERT_EQ(mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=112m,mode=0700"), 0)
      << "mount tmpfs on " << mnt << ": " << strerror(errno);
  // Unmounted however the test ends, after the processes (declared below) stopped.
  absl::Cleanup unmount = [&mnt] { umount2(mnt.c_str(), MNT_DETACH); };
  const TimelineId timeline(0x7171, 0x7272);
  ProposerOnThree three;
  ASSERT_NO_FATAL_FAILURE(
      StartProposerOnThree(mnt, dir->path(), timeline, "full-disk", {}, &three));
  WalProposer& p = *three.proposer;
  const Lsn start = kSegmentStart;
  // A little over one segment of WAL.
  const TestWal wal = MakeTestWal(start, 15000, 31);
  const Lsn next_segment = start + kDefaultWalSegmentSize;
  ASSERT_GT(wal.end(), next_segment + 65536);
  std::vector<Lsn> flushes;
  const std::vector<WalWrite> writes = WritesEvery50Records(wal, &flushes);
  size_t next = 0;
  // The first segment of each safekeeper exists; then the disk fills up.
  for (; writes[next].end() < start + (1 << 20); ++next) {
    ASSERT_TRUE(AppendAndWait(p, writes[next]).ok());
  }
  auto filled = FillDisk(mnt);
  ASSERT_TRUE(filled.ok()) << filled.status();
  // Everything that fits in the allocated segments is acknowledged.
  for (; writes[next].end() <= next_segment; ++next) {
    absl::Status flushed = AppendAndWait(p, writes[next]);
    ASSERT_TRUE(flushed.ok()) << flushed;
  }
  // The write that needs the next segment is refused: nothing is acknowledged.
  const absl::Status stalled = AppendRefused(p, writes[next]);
  EXPECT_TRUE(absl::IsResourceExhausted(stalled)) << stalled;
  EXPECT_THAT(stalled.message(), HasSubstr("disk"));
  EXPECT_THAT(stalled.message(), HasSubstr(mnt));
  EXPECT_LT(p.commit_lsn(), writes[next].end());
  // (The rewrite of the last page may pull it back to the last record's end.)
  EXPECT_GE(p.commit_lsn(), flushes[next - 1]);
  // Free the space: the same processes and proposer go on.
  ASSERT_EQ(unlink((mnt + "/filler").c_str()), 0);
  for (; next < writes.size(); ++next) {
    absl::Status flushed = AppendAndWait(p, writes[next]);
    ASSERT_TRUE(flushed.ok()) << flushed;
  }
  ExpectEachHolds(three, timeline, wal);
  three.proposer.reset();
  for (int i = 0; i < 3; ++i) {
    // Never restarted: the process that saw the full disk exits cleanly now.
    absl::StatusOr<int> code = three.sks[i]->Stop();
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, 0) << three.sks[i]->LogTail();
  }
  EXPECT_THAT(ReadFileToString(dir->Sub("sk0.log")).value_or(""), HasSubstr("is full"));
}

// Backpressure through the real binary's flag (docs/safekeeper.md): with
// --max-unarchived-wal 1 MiB and no pageserver reporting, commits stall with
// RESOURCE_EXHAUSTED naming the bound once 1 MiB of WAL is unarchived, each
// safekeeper logs wal_backpressure, and a report of the archived LSN lets the
// same proposer go on.
TEST(SafekeeperBackpressureProcessTest, CommitsWaitForTheArchiveBeyondTheBoundAndThenResume) {
  auto dir = TempDir::Create("cambium-sk-bp-");
  ASSERT_TRUE(dir.ok());
  constexpr uint64_t kBound = 1 << 20;
  const TimelineId timeline(0x8181, 0x8282);
  ProposerOnThree three;
  ASSERT_NO_FATAL_FAILURE(StartProposerOnThree(dir->path(), dir->path(), timeline, "backpressure",
                                               {"--max-unarchived-wal", std::to_string(kBound)},
                                               &three));
  WalProposer& p = *three.proposer;
  const Lsn start = kSegmentStart;
  const TestWal wal = MakeTestWal(start, 4000, 41);
  ASSERT_GT(wal.end(), start + 2 * kBound);
  std::vector<Lsn> flushes;
  const std::vector<WalWrite> writes = WritesEvery50Records(wal, &flushes);
  size_t next = 0;
  for (; writes[next].end() <= start + kBound; ++next) {
    absl::Status flushed = AppendAndWait(p, writes[next]);
    ASSERT_TRUE(flushed.ok()) << flushed;
  }
  const absl::Status stalled = AppendRefused(p, writes[next]);
  ASSERT_TRUE(absl::IsResourceExhausted(stalled)) << stalled;
  EXPECT_THAT(stalled.message(), HasSubstr("--max-unarchived-wal " + std::to_string(kBound)));
  EXPECT_LT(p.commit_lsn(), writes[next].end());
  for (int i = 0; i < 3; ++i) {
    auto log = ReadFileToString(dir->Sub("sk" + std::to_string(i) + ".log"));
    ASSERT_TRUE(log.ok());
    EXPECT_THAT(*log, HasSubstr("wal_backpressure ")) << "sk" << i;
  }
  // The pageserver archives everything committed, as it goes: the rest streams.
  for (; next < writes.size(); ++next) {
    for (const std::string& address : three.addresses) {
      ASSERT_TRUE(SafekeeperClient(address).ReportArchived(kTenant, timeline, p.commit_lsn()).ok());
    }
    absl::Status flushed = AppendAndWait(p, writes[next]);
    ASSERT_TRUE(flushed.ok()) << flushed;
  }
  ExpectEachHolds(three, timeline, wal);
}

}  // namespace
}  // namespace cambium::safekeeper
