// The acceptor state machine and term histories, over the in-memory storage with
// toy WAL records: voting, fencing, the tail-page rule, truncation on election,
// failed syncs; and the wire form of the protocol messages.
#include "safekeeper/acceptor.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "safekeeper/proposer_core.h"
#include "safekeeper/term_history.h"
#include "safekeeper/wire.h"
#include "tests/safekeeper/sim_storage.h"

namespace cambium::safekeeper {
namespace {

using sim::SimStorage;
using sim::ToyRecord;
using ::testing::HasSubstr;

const Lsn kStart(0x1000);

TEST(SafekeeperTermHistory, CommonPointIsWhereLogsStopAgreeing) {
  const TermHistory a({{1, Lsn(100)}, {2, Lsn(300)}});
  const TermHistory b({{1, Lsn(100)}, {3, Lsn(250)}});
  // Term 1 is shared up to the earlier of the two switches away from it.
  EXPECT_EQ(TermHistory::CommonPoint(a, Lsn(400), b, Lsn(500), Lsn(100)), Lsn(250));
  // A log that is a prefix of the other agrees up to its end.
  EXPECT_EQ(TermHistory::CommonPoint(a, Lsn(280), a, Lsn::Max(), Lsn(100)), Lsn(280));
  // No term in common: only the timeline start.
  EXPECT_EQ(TermHistory::CommonPoint(TermHistory({{2, Lsn(100)}}), Lsn(400),
                                     TermHistory({{3, Lsn(100)}}), Lsn::Max(), Lsn(100)),
            Lsn(100));
  // An empty log agrees with anything up to its end.
  EXPECT_EQ(TermHistory::CommonPoint(TermHistory(), Lsn(100), b, Lsn::Max(), Lsn(100)), Lsn(100));
}

TEST(SafekeeperTermHistory, LastTermCountsEntriesStartingAtOrBelowTheEnd) {
  const TermHistory h({{1, Lsn(100)}, {4, Lsn(300)}});
  EXPECT_EQ(h.LastTermAt(Lsn(299)), 1u);
  EXPECT_EQ(h.LastTermAt(Lsn(300)), 4u);
  EXPECT_EQ(h.Before(Lsn(300)).entries().size(), 1u);
  EXPECT_FALSE(TermHistory({{2, Lsn(100)}, {2, Lsn(200)}}).Validate().ok());
  EXPECT_FALSE(TermHistory({{2, Lsn(200)}, {3, Lsn(100)}}).Validate().ok());
}

class SafekeeperAcceptorTest : public ::testing::Test {
 protected:
  SafekeeperAcceptorTest() : storage_(kStart), acceptor_(&storage_, Initial(), "sk1") {}
  static AcceptorState Initial() {
    AcceptorState s;
    s.timeline_start = kStart;
    s.commit_lsn = kStart;
    return s;
  }
  // Votes for and starts `term` with `history` (default: one entry at kStart).
  AppendAck Start(Term term, TermHistory history = {}) {
    if (history.empty()) history = TermHistory({{term, kStart}});
    EXPECT_TRUE(acceptor_.HandleVote({term, kStart}).ok());
    absl::StatusOr<AppendAck> ack =
        acceptor_.HandleAppendStart({term, history, history.back().start, kStart});
    EXPECT_TRUE(ack.ok()) << ack.status();
    return ack.ok() ? *ack : AppendAck{};
  }
  absl::StatusOr<AppendAck> Data(Term term, uint64_t stream, Lsn lsn, const std::string& data,
                                 Lsn commit = Lsn()) {
    return acceptor_.HandleAppendData({term, stream, lsn, data, commit});
  }
  // Two toy records from kStart, then zero padding up to 64 bytes.
  static std::string Page(int records) {
    std::string out;
    for (int i = 0; i < records; ++i)
      out += ToyRecord(kStart + out.size(), "record" + std::to_string(i));
    out.resize(std::max<size_t>(out.size(), 64), '\0');
    return out;
  }

  SimStorage storage_;
  Acceptor acceptor_;
};

TEST_F(SafekeeperAcceptorTest, GrantsOnlyHigherTermsAndPersistsTheTermFirst) {
  auto v = acceptor_.HandleVote({3, kStart});
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->granted);
  EXPECT_EQ(storage_.persisted().term, 3u);  // durable before the answer
  v = acceptor_.HandleVote({3, kStart});
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->granted);  // a term is granted once
  v = acceptor_.HandleVote({2, kStart});
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->granted);
  EXPECT_EQ(v->term, 3u);
  EXPECT_FALSE(acceptor_.HandleVote({4, Lsn(0x2000)}).ok()) << "a different timeline start";
}

TEST_F(SafekeeperAcceptorTest, RefusesAppendsOfAnOlderTermNamingTheNewerOne) {
  const AppendAck ack = Start(1);
  ASSERT_TRUE(Data(1, ack.stream, kStart, Page(1)).ok());
  ASSERT_TRUE(acceptor_.HandleVote({5, kStart}).ok());
  auto refused = Data(1, ack.stream, kStart + 64, std::string(8, 'x'));
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("has term 5"));
  auto restart = acceptor_.HandleAppendStart({1, TermHistory({{1, kStart}}), kStart, kStart});
  EXPECT_TRUE(absl::IsFailedPrecondition(restart.status()));
  EXPECT_EQ(acceptor_.flush_lsn(), kStart + 64);
}

TEST_F(SafekeeperAcceptorTest, AcceptsRewriteOfTheZeroPaddedTailPage) {
  const AppendAck ack = Start(1);
  ASSERT_TRUE(Data(1, ack.stream, kStart, Page(1)).ok());
  const std::string longer = Page(2);
  auto rewritten = Data(1, ack.stream, kStart, longer);
  ASSERT_TRUE(rewritten.ok()) << rewritten.status();
  EXPECT_EQ(storage_.wal().substr(0, longer.size()), longer);
  EXPECT_EQ(*storage_.LastRecordEnd(Lsn::Max()), kStart + ToyRecord(kStart, "record0").size() * 2);
}

TEST_F(SafekeeperAcceptorTest, RefusesARewriteThatChangesStoredBytes) {
  const AppendAck ack = Start(1);
  ASSERT_TRUE(Data(1, ack.stream, kStart, Page(2)).ok());
  std::string changed = Page(2);
  changed[10] ^= 0x40;
  auto refused = Data(1, ack.stream, kStart, changed);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("divergent WAL at 0/100A"));
  EXPECT_EQ(storage_.wal(), Page(2));  // nothing written
  // Zeroing a stored byte is a change too.
  std::string zeroed = Page(2);
  zeroed[0] = 0;  // the low byte of the first record's length
  EXPECT_TRUE(absl::IsFailedPrecondition(Data(1, ack.stream, kStart, zeroed).status()));
}

TEST_F(SafekeeperAcceptorTest, RefusesAGapAndIgnoresBytesBelowTheTimelineStart) {
  const AppendAck ack = Start(1);
  auto gap = Data(1, ack.stream, kStart + 8, "abcdefgh");
  EXPECT_TRUE(absl::IsOutOfRange(gap.status())) << gap.status();
  // A branch's first page begins with its parent's WAL.
  auto branch_page = Data(1, ack.stream, kStart - 16, std::string(16, 'p') + Page(1));
  ASSERT_TRUE(branch_page.ok()) << branch_page.status();
  EXPECT_EQ(storage_.wal(), Page(1));
  EXPECT_EQ(branch_page->flush_lsn, kStart + 64);
}

TEST_F(SafekeeperAcceptorTest, TruncatesWalOfAnOlderTermWhereHistoriesDiverge) {
  const AppendAck ack = Start(1);
  const std::string page = Page(2);
  ASSERT_TRUE(Data(1, ack.stream, kStart, page).ok());
  const Lsn first_end = kStart + ToyRecord(kStart, "record0").size();
  // Term 2's proposer kept term 1 only up to the first record.
  const TermHistory h2({{1, kStart}, {2, first_end}});
  ASSERT_TRUE(acceptor_.HandleVote({2, kStart}).ok());
  auto started = acceptor_.HandleAppendStart({2, h2, first_end, kStart});
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->flush_lsn, first_end);
  EXPECT_EQ(storage_.wal(), page.substr(0, first_end - kStart));
  EXPECT_EQ(storage_.persisted().history, h2);
  // A proposer of the same term history does not truncate again.
  auto again = acceptor_.HandleAppendStart({2, h2, first_end, kStart});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->flush_lsn, first_end);
}

TEST_F(SafekeeperAcceptorTest, AFailedSyncIsNeverAcknowledgedAndStopsTheAcceptor) {
  const AppendAck ack = Start(1);
  ASSERT_TRUE(Data(1, ack.stream, kStart, Page(1)).ok());
  storage_.FailNextSync();
  auto failed = Data(1, ack.stream, kStart + 64, Page(1));
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(acceptor_.flush_lsn(), kStart + 64);
  auto after = Data(1, ack.stream, kStart + 64, Page(1));
  EXPECT_TRUE(absl::IsUnavailable(after.status())) << after.status();
  EXPECT_THAT(after.status().message(), HasSubstr("restart it"));
  EXPECT_FALSE(acceptor_.HandleVote({9, kStart}).ok());
}

// A full disk is a refusal, not a failure: nothing is granted or acknowledged,
// nothing durable changes, and the same requests succeed once space is freed.
TEST_F(SafekeeperAcceptorTest, AFullDiskRefusesWithoutStoppingTheAcceptor) {
  const AppendAck ack = Start(1);
  ASSERT_TRUE(Data(1, ack.stream, kStart, Page(1)).ok());
  const AcceptorState persisted = storage_.persisted();
  storage_.SetFull(true);
  auto vote = acceptor_.HandleVote({2, kStart});
  EXPECT_TRUE(absl::IsResourceExhausted(vote.status())) << vote.status();
  auto append = Data(1, ack.stream, kStart + 64, Page(1));
  EXPECT_TRUE(absl::IsResourceExhausted(append.status())) << append.status();
  EXPECT_EQ(acceptor_.flush_lsn(), kStart + 64);
  EXPECT_TRUE(acceptor_.broken().ok());
  EXPECT_EQ(acceptor_.state().term, 1u);
  EXPECT_EQ(storage_.persisted(), persisted);
  storage_.SetFull(false);
  ASSERT_TRUE(Data(1, ack.stream, kStart + 64, Page(1)).ok());
  EXPECT_EQ(acceptor_.flush_lsn(), kStart + 128);
  auto granted = acceptor_.HandleVote({2, kStart});
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_TRUE(granted->granted);
  EXPECT_EQ(storage_.persisted().term, 2u);
}

TEST_F(SafekeeperAcceptorTest, FillingZeroPaddingBelowTheCommitLsnPullsItBack) {
  const AppendAck ack = Start(1);
  ASSERT_TRUE(Data(1, ack.stream, kStart, Page(1), kStart + 64).ok());
  EXPECT_EQ(acceptor_.state().commit_lsn, kStart + 64);
  // The padding after the first record now holds a record that is not committed.
  ASSERT_TRUE(Data(1, ack.stream, kStart, Page(2), kStart + 10).ok());
  const Lsn first_end = kStart + ToyRecord(kStart, "record0").size();
  EXPECT_EQ(acceptor_.state().commit_lsn, first_end);
  // Persisted commit LSNs are complete-record ends.
  ASSERT_TRUE(acceptor_.Checkpoint().ok());
  EXPECT_EQ(storage_.persisted().commit_lsn, first_end);
}

TEST_F(SafekeeperAcceptorTest, RefusesDataFromASupersededStream) {
  const AppendAck first = Start(1);
  auto second = acceptor_.HandleAppendStart({1, TermHistory({{1, kStart}}), kStart, kStart});
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(absl::IsAborted(Data(1, first.stream, kStart, Page(1)).status()));
  EXPECT_TRUE(Data(1, second->stream, kStart, Page(1)).ok());
}

TEST(SafekeeperProposerCore, ElectsTheLongestCompleteLogOfTheNewestTerm) {
  ProposerCore core(3, 2, kStart);
  const Term t = core.BeginElection();
  core.OnVote(0, {true, t, Lsn(0x1100), Lsn(0x10F0), kStart, TermHistory({{1, kStart}})});
  EXPECT_FALSE(core.elected());
  // Longer flush LSN but an older version of its last page: ranks by record end.
  core.OnVote(1, {true, t, Lsn(0x1200), Lsn(0x1080), kStart, TermHistory({{1, kStart}})});
  ASSERT_TRUE(core.elected());
  EXPECT_EQ(core.donor(), 0);
  EXPECT_EQ(core.start_lsn(), Lsn(0x10F0));
  EXPECT_EQ(core.history(), TermHistory({{1, kStart}, {t, Lsn(0x10F0)}}));
}

TEST(SafekeeperProposerCore, CommitsOnlyWhatAQuorumHoldsInItsCurrentVersion) {
  ProposerCore core(3, 2, kStart);
  const Term t = core.BeginElection();
  core.OnVote(0, {true, t, kStart, kStart, kStart, {}});
  core.OnVote(1, {true, t, kStart, kStart, kStart, {}});
  ASSERT_TRUE(core.elected());
  EXPECT_EQ(core.OnStreamStarted(0, {t, kStart, kStart, 1, kStart}), kStart);
  EXPECT_EQ(core.OnStreamStarted(1, {t, kStart, kStart, 1, kStart}), kStart);
  core.OnSent(0, kStart + 100);
  core.OnSent(1, kStart + 100);
  core.OnAck(0, {t, kStart + 100, kStart});
  EXPECT_EQ(core.commit_lsn(), kStart);  // one acknowledgement is not a quorum
  // The last page was rewritten at +60 before acceptor 1 acknowledged the old one.
  core.OnRewrite(kStart + 60);
  core.OnAck(1, {t, kStart + 100, kStart});
  EXPECT_EQ(core.commit_lsn(), kStart + 60);
  core.OnAck(0, {t + 1, kStart + 100, kStart});
  EXPECT_TRUE(core.fenced());
  EXPECT_EQ(core.fenced_by(), t + 1);
}

TEST(SafekeeperWire, ProtocolMessagesRoundTrip) {
  const TermHistory history({{2, kStart}, {5, kStart + 0x300}});
  const VoteResponse vote{true, 5, kStart + 0x400, kStart + 0x3F0, kStart + 0x200, history};
  v1::ElectResponse elect;
  ToProto(vote, &elect);
  const VoteResponse v = VoteResponseFromProto(elect);
  EXPECT_EQ(v.granted, vote.granted);
  EXPECT_EQ(v.term, vote.term);
  EXPECT_EQ(v.flush_lsn, vote.flush_lsn);
  EXPECT_EQ(v.record_end, vote.record_end);
  EXPECT_EQ(v.commit_lsn, vote.commit_lsn);
  EXPECT_EQ(v.history, vote.history);

  const AppendStartRequest start{5, history, kStart + 0x300, kStart};
  v1::AppendStart start_proto;
  ToProto(start, &start_proto);
  const AppendStartRequest s = AppendStartFromProto(start_proto);
  EXPECT_EQ(s.term, start.term);
  EXPECT_EQ(s.history, start.history);
  EXPECT_EQ(s.start_lsn, start.start_lsn);
  EXPECT_EQ(s.timeline_start, start.timeline_start);

  const AppendAck ack{5, kStart + 0x500, kStart + 0x480, /*stream=*/3, kStart + 0x4F0};
  v1::AppendResponse response;
  ToProto(ack, &response);
  const AppendAck a = AppendAckFromProto(response);
  EXPECT_EQ(a.term, ack.term);
  EXPECT_EQ(a.flush_lsn, ack.flush_lsn);
  EXPECT_EQ(a.commit_lsn, ack.commit_lsn);
  EXPECT_EQ(a.record_end, ack.record_end);
  EXPECT_EQ(a.stream, 0u);  // the stream token is not sent
}

}  // namespace
}  // namespace cambium::safekeeper
