// WalProposer: election, the WAL buffer, waiting for commits and reading
// committed WAL. The per-safekeeper streams are in wal_proposer_stream.cc.
#include "safekeeper/wal_proposer.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/proto_convert.h"
#include "common/service.h"
#include "common/status.h"
#include "safekeeper/wire.h"

namespace cambium::safekeeper {
namespace {

constexpr int kMaxElectionRounds = 20;
// WAL below the commit LSN kept for safekeepers that lag behind by less than this.
constexpr uint64_t kMaxLagKept = 64 << 20;
// Buffer trimming happens in steps at least this big.
constexpr uint64_t kTrimStep = 1 << 20;

int Majority(size_t n) { return static_cast<int>(n / 2 + 1); }

}  // namespace

WalProposer::WalProposer(const ProposerOptions& options)
    : options_(options),
      core_(static_cast<int>(options.safekeepers.size()),
            options.quorum > 0 ? options.quorum : Majority(options.safekeepers.size()),
            options.timeline_start) {
  for (const std::string& address : options.safekeepers) {
    auto peer = std::make_unique<Peer>();
    peer->address = address;
    // One connection per safekeeper for the Append stream, Elect and WAL reads.
    const std::shared_ptr<grpc::Channel> channel = MakeChannel(address);
    peer->stub = v1::SafekeeperService::NewStub(channel);
    peer->client = std::make_unique<SafekeeperClient>(channel, address, options.rpc_timeout);
    peers_.push_back(std::move(peer));
  }
}

absl::StatusOr<std::unique_ptr<WalProposer>> WalProposer::Create(const ProposerOptions& options) {
  const int n = static_cast<int>(options.safekeepers.size());
  if (n == 0) return absl::InvalidArgumentError("a WalProposer needs safekeepers");
  if (options.quorum != 0 && (options.quorum <= n / 2 || options.quorum > n)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("quorum %d of %d safekeepers is not a majority", options.quorum, n));
  }
  if (!options.timeline_start.valid() || options.tenant.IsZero() || options.timeline.IsZero()) {
    return absl::InvalidArgumentError("a WalProposer needs a tenant, timeline and timeline start");
  }
  for (const std::string& address : options.safekeepers) {
    CAMBIUM_RETURN_IF_ERROR(CheckLoopbackAddress(address));
  }
  return std::unique_ptr<WalProposer>(new WalProposer(options));
}

WalProposer::~WalProposer() {
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
    for (auto& peer : peers_) {
      if (peer->context != nullptr) peer->context->TryCancel();
    }
  }
  for (auto& peer : peers_) {
    if (peer->thread.joinable()) peer->thread.join();
  }
}

Term WalProposer::term() const {
  absl::MutexLock lock(&mu_);
  return core_.term();
}

Lsn WalProposer::start_lsn() const {
  absl::MutexLock lock(&mu_);
  return core_.elected() ? core_.start_lsn() : Lsn();
}

Lsn WalProposer::commit_lsn() const {
  absl::MutexLock lock(&mu_);
  return core_.commit_lsn();
}

absl::Status WalProposer::RunElection() {
  std::mt19937_64 rng(std::random_device{}());
  const int n = static_cast<int>(peers_.size());
  // Unreachable safekeepers are retried until then: the first connection to a
  // safekeeper can time out on a loaded machine, and one may be restarting.
  const absl::Time reach_deadline = absl::Now() + options_.rpc_timeout;
  absl::Duration reach_backoff = absl::Milliseconds(50);
  for (int round = 0; round < kMaxElectionRounds; ++round) {
    v1::ElectRequest request;
    ToProto(options_.tenant, options_.timeline, request.mutable_timeline());
    request.set_proposer(options_.name);
    request.set_timeline_start_lsn(options_.timeline_start.value());
    {
      absl::MutexLock lock(&mu_);
      request.set_term(core_.BeginElection());
    }
    std::vector<v1::ElectResponse> responses(n);
    std::vector<grpc::Status> statuses(n);
    std::vector<std::thread> calls;
    for (int i = 0; i < n; ++i) {
      calls.emplace_back([&, i] {
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(absl::Now() + options_.rpc_timeout));
        statuses[i] = peers_[i]->stub->Elect(&context, request, &responses[i]);
      });
    }
    for (std::thread& t : calls) t.join();
    std::vector<std::string> outcomes;
    int answered = 0;
    absl::MutexLock lock(&mu_);
    for (int i = 0; i < n; ++i) {
      if (statuses[i].error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
        // The timeline was deleted: no term will ever be granted.
        return Annotate(
            FromGrpcStatus(statuses[i]),
            absl::StrFormat("proposer %s, safekeeper %s", options_.name, peers_[i]->address));
      }
      if (!statuses[i].ok()) {
        peers_[i]->last_error = FromGrpcStatus(statuses[i]).ToString();
        outcomes.push_back(absl::StrFormat("%s: %s", peers_[i]->address, peers_[i]->last_error));
        continue;
      }
      ++answered;
      const v1::ElectResponse& r = responses[i];
      core_.OnVote(i, VoteResponseFromProto(r));
      outcomes.push_back(absl::StrFormat("%s: %s term %u", peers_[i]->address,
                                         r.granted() ? "granted" : "refused, has", r.term()));
    }
    if (core_.elected()) return absl::OkStatus();
    // Refusals (a competing proposer) are retried a few rounds; safekeepers that
    // cannot be reached until rpc_timeout passed, then the caller retries later.
    const bool unreachable = answered < core_.quorum();
    if (round + 1 == kMaxElectionRounds ||
        (unreachable && absl::Now() + reach_backoff > reach_deadline)) {
      return absl::UnavailableError(
          absl::StrFormat("proposer %s could not get %d votes for timeline %s/%s: %s",
                          options_.name, core_.quorum(), options_.tenant.ToString(),
                          options_.timeline.ToString(), absl::StrJoin(outcomes, "; ")));
    }
    // Another proposer may be electing too: back off a random while, then try a
    // term above every term seen.
    const absl::Duration pause =
        unreachable ? reach_backoff : absl::Milliseconds(5 + rng() % (20 * (round + 1)));
    if (unreachable) reach_backoff = std::min(reach_backoff * 2, absl::Milliseconds(500));
    mu_.Unlock();
    absl::SleepFor(pause);
    mu_.Lock();
  }
  return absl::UnavailableError("election did not finish");
}

absl::StatusOr<Lsn> WalProposer::Elect() {
  {
    absl::MutexLock lock(&mu_);
    if (elect_called_) return absl::FailedPreconditionError("Elect may be called once");
    elect_called_ = true;
  }
  absl::Status elected = RunElection();
  if (!elected.ok()) {
    absl::MutexLock lock(&mu_);
    elect_called_ = false;  // may be retried
    return elected;
  }
  Lsn start;
  {
    absl::MutexLock lock(&mu_);
    start = core_.start_lsn();
    buf_start_ = start;
    buf_.clear();
    LogInfo("proposer_elected", {{"proposer", options_.name},
                                 {"tenant", options_.tenant},
                                 {"timeline", options_.timeline},
                                 {"term", core_.term()},
                                 {"start_lsn", start},
                                 {"donor", peers_[core_.donor()]->address},
                                 {"history", core_.history().ToString()}});
    for (size_t i = 0; i < peers_.size(); ++i) {
      peers_[i]->thread = std::thread([this, i] { PeerLoop(static_cast<int>(i)); });
    }
  }
  // The term is established once a quorum holds the WAL up to its start.
  CAMBIUM_RETURN_IF_ERROR(WaitForFlush(start, options_.rpc_timeout));
  return start;
}

absl::Status WalProposer::StatusLocked() const {
  if (!failed_.ok()) return failed_;
  if (!core_.elected()) {
    return absl::FailedPreconditionError("the proposer is not elected: call Elect first");
  }
  return absl::OkStatus();
}

absl::Status WalProposer::Append(Lsn lsn, std::string_view bytes) {
  absl::MutexLock lock(&mu_);
  CAMBIUM_RETURN_IF_ERROR(StatusLocked());
  const Lsn end = lsn + bytes.size();
  if (lsn > buf_end() || end < buf_start_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "append of [%s, %s) leaves a gap: the proposer holds WAL [%s, %s)", lsn.ToString(),
        end.ToString(), buf_start_.ToString(), buf_end().ToString()));
  }
  if (std::max(end, buf_end()) - std::min(lsn, buf_start_) > options_.max_buffer_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("no quorum has flushed WAL since %s (commit LSN %s); %u bytes are buffered",
                        buf_start_.ToString(), core_.commit_lsn().ToString(), buf_.size()));
  }
  if (lsn < buf_start_) {
    // The start of a rewritten page below what is buffered (the first page of a
    // term): kept so safekeepers can check it against what they hold.
    buf_.insert(0, bytes.substr(0, buf_start_ - lsn));
    buf_start_ = lsn;
  }
  const uint64_t offset = lsn - buf_start_;
  const uint64_t overlap = std::min<uint64_t>(bytes.size(), buf_.size() - offset);
  const auto diff = std::mismatch(bytes.begin(), bytes.begin() + overlap, buf_.begin() + offset);
  if (diff.first != bytes.begin() + overlap) {
    const Lsn changed = lsn + (diff.first - bytes.begin());
    core_.OnRewrite(changed);
    for (auto& peer : peers_) peer->next_send = std::min(peer->next_send, changed);
  }
  if (offset + bytes.size() > buf_.size()) buf_.resize(offset + bytes.size());
  std::copy(bytes.begin(), bytes.end(), buf_.begin() + offset);
  return absl::OkStatus();
}

absl::Status WalProposer::RefusalStatus(Lsn lsn, const std::vector<std::string>& down) const {
  std::vector<std::string> refusing;
  int healthy = 0;
  for (size_t i = 0; i < peers_.size(); ++i) {
    if (!peers_[i]->refusal.empty()) {
      refusing.push_back(absl::StrFormat("%s (%s)", peers_[i]->address, peers_[i]->refusal));
    } else if (core_.streaming(static_cast<int>(i))) {
      ++healthy;
    }
  }
  if (refusing.empty() || healthy >= core_.quorum()) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrFormat(
      "WAL up to %s of timeline %s/%s is not flushed on a quorum (commit LSN %s): safekeepers "
      "refusing WAL (out of disk space, or holding too much WAL the pageserver has not "
      "archived): %s; unreachable: %s. Nothing after the commit LSN is acknowledged; the "
      "proposer keeps retrying and resumes once they accept WAL again",
      lsn.ToString(), options_.tenant.ToString(), options_.timeline.ToString(),
      core_.commit_lsn().ToString(), absl::StrJoin(refusing, ", "),
      down.empty() ? "none" : absl::StrJoin(down, ", ")));
}

absl::Status WalProposer::WaitTimeoutStatus(Lsn lsn) const {
  std::vector<std::string> down;
  for (size_t i = 0; i < peers_.size(); ++i) {
    if (core_.streaming(static_cast<int>(i)) || !peers_[i]->refusal.empty()) continue;
    down.push_back(
        absl::StrFormat("%s (%s)", peers_[i]->address,
                        peers_[i]->last_error.empty() ? "connecting" : peers_[i]->last_error));
  }
  CAMBIUM_RETURN_IF_ERROR(RefusalStatus(lsn, down));
  if (core_.streaming_count() < core_.quorum()) {
    return absl::UnavailableError(absl::StrFormat(
        "no quorum for timeline %s/%s: %d of %d safekeepers reachable, %d needed; unreachable: "
        "%s",
        options_.tenant.ToString(), options_.timeline.ToString(), core_.streaming_count(),
        static_cast<int>(peers_.size()), core_.quorum(), absl::StrJoin(down, ", ")));
  }
  std::vector<std::string> lagging;
  for (size_t i = 0; i < peers_.size(); ++i) {
    const Lsn current = core_.current_lsn(static_cast<int>(i));
    if (core_.streaming(static_cast<int>(i)) && current < lsn) {
      lagging.push_back(absl::StrFormat("%s at %s", peers_[i]->address, current.ToString()));
    }
  }
  return absl::DeadlineExceededError(absl::StrFormat(
      "WAL up to %s of timeline %s/%s is not flushed on a quorum yet (commit LSN %s); "
      "lagging: %s; unreachable: %s",
      lsn.ToString(), options_.tenant.ToString(), options_.timeline.ToString(),
      core_.commit_lsn().ToString(), absl::StrJoin(lagging, ", "),
      down.empty() ? "none" : absl::StrJoin(down, ", ")));
}

absl::Status WalProposer::WaitForFlush(Lsn lsn, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto done = [this, lsn]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !failed_.ok() || shutdown_ || core_.commit_lsn() >= lsn;
  };
  mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  CAMBIUM_RETURN_IF_ERROR(StatusLocked());
  if (shutdown_) return absl::CancelledError("the proposer is shutting down");
  if (core_.commit_lsn() >= lsn) return absl::OkStatus();
  return WaitTimeoutStatus(lsn);
}

void WalProposer::TrimBuffer() {
  // Postgres rewrites the page holding the end of its last write, which may be
  // the page just below a page-aligned commit LSN: keep it, so that a rewrite is
  // always compared with what was sent before.
  const Lsn flushed = std::min(core_.commit_lsn(), buf_end());
  if (flushed <= buf_start_) return;
  Lsn keep = (flushed - 1).PageStart();
  for (size_t i = 0; i < peers_.size(); ++i) {
    // Keep what a lagging safekeeper still needs, unless it lags too far: then
    // it is brought up to date from the others.
    const Lsn current = core_.current_lsn(static_cast<int>(i));
    const Lsn needed = peers_[i]->connected ? std::min(current, peers_[i]->next_send) : current;
    if (needed < keep && keep - needed < kMaxLagKept) keep = needed.PageStart();
  }
  if (keep <= buf_start_ || keep - buf_start_ < kTrimStep) return;
  buf_.erase(0, keep - buf_start_);
  buf_start_ = keep;
}

absl::StatusOr<std::string> WalProposer::ReadWal(Lsn from, Lsn to) {
  {
    absl::MutexLock lock(&mu_);
    if (to > core_.commit_lsn()) {
      return absl::OutOfRangeError(absl::StrFormat("WAL up to %s is not committed (commit LSN %s)",
                                                   to.ToString(), core_.commit_lsn().ToString()));
    }
  }
  return FetchFromPeers(/*except=*/-1, from, to);
}

}  // namespace cambium::safekeeper
