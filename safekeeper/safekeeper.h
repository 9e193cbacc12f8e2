// Safekeeper: the timelines one safekeeper process holds, under
// <data dir>/<tenant hex>/<timeline hex>/, and their maintenance thread.
//
// Open() recovers every timeline found on disk and fails, naming the file, if one
// is damaged (a corrupt control file, WAL that stops below its commit LSN): the
// process must not start and vote with forgotten promises. Timelines are created
// when a proposer first names them (Elect or AppendStart carry the timeline start
// LSN). A background thread checkpoints every timeline each checkpoint_interval,
// and creates a timeline's next WAL segment as soon as an append passes the first
// quarter of the current one (Timeline::Preallocate).
//
// Deletion. DeleteTimeline first makes a tombstone durable
// (<data dir>/<tenant hex>/<timeline hex>.deleted), then stops the timeline and
// removes its directory. A tombstone stays forever (a few bytes): a stale
// proposer naming the timeline later gets FAILED_PRECONDITION instead of
// re-creating it. Open() finishes a deletion a crash interrupted (the directory
// of a tombstoned timeline is removed, never opened).
//
// Metrics (docs/metrics.md): the number of timelines and, per timeline, the flush,
// commit and archived LSNs, read at scrape time; the write path's counters are
// SafekeeperMetrics (safekeeper_metrics.h).
//
// Thread-safety: thread-safe. A Timeline outlives its deletion while callers
// still hold it (shared_ptr); its calls then fail with FAILED_PRECONDITION.
#ifndef CAMBIUM_SAFEKEEPER_SAFEKEEPER_H_
#define CAMBIUM_SAFEKEEPER_SAFEKEEPER_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/proto_convert.h"
#include "metrics/registry.h"
#include "safekeeper/file_system.h"
#include "safekeeper/timeline.h"

namespace cambium::safekeeper {

struct SafekeeperOptions {
  // Root of the timelines. Required.
  std::string data_dir;
  // This safekeeper's name in logs and error messages. Default: "safekeeper".
  std::string id = "safekeeper";
  // How often commit/archived LSNs are persisted and archived segments removed.
  // Default: 1 s.
  absl::Duration checkpoint_interval = absl::Seconds(1);
  // WAL segment size (Postgres' wal_segment_size). Default: 16 MiB.
  uint64_t segment_size = kDefaultWalSegmentSize;
  // File system (tests inject faults). Default: nullptr = the POSIX one.
  FileSystem* fs = nullptr;
  // Backpressure: most WAL of a timeline kept beyond what the pageserver reported
  // archived (with an object store: uploaded, so never on one disk only). New WAL
  // past it is refused with RESOURCE_EXHAUSTED until the pageserver catches up;
  // proposers retry and commits wait. 0: no bound (the disk is). Default: 4 GiB.
  uint64_t max_unarchived_wal = uint64_t{4} << 30;
};

class Safekeeper {
 public:
  static absl::StatusOr<std::unique_ptr<Safekeeper>> Open(const SafekeeperOptions& options);
  // Stops maintenance and checkpoints every timeline.
  ~Safekeeper();

  const std::string& id() const { return options_.id; }

  // NOT_FOUND if this safekeeper has never seen the timeline,
  // FAILED_PRECONDITION if it was deleted.
  absl::StatusOr<std::shared_ptr<Timeline>> Get(const TimelineKey& key);
  // Creates the timeline (durably) if needed. INVALID_ARGUMENT if timeline_start
  // is 0, FAILED_PRECONDITION if it was deleted, RESOURCE_EXHAUSTED if the disk
  // is full.
  absl::StatusOr<std::shared_ptr<Timeline>> GetOrCreate(const TimelineKey& key, Lsn timeline_start);
  // Deletes the timeline for good (see above); OK if it was deleted before or
  // never existed here (a tombstone is left either way).
  absl::Status DeleteTimeline(const TimelineKey& key);

  // Starts the maintenance thread.
  void StartMaintenance();
  // Wakes readers that follow commits: their streams end.
  void StopReaders();
  // Wakes readers (their streams end), stops maintenance, checkpoints everything.
  void Shutdown();

 private:
  explicit Safekeeper(SafekeeperOptions options) : options_(std::move(options)) {}
  absl::Status LoadTimelines();
  // Loads the tombstones of one tenant directory and removes what a crash left
  // of the timelines they name.
  absl::Status LoadTombstones(const std::string& tenant_dir, TenantId tenant)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteTombstone(const TimelineKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes a deleted timeline's directory and everything in it (idempotent).
  absl::Status RemoveTimelineDir(const TimelineKey& key);
  absl::Status DeletedError(const TimelineKey& key) const;
  void CheckpointAll();
  // Timeline::Preallocate on these timelines (the maintenance thread, for those
  // whose appends passed a quarter of a segment).
  void Preallocate(const std::set<TimelineKey>& keys);
  // Gives timeline `key` this safekeeper's limits, and its signal for
  // preallocation: the key joins preallocation_wanted_, which wakes maintenance.
  void Configure(const TimelineKey& key, Timeline& tl);
  // The scrape-time gauges: timelines, and each one's flush/commit/archived LSN.
  void RegisterMetrics();

  const SafekeeperOptions options_;
  absl::Mutex delete_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // one deletion at a time
  absl::Mutex mu_;
  std::map<TimelineKey, std::shared_ptr<Timeline>> timelines_ ABSL_GUARDED_BY(mu_);
  std::set<TimelineKey> deleted_ ABSL_GUARDED_BY(mu_);
  // The last checkpoint error logged per timeline (maintenance thread only), so
  // a full disk is logged when it starts and ends, not every second.
  std::map<TimelineKey, std::string> checkpoint_errors_;
  // The maintenance thread waits on these: a checkpoint every checkpoint_interval,
  // the timelines whose next segment an append asked for, and the end.
  absl::Mutex wake_mu_;
  std::set<TimelineKey> preallocation_wanted_ ABSL_GUARDED_BY(wake_mu_);
  bool stopping_ ABSL_GUARDED_BY(wake_mu_) = false;
  std::thread maintenance_;
  bool shut_down_ = false;
  // Last members: unregistered first, before the timelines they read go.
  std::vector<metrics::CallbackHandle> metrics_;
};

}  // namespace cambium::safekeeper

#endif  // CAMBIUM_SAFEKEEPER_SAFEKEEPER_H_
