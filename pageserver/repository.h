// Repository: tenants, their timelines and the branch names that point to them; the
// control-plane operations of the pageserver (docs/pageserver.md).
//
// Branch operations are metadata writes: creating a branch writes one timeline
// record and one branch record in a single synced batch, whatever the data size.
// Restore and reset create a timeline and move the name; nothing is copied.
//
// Implementation is split by concern: repository.cc (loading, tenants, lookups, TTL
// reaper), branches.cc (branch operations), credentials.cc (Postgres passwords),
// sizes.cc, gc.cc, import.cc, commit_history.cc (commits per time bucket).
//
// Thread-safety: thread-safe. mu_ guards the maps; it is held across the (short,
// synced) metadata writes of an operation so operations on a tenant are serialized.
#ifndef CAMBIUM_PAGESERVER_REPOSITORY_H_
#define CAMBIUM_PAGESERVER_REPOSITORY_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cambium/storage/v1/pageserver_meta.pb.h"
#include "common/ids.h"
#include "common/lsn.h"
#include "common/pg/wal_records.h"
#include "pageserver/page_store.h"
#include "pageserver/timeline.h"
#include "pageserver/wal_archive.h"

namespace cambium::pageserver {

// The exact head of a timeline ("head means acknowledged", ARCHITECTURE.md section 7):
// the safekeepers' quorum commit LSN at the time of the call, once the WAL archive
// holds it. Implemented by the daemon over its safekeepers (head_resolver.h).
class HeadSource {
 public:
  virtual ~HeadSource() = default;
  // Waits (bounded) until the archive holds the head, then returns it: a WAL record
  // boundary at or below last_record_lsn().
  virtual absl::StatusOr<Lsn> ResolveHead(const std::shared_ptr<Timeline>& timeline) = 0;
};

struct RepositoryOptions {
  // PITR window of tenants created without one. Default: 7 days.
  absl::Duration default_pitr_window = absl::Hours(24 * 7);
  // A writer that has not been heard from for this long may be replaced without
  // takeover. Default: 10 s.
  absl::Duration writer_lease = absl::Seconds(10);
  // How long a deleted branch stays in the trash (undeletable) for tenants created
  // without a retention. Default: 7 days.
  absl::Duration default_trash_retention = absl::Hours(24 * 7);
  // How often expired branches go to the trash and expired trash is freed. Default: 1 s.
  absl::Duration ttl_check_interval = absl::Seconds(1);
  // Limits of every timeline's writers.
  TimelineOptions timeline;
};

struct TenantInfo {
  std::string name;
  TenantId id;
  absl::Duration pitr_window;
  absl::Duration trash_retention;
};

// The points of a branch's history that a restore, a branch at a time or a
// time-travel query can start from now: [earliest_lsn, latest_lsn].
struct RestorableRange {
  // The GC cutoff (inside the PITR window), or below it the branch point or the
  // root's import, as ResolvePointLocked decides.
  Lsn earliest_lsn;
  // The earliest time that resolves to a point at or above earliest_lsn; none if no
  // time does (every commit above it is gone, or there is none).
  std::optional<absl::Time> earliest_time;
  Lsn latest_lsn;                                // the archive's end (last_record_lsn)
  std::optional<absl::Time> latest_commit_time;  // the last commit at or below it
  absl::Duration pitr_window;                    // the tenant's
};

struct BranchInfo {
  std::string tenant;
  TenantId tenant_id;
  std::string name;
  TimelineId timeline_id;
  std::string parent;
  std::optional<TimelineId> ancestor_timeline;
  Lsn ancestor_lsn;
  Lsn last_record_lsn;
  absl::Time created;
  bool is_protected = false;
  std::optional<absl::Time> expires;
  std::optional<absl::Time> deleted;      // set for a branch in the trash
  std::optional<absl::Time> purge_after;  // in the trash: freed for good after this
  bool read_only_copy = false;            // CreateBranch(..., BranchKind::kReadOnlyCopy)
  bool snapshot = false;                  // CreateBranch(..., BranchKind::kSnapshot)
  bool masking = false;                   // BranchKind::kMasked, not completed yet
  Lsn history_floor;                      // Timeline::history_floor_lsn()
  uint64_t logical_size = 0;
  uint64_t unique_size = 0;       // page and file versions plus WAL
  uint64_t unique_wal_bytes = 0;  // the WAL part of unique_size
  // GetBranch and ListBranches only; none if it could not be read.
  std::optional<RestorableRange> restorable;
};

// The Postgres passwords of a branch (credentials.cc). Secrets: never logged.
struct BranchCredentials {
  std::string owner_password;
  std::string reader_password;
};

// What CreateBranch makes.
enum class BranchKind {
  kBranch,
  // The ephemeral copy of a read-only endpoint or a time-travel query.
  kReadOnlyCopy,
  // A named, immutable point: always protected, never a writer (Timeline::Freeze),
  // deleted only by DeleteSnapshot.
  kSnapshot,
  // A branch to be masked: no credentials, children or history reads until
  // CompleteMasking.
  kMasked,
};

// Where a branch or restore starts: an LSN (rounded down to a record boundary), a
// time (the end of the last commit at or before it), or the parent's head.
struct BranchPoint {
  std::optional<Lsn> lsn;
  std::optional<absl::Time> time;
  // RestoreBranch only: the state of this snapshot of the branch.
  std::optional<std::string> snapshot;
};

struct GcResult {
  uint64_t versions_removed = 0;
  Lsn cutoff;
};

// GetCommitHistory's question (commit_history.cc).
struct CommitHistoryQuery {
  std::optional<absl::Time> from;  // default: the earliest restorable time (else now - PITR)
  std::optional<absl::Time> to;    // default: now
  absl::Duration bucket = absl::Minutes(1);
  // Commits counted at most; past them the history is truncated. Default: 1,000,000.
  uint64_t max_commits = 1'000'000;
};

struct BranchHistory {
  absl::Time from;  // the query's range, defaults resolved
  absl::Time to;
  CommitHistory commits;
  RestorableRange restorable;
};

// One relation fork's changes in a range of a branch's history (ListChanges).
struct RelationChange {
  pg::RelFileNode node;
  uint32_t fork = 0;
  uint64_t blocks_changed = 0;  // distinct blocks
  uint64_t records = 0;
  Lsn first_lsn;                           // start of the first record that touched it
  Lsn last_lsn;                            // and of the last
  std::optional<absl::Time> first_commit;  // the first commit at or after first_lsn
  std::optional<absl::Time> last_commit;   // and after last_lsn
  bool created = false;
  bool dropped = false;
  bool truncated = false;
  // ListChanges' `blocks_of` relation (main fork): the changed blocks, ascending;
  // empty with blocks_truncated past kMaxListedBlocks.
  std::vector<uint32_t> blocks;
  bool blocks_truncated = false;
};

// The most blocks ListChanges lists for one relation (4 bytes each on the wire).
inline constexpr size_t kMaxListedBlocks = 500'000;

// A relation file (database, relfilenode) whose changed blocks ListChanges lists.
struct BlocksOf {
  uint32_t db = 0;
  uint32_t rel = 0;
};

struct ChangeSet {
  Lsn since;  // the range (since, until]
  Lsn until;
  std::optional<absl::Time> since_commit;  // the last commit at or below each end
  std::optional<absl::Time> until_commit;
  std::vector<RelationChange> changes;  // by (node, fork)
  uint64_t wal_bytes_read = 0;
  uint64_t records_read = 0;
};

// The most buckets one GetCommitHistory may ask for.
inline constexpr int64_t kMaxHistoryBuckets = 100'000;

class Repository {
 public:
  static absl::StatusOr<std::unique_ptr<Repository>> Open(PageStore* store,
                                                          RepositoryOptions options);
  ~Repository();

  PageStore* store() const { return store_; }
  WalArchive& archive() { return archive_; }
  const RepositoryOptions& options() const { return options_; }
  // Where "head" is. Without a source (unit tests, a pageserver with no safekeepers)
  // head is the archive's end. Set once, before serving.
  void SetHeadSource(HeadSource* source) { head_source_ = source; }
  // The exact head of a branch (HeadSource::ResolveHead), and where its archive stood
  // once it held the head.
  struct Head {
    Lsn lsn;
    Lsn archived;
  };
  absl::StatusOr<Head> GetHead(const std::string& tenant, const std::string& branch);
  // Declares the branch's writer, named `writer`, dead (Timeline::Release).
  absl::StatusOr<bool> ReleaseWriter(const std::string& tenant, const std::string& branch,
                                     const std::string& writer);

  // --- Tenants ---
  // Zero durations take the options' defaults.
  absl::StatusOr<TenantInfo> CreateTenant(const std::string& name, absl::Duration pitr_window,
                                          absl::Duration trash_retention = absl::ZeroDuration());
  std::vector<TenantInfo> ListTenants() const;
  // Refused while the tenant has protected branches or running writers.
  absl::Status DeleteTenant(const std::string& tenant);
  // A tenant by name or 32-hex id.
  absl::StatusOr<TenantInfo> GetTenant(const std::string& tenant) const;

  // --- Timelines (data plane) ---
  absl::StatusOr<std::shared_ptr<Timeline>> GetTimeline(const TenantId& tenant,
                                                        const TimelineId& timeline) const;
  std::vector<std::shared_ptr<Timeline>> AllTimelines() const;

  // --- Branches (branches.cc) ---
  // Creates the root timeline of a tenant, named `branch`, whose WAL archive starts at
  // `wal_start` (import.cc fills it).
  absl::StatusOr<std::shared_ptr<Timeline>> CreateRootTimeline(const std::string& tenant,
                                                               const std::string& branch,
                                                               Lsn wal_start);
  absl::StatusOr<BranchInfo> CreateBranch(const std::string& tenant, const std::string& name,
                                          const std::string& parent, const BranchPoint& point,
                                          std::optional<absl::Duration> ttl,
                                          BranchKind kind = BranchKind::kBranch);
  absl::StatusOr<BranchInfo> GetBranch(const std::string& tenant, const std::string& name);
  // GetBranch without the sizes (which read the store): for checks on every call.
  absl::StatusOr<BranchInfo> DescribeBranch(const std::string& tenant, const std::string& name);
  absl::StatusOr<std::vector<BranchInfo>> ListBranches(const std::string& tenant);
  // For metrics, cheap at every scrape: each live branch's logical size (the file
  // sizes at its head, cached per write), and its unique bytes as last computed by
  // a listing (they scan the timeline's versions; none before the first listing).
  struct BranchSizeSample {
    TenantId tenant;
    TimelineId timeline;
    std::string branch;
    uint64_t logical_size = 0;
    std::optional<uint64_t> unique_size;
  };
  std::vector<BranchSizeSample> BranchSizesForMetrics();
  // The trash (undoable deletes): without `purge`, a deleted branch keeps its
  // timeline, leaves the namespace and stays undeletable for the tenant's trash
  // retention; its name may be reused meanwhile. With `purge` (also of a name in
  // the trash) the timeline is freed at once. Refused while child branches (live or
  // trashed) read it.
  // Protected branches and branches with a live writer are never deleted. A branch
  // moved to the trash sets `*purge_after` (if given) to when it is freed for good.
  // DeleteBranch refuses a snapshot; DeleteSnapshot deletes only snapshots (which
  // are protected, and that protection is what it overrides).
  absl::Status DeleteBranch(const std::string& tenant, const std::string& name, bool purge = false,
                            absl::Time* purge_after = nullptr);
  absl::Status DeleteSnapshot(const std::string& tenant, const std::string& name,
                              bool purge = false, absl::Time* purge_after = nullptr);
  // Ends the masking of a branch created BranchKind::kMasked: its timeline's history
  // floor becomes its exact head, and the masking mark goes. FAILED_PRECONDITION if
  // it is not being masked.
  absl::StatusOr<BranchInfo> CompleteMasking(const std::string& tenant, const std::string& name);
  // FAILED_PRECONDITION while `name` is being masked (GetCredentials refuses it).
  absl::Status RequireNotMasking(const std::string& tenant, const std::string& name);
  // Brings back the newest trashed branch called `name`, with its data (its own
  // timeline, untouched). A TTL that passed meanwhile is cleared.
  absl::StatusOr<BranchInfo> UndeleteBranch(const std::string& tenant, const std::string& name);
  // The trash, oldest first.
  absl::StatusOr<std::vector<BranchInfo>> ListDeletedBranches(const std::string& tenant);
  absl::StatusOr<BranchInfo> ResetBranch(const std::string& tenant, const std::string& name);
  // Returns (the branch, its backup holding the old head).
  absl::StatusOr<std::pair<BranchInfo, BranchInfo>> RestoreBranch(const std::string& tenant,
                                                                  const std::string& name,
                                                                  const BranchPoint& point,
                                                                  const std::string& backup_name);
  absl::StatusOr<BranchInfo> SetProtection(const std::string& tenant, const std::string& name,
                                           bool is_protected);
  absl::StatusOr<LsnLookup> LsnByTimestamp(const std::string& tenant, const std::string& branch,
                                           absl::Time time);
  // The commits of the branch's history in [from, to) per bucket, and its restorable
  // range (commit_history.cc). INVALID_ARGUMENT for an empty or reversed range, a
  // bucket under 1 s, or more than kMaxHistoryBuckets buckets.
  absl::StatusOr<BranchHistory> GetCommitHistory(const std::string& tenant,
                                                 const std::string& branch,
                                                 const CommitHistoryQuery& query);
  // The relations changed in (since, until] of the branch's history (changes.cc):
  // the block references, relation creations and truncations and the relations
  // dropped by transactions, read from the WAL archive between the two points.
  // `until` without a point is the exact head. Maintenance that changes no row
  // (hint-bit images, pruning, vacuum, freezing, the visibility map) is not a
  // change. Cost: the WAL in the range, decoded once; no page data is read.
  absl::StatusOr<ChangeSet> ListChanges(const std::string& tenant, const std::string& branch,
                                        const BranchPoint& since, const BranchPoint& until,
                                        std::optional<BlocksOf> blocks_of = std::nullopt);
  // The branch's passwords, made (and stored, synced) on first use (credentials.cc).
  absl::StatusOr<BranchCredentials> GetCredentials(const std::string& tenant,
                                                   const std::string& branch);
  // Moves expired, unprotected branches without a live writer to the trash.
  int DeleteExpiredBranches(absl::Time now);
  // Frees trashed branches whose retention has passed. Returns how many.
  int PurgeExpiredTrash(absl::Time now);

  // Timelines deleted here whose safekeeper copies are still to be deleted (a durable
  // queue: the WAL receiver works it off, retrying safekeepers that are down).
  std::vector<std::pair<TenantId, TimelineId>> PendingSafekeeperDeletions() const;
  absl::Status SafekeeperDeletionDone(const TenantId& tenant, const TimelineId& timeline);

  // --- Moving a tenant to another pageserver (tenant_moves.cc) ---
  // The tenant's keys as a transfer exports them (pageserver/tenant_transfer.h).
  struct MovingTenant {
    TenantId id;
    std::string name;
    std::vector<TimelineId> timelines;
    std::vector<std::string> meta_prefixes;  // of its records in the meta family
  };
  // Takes the tenant out of service for a move: every write of its timelines (its
  // writers, the WAL archive, GC) stops, those in progress are waited for, and every
  // call for it is refused with UNAVAILABLE "moving" (MoveStatus) until FinishMove or
  // AbortMove. Durable: a pageserver restarted meanwhile keeps it out of service.
  // Its data stays for the export. Again on a tenant already moving: its keys.
  absl::StatusOr<MovingTenant> FenceTenantForMove(const std::string& tenant);
  // The move failed: the tenant is served here again, as it was.
  absl::Status AbortMove(const TenantId& id);
  // The tenant is attached at `moved_to` (a pageserver's address): its data here is
  // deleted (not its WAL on the safekeepers: it lives on there), and calls for it
  // are answered with where it went, durably.
  absl::Status FinishMove(const TenantId& id, const std::string& moved_to);
  // OK if a transfer of the tenant may be ingested here now (a forwarding address
  // left by an earlier move away is dropped); ALREADY_EXISTS if it is served here,
  // FAILED_PRECONDITION if it is moving away or its keys are still here.
  absl::Status PrepareAttach(const TenantId& id);
  // Serves a tenant whose keys a transfer ingested (AttachTenant).
  absl::StatusOr<TenantInfo> LoadAttachedTenant(const TenantId& id);
  // UNAVAILABLE (tenant_moves.h) if the tenant is moving away or moved away; OK otherwise.
  absl::Status MoveStatus(const TenantId& id) const;
  // The meta-family prefixes of every record of `id`.
  static std::vector<std::string> TenantMetaPrefixes(const TenantId& id);

  // --- GC (gc.cc) ---
  absl::StatusOr<GcResult> RunGc(const std::string& tenant);
  // GC of one timeline with an explicit cutoff (RunGc derives it from the PITR window).
  absl::StatusOr<uint64_t> GcTimeline(const TimelineId& id, Lsn cutoff);

 private:
  struct Tenant {
    storage::v1::TenantRecord record;
    TenantId id;
    std::map<std::string, storage::v1::BranchRecord> branches;
    std::vector<storage::v1::BranchRecord> trash;  // oldest first
  };

  explicit Repository(PageStore* store, RepositoryOptions options)
      : store_(store), options_(options), archive_(store) {}

  absl::Status Load();
  // Loads the records of one tenant, or of every tenant not in moves_.
  absl::Status LoadLocked(const std::optional<TenantId>& only);
  // tenant_moves.cc: moves_ from the store; deleting a moved tenant's keys.
  absl::Status LoadMovesLocked();
  absl::Status PurgeTenantDataLocked(const TenantId& id);
  static std::string MoveKey(const TenantId& id);
  void TtlLoop();

  // REQUIRES: mu_ held (for all *Locked methods).
  absl::StatusOr<Tenant*> FindTenantLocked(const std::string& tenant);
  absl::StatusOr<const Tenant*> FindTenantLocked(const std::string& tenant) const;
  absl::StatusOr<storage::v1::BranchRecord*> FindBranchLocked(Tenant& tenant,
                                                              const std::string& name);
  std::vector<std::shared_ptr<Timeline>> ChildrenLocked(const TimelineId& id) const;
  bool WriterLiveLocked(const Timeline& timeline) const;
  absl::StatusOr<Lsn> ResolvePointLocked(const Timeline& timeline, const BranchPoint& point);
  // commit_history.cc: the range ResolvePointLocked accepts on `timeline` now.
  absl::StatusOr<RestorableRange> RestorableRangeOf(const Timeline& timeline,
                                                    absl::Duration pitr_window);
  // Sets info->restorable (read from the store: not under mu_); left out if it
  // cannot be read, so that a listing never fails for it.
  void FillRestorable(BranchInfo* info, const Timeline* timeline, absl::Duration pitr_window);
  absl::StatusOr<Lsn> EarliestRestorableLsn(const Timeline& timeline);
  // EarliestRestorableLsn without the history floor: what GC and imports keep.
  absl::StatusOr<Lsn> EarliestKeptLsn(const Timeline& timeline);
  // The LSNs at which descendants of `id` read it (each child's branch point, and the
  // points of deeper descendants clipped to it): GC keeps the newest version at or
  // below each.
  std::set<Lsn> ReadPointsLocked(const TimelineId& id) const;
  absl::StatusOr<std::shared_ptr<Timeline>> NewChildTimelineLocked(
      const std::shared_ptr<Timeline>& parent, Lsn lsn, rocksdb::WriteBatch* batch);
  // The timeline branch `name` points to. REQUIRES: mu_ held.
  absl::StatusOr<std::shared_ptr<Timeline>> BranchTimelineLocked(Tenant& tenant,
                                                                 const std::string& name);
  // The timeline of `branch` and its exact head, resolved without mu_ (it may wait).
  absl::StatusOr<std::pair<std::shared_ptr<Timeline>, Lsn>> ResolveBranchHead(
      const std::string& tenant, const std::string& branch);
  absl::Status DeleteTimelineLocked(const TimelineId& id);
  // DeleteBranch as of `now` (the TTL thread's clock).
  // `snapshot`: the caller deletes a snapshot (DeleteSnapshot).
  absl::Status DeleteBranchAt(const std::string& tenant, const std::string& name, bool purge,
                              absl::Time now, absl::Time* purge_after = nullptr,
                              bool snapshot = false);
  // Deletes timeline `id`, then each ancestor nothing refers to any more (no branch,
  // no trashed branch, no child, no live writer): history only `id` kept alive.
  absl::Status DeleteUnreferencedLocked(const TimelineId& id);
  bool TimelineReferencedLocked(const TimelineId& id) const;
  // Names of the branches (live or trashed) whose timelines descend from `id`.
  std::vector<std::string> ChildBranchNamesLocked(const Tenant& tenant, const TimelineId& id) const;
  // Removes trash record `index` of `tenant` and frees its timeline if unreferenced.
  absl::Status PurgeTrashEntryLocked(Tenant& tenant, size_t index);
  BranchInfo ToInfoLocked(const Tenant& tenant, const storage::v1::BranchRecord& branch);
  TenantInfo InfoOf(const Tenant& tenant) const;
  static std::string BranchKey(const TenantId& tenant, const std::string& name);
  static std::string TrashKey(const TenantId& tenant, const storage::v1::BranchRecord& branch);
  static std::string TenantKey(const TenantId& tenant);
  static std::string SafekeeperDeletionKey(const TenantId& tenant, const TimelineId& timeline);

  // sizes.cc: sizes read the store, so they are computed without mu_ from inputs
  // collected under it, and cached under sizes_mu_.
  struct SizeInputs {
    std::shared_ptr<Timeline> timeline;
    std::set<Lsn> child_points;
  };
  SizeInputs SizeInputsLocked(const TimelineId& id) const;
  void FillSizes(BranchInfo* info, const SizeInputs& inputs);
  uint64_t LogicalSizeAt(const Timeline& timeline, Lsn lsn);
  // Bytes stored on the timeline that no descendant reads: page and file
  // versions, and (separately) WAL archive.
  uint64_t UniqueVersionBytes(const SizeInputs& inputs);
  uint64_t UniqueWalBytes(const SizeInputs& inputs);
  void AddTimelineLocked(std::shared_ptr<Timeline> timeline);
  // Drops the cached sizes of a deleted timeline.
  void ForgetSizes(const TimelineId& id);

  PageStore* const store_;
  const RepositoryOptions options_;
  WalArchive archive_;
  HeadSource* head_source_ = nullptr;

  mutable std::mutex mu_;
  std::map<TenantId, Tenant> tenants_;                         // GUARDED_BY(mu_)
  std::map<TimelineId, std::shared_ptr<Timeline>> timelines_;  // GUARDED_BY(mu_)
  std::map<TimelineId, std::set<TimelineId>> children_;        // GUARDED_BY(mu_)
  // Tenants moving away ("") or moved to a pageserver (its address); persisted under
  // MoveKey. None of them is in tenants_.
  std::map<TenantId, std::string> moves_;  // GUARDED_BY(mu_)

  struct UniqueSizeEntry {
    uint64_t write_version = 0;
    std::set<Lsn> child_points;
    uint64_t bytes = 0;
    absl::Time computed;
  };
  std::mutex sizes_mu_;
  std::map<std::pair<TimelineId, Lsn>, std::pair<uint64_t, uint64_t>>
      logical_sizes_;                                   // -> (version, bytes)
  std::map<TimelineId, UniqueSizeEntry> unique_sizes_;  // GUARDED_BY(sizes_mu_)

  std::atomic<bool> stopping_{false};
  std::mutex ttl_mu_;
  std::condition_variable ttl_cv_;
  std::thread ttl_thread_;
};

}  // namespace cambium::pageserver

#endif  // CAMBIUM_PAGESERVER_REPOSITORY_H_
