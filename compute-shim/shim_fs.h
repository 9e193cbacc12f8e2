// ShimFs: the FUSE file system a stock Postgres runs on (ARCHITECTURE.md section 2).
//
// Every path of the mounted PGDATA is a Node in an in-memory tree, loaded from the
// pageserver's manifest at the start LSN; attributes and listings are answered from
// memory. Nodes are of three kinds:
//  - versioned files and directories: content in the BlockCache, fetched from the
//    pageserver on a miss; every mutation is tagged with W and streamed to the
//    pageserver (MutationSender); fsync is a barrier there;
//  - WAL segments in pg_wal: kept on local scratch; every write advances W before it
//    is acknowledged and is appended to the safekeepers (WalTarget); fsync waits for
//    a quorum;
//  - local-only files (postmaster.pid, pg_stat_tmp/..., temporary relations): plain
//    files on local scratch, never versioned.
//
// Tagging: W is the end of the last complete WAL record the compute has written
// (WalRecordEnds; the raw end of a write is page-padded). A mutation is tagged and
// queued under tag_mu_, so tags never decrease in queue order; W itself only grows
// (an atomic maximum), so a WAL write raises it without that lock and a commit never
// waits behind data writes held up by the pageserver. Relation files go through the
// kernel's page cache (write-back by default), which hands Postgres' 8 KiB block
// writes over in 4 KiB pages that WriteCached assembles; every other file is opened
// with direct_io, so its writes arrive as Postgres made them. Either way a block's
// new version is tagged once (a torn block in some file state is impossible).
//
// Thread-safety: FUSE calls arrive on many threads. tree_mu_ guards the tree; each
// node's mu guards its data; lock order: tree_mu_, then node->mu, then
// record_ends_mu_ or tag_mu_ (never both). wal_fill_mu_ is taken alone.
#ifndef CAMBIUM_COMPUTE_SHIM_SHIM_FS_H_
#define CAMBIUM_COMPUTE_SHIM_SHIM_FS_H_

#define FUSE_USE_VERSION 312
#include <fuse3/fuse.h>

#include <atomic>
#include <bitset>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cambium/v1/page_service.pb.h"
#include "common/lsn.h"
#include "compute-shim/block_cache.h"
#include "compute-shim/mutation_sender.h"
#include "compute-shim/pageserver_client.h"
#include "compute-shim/wal_record_ends.h"
#include "compute-shim/wal_target.h"

namespace cambium::shim {

struct Node {
  enum class Store { kVersioned, kLocal };
  uint64_t id = 0;
  std::string path;  // relative, "" for the root
  bool dir = false;
  Store store = Store::kVersioned;
  bool wal = false;  // a WAL segment: its writes advance W and go to the safekeepers
  Lsn wal_segment_start;
  uint32_t mode = 0600;
  uid_t uid = 0;
  gid_t gid = 0;
  uint64_t size = 0;  // versioned files (local files ask their scratch file)
  struct timespec mtime {};
  struct timespec ctime {};
  bool unlinked = false;
  int opens = 0;
  uint64_t last_mutation = 0;  // number of the newest mutation that touched this node
  int local_fd = -1;           // local files: the scratch file, open from creation until Forget
  // A relation file written through the page cache: blocks of which the kernel
  // has sent only some bytes so far, by block number (WriteCached). Not a version
  // until whole, or until CompletePartialLocked makes one over the block's current
  // content.
  struct PartialBlock {
    std::string data = std::string(kBlockSize, '\0');
    std::bitset<kBlockSize> received;  // which bytes of data were written
  };
  std::map<uint32_t, PartialBlock> partials;
  // A WAL segment wholly before the start LSN, announced at the mount: its bytes are
  // final, so read-only opens may go through the page cache (ShimFs::OpenHandle).
  // Cleared for good by an open for writing and by a rename.
  bool wal_sealed = false;
  std::mutex mu;  // data and the fields above it
  // A WAL segment whose bytes [0, wal_fill_end) are still being fetched at the start
  // (ShimFs::AddWalSegmentFilledLater); [0, wal_filled) are there. GUARDED_BY the
  // file system's wal_fill_mu_.
  bool wal_filling = false;
  uint64_t wal_filled = 0;
  uint64_t wal_fill_end = 0;

  bool versioned() const { return store == Store::kVersioned; }
};

struct ShimFsOptions {
  // Local scratch directory (local files, WAL copies, the block cache).
  std::string scratch;
  // Owner reported for every file (the Postgres user).
  uid_t uid = 0;
  gid_t gid = 0;
  // Blocks fetched ahead of a sequential read. Default: 32.
  uint32_t readahead_blocks = 32;
  // How long an fsync of WAL may wait for a quorum. Default: 60 s.
  absl::Duration wal_flush_timeout = absl::Seconds(60);
  // Relation files use the kernel's writeback cache: a write returns once in the
  // page cache, and the kernel sends dirty pages later, in larger writes, and
  // always before an fsync of the file (see WriteCached). Off: write-through, every
  // write() is a round trip to this process. Default: on.
  bool writeback_cache = true;
};

class ShimFs {
 public:
  ShimFs(ShimFsOptions options, PageserverClient* pageserver, MutationSender* sender,
         BlockCache* cache, WalTarget* wal, Lsn start_lsn);
  ~ShimFs();

  // Builds the tree from the manifest at the start LSN.
  absl::Status LoadManifest(const std::vector<v1::FileMeta>& files);
  // Adds a WAL segment file prepared on scratch (the WAL a starting compute replays).
  absl::Status AddWalSegment(const std::string& name, std::string_view bytes);
  // Adds a WAL segment whose first `fill_end` bytes arrive later, through FillWal,
  // while Postgres may already replay: a read waits for the bytes it covers (zeros
  // after fill_end), a write for the whole fill. Postgres reads its WAL in order, so
  // the replay follows the fetch instead of waiting for all of it.
  absl::Status AddWalSegmentFilledLater(const std::string& name, uint64_t fill_end);
  // WAL bytes at `lsn` for segments added by AddWalSegmentFilledLater, in order
  // within each segment (a segment's bytes may come from several calls).
  absl::Status FillWal(Lsn lsn, std::string_view bytes);
  // The fetch is over: waiting reads proceed, or with a failed `status` every read
  // of bytes that never came fails (EIO; Postgres stops its recovery).
  void EndWalFill(absl::Status status);
  // Adds a local directory (e.g. pg_wal/archive_status).
  void AddLocalDirectory(const std::string& path, uint32_t mode);
  // Reads into the block cache, in one GetPages round trip at `at`, the small files
  // every start reads first, one request at a time (configuration, PG_VERSION,
  // pg_control, relation maps, SLRU segments): versioned files other than relation
  // files, of at most max_file_bytes, up to max_blocks blocks in all. Called before
  // the mount: once Postgres starts, each of those reads would wait behind the WAL
  // fetch. Returns the number of blocks read.
  absl::StatusOr<size_t> Prefetch(Lsn at, uint64_t max_file_bytes, size_t max_blocks);

  static const fuse_operations& Operations();
  const ShimFsOptions& options() const { return options_; }

  // FUSE operations (paths are absolute within the mount; fi may be null).
  int GetAttr(const char* path, struct stat* st, fuse_file_info* fi);
  int OpenDir(const char* path, fuse_file_info* fi);
  int ReadDir(const char* path, void* buf, fuse_fill_dir_t filler, fuse_file_info* fi);
  int ReleaseDir(const char* path, fuse_file_info* fi);
  int Mkdir(const char* path, mode_t mode);
  int Rmdir(const char* path);
  int Unlink(const char* path);
  int Rename(const char* from, const char* to, unsigned int flags);
  int Chmod(const char* path, mode_t mode, fuse_file_info* fi);
  int Chown(const char* path, uid_t uid, gid_t gid, fuse_file_info* fi);
  int Truncate(const char* path, off_t size, fuse_file_info* fi);
  int Utimens(const char* path, const struct timespec tv[2], fuse_file_info* fi);
  int Create(const char* path, mode_t mode, fuse_file_info* fi);
  int Open(const char* path, fuse_file_info* fi);
  int Read(const char* path, char* buf, size_t size, off_t off, fuse_file_info* fi);
  int Write(const char* path, const char* buf, size_t size, off_t off, fuse_file_info* fi);
  int Fsync(const char* path, int datasync, fuse_file_info* fi);
  int FsyncDir(const char* path, int datasync, fuse_file_info* fi);
  int Release(const char* path, fuse_file_info* fi);
  int StatFs(const char* path, struct statvfs* st);

 private:
  struct Handle {
    std::shared_ptr<Node> node;
    int64_t next_block = -1;  // where a sequential read would continue
    // Opened with O_SYNC or O_DSYNC: every write is durable before it returns (for
    // WAL, flushed on a safekeeper quorum), as Postgres' open_datasync expects.
    bool sync_writes = false;
    // Opened through the kernel's page cache (see OpenHandle): a relation file, or
    // a sealed WAL segment read by the replay.
    bool page_cached = false;
  };

  std::shared_ptr<Node> Find(const std::string& rel) const;  // REQUIRES: tree_mu_ held
  std::shared_ptr<Node> NodeOf(const char* path, fuse_file_info* fi) const;
  std::shared_ptr<Node> NewNode(const std::string& rel, bool dir, uint32_t mode);
  // Tags a mutation of `node` (its current path) with W, queues it and records it as
  // the node's newest mutation. REQUIRES: node.mu held, or the node not yet shared.
  absl::Status MutateNode(Node& node, v1::Mutation m);
  // Creates the scratch file of a new local node.
  absl::Status OpenLocalFile(Node& node);
  std::string LocalPath(const Node& node) const;
  int ReadVersioned(Node& node, Handle* h, char* buf, size_t size, off_t off);
  int WriteVersioned(Node& node, const char* buf, size_t size, off_t off);
  int WriteVersionedLocked(Node& node, const char* buf, size_t size, off_t off);
  // A write through the page cache (Handle::page_cached): Postgres writes whole
  // blocks, which the kernel may hand over in parts, in any order (see the .cc).
  int WriteCached(Node& node, const char* buf, size_t size, off_t off);
  // Makes the version of a block of which only some bytes arrived: those bytes over
  // the block's current content. REQUIRES: node.mu held (dropped and retaken while
  // the content is fetched).
  int CompletePartialLocked(Node& node, uint32_t block);
  // Every part of block from_block on, as an fsync needs.
  int CompletePartialsLocked(Node& node, uint32_t from_block);
  // The parts of blocks a read covers, unless the read is of their bytes only.
  int CompleteReadPartialsLocked(Node& node, size_t size, off_t off);
  int WriteLocal(Node& node, const char* buf, size_t size, off_t off);
  // Postgres rewrites the WAL page holding the start LSN with the bytes it replayed;
  // anything else below the start means its recovery ended before the start LSN and
  // it is writing a different history. REQUIRES: node.mu held, node.wal.
  absl::Status CheckRewriteBelowStart(Node& node, const char* buf, size_t size, Lsn at);
  // Waits until bytes [0, end) of a WAL segment being filled are there (no wait
  // for any other file). Takes wal_fill_mu_ only.
  absl::Status WaitWalFilled(const Node& node, uint64_t end);
  // Open and create: O_TRUNC (kernels with atomic_o_trunc pass it to open), O_SYNC.
  int OpenHandle(const std::shared_ptr<Node>& node, fuse_file_info* fi);
  int TruncateLocked(Node& node, uint64_t new_size);  // REQUIRES: node.mu held
  absl::StatusOr<std::string> BlockContent(Node& node, uint32_t block);
  absl::Status Fetch(Node& node, const std::vector<uint32_t>& blocks,
                     std::unique_lock<std::mutex>& lock);
  void Forget(Node& node);  // REQUIRES: node.mu held; the node is unlinked and closed
  void RenameSubtree(const std::string& from, const std::string& to);  // REQUIRES: tree_mu_

  const ShimFsOptions options_;
  PageserverClient* const pageserver_;
  MutationSender* const sender_;
  BlockCache* const cache_;
  WalTarget* const wal_;

  const Lsn start_lsn_;        // where this compute's WAL (and recovery target) is
  std::atomic<uint64_t> w_;    // W: the tag of data mutations
  std::mutex record_ends_mu_;  // guards record_ends_
  WalRecordEnds record_ends_;
  std::atomic<uint64_t> wal_appended_{0};  // end of WAL appended to the safekeepers
  std::mutex tag_mu_;                      // tagging + queueing is atomic
  std::atomic<uint64_t> next_id_{2};       // 1 is the root

  std::mutex wal_fill_mu_;  // the wal_fill* fields of nodes, and the two below
  std::condition_variable wal_filled_cv_;
  std::map<uint64_t, std::shared_ptr<Node>> filling_;  // by segment number
  absl::Status wal_fill_status_;

  mutable std::shared_mutex tree_mu_;
  std::map<std::string, std::shared_ptr<Node>> nodes_;  // GUARDED_BY(tree_mu_)
};

}  // namespace cambium::shim

#endif  // CAMBIUM_COMPUTE_SHIM_SHIM_FS_H_
