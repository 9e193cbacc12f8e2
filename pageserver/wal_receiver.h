// WalReceiver: pulls committed WAL of active timelines from the safekeepers into the
// pageserver's WAL archive (ARCHITECTURE.md section 3, "WAL archive"), and keeps the
// safekeepers' storage in step with it.
//
// Following: one thread per timeline that has a live writer (or committed WAL not
// yet archived). It follows the safekeeper with the most committed WAL from the
// archive's end, appends what arrives (the archive keeps complete records; a
// trailing partial record waits for its rest) and on an error switches safekeepers
// (one that served damaged WAL is avoided for a while). It stops once the writer is
// gone and everything committed is archived; a writer connecting (its hello) or a
// head being resolved starts it again.
//
// Metrics: cambium_pageserver_wal_received_bytes_total, and per followed timeline
// cambium_pageserver_wal_archive_lag_bytes: committed WAL known here that the archive
// lacks. The commit LSN is learned from a safekeeper's status when a follower
// (re)connects and from the committed chunks streamed since (the stream does not
// carry it), so the gauge shows the backlog a follower starts with, not WAL committed
// but not streamed yet; the safekeepers' commit and archived LSN gauges show that.
//
// Housekeeping, one thread, every `report_interval`:
//  - makes the archive durable and reports each timeline's archived LSN to every
//    safekeeper that has not acknowledged it yet, so that every safekeeper trims
//    (ARCHITECTURE.md section 7), including one that was down when WAL was archived;
//    with an object store, the smaller of that and the uploaded archive end
//    (repeated every 30 s when unchanged: the safekeepers bound the WAL they hold
//    beyond it, and one that restarted may have lost the last report);
//  - deletes, on every safekeeper, the timelines the repository deleted (a durable
//    queue in the repository: a safekeeper that is down is retried later).
//
// Thread-safety: thread-safe.
#ifndef CAMBIUM_PAGESERVER_WAL_RECEIVER_H_
#define CAMBIUM_PAGESERVER_WAL_RECEIVER_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "metrics/registry.h"
#include "pageserver/repository.h"
#include "pageserver/safekeeper_set.h"

namespace cambium::pageserver {

struct WalReceiverOptions {
  // How often the archive is synced and reported, and deletions retried. Default: 1 s.
  absl::Duration report_interval = absl::Seconds(1);
  // How long a safekeeper that served damaged WAL is not followed. Default: 30 s.
  absl::Duration avoid_damaged_for = absl::Seconds(30);
  // With an object store (RemoteHistory): the archive end of a timeline that is off
  // this disk. The safekeepers are told min(archived, uploaded), so they trim only
  // what a lost disk cannot lose. Default: none (the archive on this disk counts).
  std::function<Lsn(const TimelineId&)> uploaded_end;
  // With an object store: called before timelines are deleted on the safekeepers, so
  // a deletion a lost disk would forget has not already removed their WAL. Default: none.
  std::function<absl::Status()> before_safekeeper_delete;
};

class WalReceiver {
 public:
  WalReceiver(Repository* repo, SafekeeperSet* safekeepers, WalReceiverOptions options = {});
  ~WalReceiver();

  // Makes sure a follower runs for the timeline (idempotent).
  void Follow(const std::shared_ptr<Timeline>& timeline);
  void Stop();

 private:
  struct Follower;
  void Run(Follower* f);
  bool FollowOnce(Follower* f);
  // The safekeeper with the most committed WAL that is not being avoided; -1 if none
  // answered. *committed receives its committed LSN.
  int PickSafekeeper(const Timeline& t, Lsn* committed);
  void Housekeeping();
  void ReportArchived();
  void DeleteOnSafekeepers();
  // cambium_pageserver_wal_archive_lag_bytes, per followed timeline.
  void CollectLag(std::vector<metrics::Sample>* out);

  Repository* const repo_;
  SafekeeperSet* const safekeepers_;
  const WalReceiverOptions options_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  std::map<TimelineId, std::unique_ptr<Follower>> followers_;  // GUARDED_BY(mu_)
  std::map<int, absl::Time> avoid_until_;                      // GUARDED_BY(mu_)
  // Housekeeping thread only: the archived LSN each safekeeper acknowledged, and
  // when. A report is repeated after a while even when the end did not move: a
  // safekeeper persists it lazily, and one that restarted may have lost it while
  // its timeline is idle, or stalled by its bound on unarchived WAL (which only a
  // report lifts).
  struct Reported {
    Lsn end;
    absl::Time at;
  };
  std::map<std::pair<TimelineId, int>, Reported> reported_;
  std::atomic<bool> stopping_{false};
  std::thread housekeeping_;
  // Last member: unregistered first, before what CollectLag reads goes.
  metrics::CallbackHandle metrics_;
};

}  // namespace cambium::pageserver

#endif  // CAMBIUM_PAGESERVER_WAL_RECEIVER_H_
