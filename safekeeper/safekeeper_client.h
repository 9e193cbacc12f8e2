// SafekeeperClient: what readers of a safekeeper need (the pageserver's WAL
// archive, tools, tests): Status, committed WAL (once, or followed as it
// commits), and ReportArchived so the safekeeper can remove archived segments.
//
// Committed WAL means complete records below the commit LSN the safekeeper
// learned: it never changes once served. Every record's CRC is checked before it
// is served; DATA_LOSS (naming the safekeeper and segment) means this
// safekeeper's copy is damaged: read from another one. Follow a timeline on any one up-to-date
// safekeeper (Status().committed_lsn is how far it can serve) and switch to
// another on failure, resuming from the last LSN received.
//
// Thread-safety: SafekeeperClient is thread-safe. A WalFollower is read by one
// thread; Cancel() may be called from any thread.
#ifndef CAMBIUM_SAFEKEEPER_SAFEKEEPER_CLIENT_H_
#define CAMBIUM_SAFEKEEPER_SAFEKEEPER_CLIENT_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cambium/v1/safekeeper_service.grpc.pb.h"
#include "common/ids.h"
#include "common/lsn.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "safekeeper/term_history.h"

namespace cambium::safekeeper {

struct SafekeeperStatus {
  std::string safekeeper;  // its --id
  Term term = 0;
  TermHistory history;
  Lsn timeline_start;
  Lsn wal_start;      // lowest LSN still stored
  Lsn flush_lsn;      // durable WAL end
  Lsn record_end;     // end of the last complete record
  Lsn commit_lsn;     // as learned from the proposer
  Lsn committed_lsn;  // what ReadWal serves
  Lsn archived_lsn;
};

struct WalBytes {
  Lsn start;
  std::string data;
};

// A ReadWal stream with follow = true.
class WalFollower {
 public:
  ~WalFollower();
  // The next chunk of committed WAL (in LSN order, contiguous), blocking until one
  // commits; std::nullopt once the stream ended cleanly (Cancel, server shutdown).
  absl::StatusOr<std::optional<WalBytes>> Next();
  void Cancel() { context_.TryCancel(); }

 private:
  friend class SafekeeperClient;
  WalFollower() = default;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::WalChunk>> reader_;
  bool done_ = false;
};

class SafekeeperClient {
 public:
  // `address` is "127.0.0.1:PORT".
  explicit SafekeeperClient(const std::string& address,
                            absl::Duration rpc_timeout = absl::Seconds(5));
  // Over an existing channel to `address` (shared with other stubs).
  SafekeeperClient(std::shared_ptr<grpc::Channel> channel, const std::string& address,
                   absl::Duration rpc_timeout = absl::Seconds(5));

  absl::StatusOr<SafekeeperStatus> Status(TenantId tenant, TimelineId timeline);
  // Committed WAL in [from, to) (to = Lsn(): all that is committed now). With a
  // term equal to the safekeeper's, WAL up to its flush LSN (a proposer's read).
  absl::StatusOr<std::string> ReadWal(TenantId tenant, TimelineId timeline, Lsn from,
                                      Lsn to = Lsn(), Term term = 0);
  // Follows committed WAL from `from` (no deadline).
  std::unique_ptr<WalFollower> Follow(TenantId tenant, TimelineId timeline, Lsn from);
  absl::Status ReportArchived(TenantId tenant, TimelineId timeline, Lsn archived);
  // Deletes the timeline on this safekeeper for good: its WAL and control file
  // go, and later Elect/AppendStart/ReadWal naming it fail with
  // FAILED_PRECONDITION. Idempotent (also for a timeline it never saw). Call it
  // on every safekeeper; RESOURCE_EXHAUSTED (no room for the tombstone) and
  // UNAVAILABLE are worth retrying.
  absl::Status DeleteTimeline(TenantId tenant, TimelineId timeline);

 private:
  void SetDeadline(grpc::ClientContext* context) const;

  const std::string address_;
  const absl::Duration rpc_timeout_;
  std::unique_ptr<v1::SafekeeperService::Stub> stub_;
};

}  // namespace cambium::safekeeper

#endif  // CAMBIUM_SAFEKEEPER_SAFEKEEPER_CLIENT_H_
