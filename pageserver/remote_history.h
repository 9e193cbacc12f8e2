// RemoteHistory: the pageserver's whole state kept in an object store, so that losing
// its disk loses no acknowledged commit, no branch and no restore point
// (docs/pageserver.md "Remote history"; issue 14).
//
// What goes up. Every `interval` in which something was written, and when a caller
// asks (WaitForUpload), a RocksDB checkpoint of the page store: its SST files
// (immutable: each goes up once, under the generation that first uploaded it, and
// later indexes name it again), the MANIFEST,
// OPTIONS, CURRENT and WAL log files the checkpoint needs, and the pageserver's token
// store and audit log; then an index object that names every one of them and records,
// per timeline, the end of the WAL archive inside that checkpoint. Every object is
// sealed (objstore/sealed_object.h) with the uploader's generation, so restore
// detects a damaged, truncated or foreign object (DATA_LOSS) instead of opening it.
//
// Why the engine's own files: SST files are immutable and carry RocksDB's format,
// bloom filters and block checksums; finding what is new costs nothing (new file
// numbers), whereas cutting per-timeline LSN ranges out of keys ordered by
// (timeline, path, block, ~lsn) means scanning each timeline whole. The price is
// that compaction output goes up again (upload bandwidth ~ write amplification), and
// that the unit of restore is the pageserver, not a tenant (docs/scale-out.md).
//
// Guarantees:
//  - An index is put only after every object it names: any index in the store is
//    restorable. Keys are never overwritten: an index's own files sit under its name.
//  - A restored store is the page store as it was at one moment: per timeline, a
//    prefix of the writer's batches (they are applied in order) and of the archive.
//    That is a valid crash image (the pg_control in it names a checkpoint whose data
//    precedes it in the prefix); the WAL from its redo point on is in the restored
//    archive or still on the safekeepers, because they trim only WAL below the
//    archive end of an uploaded index (UploadedArchiveEnd; WalReceiver reports
//    min(archived, uploaded)). A compute started on it replays that WAL.
//  - Metadata (tenants, branches, resets, deletions) is acknowledged only once an
//    upload that began after the change succeeded (ManagementService calls
//    WaitForUpload), so a branch that was acknowledged exists after a rebuild.
//  - Generations: Open claims generation G = 1 + the highest in the store, recorded
//    as the object generations/G. It writes only keys of its own generation, and
//    before every upload and every delete checks that no higher generation exists; a
//    stale pageserver (another one attached the same history) stops uploading and
//    deleting, so it can never remove or shadow what the newer one uses. The claim
//    itself is a list then a put, not atomic: two pageservers started on the same
//    history at the same moment could claim the same generation. One stack runs one
//    pageserver, so this needs two stacks on one prefix; docs/scale-out.md moves
//    generations to etcd, which makes the claim a compare-and-set.
//
// Layout under the store's prefix (G and S are 16 hex digits):
//   generations/G                 sealed marker of a claimed generation
//   layers/G/NNNNNN.sst           an SST (or .blob) file, uploaded by generation G
//   index/G-S                     sealed JSON: files, timelines' archive ends
//   index-files/G-S/NAME          MANIFEST, CURRENT, OPTIONS, *.log, tokens.json, audit.log
// The newest index is the last key under index/. Pruning keeps the newest
// `keep_indexes` of this generation, removes older generations' indexes once this one
// has its own, and then every layer no kept index names.
//
// Thread-safety: thread-safe. Uploads run on one background thread.
#ifndef CAMBIUM_PAGESERVER_REMOTE_HISTORY_H_
#define CAMBIUM_PAGESERVER_REMOTE_HISTORY_H_

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/ids.h"
#include "common/lsn.h"
#include "metrics/registry.h"
#include "objstore/object_store.h"

namespace cambium::pageserver {

class PageStore;
class Repository;

struct RemoteHistoryOptions {
  // How often an upload runs. Default: 10 s.
  absl::Duration interval = absl::Seconds(10);
  // Indexes of this generation kept in the store (older restore candidates). Default: 3.
  int keep_indexes = 3;
  // The longest WaitForUpload waits. Default: 60 s.
  absl::Duration wait_timeout = absl::Seconds(60);
};

class RemoteHistory {
 public:
  // Claims a new generation in `store` and reads its newest index.
  static absl::StatusOr<std::unique_ptr<RemoteHistory>> Open(
      std::unique_ptr<objstore::ObjectStore> store, std::string data_dir,
      RemoteHistoryOptions options = {});
  ~RemoteHistory();

  // When `data_dir` holds no page store and the object store holds an index: puts the
  // newest index's files there (each verified) and returns true. False when there is
  // local data (it is used as it is) or nothing to restore. Call before PageStore::Open.
  absl::StatusOr<bool> RestoreIfEmpty();

  // Starts the background uploads of `store` (opened on data_dir) and `repo`.
  void Start(PageStore* store, Repository* repo);
  void Stop();

  // Returns once an upload that began after this call succeeded; its error (or
  // DEADLINE_EXCEEDED after wait_timeout) otherwise.
  absl::Status WaitForUpload();

  // The archive end of `timeline` in the newest uploaded (or restored) index; 0 if
  // it is in none.
  Lsn UploadedArchiveEnd(const TimelineId& timeline) const;

  uint64_t generation() const { return generation_; }
  std::string Describe() const { return store_->Describe(); }

 private:
  struct RemoteFile {
    std::string key;
    uint64_t size = 0;
  };
  RemoteHistory(std::unique_ptr<objstore::ObjectStore> store, std::string data_dir,
                RemoteHistoryOptions options)
      : store_(std::move(store)), data_dir_(std::move(data_dir)), options_(options) {}

  absl::Status ClaimGeneration();
  absl::Status LoadNewestIndex();
  // FAILED_PRECONDITION if a generation above ours exists.
  absl::Status CheckNotStale();
  void Run();
  absl::Status UploadOnce();
  absl::Status Prune();
  void Collect(std::vector<metrics::Sample>* out);

  const std::unique_ptr<objstore::ObjectStore> store_;
  const std::string data_dir_;
  const RemoteHistoryOptions options_;
  uint64_t generation_ = 0;
  PageStore* page_store_ = nullptr;
  Repository* repo_ = nullptr;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string newest_index_;                        // GUARDED_BY(mu_) key, "" if none
  std::map<TimelineId, Lsn> uploaded_;              // GUARDED_BY(mu_)
  uint64_t requested_ = 0;                          // GUARDED_BY(mu_) WaitForUpload tickets
  uint64_t completed_ = 0;                          // GUARDED_BY(mu_) tickets an upload covered
  uint64_t failed_ = 0;                             // GUARDED_BY(mu_) tickets an upload failed
  absl::Status last_error_;                         // GUARDED_BY(mu_)
  absl::Time last_success_ = absl::InfinitePast();  // GUARDED_BY(mu_)
  uint64_t next_seq_ = 1;                           // upload thread only
  std::map<std::string, RemoteFile> sst_;           // upload thread only: local SST name -> object
  // Upload thread only: the store's sequence number and token store in the last upload.
  std::optional<uint64_t> uploaded_sequence_;
  std::string uploaded_tokens_;
  // The MANIFEST the last upload holds, "NAME:SIZE": it changes with the set of files.
  std::string uploaded_manifest_;
  std::atomic<uint64_t> uploads_{0};
  std::atomic<uint64_t> upload_failures_{0};
  std::atomic<uint64_t> uploaded_bytes_{0};
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
  std::vector<metrics::CallbackHandle> metrics_;
};

}  // namespace cambium::pageserver

#endif  // CAMBIUM_PAGESERVER_REMOTE_HISTORY_H_
