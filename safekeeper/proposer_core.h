// ProposerCore: the proposer side of election and commit, as a state machine.
//
// The shim's WalProposer (real gRPC) and the seeded simulation drive it; it does
// no I/O and keeps no WAL. Life of a term:
//
//   BeginElection()   picks a term above every term seen so far.
//   OnVote(i, v)      collects answers; with a quorum of grants the proposer is
//                     elected. The donor is the voter with the most advanced log:
//                     highest (last term, end of its last complete record). Not
//                     the flush LSN: WAL after the last complete record may be an
//                     older version of the page (zero padding another acceptor
//                     already holds filled with committed records). The new term's
//                     WAL starts at the donor's last record end (start_lsn()); its
//                     history is the donor's cut there plus (term, start_lsn).
//                     The commit LSN starts at the highest commit a voter knew,
//                     capped at start_lsn (WAL after it is an incomplete record).
//   MakeAppendStart() what every acceptor receives first on an append stream.
//   OnStreamStarted   an acceptor adopted this term; returns where to send from.
//   OnSent / OnAck    a data message was sent / acknowledged (streams are FIFO).
//   OnRewrite(lsn)    the log changed at lsn (Postgres filled the zero padding of
//                     its last page).
//   OnRefused         an acceptor answered with a higher term: this proposer is
//                     fenced, permanently.
//
// Versions. Postgres rewrites its last, zero-padded page with more records, so an
// acceptor's flush LSN may cover an older version of bytes that have changed
// since. For every acceptor the core tracks current_lsn(i): how far that
// acceptor durably holds the *current* log. A rewrite at lsn lowers it to lsn, and
// so does any acknowledgement of a message sent before the rewrite; an
// acknowledgement counts up to the end of its message, not up to the acceptor's
// flush LSN (which may cover stale bytes); a new stream resends from it.
//
// Commit rule: commit_lsn() is the highest LSN that a quorum of acceptors that
// adopted this term hold durably in its current version, and it moves only once
// it reaches start_lsn() (so WAL of older terms counts as committed only once this
// term's history is durable on a quorum; otherwise a later election could still
// prefer a log that lacks it). A rewrite can pull it back to the rewritten LSN,
// which is never below the end of a complete record it covered.
//
// Thread-safety: not thread-safe; WalProposer guards it with its mutex.
#ifndef CAMBIUM_SAFEKEEPER_PROPOSER_CORE_H_
#define CAMBIUM_SAFEKEEPER_PROPOSER_CORE_H_

#include <deque>
#include <optional>
#include <vector>

#include "common/lsn.h"
#include "safekeeper/acceptor.h"
#include "safekeeper/term_history.h"

namespace cambium::safekeeper {

class ProposerCore {
 public:
  // REQUIRES: num_acceptors / 2 < quorum <= num_acceptors.
  ProposerCore(int num_acceptors, int quorum, Lsn timeline_start);

  // Starts an election for a term above every term seen; returns it. Forgets the
  // previous term's votes, streams and fencing.
  Term BeginElection();
  // Records acceptor i's answer to the current election (answers for other terms
  // only raise the highest term seen).
  void OnVote(int i, const VoteResponse& vote);

  bool elected() const { return elected_; }
  Term term() const { return term_; }
  int votes() const;
  // After election: where this term's WAL starts, its history and the donor.
  Lsn start_lsn() const { return start_lsn_; }
  const TermHistory& history() const { return history_; }
  int donor() const { return donor_; }
  AppendStartRequest MakeAppendStart() const;

  // A new stream to acceptor i started and it adopted this term. Returns the LSN
  // to send from: its WAL below is current (never above its last record end).
  // Forgets messages of older streams.
  Lsn OnStreamStarted(int i, const AppendAck& ack);
  // A data message reaching `end` (Lsn() for a message without WAL) was sent to i.
  void OnSent(int i, Lsn end);
  // The oldest unacknowledged message to i was acknowledged.
  void OnAck(int i, const AppendAck& ack);
  // The log changed from `lsn` on.
  void OnRewrite(Lsn lsn);
  // Acceptor i refused with `acceptor_term`; fences this proposer if higher.
  void OnRefused(int i, Term acceptor_term);
  void OnDisconnected(int i);

  bool fenced() const { return fenced_by_ != 0; }
  Term fenced_by() const { return fenced_by_; }
  Lsn commit_lsn() const { return commit_lsn_; }
  bool streaming(int i) const { return acceptors_[i].streaming; }
  Lsn current_lsn(int i) const { return acceptors_[i].current; }
  int in_flight(int i) const { return static_cast<int>(acceptors_[i].in_flight.size()); }
  int streaming_count() const;
  int num_acceptors() const { return static_cast<int>(acceptors_.size()); }
  int quorum() const { return quorum_; }

 private:
  struct Sent {
    Lsn end;
    Lsn clamp = Lsn::Max();  // lowest rewrite since it was sent
  };
  struct PerAcceptor {
    std::optional<VoteResponse> vote;
    bool streaming = false;
    // Durable WAL below this matches the current log (Lsn::Max() before any
    // stream or rewrite).
    Lsn current = Lsn::Max();
    std::deque<Sent> in_flight;
  };

  void CompleteElection();
  void UpdateCommit();
  void SeeTerm(Term term);

  const int quorum_;
  const Lsn timeline_start_;
  Term term_ = 0;
  Term max_term_seen_ = 0;
  Term fenced_by_ = 0;
  bool elected_ = false;
  int donor_ = -1;
  Lsn start_lsn_;
  TermHistory history_;
  Lsn commit_lsn_;
  std::vector<PerAcceptor> acceptors_;
  std::vector<Lsn> durable_;  // UpdateCommit's scratch space, kept to avoid allocations
};

}  // namespace cambium::safekeeper

#endif  // CAMBIUM_SAFEKEEPER_PROPOSER_CORE_H_
