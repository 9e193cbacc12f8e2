// HeadResolver: the exact head of a timeline, "head means acknowledged"
// (ARCHITECTURE.md section 7; docs/pageserver.md, "Exact head").
//
// A commit is acknowledged to a client once its WAL is durable on a quorum of
// safekeepers. The WAL archive trails that (it follows what the safekeepers learned
// is committed), so "head" cannot be the archive's end. Instead:
//
//  1. Ask every safekeeper for its state. A commit acknowledged before the call is
//     at or below `target`: the quorum-th highest end of complete records when all
//     answered (the commit is on a quorum), or the highest end among those that
//     answered when only a quorum did (any quorum intersects the commit's quorum).
//  2. What is certainly committed (`safe`): the highest commit LSN a safekeeper
//     learned from the writer, and the quorum-th highest record end among the
//     safekeepers whose newest WAL was written in the highest term seen (WAL on a
//     quorum in the newest term can never be replaced by an election).
//  3. Wait (bounded) until safe >= target, re-reading the states: normally it
//     already is, or becomes so within milliseconds as the writer's acknowledgements
//     arrive. The head is `safe`.
//  4. Make the archive hold it: when no safekeeper learned yet that the head is
//     committed (the writer died between its quorum ack and announcing it), read
//     the WAL from a safekeeper of the newest term; otherwise wait for the WAL
//     receiver.
//
// Every commit acknowledged before the call is then at or below the head, and the
// head is in the archive (a branch there can start). Failure modes are errors, never
// a smaller head: UNAVAILABLE when fewer than a quorum answer, DEADLINE_EXCEEDED when
// the WAL cannot be shown committed or archived in time.
//
// Thread-safety: thread-safe.
#ifndef CAMBIUM_PAGESERVER_HEAD_RESOLVER_H_
#define CAMBIUM_PAGESERVER_HEAD_RESOLVER_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/lsn.h"
#include "pageserver/repository.h"
#include "pageserver/safekeeper_set.h"
#include "safekeeper/safekeeper_client.h"

namespace cambium::pageserver {

class WalReceiver;

// What one round of safekeeper states says about the head (steps 1 and 2).
struct QuorumHead {
  bool none = false;  // no safekeeper ever saw the timeline: all its WAL was imported
  Lsn target;         // every commit acknowledged before the states were read is <= it
  Lsn safe;           // certainly committed (a record boundary)
  Lsn announced;      // the highest commit LSN a safekeeper learned from the writer
  // Safekeepers of the newest term whose complete records reach `safe`, with their
  // current term: where WAL not yet announced as committed can be read.
  std::vector<std::pair<int, safekeeper::Term>> donors;
  bool certain() const { return none || safe >= target; }
};

// Steps 1 and 2 over one state per safekeeper (in SafekeeperSet order).
absl::StatusOr<QuorumHead> ComputeQuorumHead(
    const std::vector<absl::StatusOr<safekeeper::SafekeeperStatus>>& statuses, int quorum);

struct HeadResolverOptions {
  // How long a head may take to be shown committed and archived. Default: 30 s.
  absl::Duration timeout = absl::Seconds(30);
  // How often the safekeepers are asked again while waiting. Default: 20 ms.
  absl::Duration poll_interval = absl::Milliseconds(20);
};

class HeadResolver : public HeadSource {
 public:
  HeadResolver(SafekeeperSet* safekeepers, WalArchive* archive, WalReceiver* receiver,
               HeadResolverOptions options = {});

  absl::StatusOr<Lsn> ResolveHead(const std::shared_ptr<Timeline>& timeline) override;

 private:
  // Steps 1 to 4 (ResolveHead adds its metrics).
  absl::StatusOr<Lsn> WaitForHead(const std::shared_ptr<Timeline>& timeline);
  // Step 4 when the head was not announced: archive [archive end, head) read from a
  // donor. Any failure is retried by the caller (the term may have moved on).
  absl::Status ArchiveFromDonor(Timeline& timeline, const QuorumHead& head);

  SafekeeperSet* const safekeepers_;
  WalArchive* const archive_;
  WalReceiver* const receiver_;
  const HeadResolverOptions options_;
};

}  // namespace cambium::pageserver

#endif  // CAMBIUM_PAGESERVER_HEAD_RESOLVER_H_
