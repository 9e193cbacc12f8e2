// WalProposer: the client side of the safekeeper protocol, used by the compute
// shim: elect this writer for a timeline, stream its WAL to every safekeeper, and
// wait until a quorum has it durably (the commit latency of the compute).
//
//   auto proposer = WalProposer::Create(options);
//   Lsn start = (*proposer)->Elect();            // WAL of this term starts here
//   (*proposer)->Append(lsn, bytes);             // as Postgres writes pg_wal
//   (*proposer)->WaitForFlush(lsn, timeout);     // what fsync of pg_wal waits for
//
// Append never blocks: bytes go into an in-memory buffer and one thread per
// safekeeper streams them (a persistent Append stream, at most max_in_flight
// unacknowledged messages, everything appended meanwhile coalesced into the next
// message, so fsyncs batch under load). An Append may start below what was
// appended before: Postgres rewrites its last, zero-padded page; the changed
// bytes are resent and acknowledgements of the old version no longer count
// (ProposerCore). A stream that fails is reopened with backoff and resends from
// what that safekeeper durably holds; WAL no longer buffered is fetched from an
// up-to-date safekeeper.
//
// WAL that no safekeeper holds any more (removed after the pageserver archived
// it) is read through ProposerOptions::read_archived, so a lagging safekeeper
// catches up even after its peers trimmed. A safekeeper that holds no WAL
// (rebuilt), or that the archive cannot serve, skips instead: it is told to
// store WAL from the first record boundary at another safekeeper's lowest stored
// LSN (everything below is committed and archived), like a trimmed one.
//
// Errors: FAILED_PRECONDITION is permanent: a newer term fenced this proposer (a
// second writer on the timeline), the WAL diverged, or the timeline was deleted.
// UNAVAILABLE (no quorum reachable), RESOURCE_EXHAUSTED (safekeepers out of disk
// space, or holding as much WAL as they may beyond what the pageserver archived)
// and DEADLINE_EXCEEDED (reachable but not flushed in time) name the safekeepers
// at fault; the proposer keeps trying and resumes when they accept WAL again.
//
// Thread-safety: thread-safe. Elect must return before Append/WaitForFlush.
#ifndef CAMBIUM_SAFEKEEPER_WAL_PROPOSER_H_
#define CAMBIUM_SAFEKEEPER_WAL_PROPOSER_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cambium/v1/safekeeper_service.grpc.pb.h"
#include "common/ids.h"
#include "common/lsn.h"
#include "grpcpp/client_context.h"
#include "safekeeper/proposer_core.h"
#include "safekeeper/safekeeper_client.h"

namespace cambium::safekeeper {

struct ProposerOptions {
  // Safekeeper addresses ("127.0.0.1:PORT"). Required.
  std::vector<std::string> safekeepers;
  TenantId tenant;
  TimelineId timeline;
  // For logs and the safekeepers' logs. Default: "proposer".
  std::string name = "proposer";
  // Where the timeline's WAL begins (its branch point, or a segment start). Required.
  Lsn timeline_start;
  // Acknowledgements needed to commit. Default: 0 = a majority.
  int quorum = 0;
  // Deadline of each unary call and of Elect's wait. Default: 5 s.
  absl::Duration rpc_timeout = absl::Seconds(5);
  // Longest wait between reconnection attempts. Default: 1 s.
  absl::Duration max_reconnect_backoff = absl::Seconds(1);
  // Unacknowledged messages per safekeeper. Default: 2.
  int max_in_flight = 2;
  // Largest WAL payload per message. Default: 4 MiB.
  uint64_t max_message_bytes = 4 << 20;
  // Most WAL kept that a quorum has not flushed; Append fails beyond. Default: 512 MiB.
  uint64_t max_buffer_bytes = uint64_t{512} << 20;
  // How long a new commit LSN waits for WAL to ride along before it is sent alone
  // (so that readers of the safekeepers see it). Default: 2 ms.
  absl::Duration commit_announce_delay = absl::Milliseconds(2);
  // Postgres' wal_segment_size (to decode WAL at a safekeeper's lowest stored
  // segment when a lagging safekeeper skips ahead). Default: 16 MiB.
  uint64_t wal_segment_size = kDefaultWalSegmentSize;
  // Committed WAL [from, to) that safekeepers may have removed, from the
  // pageserver's archive (the shim passes the pageserver's GetWal). Used to
  // bring a safekeeper up to date when no other safekeeper holds the range any
  // more; it must return exactly to - from bytes or fail. Default: none (such a
  // safekeeper cannot catch up).
  std::function<absl::StatusOr<std::string>(Lsn from, Lsn to)> read_archived;
};

class WalProposer {
 public:
  static absl::StatusOr<std::unique_ptr<WalProposer>> Create(const ProposerOptions& options);
  // Closes the streams (WAL not yet acknowledged may or may not be durable).
  ~WalProposer();

  // Elects this proposer with a term above every term a quorum has seen and waits
  // until a quorum holds the WAL up to where this term starts. Returns that LSN:
  // the end of the last complete record of the most advanced safekeeper (or the
  // timeline start). Refused votes (a competing proposer) are retried with
  // higher terms, unreachable safekeepers for up to rpc_timeout; then
  // UNAVAILABLE. FAILED_PRECONDITION if the timeline was deleted. May be retried
  // after it failed to get a quorum of votes; once it succeeded, the proposer
  // stays elected until fenced.
  absl::StatusOr<Lsn> Elect();
  Term term() const;
  // Where this term's WAL starts, once a quorum voted (also when Elect then timed
  // out waiting for the quorum to hold it: WaitForFlush(start_lsn()) resumes).
  Lsn start_lsn() const;

  // Queues WAL bytes at `lsn`, replacing what was queued there before.
  // REQUIRES: lsn <= the end of everything appended so far (no gaps); bytes may
  // change only on the last page below the commit LSN or above it (Postgres
  // rewrites the page holding the end of its last write, nothing older).
  absl::Status Append(Lsn lsn, std::string_view bytes);
  // Waits until a quorum durably holds the current WAL up to `lsn`.
  absl::Status WaitForFlush(Lsn lsn, absl::Duration timeout);
  // Highest LSN a quorum durably holds in its current version.
  Lsn commit_lsn() const;
  // Committed WAL in [from, to), from an up-to-date safekeeper.
  absl::StatusOr<std::string> ReadWal(Lsn from, Lsn to);

 private:
  // One safekeeper. The immutable parts are set in the constructor; the rest is
  // guarded by mu_.
  struct Peer {
    std::string address;
    std::unique_ptr<v1::SafekeeperService::Stub> stub;
    std::unique_ptr<SafekeeperClient> client;
    std::thread thread;
    grpc::ClientContext* context = nullptr;  // the live stream's, to cancel it
    bool connected = false;                  // AppendStart acknowledged on the live stream
    bool broken = false;                     // the live stream's reader stopped
    Lsn next_send;                           // next WAL byte to send on the live stream
    Lsn announced_commit;                    // last commit LSN sent on it
    std::string last_error;                  // why the last stream or call failed
    // The last refusal (full disk, backpressure), until WAL is acknowledged again.
    std::string refusal;
    bool empty = false;      // held no WAL when the live stream started
    bool skip_next = false;  // the next message tells it to skip to next_send
  };
  explicit WalProposer(const ProposerOptions& options);

  absl::Status RunElection();
  void PeerLoop(int i);
  absl::Status RunStream(int i);
  void ReaderLoop(int i, grpc::ClientReaderWriter<v1::AppendRequest, v1::AppendResponse>* stream);
  absl::Status WriterLoop(int i,
                          grpc::ClientReaderWriter<v1::AppendRequest, v1::AppendResponse>* stream);
  // WAL [from, to) from a safekeeper that holds it in the current log, other
  // than safekeeper `except` (the one to bring up to date; -1: any), or else
  // (with use_archive) from the archive (read_archived).
  absl::StatusOr<std::string> FetchFromPeers(int except, Lsn from, Lsn to, bool use_archive = true);
  absl::StatusOr<std::string> FetchFromArchive(int except, Lsn from, Lsn to);
  // WAL [from, to) to bring safekeeper i up to date; OK with an empty string
  // once it was set to skip ahead instead (peer.skip_next, peer.next_send).
  absl::StatusOr<std::string> CatchUp(int i, Lsn from, Lsn to);
  // Where safekeeper `except`, whose WAL ends at `from`, may skip to: the first
  // record boundary at the highest of the lowest LSNs the other safekeepers of
  // this term store, if that is above `from` and at or below the commit LSN.
  absl::StatusOr<Lsn> SkipPoint(int except, Lsn from);
  // The part of WaitTimeoutStatus about safekeepers that refuse WAL (a full disk,
  // backpressure).
  absl::Status RefusalStatus(Lsn lsn, const std::vector<std::string>& down) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TrimBuffer() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // No message to any safekeeper awaits its acknowledgement.
  bool NothingInFlight() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status StatusLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WaitTimeoutStatus(Lsn lsn) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Lsn buf_end() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return buf_start_ + buf_.size(); }

  const ProposerOptions options_;
  std::vector<std::unique_ptr<Peer>> peers_;

  mutable absl::Mutex mu_;
  ProposerCore core_ ABSL_GUARDED_BY(mu_);
  bool elect_called_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  // Permanent failure: fenced or diverged.
  absl::Status failed_ ABSL_GUARDED_BY(mu_);
  // WAL from buf_start_ on; below it, WAL is fetched from safekeepers.
  std::string buf_ ABSL_GUARDED_BY(mu_);
  Lsn buf_start_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cambium::safekeeper

#endif  // CAMBIUM_SAFEKEEPER_WAL_PROPOSER_H_
