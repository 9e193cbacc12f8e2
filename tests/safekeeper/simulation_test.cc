// Seeded simulation of the election and fencing protocol: 3 acceptors (the real
// Acceptor over SimStorage) and 2 competing proposers (the real ProposerCore) that
// exchange messages through a network that loses, duplicates, delays and reorders
// them, while acceptors crash (losing torn, unacknowledged writes) and restart,
// fsyncs fail and disks fill up and are freed again (a full disk refuses without
// breaking the acceptor).
//
// After every step the checker asserts:
//  - committed WAL is never rewritten: every commit LSN a proposer reaches names a
//    prefix of complete records that agrees with every earlier one;
//  - committed WAL is never lost: a quorum of acceptors durably holds it;
//  - an acceptor's own commit LSN never covers WAL that differs from it;
//  - at most one proposer gets appends accepted in any term.
// Each seed ends with a quiet phase (no faults, one proposer) that must commit all
// of its WAL, so the protocol also makes progress.
//
// CAMBIUM_SIM_SEED=n runs only seed n; CAMBIUM_SIM_SEEDS (default 10000) and
// CAMBIUM_SIM_BASE (default 1) choose the range; CAMBIUM_SIM_STEPS (default 1500)
// the steps per seed.
#include <cstdlib>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "safekeeper/acceptor.h"
#include "safekeeper/proposer_core.h"
#include "tests/safekeeper/sim_storage.h"

namespace cambium::safekeeper::sim {
namespace {

constexpr int kAcceptors = 3;
constexpr int kQuorum = 2;
constexpr int kProposers = 2;
constexpr uint64_t kToyPage = 64;  // the "WAL page" proposers pad and rewrite
const Lsn kTimelineStart(0x1000);

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

enum class Kind { kVote, kVoteReply, kStart, kData, kAppendReply, kRead, kReadReply };

struct Msg {
  Kind kind;
  int proposer = 0;
  int acceptor = 0;
  uint64_t session = 0;  // FIFO channel; replies travel on session | kReplyBit
  uint64_t seq = 0;      // position in the channel: a duplicate reply is ignored
  uint64_t stream = 0;   // the acceptor's stream token
  Term term = 0;
  VoteResponse vote;
  AppendStartRequest start;
  Lsn lsn;
  std::string data;
  Lsn commit;
  Lsn read_to;
  AppendAck ack;
  absl::Status status;
};
constexpr uint64_t kReplyBit = 1ull << 63;

struct Stats {
  int elections = 0;
  int commits = 0;
  int truncations = 0;
  int fenced = 0;
  int torn_writes = 0;
  int refused_stale = 0;
  int rewrites_filled = 0;
  int no_space_refusals = 0;
};

// The simulated world; every random choice comes from rng_.
class World {
 public:
  World(uint64_t seed, bool verbose) : rng_(seed), verbose_(verbose) {
    for (int i = 0; i < kAcceptors; ++i) {
      acceptors_.push_back(std::make_unique<AcceptorNode>(i));
    }
    for (int p = 0; p < kProposers; ++p) proposers_.push_back(std::make_unique<ProposerNode>(p));
  }

  // Runs `steps` chaotic steps, then the quiet phase; stops at the first
  // violation, which is a fatal gtest failure.
  void Run(int steps);
  const Stats& stats() const { return stats_; }

 private:
  struct AcceptorNode {
    explicit AcceptorNode(int i) : id(i), storage(kTimelineStart) {
      AcceptorState s;
      s.timeline_start = kTimelineStart;
      s.commit_lsn = kTimelineStart;
      acceptor = std::make_unique<Acceptor>(&storage, s, absl::StrFormat("acceptor%d", i));
    }
    int id;
    SimStorage storage;
    std::unique_ptr<Acceptor> acceptor;  // null while crashed
  };
  enum class Phase { kIdle, kElecting, kFetching, kStreaming };
  struct Stream {
    uint64_t session = 0;
    uint64_t token = 0;
    bool started = false;
    Lsn next_send;
    uint64_t sent = 0;   // messages sent on the session
    uint64_t acked = 0;  // replies received
  };
  struct ProposerNode {
    explicit ProposerNode(int p) : id(p), core(kAcceptors, kQuorum, kTimelineStart) {}
    int id;
    ProposerCore core;
    Phase phase = Phase::kIdle;
    std::string log;  // this proposer's WAL from kTimelineStart
    uint64_t read_session = 0;
    Stream streams[kAcceptors];
    Lsn checked_commit;
    Lsn end() const { return kTimelineStart + log.size(); }
    // Postgres writes whole pages: bytes past the end of the log up to the page
    // end are sent as zeros and rewritten later.
    Lsn padded_end() const {
      const uint64_t e = end().value();
      return Lsn((e + kToyPage - 1) / kToyPage * kToyPage);
    }
  };

  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  uint64_t Uniform(uint64_t n) { return rng_() % n; }
  void Trace(const std::string& line) {
    if (verbose_) std::cout << "[step " << step_ << "] " << line << "\n";
  }

  void Send(Msg m) { queues_[m.session].push_back(std::move(m)); }
  bool DeliverOne(bool faults);
  void DeliverToAcceptor(Msg& m);
  void OnAppendResult(const Msg& m, Term term, const absl::StatusOr<AppendAck>& ack, Msg* reply);
  void DeliverToProposer(Msg& m);
  void Reply(const Msg& request, Msg reply) {
    reply.proposer = request.proposer;
    reply.acceptor = request.acceptor;
    reply.session = request.session | kReplyBit;
    Send(std::move(reply));
  }

  void ProposerAct(ProposerNode& p, bool quiet);
  void StartElection(ProposerNode& p);
  void Connect(ProposerNode& p, int i);
  void SendData(ProposerNode& p, int i);
  void Generate(ProposerNode& p);
  void OnCommitMaybe(ProposerNode& p);
  void CrashAcceptor(AcceptorNode& a);
  void RestartAcceptor(AcceptorNode& a);
  void CheckInvariants();
  void RecordWriter(Term term, int proposer);

  std::mt19937_64 rng_;
  bool verbose_;
  int step_ = 0;
  uint64_t next_session_ = 1;
  std::map<uint64_t, std::deque<Msg>> queues_;
  std::vector<std::unique_ptr<AcceptorNode>> acceptors_;
  std::vector<std::unique_ptr<ProposerNode>> proposers_;
  std::string committed_;  // the committed WAL: complete records from kTimelineStart
  std::map<Term, std::set<int>> writers_;
  Stats stats_;
};

bool World::DeliverOne(bool faults) {
  if (queues_.empty()) return false;
  auto it = queues_.begin();
  std::advance(it, Uniform(queues_.size()));
  Msg m = std::move(it->second.front());
  it->second.pop_front();
  if (faults && Chance(0.05)) {
    Trace(absl::StrFormat("drop message kind=%d session=%u", static_cast<int>(m.kind), m.session));
    if (it->second.empty()) queues_.erase(it);
    return true;
  }
  if (faults && Chance(0.05)) it->second.push_front(m);  // delivered twice
  if (it->second.empty()) queues_.erase(it);
  if (m.session & kReplyBit) {
    DeliverToProposer(m);
  } else {
    DeliverToAcceptor(m);
  }
  return true;
}

void World::RecordWriter(Term term, int proposer) {
  writers_[term].insert(proposer);
  ASSERT_LE(writers_[term].size(), 1u) << "two proposers got appends accepted in term " << term;
}

// Applies an append result at an acceptor: records the writer, counts refusals.
void World::OnAppendResult(const Msg& m, Term term, const absl::StatusOr<AppendAck>& ack,
                           Msg* reply) {
  reply->status = ack.status();
  if (ack.ok()) {
    reply->ack = *ack;
    reply->stream = ack->stream;
    RecordWriter(term, m.proposer);
  } else if (absl::IsFailedPrecondition(ack.status())) {
    ++stats_.refused_stale;
  }
}

void World::DeliverToAcceptor(Msg& m) {
  AcceptorNode& a = *acceptors_[m.acceptor];
  if (!a.acceptor) return;  // down: the connection is refused
  Acceptor& acc = *a.acceptor;
  Msg reply{.kind = m.kind == Kind::kVote   ? Kind::kVoteReply
                    : m.kind == Kind::kRead ? Kind::kReadReply
                                            : Kind::kAppendReply};
  if (m.kind == Kind::kVote) {
    auto v = acc.HandleVote({m.term, kTimelineStart});
    if (!v.ok()) return;
    reply.vote = *v;
  } else if (m.kind == Kind::kStart) {
    const Lsn before = acc.flush_lsn();
    auto ack = acc.HandleAppendStart(m.start);
    OnAppendResult(m, m.start.term, ack, &reply);
    if (ack.ok() && ack->flush_lsn < before) ++stats_.truncations;
  } else if (m.kind == Kind::kData) {
    auto ack = acc.HandleAppendData({m.term, m.stream, m.lsn, m.data, m.commit});
    Trace(absl::StrFormat("acceptor%d data [%s, +%u) commit %s: %s; commit now %s", a.id,
                          m.lsn.ToString(), m.data.size(), m.commit.ToString(),
                          ack.status().ToString(), acc.state().commit_lsn.ToString()));
    OnAppendResult(m, m.term, ack, &reply);
    if (a.storage.crashed()) {
      ++stats_.torn_writes;
      Trace(absl::StrFormat("acceptor%d crashed during a write", a.id));
      a.acceptor.reset();
      return;
    }
  } else if (m.kind == Kind::kRead) {
    if (acc.state().term != m.term || m.read_to > acc.flush_lsn()) {
      reply.status = absl::FailedPreconditionError("not readable");
    } else {
      reply.data = a.storage.wal().substr(0, m.read_to - kTimelineStart);
    }
  } else {
    return;
  }
  reply.seq = m.seq;
  reply.ack.term = acc.state().term;
  Reply(m, std::move(reply));
}

void World::DeliverToProposer(Msg& m) {
  ProposerNode& p = *proposers_[m.proposer];
  ProposerCore& core = p.core;
  const uint64_t session = m.session & ~kReplyBit;
  if (m.kind == Kind::kVoteReply) {
    if (p.phase != Phase::kElecting) return;
    core.OnVote(m.acceptor, m.vote);
    if (!core.elected()) return;
    ++stats_.elections;
    Trace(absl::StrFormat("proposer%d elected term %u start %s donor %d history %s", p.id,
                          core.term(), core.start_lsn().ToString(), core.donor(),
                          core.history().ToString()));
    p.phase = Phase::kFetching;
    p.read_session = next_session_++;
    Send({.kind = Kind::kRead,
          .proposer = p.id,
          .acceptor = core.donor(),
          .session = p.read_session,
          .term = core.term(),
          .read_to = core.start_lsn()});
    return;
  }
  if (m.kind == Kind::kReadReply) {
    if (p.phase != Phase::kFetching || session != p.read_session) return;
    if (!m.status.ok()) {
      p.phase = Phase::kIdle;
      return;
    }
    p.log = m.data;
    p.phase = Phase::kStreaming;
    for (int i = 0; i < kAcceptors; ++i) Connect(p, i);
    return;
  }
  Stream& s = p.streams[m.acceptor];
  if (p.phase != Phase::kStreaming || session != s.session) return;  // an old stream
  if (m.seq != s.acked) return;                                      // TCP delivers each reply once
  ++s.acked;
  if (!m.status.ok()) {
    // gRPC ends the stream on an error; the proposer reconnects later.
    core.OnRefused(m.acceptor, m.ack.term);
    s.session = 0;
    if (core.fenced()) {
      ++stats_.fenced;
      Trace(absl::StrFormat("proposer%d fenced by term %u", p.id, core.fenced_by()));
      p.phase = Phase::kIdle;
    }
    return;
  }
  Trace(absl::StrFormat("proposer%d <- acceptor%d ack term %u flush %s", p.id, m.acceptor,
                        m.ack.term, m.ack.flush_lsn.ToString()));
  if (!s.started) {
    s.next_send = core.OnStreamStarted(m.acceptor, m.ack);
    s.started = true;
    s.token = m.stream;
  } else {
    core.OnAck(m.acceptor, m.ack);
  }
  OnCommitMaybe(p);
}

void World::OnCommitMaybe(ProposerNode& p) {
  const Lsn commit = p.core.commit_lsn();
  if (commit == p.checked_commit) return;
  p.checked_commit = commit;
  ++stats_.commits;
  const uint64_t n = std::min(commit, p.end()) - kTimelineStart;
  const Lsn rec = ToyLastRecordEnd(kTimelineStart, std::string_view(p.log).substr(0, n));
  std::string prefix = p.log.substr(0, rec - kTimelineStart);
  const size_t overlap = std::min(prefix.size(), committed_.size());
  ASSERT_EQ(prefix.substr(0, overlap), committed_.substr(0, overlap))
      << "proposer" << p.id << " in term " << p.core.term() << " committed " << commit.ToString()
      << " over different WAL than was committed before";
  if (prefix.size() > committed_.size()) committed_ = std::move(prefix);
  Trace(absl::StrFormat("proposer%d commit %s (committed records end %s)", p.id, commit.ToString(),
                        (kTimelineStart + committed_.size()).ToString()));
}

void World::StartElection(ProposerNode& p) {
  const Term term = p.core.BeginElection();
  p.phase = Phase::kElecting;
  p.log.clear();
  p.checked_commit = Lsn();
  for (Stream& s : p.streams) s = Stream();
  Trace(absl::StrFormat("proposer%d starts an election for term %u", p.id, term));
  for (int i = 0; i < kAcceptors; ++i) {
    Send({.kind = Kind::kVote,
          .proposer = p.id,
          .acceptor = i,
          .session = next_session_++,
          .term = term});
  }
}

void World::Connect(ProposerNode& p, int i) {
  Stream& s = p.streams[i];
  s = Stream{.session = next_session_++};
  p.core.OnDisconnected(i);
  Send({.kind = Kind::kStart,
        .proposer = p.id,
        .acceptor = i,
        .session = s.session,
        .seq = s.sent++,
        .start = p.core.MakeAppendStart()});
}

void World::SendData(ProposerNode& p, int i) {
  Stream& s = p.streams[i];
  if (!s.started || s.session == 0) return;
  const Lsn padded = p.padded_end();
  if (s.next_send > padded) s.next_send = padded;
  const uint64_t n = std::min<uint64_t>(padded - s.next_send, 1 + Uniform(120));
  std::string data;
  if (s.next_send < p.end()) {
    data = p.log.substr(s.next_send - kTimelineStart, std::min<uint64_t>(n, p.end() - s.next_send));
  }
  data.resize(n, '\0');  // zero padding of the last page
  p.core.OnSent(i, n ? s.next_send + n : Lsn());
  Send({.kind = Kind::kData,
        .proposer = p.id,
        .acceptor = i,
        .session = s.session,
        .seq = s.sent++,
        .stream = s.token,
        .term = p.core.term(),
        .lsn = s.next_send,
        .data = std::move(data),
        .commit = p.core.commit_lsn()});
  s.next_send += n;
}

void World::Generate(ProposerNode& p) {
  const Lsn old_end = p.end();
  const int count = 1 + static_cast<int>(Uniform(3));
  for (int k = 0; k < count; ++k) {
    std::string payload(1 + Uniform(40), static_cast<char>('a' + Uniform(26)));
    payload += absl::StrFormat("p%dt%u", p.id, p.core.term());
    p.log += ToyRecord(p.end(), payload);
  }
  // Postgres rewrites its last, partially filled page: resend from its start.
  // The zero padding sent after old_end is now records.
  const Lsn rewrite_from(old_end.value() / kToyPage * kToyPage);
  if (rewrite_from != old_end) p.core.OnRewrite(old_end);
  for (Stream& s : p.streams) {
    if (s.next_send > rewrite_from) {
      s.next_send = rewrite_from;
      ++stats_.rewrites_filled;
    }
  }
}

void World::ProposerAct(ProposerNode& p, bool quiet) {
  switch (p.phase) {
    case Phase::kIdle:
      if (quiet || Chance(0.3)) StartElection(p);
      return;
    case Phase::kElecting:
    case Phase::kFetching:
      // The election timed out (when quiet: every answer arrived and it still lost).
      if (quiet ? queues_.empty() : Chance(0.05)) StartElection(p);
      return;
    case Phase::kStreaming:
      break;
  }
  if (!quiet && Chance(0.01)) return StartElection(p);  // a competing (re)start
  if (!quiet && Chance(0.3)) Generate(p);
  const int i = static_cast<int>(Uniform(kAcceptors));
  if (p.streams[i].session == 0 || (!quiet && Chance(0.02))) return Connect(p, i);
  SendData(p, i);
}

void World::CrashAcceptor(AcceptorNode& a) {
  if (!a.acceptor) return;
  Trace(absl::StrFormat("acceptor%d crashes", a.id));
  a.acceptor.reset();
}

void World::RestartAcceptor(AcceptorNode& a) {
  if (a.acceptor && a.acceptor->broken().ok()) return;
  AcceptorState state = a.storage.Recover();
  Trace(absl::StrFormat("acceptor%d restarts: term %u flush %s history %s", a.id, state.term,
                        a.storage.flush_lsn().ToString(), state.history.ToString()));
  a.acceptor = std::make_unique<Acceptor>(&a.storage, state, absl::StrFormat("acceptor%d", a.id));
}

void World::CheckInvariants() {
  int holders = 0;
  for (const auto& a : acceptors_) {
    const std::string& wal = a->storage.wal();
    if (wal.size() >= committed_.size() && wal.compare(0, committed_.size(), committed_) == 0) {
      ++holders;
    }
    if (!a->acceptor) continue;
    const Lsn commit = a->acceptor->state().commit_lsn;
    const uint64_t n =
        std::min<uint64_t>(std::max(commit, kTimelineStart) - kTimelineStart, wal.size());
    const Lsn rec = ToyLastRecordEnd(kTimelineStart, std::string_view(wal).substr(0, n));
    const uint64_t m = rec - kTimelineStart;
    ASSERT_TRUE(m <= committed_.size() && wal.compare(0, m, committed_, 0, m) == 0)
        << "acceptor" << a->id << " has commit LSN " << commit.ToString()
        << " over WAL that differs from the committed WAL";
  }
  if (holders < kQuorum && verbose_) {
    for (const auto& a : acceptors_) {
      std::cout << "acceptor" << a->id << " wal " << a->storage.wal().size() << " bytes, flush "
                << a->storage.flush_lsn().ToString() << ", first difference at "
                << std::mismatch(committed_.begin(), committed_.end(), a->storage.wal().begin(),
                                 a->storage.wal().end())
                           .first -
                       committed_.begin()
                << "\n";
    }
  }
  ASSERT_GE(holders, kQuorum) << "committed WAL up to "
                              << (kTimelineStart + committed_.size()).ToString()
                              << " is durable on only " << holders << " acceptors";
}

void World::Run(int steps) {
  for (step_ = 0; step_ < steps; ++step_) {
    const uint64_t r = Uniform(100);
    if (r < 55) {
      DeliverOne(/*faults=*/true);
    } else if (r < 85) {
      ProposerAct(*proposers_[Uniform(kProposers)], /*quiet=*/false);
    } else if (r < 88) {
      AcceptorNode& a = *acceptors_[Uniform(kAcceptors)];
      const uint64_t fault = Uniform(4);
      if (fault == 0) {
        CrashAcceptor(a);
      } else if (fault == 1) {
        a.storage.CrashOnNextWrite(&rng_);
      } else if (fault == 2) {
        a.storage.FailNextSync();
      } else {
        a.storage.SetFull(!a.storage.full(), &rng_);
        Trace(absl::StrFormat("acceptor%d disk %s", a.id, a.storage.full() ? "full" : "freed"));
      }
    } else if (r < 94) {
      RestartAcceptor(*acceptors_[Uniform(kAcceptors)]);
    } else {
      AcceptorNode& a = *acceptors_[Uniform(kAcceptors)];
      // Lazy persistence of the commit LSN (it fails on an injected sync error).
      if (a.acceptor) a.acceptor->Checkpoint().IgnoreError();
    }
    CheckInvariants();
    if (::testing::Test::HasFatalFailure()) return;
  }
  // Quiet phase: everything restarts, no faults, proposer 0 alone must commit.
  for (auto& a : acceptors_) {
    stats_.no_space_refusals += a->storage.no_space_refusals();
    a->storage.SetFull(false);
    CrashAcceptor(*a);  // also clears injected faults that have not fired yet
    RestartAcceptor(*a);
  }
  ProposerNode& p = *proposers_[0];
  StartElection(p);
  bool generated = false;
  for (int i = 0; i < 20000; ++i, ++step_) {
    if (p.phase == Phase::kStreaming && !generated) {
      Generate(p);
      generated = true;
    }
    if (!DeliverOne(/*faults=*/false) || Uniform(2) == 0) ProposerAct(p, /*quiet=*/true);
    CheckInvariants();
    if (::testing::Test::HasFatalFailure()) return;
    if (generated && p.core.commit_lsn() >= p.end()) return;
  }
  FAIL() << "no progress in the quiet phase: proposer0 phase " << static_cast<int>(p.phase)
         << " term " << p.core.term() << " commit " << p.core.commit_lsn().ToString() << " end "
         << p.end().ToString();
}

TEST(SafekeeperSimulation, ThreeAcceptorsTwoProposersNeverLoseCommittedWal) {
  const char* one = std::getenv("CAMBIUM_SIM_SEED");
  const uint64_t base = one ? std::strtoull(one, nullptr, 10) : EnvOr("CAMBIUM_SIM_BASE", 1);
  const uint64_t count = one ? 1 : EnvOr("CAMBIUM_SIM_SEEDS", 10000);
  const int steps = static_cast<int>(EnvOr("CAMBIUM_SIM_STEPS", 1500));
  std::cout << "simulation: seeds " << base << ".." << base + count - 1 << ", " << steps
            << " steps each (rerun one with CAMBIUM_SIM_SEED=n)\n";
  Stats total;
  for (uint64_t seed = base; seed < base + count; ++seed) {
    World world(seed, one != nullptr);
    world.Run(steps);
    if (::testing::Test::HasFatalFailure()) {
      std::cout << "simulation FAILED with seed " << seed
                << "; rerun with CAMBIUM_SIM_SEED=" << seed << " for a trace\n";
      return;
    }
    const Stats& s = world.stats();
    total.elections += s.elections;
    total.commits += s.commits;
    total.truncations += s.truncations;
    total.fenced += s.fenced;
    total.torn_writes += s.torn_writes;
    total.refused_stale += s.refused_stale;
    total.rewrites_filled += s.rewrites_filled;
    total.no_space_refusals += s.no_space_refusals;
  }
  std::cout << absl::StrFormat(
      "simulation: %d elections, %d commit advances, %d truncations, %d fencings, %d torn "
      "writes, %d stale refusals, %d page rewrites, %d full-disk refusals\n",
      total.elections, total.commits, total.truncations, total.fenced, total.torn_writes,
      total.refused_stale, total.rewrites_filled, total.no_space_refusals);
  if (one) return;
  // The faults must actually have happened, or the run proves nothing.
  EXPECT_GT(total.truncations, 0);
  EXPECT_GT(total.fenced, 0);
  EXPECT_GT(total.torn_writes, 0);
  EXPECT_GT(total.refused_stale, 0);
  EXPECT_GT(total.no_space_refusals, 0);
  EXPECT_GT(total.commits, static_cast<int>(count));
}

}  // namespace
}  // namespace cambium::safekeeper::sim
