// Three real cambium-safekeeper processes on loopback and a WalProposer:
//  - kill -9 of one during a stream of appends: appends continue, and after it
//    restarts every safekeeper serves every acknowledged byte;
//  - two down: WaitForFlush stalls with UNAVAILABLE naming them; one back: resumes;
//  - a second proposer fences the first (FAILED_PRECONDITION);
//  - SIGTERM exits cleanly; a corrupt control file stops startup with its name.
#include <fcntl.h>
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

}  // namespace
}  // namespace cambium::safekeeper
