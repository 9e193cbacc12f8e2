// Timeline: one line of history of a tenant's data directory: its own versions,
// plus its ancestor's state at the branch point (docs/pageserver.md).
//
// Reads (GetFileState, GetPage, ListFiles) walk the ancestry: the newest visible
// version tagged <= X on this timeline, else the ancestor at min(X, ancestor_lsn).
// Writes come from the single attached writer (a compute shim): Attach hands out a
// generation and abandons the dead writer's tail; ApplyBatch applies one batch of
// tagged mutations atomically; Barrier makes everything applied durable.
//
// Branch points are frozen (docs/pageserver.md, "Frozen branch points"): creating a
// child at X seals this timeline at X (WriteSealed), and every mutation applied after
// the seal that is tagged <= X is stored at X + 1 instead, so no read at any LSN <= X
// ever changes again.
//
// Thread-safety: thread-safe. Reads take no timeline lock beyond a short copy of the
// visibility rules; writes are serialized by write_mu_.
#ifndef CAMBIUM_PAGESERVER_TIMELINE_H_
#define CAMBIUM_PAGESERVER_TIMELINE_H_

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cambium/storage/v1/pageserver_meta.pb.h"
#include "cambium/v1/page_service.pb.h"
#include "common/ids.h"
#include "common/lsn.h"
#include "pageserver/page_store.h"
#include "pageserver/versions.h"

namespace cambium::pageserver {

// A file as the manifest at an LSN shows it.
struct ManifestEntry {
  std::string path;
  FileState state;
  Lsn changed_lsn;  // tag of the version that produced this state
};

struct Page {
  std::string data;  // kBlockSize bytes
  Lsn version_lsn;   // tag of the version served; invalid for a block read as zeros
};

struct BatchResult {
  bool synced = false;
};

struct TimelineOptions {
  // Largest file a writer may create, in bytes (a Postgres relation segment is
  // 1 GiB). Bounds the work of one truncation. Default: 1 GiB.
  uint64_t max_file_bytes = uint64_t{1} << 30;
};

class Timeline {
 public:
  // Builds a timeline from its stored record. `ancestor` must be the loaded ancestor
  // (nullptr for a root).
  static absl::StatusOr<std::shared_ptr<Timeline>> Load(PageStore* store,
                                                        const storage::v1::TimelineRecord& record,
                                                        std::shared_ptr<Timeline> ancestor,
                                                        TimelineOptions options = {});

  const TenantId& tenant_id() const { return tenant_id_; }
  const TimelineId& id() const { return id_; }
  const std::shared_ptr<Timeline>& ancestor() const { return ancestor_; }
  Lsn ancestor_lsn() const { return ancestor_lsn_; }

  storage::v1::TimelineRecord record() const;
  // The end of the last complete WAL record archived (the WAL archive owns and
  // persists it; see RaiseLastRecordLsn).
  Lsn last_record_lsn() const { return Lsn(last_record_lsn_.load()); }
  Lsn gc_cutoff_lsn() const;
  // Nothing below it may be read or branched from through this timeline (a masked
  // branch's past); Lsn() if none. Children inherit it.
  Lsn history_floor_lsn() const;
  uint64_t generation() const;
  // The highest branch point of a child of this timeline (Lsn() if none).
  Lsn seal_lsn() const;
  // False while the timeline has no versions of its own (a branch nobody wrote to):
  // reads then go straight to its ancestor.
  bool has_own_versions() const { return own_versions_.load(); }
  // A snapshot's timeline: Attach refuses every writer. Set by the repository when it
  // creates or loads the snapshot's branch record (not persisted here).
  void Freeze() { frozen_ = true; }
  bool frozen() const { return frozen_.load(); }
  // Increases with every applied batch and attach (size caches key on it).
  uint64_t write_version() const { return write_version_.load(); }

  // The meta-family key of a timeline record.
  static std::string RecordKey(const TenantId& tenant, const TimelineId& timeline);
  // The meta-family key of the writer's (generation, seq, last tag, detached).
  std::string WriteStateKey() const;
  // The meta-family key of the seal (the highest child branch point).
  std::string SealKey() const;

  // --- Reads (timeline_read.cc) ---

  // The state of `path` at `lsn` (exists=false if it never existed or was removed),
  // and the tag that produced it.
  absl::StatusOr<std::optional<FileVersion>> GetFileState(std::string_view path, Lsn lsn) const;
  // Block `block` of regular file `path` at `lsn`: NOT_FOUND if the file does not
  // exist, OUT_OF_RANGE beyond its end, zeros for a block never written, DATA_LOSS if
  // the stored version is corrupt.
  absl::StatusOr<Page> GetPage(std::string_view path, uint32_t block, Lsn lsn) const;
  // Same, with the file state already known (for batched reads of one file).
  absl::StatusOr<Page> GetPageOfFile(std::string_view path, uint32_t block, Lsn lsn,
                                     const FileState& file) const;
  // Every path (files and directories) that exists at `lsn`, in path order.
  absl::StatusOr<std::vector<ManifestEntry>> ListFiles(Lsn lsn) const;

  // --- Writes (timeline_write.cc) ---

  // Makes `writer` the only writer, starting at `start_lsn`. Refused while another
  // writer's lease is live unless `takeover`. Returns the new generation.
  absl::StatusOr<uint64_t> Attach(const std::string& writer, Lsn start_lsn, bool takeover,
                                  absl::Duration lease);
  // The writer of `generation` is done (a clean shutdown): the next attach needs no
  // takeover, and its later batches and barriers are refused. Its writes stay.
  // Persisted: the writer stays detached across a restart.
  absl::Status Detach(uint64_t generation);
  // The current writer, named `writer`, is known to be dead (its shim was killed):
  // detaches it. False if no writer is attached or it already detached;
  // FAILED_PRECONDITION if the current writer has another name.
  absl::StatusOr<bool> Release(const std::string& writer);

  // True if a writer is attached, has not detached, and is alive: it has a mutation
  // stream open, or was heard from within `lease`. Attach refuses (without takeover)
  // exactly when this is true.
  bool WriterActiveWithin(absl::Duration lease) const;
  // The page service calls these around a PutMutations stream of `generation` (at its
  // hello); an open stream keeps the writer live however idle the compute is.
  // StreamOpened refuses (FAILED_PRECONDITION) a fenced or detached generation; call
  // StreamClosed only after it succeeded.
  absl::Status StreamOpened(uint64_t generation);
  void StreamClosed(uint64_t generation);

  // Applies one batch from the current generation. Batches with seq <= the last
  // applied are acknowledged without being applied again (a resend after a
  // reconnect). With sync, returns once the batch is durable.
  absl::StatusOr<BatchResult> ApplyBatch(
      uint64_t generation, uint64_t seq,
      const google::protobuf::RepeatedPtrField<v1::Mutation>& mutations, bool sync);
  // Waits until batch `up_to_seq` of `generation` is applied (it may be in flight on
  // another stream), then makes everything applied durable. Returns the highest tag
  // now durable.
  absl::StatusOr<Lsn> Barrier(uint64_t generation, uint64_t up_to_seq, absl::Duration timeout);

  // --- Maintenance (used by the WAL archive, branching and GC) ---

  // Raises last_record_lsn (never lowers it), in memory: the WAL archive persists its
  // end in its own state, which is the source of truth after a restart.
  void RaiseLastRecordLsn(Lsn lsn);
  absl::Status SetGcCutoff(Lsn cutoff);
  // Raises the history floor (persisted, synced); never lowers it.
  absl::Status SetHistoryFloor(Lsn floor);
  // Writes `batch` (the records of a new child branched at `at`) durably together
  // with this timeline's seal at `at`, atomically with respect to ApplyBatch: from
  // then on every mutation tagged <= `at` is stored at seal + 1.
  absl::Status WriteSealed(Lsn at, rocksdb::WriteBatch* batch);
  // Visibility check for versions stored on this timeline.
  bool Visible(Lsn tag, uint64_t generation) const;
  // GC: deletes those of `keys` (of `family`, on this timeline) whose stored version is
  // still invisible, with writes held off: a key the current writer rewrote since GC
  // read it (same path, block and tag) is kept. Returns how many were deleted.
  absl::StatusOr<uint64_t> DeleteIfStillInvisible(Family family,
                                                  const std::vector<std::string>& keys);

  // --- Deletion ---

  // From now on every write of this timeline (its writer, the WAL archive, GC) fails
  // with FAILED_PRECONDITION; waits for writes in progress. The repository calls it
  // before removing the timeline's data, so that whoever still holds the timeline (a
  // WAL receiver, a writer's stream) cannot write any of it back.
  void MarkDeleted();
  bool deleted() const;
  // Holds off MarkDeleted while a write of this timeline's keys runs;
  // FAILED_PRECONDITION once deleted. Lock order: before write_mu_ and mu_.
  using WriteGuard = std::shared_lock<std::shared_mutex>;
  absl::StatusOr<WriteGuard> GuardWrite() const;

 private:
  struct WriteState;
  class BatchBuilder;

  Timeline(PageStore* store, const storage::v1::TimelineRecord& record,
           std::shared_ptr<Timeline> ancestor, TimelineOptions options);

  absl::Status PersistRecordLocked(bool sync) const;
  // Raises one LSN field of the record (get/set) to `value` and persists it, synced;
  // never lowers it.
  absl::Status RaiseRecordLsn(Lsn value, uint64_t (storage::v1::TimelineRecord::*get)() const,
                              void (storage::v1::TimelineRecord::*set)(uint64_t));
  // The stored write state for the current writer. REQUIRES: write_mu_ held.
  std::string EncodeWriteStateLocked() const;
  std::shared_ptr<const Visibility> visibility() const;
  absl::StatusOr<std::optional<FileVersion>> FindFileState(std::string_view path, Lsn lsn,
                                                           const rocksdb::Snapshot* snap) const;
  absl::StatusOr<std::optional<BlockVersion>> FindBlockVersion(std::string_view path,
                                                               uint32_t block, Lsn lsn,
                                                               Lsn incarnation) const;
  absl::Status LoadWriteStateLocked();
  // The one definition of writer liveness (see WriterActiveWithin).
  // REQUIRES: write_mu_ held, mu_ not held.
  bool WriterActiveLocked(absl::Duration lease) const;
  // Marks the current generation detached, durably. REQUIRES: write_mu_ held.
  absl::Status DetachLocked();
  // FAILED_PRECONDITION if the current generation detached. REQUIRES: write_mu_ held.
  absl::Status RefuseDetachedLocked(uint64_t generation) const;
  absl::Status LoadHeadLocked(Lsn lsn);
  // The (generation, start LSN) of every attach in `record`, for Visibility.
  static std::vector<std::pair<uint64_t, Lsn>> AttachList(
      const storage::v1::TimelineRecord& record);

  PageStore* const store_;
  const TimelineOptions options_;
  const TenantId tenant_id_;
  const TimelineId id_;
  const std::shared_ptr<Timeline> ancestor_;
  const Lsn ancestor_lsn_;
  std::atomic<uint64_t> last_record_lsn_;

  mutable std::shared_mutex delete_mu_;  // guards deleted_ (see GuardWrite)
  bool deleted_ = false;

  mutable std::mutex mu_;  // guards record_ and visibility_
  storage::v1::TimelineRecord record_;
  std::shared_ptr<const Visibility> visibility_;

  // Writer state. Lock order: write_mu_ before mu_.
  mutable std::mutex write_mu_;
  std::condition_variable applied_cv_;
  uint64_t last_seq_ = 0;  // GUARDED_BY(write_mu_)
  Lsn last_tag_;           // GUARDED_BY(write_mu_)
  absl::Time last_seen_;   // GUARDED_BY(write_mu_): lease renewal
  int open_streams_ = 0;   // GUARDED_BY(write_mu_): streams of the current generation
  bool detached_ = false;  // GUARDED_BY(write_mu_): the current generation said it is done
  bool barrier_abandoned_ = false;  // GUARDED_BY(write_mu_): set by MarkDeleted
  // Highest child branch point. Written under write_mu_ (atomic with respect to
  // batches); read by seal_lsn() without it.
  std::atomic<uint64_t> seal_{0};
  std::atomic<uint64_t> write_version_{0};
  std::atomic<bool> own_versions_{false};
  std::atomic<bool> frozen_{false};
  bool head_loaded_ = false;               // GUARDED_BY(write_mu_)
  std::map<std::string, FileState> head_;  // GUARDED_BY(write_mu_): paths existing at the head
};

}  // namespace cambium::pageserver

#endif  // CAMBIUM_PAGESERVER_TIMELINE_H_
