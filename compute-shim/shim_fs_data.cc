// ShimFs: reads, writes, truncation and fsync.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "common/bytes.h"
#include "common/files.h"
#include "common/logging.h"
#include "common/status.h"
#include "compute-shim/shim_fs.h"
#include "compute-shim/shim_metrics.h"

namespace cambium::shim {
namespace {

int FromErrno(ssize_t r) { return r < 0 ? -errno : static_cast<int>(r); }

}  // namespace

absl::Status ShimFs::Fetch(Node& node, const std::vector<uint32_t>& blocks,
                           std::unique_lock<std::mutex>& lock) {
  // The pageserver must know every mutation of this file (creation, rename, size)
  // before it is asked for its blocks.
  const uint64_t wait_for = node.last_mutation;
  std::vector<PageRequest> requests;
  for (uint32_t b : blocks) requests.push_back({node.path, b});
  if (node.unlinked) {
    return absl::FailedPreconditionError(absl::StrFormat("%s was removed", node.path));
  }
  lock.unlock();
  absl::Status status = sender_->WaitApplied(wait_for);
  std::vector<PageResult> pages;
  if (status.ok()) pages = pageserver_->GetPages(Lsn::Max(), requests);
  lock.lock();
  if (!status.ok()) return status;
  for (size_t i = 0; i < pages.size(); ++i) {
    if (!pages[i].status.ok()) {
      LogError(
          "page_fetch_failed",
          {{"path", requests[i].path}, {"block", requests[i].block}, {"status", pages[i].status}});
      return pages[i].status;
    }
    CAMBIUM_RETURN_IF_ERROR(cache_->Fill(node.id, blocks[i], pages[i].data.data()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ShimFs::BlockContent(Node& node, uint32_t block) {
  std::string page(kBlockSize, '\0');
  if (uint64_t{block} * kBlockSize >= node.size) return page;  // beyond the end: zeros
  // A caller holds node.mu; Fetch drops and retakes it, so retry until present.
  for (int attempt = 0; attempt < 3; ++attempt) {
    CAMBIUM_ASSIGN_OR_RETURN(bool present, cache_->Read(node.id, block, page.data()));
    if (present) return page;
    std::unique_lock<std::mutex> relock(node.mu, std::adopt_lock);
    absl::Status s = Fetch(node, {block}, relock);
    relock.release();
    CAMBIUM_RETURN_IF_ERROR(s);
  }
  return absl::UnavailableError("block keeps disappearing from the cache");
}

int ShimFs::ReadVersioned(Node& node, Handle* h, char* buf, size_t size, off_t off) {
  std::unique_lock<std::mutex> lock(node.mu);
  if (size == 0) return 0;
  // Parts waiting for the rest of their block are rare (WriteCached): the common
  // read skips all of this.
  if (!node.partials.empty()) {
    const int completed = CompleteReadPartialsLocked(node, size, off);
    if (completed < 0) return completed;
  }
  uint64_t readable = node.size;  // parts may reach past the versioned end
  if (!node.partials.empty()) {
    const auto& [block, part] = *node.partials.rbegin();
    size_t i = kBlockSize;
    while (i > 0 && !part.received[i - 1]) --i;
    readable = std::max<uint64_t>(readable, uint64_t{block} * kBlockSize + i);
  }
  if (static_cast<uint64_t>(off) >= readable) return 0;
  size = std::min<uint64_t>(size, readable - off);
  const uint32_t first = static_cast<uint32_t>(off / kBlockSize);
  const uint32_t last = static_cast<uint32_t>((off + size - 1) / kBlockSize);
  std::string page;  // only for blocks the request covers in part
  for (int attempt = 0; attempt < 4; ++attempt) {
    std::vector<uint32_t> missing;
    size_t copied = 0;
    for (uint32_t b = first; b <= last; ++b) {
      const uint64_t block_start = uint64_t{b} * kBlockSize;
      const uint64_t from = std::max<uint64_t>(off, block_start);
      const uint64_t to = std::min<uint64_t>(off + size, block_start + kBlockSize);
      if (auto part = node.partials.find(b); part != node.partials.end()) {
        // Bytes of a part still waiting for the rest of its block (all covered:
        // CompleteReadPartialsLocked).
        std::memcpy(buf + (from - off), part->second.data.data() + (from - block_start), to - from);
        copied += to - from;
        continue;
      }
      const bool whole = to - from == kBlockSize;
      if (!whole && page.empty()) page.resize(kBlockSize);
      auto present = cache_->Read(node.id, b, whole ? buf + (from - off) : page.data());
      if (!present.ok()) return ToErrno(present.status());
      if (!*present) {
        missing.push_back(b);
        continue;
      }
      if (!whole) std::memcpy(buf + (from - off), page.data() + (from - block_start), to - from);
      copied += to - from;
    }
    if (missing.empty()) {
      if (h != nullptr) h->next_block = last + 1;
      return static_cast<int>(copied);
    }
    // Sequential reads fetch ahead in the same round trip.
    if (h != nullptr && h->next_block == first) {
      const uint32_t nblocks = static_cast<uint32_t>((node.size + kBlockSize - 1) / kBlockSize);
      for (uint32_t b = last + 1; b < nblocks && b <= last + options_.readahead_blocks; ++b) {
        missing.push_back(b);
      }
    }
    absl::Status s = Fetch(node, missing, lock);
    if (!s.ok()) return ToErrno(s);
  }
  return -EIO;
}

// Relation files go through the kernel's page cache (ShimFsOptions::writeback_cache:
// write-back; otherwise write-through). Postgres writes a relation file in whole
// 8 KiB blocks, but the kernel hands them over in 4 KiB pages: write-back sends the
// dirty pages of a file when it chooses (in runs of up to max_write, in page order,
// before any fsync of the file returns), and write-through sends what it copied so
// far when copying the next page faults. So the two pages of one block may arrive
// together, apart, or in either order, with other blocks' writes in between.
//
// A block's version is made once, whole: a part is kept in node.partials until the
// rest of the block arrives. A block may also have only one dirty page when the
// other never changed (the kernel dropped it from its cache clean); then the rest
// will never arrive, and the bytes the kernel holds for it are those this process
// holds. So a part still waiting is completed over the block's current content by
// an fsync of the file (the kernel has sent every dirty page before it sends the
// fsync), by a truncation, and by a read of bytes the part does not cover (bytes the
// kernel reads are not dirty in its cache). A read of bytes the part covers is
// answered from the part. Never is a block versioned half new and half old while
// its other new half is still to come.
int ShimFs::WriteCached(Node& node, const char* buf, size_t size, off_t off) {
  std::lock_guard<std::mutex> lock(node.mu);
  const uint64_t end = static_cast<uint64_t>(off) + size;
  for (uint64_t pos = static_cast<uint64_t>(off); pos < end;) {
    const uint32_t block = static_cast<uint32_t>(pos / kBlockSize);
    const uint64_t block_start = uint64_t{block} * kBlockSize;
    const uint64_t piece_end = std::min<uint64_t>(end, block_start + kBlockSize);
    const char* piece = buf + (pos - off);
    auto it = node.partials.find(block);
    if (piece_end - pos == kBlockSize) {
      // Whole: it supersedes any part of the block that came before.
      if (it != node.partials.end()) node.partials.erase(it);
      const int r = WriteVersionedLocked(node, piece, kBlockSize, pos);
      if (r < 0) return r;
    } else {
      if (it == node.partials.end()) it = node.partials.emplace(block, Node::PartialBlock{}).first;
      Node::PartialBlock& part = it->second;
      std::memcpy(part.data.data() + (pos - block_start), piece, piece_end - pos);
      for (uint64_t i = pos - block_start; i < piece_end - block_start; ++i) part.received.set(i);
      if (part.received.all()) {
        const std::string whole = std::move(part.data);
        node.partials.erase(it);
        const int r = WriteVersionedLocked(node, whole.data(), kBlockSize, block_start);
        if (r < 0) return r;
      }
    }
    pos = piece_end;
  }
  return static_cast<int>(size);
}

int ShimFs::CompletePartialLocked(Node& node, uint32_t block) {
  absl::StatusOr<std::string> content = BlockContent(node, block);  // may drop node.mu
  if (!content.ok()) return ToErrno(content.status());
  auto it = node.partials.find(block);
  if (it == node.partials.end()) return 0;  // completed meanwhile
  const Node::PartialBlock part = std::move(it->second);
  node.partials.erase(it);
  for (size_t i = 0; i < kBlockSize; ++i) {
    if (part.received[i]) (*content)[i] = part.data[i];
  }
  ShimMetrics::Get().partial_blocks_completed.Increment();
  const int r =
      WriteVersionedLocked(node, content->data(), kBlockSize, uint64_t{block} * kBlockSize);
  return r < 0 ? r : 0;
}

int ShimFs::CompleteReadPartialsLocked(Node& node, size_t size, off_t off) {
  const uint64_t end = static_cast<uint64_t>(off) + size;
  const uint32_t first = static_cast<uint32_t>(off / kBlockSize);
  const uint32_t last = static_cast<uint32_t>((end - 1) / kBlockSize);
  for (auto it = node.partials.lower_bound(first);
       it != node.partials.end() && it->first <= last;) {
    const uint32_t block = it->first;
    const uint64_t block_start = uint64_t{block} * kBlockSize;
    const uint64_t from = std::max<uint64_t>(off, block_start) - block_start;
    const uint64_t to = std::min<uint64_t>(end, block_start + kBlockSize) - block_start;
    bool covered = true;
    for (uint64_t i = from; i < to && covered; ++i) covered = it->second.received[i];
    if (!covered) {
      const int r = CompletePartialLocked(node, block);
      if (r < 0) return r;
    }
    it = node.partials.upper_bound(block);
  }
  return 0;
}

int ShimFs::CompletePartialsLocked(Node& node, uint32_t from_block) {
  for (;;) {
    auto it = node.partials.lower_bound(from_block);
    if (it == node.partials.end()) return 0;
    const int r = CompletePartialLocked(node, it->first);
    if (r < 0) return r;
  }
}

int ShimFs::WriteVersioned(Node& node, const char* buf, size_t size, off_t off) {
  std::lock_guard<std::mutex> lock(node.mu);
  return WriteVersionedLocked(node, buf, size, off);
}

int ShimFs::WriteVersionedLocked(Node& node, const char* buf, size_t size, off_t off) {
  for (uint64_t pos = off; pos < static_cast<uint64_t>(off) + size;) {
    const uint32_t block = static_cast<uint32_t>(pos / kBlockSize);
    const uint64_t block_start = uint64_t{block} * kBlockSize;
    const uint64_t end = std::min<uint64_t>(off + size, block_start + kBlockSize);
    const char* piece = buf + (pos - off);
    const size_t piece_len = end - pos;
    // A whole block goes to the cache as written; a piece is merged into the block.
    const char* block_data = piece;
    std::string merged;
    if (piece_len != kBlockSize) {
      auto base = BlockContent(node, block);
      if (!base.ok()) return ToErrno(base.status());
      merged = std::move(*base);
      std::memcpy(merged.data() + (pos - block_start), piece, piece_len);
      block_data = merged.data();
    }
    if (!node.unlinked) {
      v1::Mutation m;
      m.mutable_write()->set_block_no(block);
      m.mutable_write()->set_offset(static_cast<uint32_t>(pos - block_start));
      if (piece_len == kBlockSize && AllZero(std::string_view(piece, piece_len))) {
        m.mutable_write()->set_zeros(true);  // Postgres extending a relation
      } else {
        m.mutable_write()->set_data(piece, piece_len);
      }
      absl::Status s = MutateNode(node, std::move(m));
      if (!s.ok()) return ToErrno(s);
    }
    // An unlinked file's blocks stay dirty under its last mutation until it is applied.
    absl::Status s = cache_->Write(node.id, block, block_data, node.last_mutation);
    if (!s.ok()) return ToErrno(s);
    node.size = std::max<uint64_t>(node.size, end);
    pos = end;
  }
  clock_gettime(CLOCK_REALTIME, &node.mtime);
  return static_cast<int>(size);
}

absl::Status ShimFs::CheckRewriteBelowStart(Node& node, const char* buf, size_t size, Lsn at) {
  const size_t below = static_cast<size_t>(std::min<uint64_t>(size, start_lsn_ - at));
  std::string replayed(below, '\0');  // bytes past the file's end read as zeros
  CAMBIUM_RETURN_IF_ERROR(
      PreadFull(node.local_fd, replayed.data(), below, at - node.wal_segment_start, node.path)
          .status());
  if (std::memcmp(replayed.data(), buf, below) == 0) return absl::OkStatus();
  size_t i = 0;
  while (replayed[i] == buf[i]) ++i;
  LogError("recovery_diverged", {{"path", node.path},
                                 {"lsn", at + i},
                                 {"start_lsn", start_lsn_},
                                 {"why",
                                  "postgres writes WAL below the start LSN that differs from "
                                  "the WAL it replayed: its recovery ended early"}});
  return absl::DataLossError(absl::StrFormat(
      "postgres rewrote WAL at %s, below the start LSN %s, with different bytes: its crash "
      "recovery did not reach the start LSN; refusing to fork the timeline's history",
      (at + i).ToString(), start_lsn_.ToString()));
}

int ShimFs::WriteLocal(Node& node, const char* buf, size_t size, off_t off) {
  std::lock_guard<std::mutex> lock(node.mu);
  if (node.wal && node.wal_segment_start + static_cast<uint64_t>(off) < start_lsn_) {
    absl::Status same = CheckRewriteBelowStart(node, buf, size,
                                               node.wal_segment_start + static_cast<uint64_t>(off));
    if (!same.ok()) return ToErrno(same);
  }
  absl::Status s =
      PwriteAll(node.local_fd, std::string_view(buf, size), static_cast<uint64_t>(off), node.path);
  if (!s.ok()) return ToErrno(s);
  if (node.wal) {
    // W advances before Postgres learns the write succeeded: a data write that
    // depends on this WAL can only come after, and is tagged at least this high.
    // W is the end of the last complete record written (see wal_record_ends.h).
    const Lsn at = node.wal_segment_start + static_cast<uint64_t>(off);
    const uint64_t end = (at + size).value();
    Lsn tag;
    {
      std::lock_guard<std::mutex> ends_lock(record_ends_mu_);
      tag = record_ends_.Written(at, std::string_view(buf, size));
    }
    uint64_t w = w_.load();
    while (tag.value() > w && !w_.compare_exchange_weak(w, tag.value())) {
    }
    absl::Status appended = wal_->Append(at, std::string_view(buf, size));
    if (!appended.ok()) return ToErrno(appended);
    uint64_t sent = wal_appended_.load();
    while (end > sent && !wal_appended_.compare_exchange_weak(sent, end)) {
    }
  }
  clock_gettime(CLOCK_REALTIME, &node.mtime);
  return static_cast<int>(size);
}

int ShimFs::Read(const char* path, char* buf, size_t size, off_t off, fuse_file_info* fi) {
  auto node = NodeOf(path, fi);
  if (!node) return -ENOENT;
  if (node->dir) return -EISDIR;
  Handle* h = fi ? reinterpret_cast<Handle*>(fi->fh) : nullptr;
  if (node->versioned()) return ReadVersioned(*node, h, buf, size, off);
  // A WAL segment still being fetched at the start: wait for the bytes read.
  absl::Status filled = WaitWalFilled(*node, static_cast<uint64_t>(off) + size);
  if (!filled.ok()) return ToErrno(filled);
  std::lock_guard<std::mutex> lock(node->mu);
  return FromErrno(pread(node->local_fd, buf, size, off));
}

int ShimFs::Write(const char* path, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  auto node = NodeOf(path, fi);
  if (!node) return -ENOENT;
  if (node->dir) return -EISDIR;
  const Handle* h = fi ? reinterpret_cast<Handle*>(fi->fh) : nullptr;
  // Nothing writes WAL before its recovery read it all; should it, it waits.
  absl::Status filled = WaitWalFilled(*node, kDefaultWalSegmentSize);
  if (!filled.ok()) return ToErrno(filled);
  const int written = h != nullptr && h->page_cached && node->versioned()
                          ? WriteCached(*node, buf, size, off)
                      : node->versioned() ? WriteVersioned(*node, buf, size, off)
                                          : WriteLocal(*node, buf, size, off);
  if (written < 0 || h == nullptr || !h->sync_writes) return written;
  // O_SYNC / O_DSYNC: durable before the write returns, like fsync after it.
  const int synced = Fsync(path, 1, fi);
  return synced < 0 ? synced : written;
}

int ShimFs::Truncate(const char* path, off_t size, fuse_file_info* fi) {
  auto node = NodeOf(path, fi);
  if (!node) return -ENOENT;
  if (node->dir) return -EISDIR;
  std::lock_guard<std::mutex> lock(node->mu);
  return TruncateLocked(*node, static_cast<uint64_t>(size));
}

int ShimFs::TruncateLocked(Node& node, uint64_t new_size) {
  if (!node.versioned()) return ftruncate(node.local_fd, new_size) == 0 ? 0 : -errno;
  // Parts of blocks past the new end go with them; the new end cutting through a
  // part's block keeps the block's head, so that part is completed first.
  const uint32_t cut = static_cast<uint32_t>(new_size / kBlockSize);
  if (new_size % kBlockSize != 0 && node.partials.contains(cut)) {
    const int r = CompletePartialLocked(node, cut);
    if (r < 0) return r;
  }
  node.partials.erase(
      node.partials.lower_bound(static_cast<uint32_t>((new_size + kBlockSize - 1) / kBlockSize)),
      node.partials.end());
  if (new_size == node.size) return 0;
  if (!node.unlinked) {
    v1::Mutation m;
    m.mutable_set_size()->set_size(new_size);
    absl::Status s = MutateNode(node, std::move(m));
    if (!s.ok()) return ToErrno(s);
  }
  if (new_size < node.size) {
    const uint32_t keep = static_cast<uint32_t>((new_size + kBlockSize - 1) / kBlockSize);
    // A partly cut block keeps its head and reads zeros past the new end.
    if (new_size % kBlockSize != 0) {
      std::string page(kBlockSize, '\0');
      auto present = cache_->Read(node.id, keep - 1, page.data());
      if (present.ok() && *present) {
        std::memset(page.data() + new_size % kBlockSize, 0, kBlockSize - new_size % kBlockSize);
        (void)cache_->Write(node.id, keep - 1, page.data(), node.last_mutation);
      }
    }
    cache_->Truncate(node.id, keep);
  }
  node.size = new_size;
  clock_gettime(CLOCK_REALTIME, &node.mtime);
  return 0;
}

int ShimFs::Fsync(const char* path, int, fuse_file_info* fi) {
  auto node = NodeOf(path, fi);
  if (!node) return -ENOENT;
  if (node->versioned()) {
    {
      std::lock_guard<std::mutex> lock(node->mu);
      const int r = CompletePartialsLocked(*node, 0);
      if (r < 0) return r;
    }
    return ToErrno(sender_->Barrier());
  }
  if (!node->wal) return 0;  // local-only files need no durability
  // Everything appended so far, not just this segment: Postgres' flush covers it.
  const Lsn target(wal_appended_.load());
  for (absl::Time since = absl::Now();;) {
    absl::Status s = wal_->WaitForFlush(target, options_.wal_flush_timeout);
    // Safekeepers out of disk space, or holding as much WAL as they may beyond what
    // the pageserver archived (backpressure), refuse; nothing is lost, and they
    // resume by themselves: the commit waits for that rather than failing
    // (Postgres would PANIC on a failed WAL flush).
    if (!absl::IsResourceExhausted(s)) return ToErrno(s);
    LogError(
        "wal_flush_waits_for_safekeepers",
        {{"lsn", target}, {"waited", absl::FormatDuration(absl::Now() - since)}, {"status", s}});
  }
}

int ShimFs::FsyncDir(const char* path, int, fuse_file_info* fi) {
  auto node = NodeOf(path, fi);
  if (!node) return -ENOENT;
  return node->versioned() ? ToErrno(sender_->Barrier()) : 0;
}

}  // namespace cambium::shim
