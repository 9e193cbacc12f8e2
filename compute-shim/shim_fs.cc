// ShimFs: the tree and metadata operations.
#include "compute-shim/shim_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "common/files.h"
#include "common/logging.h"
#include "common/pg/pgdata_layout.h"
#include "common/status.h"
#include "common/sync_point.h"

namespace cambium::shim {
namespace {

std::string Rel(const char* path) {
  std::string_view p(path ? path : "");
  while (!p.empty() && p.front() == '/') p.remove_prefix(1);
  return std::string(p);
}

struct timespec Now() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

// Where a path's content lives, and whether it is a WAL segment.
Node::Store StoreOf(const std::string& rel, bool* wal, Lsn* segment_start) {
  *wal = false;
  switch (pg::ClassifyPath(rel)) {
    case pg::PathClass::kVersioned:
      return Node::Store::kVersioned;
    case pg::PathClass::kLocal:
      return Node::Store::kLocal;
    case pg::PathClass::kWal:
      if (pg::ParentPath(rel) == "pg_wal") {
        auto seg = ParseWalSegmentFileName(pg::BaseName(rel));
        if (seg.ok()) {
          *wal = true;
          *segment_start = SegmentStartLsn(seg->segno);
        }
      }
      return Node::Store::kLocal;
  }
  return Node::Store::kLocal;
}

}  // namespace

ShimFs::ShimFs(ShimFsOptions options, PageserverClient* pageserver, MutationSender* sender,
               BlockCache* cache, WalTarget* wal, Lsn start_lsn)
    : options_(std::move(options)),
      pageserver_(pageserver),
      sender_(sender),
      cache_(cache),
      wal_(wal),
      start_lsn_(start_lsn),
      w_(start_lsn.value()),
      record_ends_(start_lsn) {
  auto root = std::make_shared<Node>();
  root->id = 1;
  root->dir = true;
  root->mode = 0700;
  root->uid = options_.uid;
  root->gid = options_.gid;
  root->mtime = root->ctime = Now();
  nodes_[""] = root;
  std::filesystem::create_directories(options_.scratch + "/local");
}

ShimFs::~ShimFs() {
  for (auto& [path, node] : nodes_) {
    if (node->local_fd >= 0) close(node->local_fd);
  }
}

std::shared_ptr<Node> ShimFs::Find(const std::string& rel) const {
  auto it = nodes_.find(rel);
  return it == nodes_.end() ? nullptr : it->second;
}

std::shared_ptr<Node> ShimFs::NodeOf(const char* path, fuse_file_info* fi) const {
  if (fi != nullptr && fi->fh != 0) return reinterpret_cast<Handle*>(fi->fh)->node;
  std::shared_lock<std::shared_mutex> lock(tree_mu_);
  return Find(Rel(path));
}

std::shared_ptr<Node> ShimFs::NewNode(const std::string& rel, bool dir, uint32_t mode) {
  auto node = std::make_shared<Node>();
  node->id = next_id_++;
  node->path = rel;
  node->dir = dir;
  node->mode = mode & 07777;
  node->uid = options_.uid;
  node->gid = options_.gid;
  node->mtime = node->ctime = Now();
  node->store = StoreOf(rel, &node->wal, &node->wal_segment_start);
  return node;
}

std::string ShimFs::LocalPath(const Node& node) const {
  return absl::StrFormat("%s/local/%u", options_.scratch, node.id);
}

absl::Status ShimFs::OpenLocalFile(Node& node) {
  const std::string path = LocalPath(node);
  // O_NOFOLLOW: scratch is never reached through a symbolic link, whoever planted it
  // (docs/security.md).
  node.local_fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (node.local_fd < 0) return ErrnoToStatus(errno, "open scratch file " + path);
  return absl::OkStatus();
}

absl::Status ShimFs::MutateNode(Node& node, v1::Mutation m) {
  m.set_path(node.path);
  absl::StatusOr<uint64_t> n;
  {
    std::lock_guard<std::mutex> lock(tag_mu_);
    m.set_lsn(w_.load());
    n = sender_->Enqueue(std::move(m));
  }
  if (!n.ok()) return n.status();
  node.last_mutation = *n;
  return absl::OkStatus();
}

absl::Status ShimFs::LoadManifest(const std::vector<v1::FileMeta>& files) {
  std::unique_lock<std::shared_mutex> lock(tree_mu_);
  for (const v1::FileMeta& f : files) {
    auto node = NewNode(f.path(), f.kind() == v1::FILE_KIND_DIRECTORY, f.mode());
    node->size = f.size();
    if (!node->dir && !node->versioned()) {
      return absl::DataLossError(
          absl::StrFormat("the manifest contains %s, which is never versioned", f.path()));
    }
    nodes_[f.path()] = node;
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> ShimFs::Prefetch(Lsn at, uint64_t max_file_bytes, size_t max_blocks) {
  std::vector<PageRequest> requests;
  std::vector<uint64_t> ids;
  {
    std::shared_lock<std::shared_mutex> lock(tree_mu_);
    for (const auto& [path, node] : nodes_) {
      if (node->dir || !node->versioned() || node->size == 0 || node->size > max_file_bytes ||
          pg::IsRelationFile(path)) {
        continue;
      }
      const uint64_t blocks = (node->size + kBlockSize - 1) / kBlockSize;
      if (requests.size() + blocks > max_blocks) continue;
      for (uint32_t b = 0; b < blocks; ++b) {
        requests.push_back({path, b});
        ids.push_back(node->id);
      }
    }
  }
  if (requests.empty()) return 0;
  std::vector<PageResult> pages = pageserver_->GetPages(at, requests);
  for (size_t i = 0; i < pages.size(); ++i) {
    CAMBIUM_RETURN_IF_ERROR(pages[i].status);
    CAMBIUM_RETURN_IF_ERROR(cache_->Fill(ids[i], requests[i].block, pages[i].data.data()));
  }
  return requests.size();
}

void ShimFs::AddLocalDirectory(const std::string& path, uint32_t mode) {
  std::unique_lock<std::shared_mutex> lock(tree_mu_);
  if (Find(path)) return;
  auto node = NewNode(path, true, mode);
  node->store = Node::Store::kLocal;
  nodes_[path] = node;
}

absl::Status ShimFs::AddWalSegment(const std::string& name, std::string_view bytes) {
  std::unique_lock<std::shared_mutex> lock(tree_mu_);
  const std::string rel = "pg_wal/" + name;
  auto node = NewNode(rel, false, 0600);
  if (!node->wal) return absl::InvalidArgumentError(name + " is not a WAL segment name");
  CAMBIUM_RETURN_IF_ERROR(OpenLocalFile(*node));
  // The segment holds the WAL up to the start point and zeros after it.
  if (ftruncate(node->local_fd, kDefaultWalSegmentSize) != 0)
    return ErrnoToStatus(errno, "size WAL segment");
  CAMBIUM_RETURN_IF_ERROR(PwriteAll(node->local_fd, bytes, 0, "WAL segment " + rel));
  nodes_[rel] = node;
  return absl::OkStatus();
}

absl::Status ShimFs::AddWalSegmentFilledLater(const std::string& name, uint64_t fill_end) {
  if (fill_end > kDefaultWalSegmentSize) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%u bytes do not fit in a segment", fill_end));
  }
  CAMBIUM_RETURN_IF_ERROR(AddWalSegment(name, {}));
  std::shared_ptr<Node> node;
  {
    std::shared_lock<std::shared_mutex> lock(tree_mu_);
    node = Find("pg_wal/" + name);
  }
  if (fill_end == kDefaultWalSegmentSize) {
    std::lock_guard<std::mutex> node_lock(node->mu);
    node->wal_sealed = true;
  }
  std::lock_guard<std::mutex> lock(wal_fill_mu_);
  node->wal_filling = true;
  node->wal_fill_end = fill_end;
  filling_[node->wal_segment_start.SegmentNo()] = node;
  return absl::OkStatus();
}

absl::Status ShimFs::FillWal(Lsn lsn, std::string_view bytes) {
  while (!bytes.empty()) {
    const uint64_t offset = lsn - lsn.SegmentStart();
    const size_t n = std::min<uint64_t>(bytes.size(), kDefaultWalSegmentSize - offset);
    std::shared_ptr<Node> node;
    {
      std::lock_guard<std::mutex> lock(wal_fill_mu_);
      auto it = filling_.find(lsn.SegmentNo());
      if (it == filling_.end() || !it->second->wal_filling) {
        return absl::FailedPreconditionError(
            absl::StrFormat("WAL at %s is not awaited in pg_wal", lsn.ToString()));
      }
      node = it->second;
      if (offset != node->wal_filled || offset + n > node->wal_fill_end) {
        return absl::InternalError(
            absl::StrFormat("WAL at %s (%u bytes) does not continue %s (filled to %u of %u)",
                            lsn.ToString(), n, node->path, node->wal_filled, node->wal_fill_end));
      }
    }
    // Only this filler writes the bytes past wal_filled; readers wait for them.
    CAMBIUM_RETURN_IF_ERROR(
        PwriteAll(node->local_fd, bytes.substr(0, n), offset, "WAL segment " + node->path));
    {
      std::lock_guard<std::mutex> lock(wal_fill_mu_);
      node->wal_filled = offset + n;
    }
    wal_filled_cv_.notify_all();
    lsn = lsn + n;
    bytes.remove_prefix(n);
  }
  return absl::OkStatus();
}

void ShimFs::EndWalFill(absl::Status status) {
  {
    std::lock_guard<std::mutex> lock(wal_fill_mu_);
    wal_fill_status_ = status;
    for (auto& [segno, node] : filling_) {
      if (status.ok()) node->wal_filling = false;
    }
    if (status.ok()) filling_.clear();
  }
  wal_filled_cv_.notify_all();
}

absl::Status ShimFs::WaitWalFilled(const Node& node, uint64_t end) {
  if (!node.wal) return absl::OkStatus();
  std::unique_lock<std::mutex> lock(wal_fill_mu_);
  for (bool waited = false;; waited = true) {
    if (!node.wal_filling || node.wal_filled >= std::min(end, node.wal_fill_end)) {
      return absl::OkStatus();
    }
    if (!wal_fill_status_.ok()) {
      return Annotate(wal_fill_status_,
                      absl::StrFormat("the WAL of %s could not be fetched", node.path));
    }
    if (!waited) {
      lock.unlock();
      CAMBIUM_SYNC_POINT("ShimFs::WaitWalFilled:Waits");
      lock.lock();
      continue;
    }
    wal_filled_cv_.wait(lock);
  }
}

int ShimFs::GetAttr(const char* path, struct stat* st, fuse_file_info* fi) {
  auto node = NodeOf(path, fi);
  if (!node) return -ENOENT;
  std::lock_guard<std::mutex> lock(node->mu);
  std::memset(st, 0, sizeof(*st));
  st->st_ino = node->id;
  st->st_mode = (node->dir ? S_IFDIR : S_IFREG) | node->mode;
  st->st_nlink = node->dir ? 2 : (node->unlinked ? 0 : 1);
  st->st_uid = node->uid;
  st->st_gid = node->gid;
  st->st_blksize = kBlockSize;
  st->st_mtim = node->mtime;
  st->st_ctim = node->ctime;
  st->st_atim = node->mtime;
  if (!node->dir) {
    if (node->versioned()) {
      st->st_size = node->size;
    } else {
      struct stat local;
      if (fstat(node->local_fd, &local) == 0) st->st_size = local.st_size;
    }
    st->st_blocks = (st->st_size + 511) / 512;
  }
  return 0;
}

int ShimFs::OpenDir(const char* path, fuse_file_info* fi) {
  auto node = NodeOf(path, nullptr);
  if (!node) return -ENOENT;
  if (!node->dir) return -ENOTDIR;
  fi->fh = reinterpret_cast<uint64_t>(new Handle{node});
  return 0;
}

int ShimFs::ReleaseDir(const char*, fuse_file_info* fi) {
  delete reinterpret_cast<Handle*>(fi->fh);
  fi->fh = 0;
  return 0;
}

int ShimFs::ReadDir(const char* path, void* buf, fuse_fill_dir_t filler, fuse_file_info* fi) {
  // With nullpath_ok the path may be null: the directory is the one opendir found.
  auto opened = NodeOf(path, fi);
  if (!opened) return -ENOENT;
  std::shared_lock<std::shared_mutex> lock(tree_mu_);
  const std::string rel = opened->path;
  auto dir = Find(rel);
  if (!dir) return -ENOENT;
  if (!dir->dir) return -ENOTDIR;
  filler(buf, ".", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  filler(buf, "..", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  const std::string prefix = rel.empty() ? "" : rel + "/";
  for (auto it = nodes_.lower_bound(prefix); it != nodes_.end(); ++it) {
    if (!absl::StartsWith(it->first, prefix)) break;
    if (it->first == rel) continue;
    std::string_view name = std::string_view(it->first).substr(prefix.size());
    if (name.find('/') != std::string_view::npos) continue;
    filler(buf, std::string(name).c_str(), nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  }
  return 0;
}

int ShimFs::Mkdir(const char* path, mode_t mode) {
  const std::string rel = Rel(path);
  std::unique_lock<std::shared_mutex> lock(tree_mu_);
  if (Find(rel)) return -EEXIST;
  auto parent = Find(std::string(pg::ParentPath(rel)));
  if (!parent || !parent->dir) return -ENOENT;
  auto node = NewNode(rel, true, mode);
  if (node->versioned()) {
    v1::Mutation m;
    m.mutable_mkdir()->set_mode(mode & 07777);
    absl::Status s = MutateNode(*node, std::move(m));
    if (!s.ok()) return ToErrno(s);
  }
  nodes_[rel] = node;
  return 0;
}

int ShimFs::Rmdir(const char* path) {
  const std::string rel = Rel(path);
  std::unique_lock<std::shared_mutex> lock(tree_mu_);
  auto node = Find(rel);
  if (!node) return -ENOENT;
  if (!node->dir) return -ENOTDIR;
  auto next = nodes_.upper_bound(rel);
  if (next != nodes_.end() && absl::StartsWith(next->first, rel + "/")) return -ENOTEMPTY;
  if (node->versioned()) {
    v1::Mutation m;
    m.mutable_rmdir();
    std::lock_guard<std::mutex> node_lock(node->mu);
    absl::Status s = MutateNode(*node, std::move(m));
    if (!s.ok()) return ToErrno(s);
  }
  nodes_.erase(rel);
  return 0;
}

void ShimFs::Forget(Node& node) {
  if (node.versioned()) {
    cache_->Remove(node.id);
  } else {
    if (node.local_fd >= 0) close(node.local_fd);
    node.local_fd = -1;
    unlink(LocalPath(node).c_str());
  }
}

int ShimFs::Unlink(const char* path) {
  const std::string rel = Rel(path);
  std::unique_lock<std::shared_mutex> lock(tree_mu_);
  auto node = Find(rel);
  if (!node) return -ENOENT;
  if (node->dir) return -EISDIR;
  std::lock_guard<std::mutex> node_lock(node->mu);
  if (node->versioned()) {
    v1::Mutation m;
    m.mutable_unlink();
    absl::Status s = MutateNode(*node, std::move(m));
    if (!s.ok()) return ToErrno(s);
  }
  nodes_.erase(rel);
  node->unlinked = true;
  // Postgres unlinks files other backends still have open; they keep working.
  if (node->opens == 0) Forget(*node);
  return 0;
}

void ShimFs::RenameSubtree(const std::string& from, const std::string& to) {
  std::vector<std::pair<std::string, std::shared_ptr<Node>>> moved;
  const std::string prefix = from + "/";
  for (auto it = nodes_.lower_bound(prefix);
       it != nodes_.end() && absl::StartsWith(it->first, prefix);) {
    moved.emplace_back(to + it->first.substr(from.size()), it->second);
    it = nodes_.erase(it);
  }
  for (auto& [path, node] : moved) {
    std::lock_guard<std::mutex> node_lock(node->mu);
    node->path = path;
    nodes_[path] = node;
  }
}

int ShimFs::Rename(const char* from_path, const char* to_path, unsigned int flags) {
  if (flags & RENAME_EXCHANGE) return -EINVAL;
  const std::string from = Rel(from_path), to = Rel(to_path);
  std::unique_lock<std::shared_mutex> lock(tree_mu_);
  auto node = Find(from);
  if (!node) return -ENOENT;
  auto target = Find(to);
  if (target && (flags & RENAME_NOREPLACE)) return -EEXIST;
  auto parent = Find(std::string(pg::ParentPath(to)));
  if (!parent || !parent->dir) return -ENOENT;
  bool wal = false;
  Lsn segment;
  const Node::Store to_store = node->dir ? node->store : StoreOf(to, &wal, &segment);
  // A local file's pages may sit in the kernel's cache (OpenHandle); a WAL
  // segment's bytes must all be seen. Postgres makes segments inside pg_wal.
  if (!node->dir &&
      (to_store != node->store || (wal && pg::ClassifyPath(from) == pg::PathClass::kLocal))) {
    LogError("rename_across_storage", {{"from", from}, {"to", to}});
    return -EXDEV;
  }
  if (target) {
    if (target->dir != node->dir) return node->dir ? -ENOTDIR : -EISDIR;
    if (target->dir) {
      auto next = nodes_.upper_bound(to);
      if (next != nodes_.end() && absl::StartsWith(next->first, to + "/")) return -ENOTEMPTY;
    }
  }
  if (node->versioned()) {
    v1::Mutation m;
    m.mutable_rename()->set_new_path(to);
    std::lock_guard<std::mutex> node_lock(node->mu);
    absl::Status s = MutateNode(*node, std::move(m));
    if (!s.ok()) return ToErrno(s);
  }
  if (target) {
    std::lock_guard<std::mutex> target_lock(target->mu);
    target->unlinked = true;
    if (target->opens == 0) Forget(*target);
    nodes_.erase(to);
  }
  nodes_.erase(from);
  {
    std::lock_guard<std::mutex> node_lock(node->mu);
    node->path = to;
    node->wal = wal;
    node->wal_sealed = false;
    node->wal_segment_start = segment;
    node->ctime = Now();
  }
  nodes_[to] = node;
  if (node->dir) RenameSubtree(from, to);
  return 0;
}

int ShimFs::Chmod(const char* path, mode_t mode, fuse_file_info* fi) {
  auto node = NodeOf(path, fi);
  if (!node) return -ENOENT;
  std::lock_guard<std::mutex> lock(node->mu);
  if (node->versioned() && !node->unlinked) {
    v1::Mutation m;
    m.mutable_chmod()->set_mode(mode & 07777);
    absl::Status s = MutateNode(*node, std::move(m));
    if (!s.ok()) return ToErrno(s);
  }
  node->mode = mode & 07777;
  node->ctime = Now();
  return 0;
}

int ShimFs::Chown(const char* path, uid_t uid, gid_t gid, fuse_file_info* fi) {
  auto node = NodeOf(path, fi);
  if (!node) return -ENOENT;
  std::lock_guard<std::mutex> lock(node->mu);
  // Ownership is not versioned: every file belongs to the Postgres user.
  if (uid != static_cast<uid_t>(-1)) node->uid = uid;
  if (gid != static_cast<gid_t>(-1)) node->gid = gid;
  return 0;
}

int ShimFs::Utimens(const char* path, const struct timespec tv[2], fuse_file_info* fi) {
  auto node = NodeOf(path, fi);
  if (!node) return -ENOENT;
  std::lock_guard<std::mutex> lock(node->mu);
  node->mtime = (tv == nullptr || tv[1].tv_nsec == UTIME_NOW) ? Now() : tv[1];
  return 0;
}

int ShimFs::Create(const char* path, mode_t mode, fuse_file_info* fi) {
  const std::string rel = Rel(path);
  std::shared_ptr<Node> node;
  {
    std::unique_lock<std::shared_mutex> lock(tree_mu_);
    if (Find(rel)) return -EEXIST;
    auto parent = Find(std::string(pg::ParentPath(rel)));
    if (!parent || !parent->dir) return -ENOENT;
    node = NewNode(rel, false, mode);
    if (node->versioned()) {
      v1::Mutation m;
      m.mutable_create()->set_mode(mode & 07777);
      absl::Status s = MutateNode(*node, std::move(m));
      if (!s.ok()) return ToErrno(s);
    } else {
      absl::Status s = OpenLocalFile(*node);
      if (!s.ok()) return ToErrno(s);
    }
    nodes_[rel] = node;
  }
  return OpenHandle(node, fi);
}

int ShimFs::Open(const char* path, fuse_file_info* fi) {
  auto node = NodeOf(path, nullptr);
  if (!node) return -ENOENT;
  if (node->dir) return -EISDIR;
  return OpenHandle(node, fi);
}

int ShimFs::OpenHandle(const std::shared_ptr<Node>& node, fuse_file_info* fi) {
  std::lock_guard<std::mutex> lock(node->mu);
  // With atomic_o_trunc (libfuse3's default) the kernel leaves O_TRUNC to us.
  if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY) {
    const int r = TruncateLocked(*node, 0);
    if (r != 0) return r;
  }
  ++node->opens;
  auto* handle = new Handle{node};
  handle->sync_writes = (fi->flags & (O_SYNC | O_DSYNC)) != 0;
  // Relation files go through the kernel's page cache: a block Postgres reads
  // again after evicting it from shared buffers (or that a sequential scan reads
  // ahead) is served by the kernel without a round trip to this process, as on a
  // local file system. That is coherent because every change of the file passes
  // through this mount (one writer). With the writeback cache a write returns
  // once copied into the page cache, and the kernel sends it later, always before
  // an fsync of the file returns; it is tagged when it arrives, with a W at least
  // as high as when Postgres wrote it, so WAL-before-data still holds for the tag
  // (ARCHITECTURE.md section 2; a checkpoint is complete only after its fsyncs).
  // Postgres writes these files in whole blocks, which the kernel hands over in
  // pages; WriteCached makes a block's version once it is whole.
  // WAL segments wholly before the start LSN are final: the replay reads them
  // through the page cache too, one readahead window per request instead of one
  // request per 8 KiB page (after 10 s of TPC-B, ~8,000 requests at a start). Not
  // kept across opens (keep_cache 0), and never again once the segment is opened
  // for writing or renamed: a page a reader holds would go stale under a write.
  // Local files (sort and hash spill files in pgsql_tmp, temporary relations,
  // pg_subtrans; never versioned) go through the page cache too, written back:
  // Postgres writes and reads its spill files 8 KiB at a time, and a CREATE INDEX
  // of 3 million rows spilled ~15,000 of each through FUSE (issue 11). They need
  // no durability (an fsync only writes the dirty pages back to the scratch
  // file), and nothing reads the scratch file around this mount.
  // Every other file (WAL being written, the control file, SLRUs, maps: partial
  // writes, or every byte must be seen) keeps direct_io.
  const bool read_only = (fi->flags & O_ACCMODE) == O_RDONLY;
  if (!read_only) node->wal_sealed = false;
  const bool relation = node->versioned() && pg::IsRelationFile(node->path);
  const bool local = pg::ClassifyPath(node->path) == pg::PathClass::kLocal;
  handle->page_cached = relation || local || (node->wal && node->wal_sealed && read_only);
  fi->fh = reinterpret_cast<uint64_t>(handle);
  fi->direct_io = handle->page_cached ? 0 : 1;
  fi->keep_cache = relation || local ? 1 : 0;
  return 0;
}

int ShimFs::Release(const char*, fuse_file_info* fi) {
  auto* handle = reinterpret_cast<Handle*>(fi->fh);
  if (handle == nullptr) return 0;
  {
    std::lock_guard<std::mutex> lock(handle->node->mu);
    if (--handle->node->opens == 0 && handle->node->unlinked) Forget(*handle->node);
  }
  delete handle;
  fi->fh = 0;
  return 0;
}

int ShimFs::StatFs(const char*, struct statvfs* st) {
  std::memset(st, 0, sizeof(*st));
  st->f_bsize = kBlockSize;
  st->f_frsize = kBlockSize;
  // The pageserver's space is not a local limit; report what the scratch disk has.
  struct statvfs scratch;
  if (statvfs(options_.scratch.c_str(), &scratch) == 0) {
    st->f_blocks = scratch.f_blocks * scratch.f_frsize / kBlockSize;
    st->f_bfree = scratch.f_bfree * scratch.f_frsize / kBlockSize;
    st->f_bavail = scratch.f_bavail * scratch.f_frsize / kBlockSize;
  }
  st->f_files = 1 << 24;
  st->f_ffree = 1 << 23;
  st->f_namemax = 255;
  return 0;
}

}  // namespace cambium::shim
