// WalProposer: one Append stream per safekeeper, reopened with backoff when it
// fails. The writer sends buffered WAL (or fetches WAL no longer buffered from
// another safekeeper) with at most max_in_flight unacknowledged messages; the
// reader feeds acknowledgements to the ProposerCore, which moves the commit LSN.
#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/pg/wal_decoder.h"
#include "common/pg/wal_format.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "safekeeper/wal_proposer.h"
#include "safekeeper/wire.h"

namespace cambium::safekeeper {
namespace {

constexpr absl::Duration kInitialBackoff = absl::Milliseconds(50);

}  // namespace

void WalProposer::PeerLoop(int i) {
  Peer& peer = *peers_[i];
  absl::Duration backoff = kInitialBackoff;
  for (;;) {
    const absl::Time started = absl::Now();
    absl::Status status = RunStream(i);
    absl::MutexLock lock(&mu_);
    if (shutdown_ || !failed_.ok()) return;
    if (absl::IsFailedPrecondition(status)) {
      // Fenced by a newer term, or the WAL diverged: nothing to retry.
      failed_ = Annotate(status, absl::StrFormat("proposer %s (term %u), safekeeper %s",
                                                 options_.name, core_.term(), peer.address));
      LogWarning("proposer_fenced", {{"proposer", options_.name},
                                     {"tenant", options_.tenant},
                                     {"timeline", options_.timeline},
                                     {"term", core_.term()},
                                     {"error", status}});
      return;
    }
    if (peer.last_error != status.ToString()) {
      LogWarning("safekeeper_stream_lost", {{"proposer", options_.name},
                                            {"safekeeper", peer.address},
                                            {"timeline", options_.timeline},
                                            {"error", status}});
    }
    peer.last_error = status.ToString();
    // A refusal (a full disk, backpressure) is retried like a lost stream (it
    // passes), but remembered so that WaitForFlush can say why nothing is
    // acknowledged.
    if (absl::IsResourceExhausted(status)) peer.refusal = peer.last_error;
    // A stream that worked for a while starts the backoff over.
    backoff = absl::Now() - started > absl::Seconds(1)
                  ? kInitialBackoff
                  : std::min(backoff * 2, options_.max_reconnect_backoff);
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutdown_; };
    mu_.AwaitWithTimeout(absl::Condition(&stopping), backoff);
    if (shutdown_) return;
  }
}

absl::Status WalProposer::RunStream(int i) {
  Peer& peer = *peers_[i];
  grpc::ClientContext context;
  v1::AppendRequest start;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return absl::CancelledError("shutting down");
    peer.context = &context;
    peer.broken = false;
    ToProto(options_.tenant, options_.timeline, start.mutable_timeline());
    ToProto(core_.MakeAppendStart(), start.mutable_start());
    start.mutable_start()->set_proposer(options_.name);
  }
  auto stream = peer.stub->Append(&context);
  absl::Status status;
  v1::AppendResponse response;
  if (stream->Write(start) && stream->Read(&response)) {
    {
      absl::MutexLock lock(&mu_);
      const AppendAck ack = AppendAckFromProto(response);
      peer.next_send = core_.OnStreamStarted(i, ack);
      peer.empty =
          ack.record_end == options_.timeline_start && ack.flush_lsn == options_.timeline_start;
      peer.skip_next = false;
      peer.announced_commit = Lsn();
      peer.connected = true;
      peer.last_error.clear();
    }
    std::thread reader([this, i, s = stream.get()] { ReaderLoop(i, s); });
    status = WriterLoop(i, stream.get());
    bool stopping;
    {
      absl::MutexLock lock(&mu_);
      stopping = shutdown_ || !failed_.ok();
    }
    // Otherwise the stream broke: the reader gets the server's verdict by itself.
    if (stopping) context.TryCancel();
    stream->WritesDone();
    reader.join();
  } else {
    stream->WritesDone();
  }
  absl::Status finished = FromGrpcStatus(stream->Finish());
  absl::MutexLock lock(&mu_);
  peer.context = nullptr;
  peer.connected = false;
  core_.OnDisconnected(i);
  // The server's verdict explains a broken stream better than our cancellation.
  if (!finished.ok() && !absl::IsCancelled(finished)) return finished;
  if (!status.ok()) return status;
  return finished.ok() ? absl::UnavailableError("the stream ended") : finished;
}

void WalProposer::ReaderLoop(
    int i, grpc::ClientReaderWriter<v1::AppendRequest, v1::AppendResponse>* stream) {
  v1::AppendResponse response;
  while (stream->Read(&response)) {
    absl::MutexLock lock(&mu_);
    peers_[i]->refusal.clear();  // it acknowledges WAL again
    core_.OnAck(i, AppendAckFromProto(response));
    TrimBuffer();
  }
  absl::MutexLock lock(&mu_);
  peers_[i]->broken = true;
}

absl::Status WalProposer::WriterLoop(
    int i, grpc::ClientReaderWriter<v1::AppendRequest, v1::AppendResponse>* stream) {
  Peer& peer = *peers_[i];
  v1::AppendRequest request;
  std::string fetched;
  for (;;) {
    request.Clear();
    Lsn fetch_from, fetch_to;
    {
      absl::MutexLock lock(&mu_);
      auto can_send = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return shutdown_ || peer.broken || !failed_.ok() ||
               (core_.in_flight(i) < options_.max_in_flight && peer.next_send < buf_end());
      };
      // Only WAL wakes the writer: a new commit LSN rides along with the next WAL,
      // or goes alone once no WAL came for commit_announce_delay. (Waking every
      // writer on each acknowledgement would compete with the next append.)
      // Once the commit LSN sent is current and no message is in flight to any
      // safekeeper, no acknowledgement can move it: wait for WAL or a change
      // without a timeout, rather than every commit_announce_delay forever.
      auto idle_changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return can_send() || peer.announced_commit != core_.commit_lsn();
      };
      for (;;) {
        if (peer.announced_commit == core_.commit_lsn() && NothingInFlight()) {
          mu_.Await(absl::Condition(&idle_changed));
          if (can_send()) break;
          continue;  // the commit LSN moved (a stream started): announce it as above
        }
        if (mu_.AwaitWithTimeout(absl::Condition(&can_send), options_.commit_announce_delay)) {
          break;
        }
        if (core_.in_flight(i) < options_.max_in_flight &&
            peer.announced_commit != core_.commit_lsn()) {
          break;
        }
      }
      if (shutdown_ || peer.broken || !failed_.ok()) return absl::OkStatus();
      if (peer.next_send < buf_start_) {
        fetch_from = peer.next_send;
        fetch_to = std::min(buf_start_, fetch_from + options_.max_message_bytes);
      } else {
        const uint64_t n =
            std::min<uint64_t>(buf_end() - peer.next_send, options_.max_message_bytes);
        v1::AppendData* data = request.mutable_data();
        data->set_start_lsn(peer.next_send.value());
        data->set_data(buf_.substr(peer.next_send - buf_start_, n));
        data->set_commit_lsn(core_.commit_lsn().value());
        data->set_skip_to_start(std::exchange(peer.skip_next, false));
        core_.OnSent(i, n ? peer.next_send + n : Lsn());
        peer.next_send += n;
        peer.announced_commit = core_.commit_lsn();
      }
    }
    if (fetch_to.valid()) {
      // Older WAL than the buffer holds: this safekeeper lagged or restarted.
      CAMBIUM_ASSIGN_OR_RETURN(fetched, CatchUp(i, fetch_from, fetch_to));
      absl::MutexLock lock(&mu_);
      if (fetched.empty()) continue;  // it skips ahead: send from the new next_send
      v1::AppendData* data = request.mutable_data();
      data->set_start_lsn(fetch_from.value());
      data->set_data(std::move(fetched));
      data->set_commit_lsn(core_.commit_lsn().value());
      data->set_skip_to_start(std::exchange(peer.skip_next, false));
      core_.OnSent(i, fetch_to);
      peer.next_send = std::max(peer.next_send, fetch_to);
      peer.announced_commit = core_.commit_lsn();
    }
    if (!stream->Write(request)) return absl::OkStatus();  // Finish() says why
  }
}

bool WalProposer::NothingInFlight() const {
  for (int j = 0; j < core_.num_acceptors(); ++j) {
    if (core_.in_flight(j) > 0) return false;
  }
  return true;
}

absl::StatusOr<std::string> WalProposer::FetchFromPeers(int except, Lsn from, Lsn to,
                                                        bool use_archive) {
  std::vector<int> sources;
  Term term;
  {
    absl::MutexLock lock(&mu_);
    term = core_.term();
    // The donor's WAL up to the term start is final; others qualify once they
    // hold the current log beyond `to`.
    if (to <= core_.start_lsn() && core_.donor() != except) sources.push_back(core_.donor());
    for (int j = 0; j < static_cast<int>(peers_.size()); ++j) {
      if (j != except && j != core_.donor() && core_.streaming(j) && core_.current_lsn(j) >= to) {
        sources.push_back(j);
      }
    }
  }
  std::string errors;
  for (int j : sources) {
    absl::StatusOr<std::string> wal =
        peers_[j]->client->ReadWal(options_.tenant, options_.timeline, from, to, term);
    if (wal.ok() && wal->size() == to - from) return wal;
    absl::StrAppend(&errors, " ", wal.ok() ? "short read" : wal.status().ToString());
  }
  if (use_archive && options_.read_archived) {
    absl::StatusOr<std::string> wal = FetchFromArchive(except, from, to);
    if (wal.ok()) return wal;
    absl::StrAppend(&errors, " ", wal.status().message());
  }
  return absl::UnavailableError(absl::StrFormat(
      "no safekeeper could provide WAL [%s, %s)%s:%s", from.ToString(), to.ToString(),
      except < 0 ? "" : " to bring " + peers_[except]->address + " up to date",
      errors.empty() ? " none holds it" : errors));
}

absl::StatusOr<std::string> WalProposer::FetchFromArchive(int except, Lsn from, Lsn to) {
  if (!options_.read_archived) return absl::UnavailableError("archive: none configured");
  // Committed WAL the safekeepers removed after the pageserver archived it. What
  // the archive holds was committed, so it is what every later log holds too.
  absl::StatusOr<std::string> wal = options_.read_archived(from, to);
  if (!wal.ok()) return Annotate(wal.status(), "archive");
  if (wal->size() != to - from) {
    return absl::UnavailableError(
        absl::StrFormat("archive: %u bytes instead of %u", wal->size(), to - from));
  }
  LogInfo("wal_fetched_from_archive",
          {{"proposer", options_.name},
           {"timeline", options_.timeline},
           {"from", from},
           {"to", to},
           {"for", except < 0 ? std::string("reader") : peers_[except]->address}});
  return wal;
}

absl::StatusOr<std::string> WalProposer::CatchUp(int i, Lsn from, Lsn to) {
  Peer& peer = *peers_[i];
  bool empty;
  {
    absl::MutexLock lock(&mu_);
    empty = peer.empty;
  }
  absl::StatusOr<std::string> wal = FetchFromPeers(i, from, to, /*use_archive=*/false);
  if (wal.ok()) return wal;
  std::string errors(wal.status().message());
  // A safekeeper that lagged keeps its WAL continuous from the archive if it can;
  // one that holds nothing (rebuilt) need not fetch the timeline's whole history.
  if (!empty) {
    wal = FetchFromArchive(i, from, to);
    if (wal.ok()) return wal;
    absl::StrAppend(&errors, "; ", wal.status().message());
  }
  absl::StatusOr<Lsn> skip = SkipPoint(i, from);
  if (skip.ok()) {
    LogInfo("safekeeper_skips_ahead", {{"proposer", options_.name},
                                       {"safekeeper", peer.address},
                                       {"timeline", options_.timeline},
                                       {"from", from},
                                       {"to", *skip}});
    absl::MutexLock lock(&mu_);
    peer.next_send = std::max(peer.next_send, *skip);
    peer.skip_next = true;
    return std::string();
  }
  absl::StrAppend(&errors, "; cannot skip: ", skip.status().message());
  if (empty) {
    wal = FetchFromArchive(i, from, to);
    if (wal.ok()) return wal;
    absl::StrAppend(&errors, "; ", wal.status().message());
  }
  return absl::UnavailableError(errors);
}

absl::StatusOr<Lsn> WalProposer::SkipPoint(int except, Lsn from) {
  Term term;
  Lsn commit;
  std::vector<int> peers;
  {
    absl::MutexLock lock(&mu_);
    term = core_.term();
    commit = core_.commit_lsn();
    // Those that can serve the WAL from the skip point on: they hold this term's log.
    for (int j = 0; j < static_cast<int>(peers_.size()); ++j) {
      if (j != except && (core_.streaming(j) || j == core_.donor())) peers.push_back(j);
    }
  }
  // WAL below a safekeeper's lowest stored LSN was committed and archived (it
  // removes segments only then), so it may be missing here too. Skip to the
  // highest of them, so that every one of them can serve what follows.
  int source = -1;
  Lsn base;  // the highest of their lowest stored LSNs
  for (int j : peers) {
    absl::StatusOr<SafekeeperStatus> status =
        peers_[j]->client->Status(options_.tenant, options_.timeline);
    if (!status.ok()) continue;
    if (status->wal_start > base) {
      base = status->wal_start;
      source = j;
    }
  }
  if (source < 0) return absl::UnavailableError("no other safekeeper of this term answered");
  if (base <= from) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s still stores WAL from %s", peers_[source]->address, base.ToString()));
  }
  // The WAL there may continue a record that began below: skip to the first
  // record boundary (a complete record, never part of one).
  constexpr uint64_t kProbe = 1 << 20;
  const Lsn probe_end = std::min(commit, base + kProbe);
  if (probe_end <= base) {
    return absl::FailedPreconditionError(
        absl::StrFormat("the WAL at %s is not committed yet", base.ToString()));
  }
  CAMBIUM_ASSIGN_OR_RETURN(
      const std::string bytes,
      peers_[source]->client->ReadWal(options_.tenant, options_.timeline, base, probe_end, term));
  pg::WalDecoder decoder(base, {.segment_size = options_.wal_segment_size});
  decoder.Feed(bytes);
  CAMBIUM_ASSIGN_OR_RETURN(const std::optional<pg::WalRecord> first, decoder.Next());
  if (!first.has_value()) {
    return absl::FailedPreconditionError(absl::StrFormat("no complete record begins in [%s, %s)",
                                                         base.ToString(), probe_end.ToString()));
  }
  // A record right after a page header starts at the page boundary: the end of
  // the record before it.
  const Lsn page = first->start.PageStart();
  const uint64_t header = page.SegmentOffset(options_.wal_segment_size) == 0
                              ? pg::kLongPageHeaderSize
                              : pg::kShortPageHeaderSize;
  const Lsn boundary = first->start == page + header ? page : first->start;
  if (boundary > commit || boundary <= from) {
    return absl::FailedPreconditionError(
        absl::StrFormat("the first record boundary %s at the lowest stored WAL is not in (%s, %s]",
                        boundary.ToString(), from.ToString(), commit.ToString()));
  }
  return boundary;
}

}  // namespace cambium::safekeeper
