#include "pageserver/head_resolver.h"

#include "gtest/gtest.h"

namespace cambium::pageserver {
namespace {

using safekeeper::SafekeeperStatus;
using safekeeper::TermHistory;
using safekeeper::TermSwitch;
using Statuses = std::vector<absl::StatusOr<SafekeeperStatus>>;

// A safekeeper whose log was written by `terms` (term, start) and whose complete
// records end at `record_end`; it learned commits up to `committed`.
SafekeeperStatus Sk(std::vector<TermSwitch> terms, Lsn record_end, Lsn committed,
                    safekeeper::Term term = 0) {
  SafekeeperStatus s;
  s.history = TermHistory(std::move(terms));
  s.term = term != 0 ? term : s.history.back().term;
  s.record_end = record_end;
  s.flush_lsn = record_end;
  s.committed_lsn = committed;
  return s;
}

absl::Status Down() { return absl::UnavailableError("connection refused"); }

TEST(QuorumHead, AllUpToDate) {
  Statuses s = {Sk({{1, Lsn(100)}}, Lsn(500), Lsn(500)), Sk({{1, Lsn(100)}}, Lsn(500), Lsn(500)),
                Sk({{1, Lsn(100)}}, Lsn(500), Lsn(500))};
  auto h = ComputeQuorumHead(s, 2).value();
  EXPECT_TRUE(h.certain());
  EXPECT_EQ(h.safe, Lsn(500));
}

// The writer died after its quorum acknowledged WAL up to 700 and before it told the
// safekeepers that this was committed: the acknowledged commit is still the head.
TEST(QuorumHead, AcknowledgedButNotAnnouncedCommitIsTheHead) {
  Statuses s = {Sk({{1, Lsn(100)}}, Lsn(700), Lsn(500)), Sk({{1, Lsn(100)}}, Lsn(700), Lsn(500)),
                Sk({{1, Lsn(100)}}, Lsn(600), Lsn(500))};
  auto h = ComputeQuorumHead(s, 2).value();
  EXPECT_TRUE(h.certain());
  EXPECT_EQ(h.target, Lsn(700));
  EXPECT_EQ(h.safe, Lsn(700));
  EXPECT_EQ(h.announced, Lsn(500));
  ASSERT_EQ(h.donors.size(), 2u);
  EXPECT_EQ(h.donors[0].first, 0);
  EXPECT_EQ(h.donors[1].first, 1);
}

// One safekeeper unreachable: the one that answered with the most WAL may hold a
// commit acknowledged by the unreachable one and itself; it is not certain until the
// commit is announced.
TEST(QuorumHead, WithOneDownTheHighestAnswerMustBeShownCommitted) {
  Statuses s = {Sk({{1, Lsn(100)}}, Lsn(700), Lsn(500)), Down(),
                Sk({{1, Lsn(100)}}, Lsn(600), Lsn(500))};
  auto h = ComputeQuorumHead(s, 2).value();
  EXPECT_EQ(h.target, Lsn(700));
  EXPECT_EQ(h.safe, Lsn(600));  // on both that answered: a quorum
  EXPECT_FALSE(h.certain());
  s[2] = Sk({{1, Lsn(100)}}, Lsn(700), Lsn(700));
  EXPECT_TRUE(ComputeQuorumHead(s, 2)->certain());
}

// WAL of an older term on a quorum is not committed by that alone (a newer term may
// replace it, Raft's figure 8); only the newest term's quorum counts.
TEST(QuorumHead, OnlyTheNewestTermsQuorumCounts) {
  Statuses s = {Sk({{1, Lsn(100)}}, Lsn(900), Lsn(500)), Sk({{1, Lsn(100)}}, Lsn(900), Lsn(500)),
                Sk({{1, Lsn(100)}, {2, Lsn(600)}}, Lsn(600), Lsn(500))};
  auto h = ComputeQuorumHead(s, 2).value();
  EXPECT_EQ(h.safe, Lsn(500));    // one safekeeper of term 2: no quorum yet
  EXPECT_EQ(h.target, Lsn(900));  // a commit at 900 in term 1 may have been acknowledged
  EXPECT_FALSE(h.certain());
  // Term 2's writer brought a second safekeeper up to its start: 600 is committed.
  s[1] = Sk({{1, Lsn(100)}, {2, Lsn(600)}}, Lsn(600), Lsn(500));
  h = ComputeQuorumHead(s, 2).value();
  EXPECT_EQ(h.safe, Lsn(600));
}

TEST(QuorumHead, FewerThanAQuorumIsUnavailable) {
  Statuses s = {Sk({{1, Lsn(100)}}, Lsn(700), Lsn(700)), Down(), Down()};
  auto h = ComputeQuorumHead(s, 2);
  EXPECT_EQ(h.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(h.status().message().find("connection refused"), std::string::npos);
}

TEST(QuorumHead, ATimelineNoSafekeeperSawHasOnlyItsImport) {
  Statuses s = {absl::NotFoundError("no timeline"), absl::NotFoundError("no timeline"), Down()};
  auto h = ComputeQuorumHead(s, 2).value();
  EXPECT_TRUE(h.none);
  EXPECT_TRUE(h.certain());
}

}  // namespace
}  // namespace cambium::pageserver
