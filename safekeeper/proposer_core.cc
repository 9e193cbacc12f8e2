#include "safekeeper/proposer_core.h"

#include <algorithm>
#include <functional>

namespace cambium::safekeeper {

ProposerCore::ProposerCore(int num_acceptors, int quorum, Lsn timeline_start)
    : quorum_(quorum), timeline_start_(timeline_start), acceptors_(num_acceptors) {
  durable_.reserve(num_acceptors);
}

void ProposerCore::SeeTerm(Term term) { max_term_seen_ = std::max(max_term_seen_, term); }

Term ProposerCore::BeginElection() {
  term_ = std::max(term_, max_term_seen_) + 1;
  max_term_seen_ = term_;
  elected_ = false;
  fenced_by_ = 0;
  donor_ = -1;
  commit_lsn_ = Lsn();
  for (PerAcceptor& a : acceptors_) a = PerAcceptor();
  return term_;
}

int ProposerCore::votes() const {
  return static_cast<int>(std::count_if(acceptors_.begin(), acceptors_.end(),
                                        [](const PerAcceptor& a) { return a.vote.has_value(); }));
}

void ProposerCore::OnVote(int i, const VoteResponse& vote) {
  SeeTerm(vote.term);
  if (elected_ || !vote.granted || vote.term != term_ || acceptors_[i].vote) return;
  acceptors_[i].vote = vote;
  if (votes() >= quorum_) CompleteElection();
}

void ProposerCore::CompleteElection() {
  // The most advanced log: highest last term, then the longest complete WAL.
  auto rank = [](const VoteResponse& v) {
    return std::make_pair(v.history.LastTermAt(v.record_end), v.record_end);
  };
  Lsn max_commit = timeline_start_;
  for (int i = 0; i < num_acceptors(); ++i) {
    const std::optional<VoteResponse>& vote = acceptors_[i].vote;
    if (!vote) continue;
    if (donor_ < 0 || rank(*vote) > rank(*acceptors_[donor_].vote)) donor_ = i;
    max_commit = std::max(max_commit, vote->commit_lsn);
  }
  const VoteResponse& donor = *acceptors_[donor_].vote;
  start_lsn_ = donor.history.empty() ? timeline_start_ : donor.record_end;
  history_ = donor.history.Before(start_lsn_);
  history_.Append({term_, start_lsn_});
  commit_lsn_ = std::min(max_commit, start_lsn_);
  elected_ = true;
}

AppendStartRequest ProposerCore::MakeAppendStart() const {
  return AppendStartRequest{term_, history_, start_lsn_, timeline_start_};
}

Lsn ProposerCore::OnStreamStarted(int i, const AppendAck& ack) {
  PerAcceptor& a = acceptors_[i];
  if (ack.term > term_) {
    OnRefused(i, ack.term);
    return a.current;
  }
  if (!elected_ || ack.term != term_) return a.current;
  // Complete records are final; what follows may be an older version of the page.
  a.current = std::min({a.current, ack.flush_lsn, ack.record_end});
  a.streaming = true;
  a.in_flight.clear();
  UpdateCommit();
  return a.current;
}

void ProposerCore::OnSent(int i, Lsn end) { acceptors_[i].in_flight.push_back(Sent{end}); }

void ProposerCore::OnAck(int i, const AppendAck& ack) {
  PerAcceptor& a = acceptors_[i];
  if (ack.term > term_) return OnRefused(i, ack.term);
  if (!elected_ || ack.term != term_ || !a.streaming || a.in_flight.empty()) return;
  const Sent sent = a.in_flight.front();
  a.in_flight.pop_front();
  const Lsn durable = std::min({sent.end, sent.clamp, ack.flush_lsn});
  a.current = std::max(a.current, durable);
  UpdateCommit();
}

void ProposerCore::OnRewrite(Lsn lsn) {
  for (PerAcceptor& a : acceptors_) {
    a.current = std::min(a.current, lsn);
    for (Sent& s : a.in_flight) s.clamp = std::min(s.clamp, lsn);
  }
  commit_lsn_ = std::min(commit_lsn_, lsn);
}

void ProposerCore::OnRefused(int i, Term acceptor_term) {
  SeeTerm(acceptor_term);
  if (elected_ && acceptor_term > term_ && fenced_by_ == 0) fenced_by_ = acceptor_term;
  OnDisconnected(i);
}

void ProposerCore::OnDisconnected(int i) {
  acceptors_[i].streaming = false;
  acceptors_[i].in_flight.clear();
}

int ProposerCore::streaming_count() const {
  return static_cast<int>(std::count_if(acceptors_.begin(), acceptors_.end(),
                                        [](const PerAcceptor& a) { return a.streaming; }));
}

void ProposerCore::UpdateCommit() {
  durable_.clear();
  for (const PerAcceptor& a : acceptors_) {
    if (a.streaming) durable_.push_back(a.current);
  }
  if (static_cast<int>(durable_.size()) < quorum_) return;
  std::nth_element(durable_.begin(), durable_.begin() + (quorum_ - 1), durable_.end(),
                   std::greater<Lsn>());
  const Lsn quorum_lsn = durable_[quorum_ - 1];
  if (quorum_lsn >= start_lsn_ && quorum_lsn > commit_lsn_) commit_lsn_ = quorum_lsn;
}

}  // namespace cambium::safekeeper
