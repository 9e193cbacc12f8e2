// Timeline writes: attaching a writer, applying batches of tagged mutations, barriers.
//
// A batch is applied atomically: BatchBuilder collects every version the batch
// produces in one rocksdb::WriteBatch, with overlays so that later mutations of the
// batch see the effects of earlier ones (a partial write merging with a block
// written earlier in the same batch, a write to a file created earlier in it). The
// in-memory head (paths existing at the newest tag) is updated only once the batch
// is written. The batch also records (generation, seq, last tag), which makes a
// resent batch recognisable after a reconnect or restart.
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "common/bytes.h"
#include "common/pg/pgdata_layout.h"
#include "common/status.h"
#include "pageserver/keys.h"
#include "pageserver/timeline.h"

namespace cambium::pageserver {
namespace {

constexpr uint64_t kDetachedFlag = 1;

// generation(8) | seq(8) | last tag(8) | flags(8). Records written before the flags
// existed are 24 bytes.
std::string EncodeWriteState(uint64_t generation, uint64_t seq, Lsn tag, bool detached) {
  std::string v;
  AppendLittleEndian<uint64_t>(&v, generation);
  AppendLittleEndian<uint64_t>(&v, seq);
  AppendLittleEndian<uint64_t>(&v, tag.value());
  AppendLittleEndian<uint64_t>(&v, detached ? kDetachedFlag : 0);
  return v;
}

absl::Status Refuse(std::string_view path, std::string_view why) {
  return absl::FailedPreconditionError(absl::StrFormat("%s: %s", path, why));
}

}  // namespace

std::string Timeline::WriteStateKey() const {
  std::string key = "w|";
  tenant_id_.AppendBytes(&key);
  id_.AppendBytes(&key);
  return key;
}

absl::Status Timeline::LoadWriteStateLocked() {
  last_seen_ = absl::Now();  // after a restart, presume the writer alive for one lease
  uint64_t generation;
  Lsn start;
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation = record_.generation();
    start =
        record_.attaches().empty() ? ancestor_lsn_ : Lsn(record_.attaches().rbegin()->start_lsn());
  }
  last_seq_ = 0;
  last_tag_ = start;
  detached_ = false;
  auto state = store_->GetMeta(WriteStateKey());
  if (!state.ok()) return state.status();
  if (state->has_value()) {
    const std::string& v = **state;
    if (v.size() != 24 && v.size() != 32) {
      return absl::DataLossError("timeline write state is malformed");
    }
    if (LoadLittleEndian<uint64_t>(v.data()) == generation) {
      last_seq_ = LoadLittleEndian<uint64_t>(v.data() + 8);
      last_tag_ = Lsn(LoadLittleEndian<uint64_t>(v.data() + 16));
      if (v.size() == 32) detached_ = LoadLittleEndian<uint64_t>(v.data() + 24) & kDetachedFlag;
    }
  }
  head_loaded_ = false;
  head_.clear();
  return absl::OkStatus();
}

std::string Timeline::EncodeWriteStateLocked() const {
  return EncodeWriteState(generation(), last_seq_, last_tag_, detached_);
}

absl::Status Timeline::LoadHeadLocked(Lsn lsn) {
  auto files = ListFiles(lsn);
  if (!files.ok()) return files.status();
  head_.clear();
  for (ManifestEntry& e : *files) head_.emplace(std::move(e.path), e.state);
  head_loaded_ = true;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Timeline::Attach(const std::string& writer, Lsn start_lsn, bool takeover,
                                          absl::Duration lease) {
  if (frozen()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "timeline %s is a snapshot's: it is immutable and takes no writer; start the "
        "endpoint on a branch made from the snapshot",
        id_.ToString()));
  }
  CAMBIUM_ASSIGN_OR_RETURN(WriteGuard guard, GuardWrite());
  std::lock_guard<std::mutex> write_lock(write_mu_);
  if (start_lsn < ancestor_lsn_) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cannot start timeline %s at %s: it begins at its branch point %s",
                        id_.ToString(), start_lsn.ToString(), ancestor_lsn_.ToString()));
  }
  // Committed WAL is archived up to last_record_lsn; starting below it would hide that
  // history (and GC would delete it). The safekeepers' WAL must have been lost.
  if (start_lsn < last_record_lsn()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "cannot start timeline %s at %s: its committed WAL is archived up to %s, so the "
        "safekeepers lost WAL they had acknowledged; refusing to hide committed history",
        id_.ToString(), start_lsn.ToString(), last_record_lsn().ToString()));
  }
  if (!takeover && WriterActiveLocked(lease)) {
    const storage::v1::TimelineRecord current = record();
    return absl::FailedPreconditionError(absl::StrFormat(
        "timeline %s already has a writer (%s, generation %u, active %s ago); stop that "
        "endpoint first, or take over if it is dead",
        id_.ToString(), current.writer(), current.generation(),
        absl::FormatDuration(absl::Now() - last_seen_)));
  }
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t generation = record_.generation() + 1;
  storage::v1::TimelineRecord updated = record_;
  updated.set_generation(generation);
  updated.set_writer(writer);
  auto* attach = updated.add_attaches();
  attach->set_generation(generation);
  attach->set_start_lsn(start_lsn.value());
  rocksdb::WriteBatch batch;
  batch.Put(store_->cf(Family::kMeta), RecordKey(tenant_id_, id_), updated.SerializeAsString());
  batch.Put(store_->cf(Family::kMeta), WriteStateKey(),
            EncodeWriteState(generation, 0, start_lsn, /*detached=*/false));
  CAMBIUM_RETURN_IF_ERROR(store_->Write(&batch, /*sync=*/true));
  record_ = std::move(updated);
  visibility_ = std::make_shared<Visibility>(AttachList(record_));
  last_seq_ = 0;
  last_tag_ = start_lsn;
  last_seen_ = absl::Now();
  open_streams_ = 0;
  detached_ = false;
  ++write_version_;
  head_loaded_ = false;
  head_.clear();
  applied_cv_.notify_all();
  return generation;
}

absl::Status Timeline::Detach(uint64_t generation) {
  CAMBIUM_ASSIGN_OR_RETURN(WriteGuard guard, GuardWrite());
  std::lock_guard<std::mutex> write_lock(write_mu_);
  if (generation != this->generation()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "generation %u is not the writer of timeline %s", generation, id_.ToString()));
  }
  return DetachLocked();
}

absl::Status Timeline::DetachLocked() {
  const bool was = detached_;
  detached_ = true;
  rocksdb::WriteBatch batch;
  batch.Put(store_->cf(Family::kMeta), WriteStateKey(), EncodeWriteStateLocked());
  absl::Status written = store_->Write(&batch, /*sync=*/true);
  if (!written.ok()) {
    detached_ = was;
    return written;
  }
  open_streams_ = 0;
  applied_cv_.notify_all();  // a barrier waiting for this generation gives up
  return absl::OkStatus();
}

absl::StatusOr<bool> Timeline::Release(const std::string& writer) {
  CAMBIUM_ASSIGN_OR_RETURN(WriteGuard guard, GuardWrite());
  std::lock_guard<std::mutex> write_lock(write_mu_);
  const storage::v1::TimelineRecord current = record();
  if (current.generation() == 0 || detached_) return false;
  if (current.writer() != writer) {
    return absl::FailedPreconditionError(
        absl::StrFormat("timeline %s is written by %s (generation %u), not by %s", id_.ToString(),
                        current.writer(), current.generation(), writer));
  }
  CAMBIUM_RETURN_IF_ERROR(DetachLocked());
  return true;
}

bool Timeline::WriterActiveLocked(absl::Duration lease) const {
  if (generation() == 0 || detached_) return false;
  return open_streams_ > 0 || absl::Now() - last_seen_ < lease;
}

bool Timeline::WriterActiveWithin(absl::Duration lease) const {
  std::lock_guard<std::mutex> write_lock(write_mu_);
  return WriterActiveLocked(lease);
}

absl::Status Timeline::RefuseDetachedLocked(uint64_t generation) const {
  if (!detached_) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrFormat(
      "generation %u detached from timeline %s: a detached writer does not write; attach again",
      generation, id_.ToString()));
}

absl::Status Timeline::StreamOpened(uint64_t generation) {
  std::lock_guard<std::mutex> write_lock(write_mu_);
  const uint64_t current = this->generation();
  if (generation != current) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "generation %u is no longer the writer of timeline %s (now generation %u, %s): this "
        "endpoint was fenced",
        generation, id_.ToString(), current, record().writer()));
  }
  CAMBIUM_RETURN_IF_ERROR(RefuseDetachedLocked(generation));
  ++open_streams_;
  last_seen_ = absl::Now();
  return absl::OkStatus();
}

void Timeline::StreamClosed(uint64_t generation) {
  std::lock_guard<std::mutex> write_lock(write_mu_);
  if (generation != this->generation() || detached_) return;
  if (open_streams_ > 0) --open_streams_;
  last_seen_ = absl::Now();
}

// Collects the versions one batch produces, with overlays of its own effects.
class Timeline::BatchBuilder {
 public:
  BatchBuilder(Timeline* timeline, uint64_t generation) : t_(timeline), generation_(generation) {}

  // Applies `m`, storing its versions at `tag` (its own tag, or after a seal).
  absl::Status Apply(const v1::Mutation& m, Lsn tag);
  rocksdb::WriteBatch* batch() { return &batch_; }
  // Moves the batch's file states into the timeline's head.
  void CommitHead();

 private:
  // REQUIRES: t_->write_mu_ held.
  std::optional<FileState> Current(const std::string& path) const;
  absl::StatusOr<std::string> CurrentBlock(const std::string& path, const FileState& file,
                                           uint32_t block);
  void PutFile(const std::string& path, const FileState& state);
  void PutBlockValue(const std::string& key, BlockKind kind, std::string_view data);
  void PutBlock(const std::string& path, uint32_t block, std::string data);
  void PutZeroBlock(const std::string& path, uint32_t block);
  bool HasChildren(const std::string& dir) const;
  // INVALID_ARGUMENT if a file of `size` bytes exceeds the timeline's limit.
  absl::Status CheckFileSize(const std::string& path, uint64_t size) const;
  absl::Status ParentExists(const std::string& path) const;
  // `file`: the state of `path` as Apply found it (Current(path)).
  absl::Status Write(const std::string& path, std::optional<FileState> file,
                     const v1::BlockWrite& w);
  absl::Status SetSize(const std::string& path, std::optional<FileState> file, uint64_t size);
  absl::Status Rename(const std::string& from, const std::string& to);
  absl::Status MoveFile(const std::string& from, const std::string& to, const FileState& src);

  Timeline* const t_;
  const uint64_t generation_;
  Lsn tag_;
  rocksdb::WriteBatch batch_;
  std::string compressed_;                  // a page's LZ4 form, until the batch has copied it
  std::map<std::string, FileState> files_;  // overlay: states written by this batch
  std::map<std::pair<std::string, uint32_t>, std::string> blocks_;  // "" = zeros
};

std::optional<FileState> Timeline::BatchBuilder::Current(const std::string& path) const {
  auto o = files_.find(path);
  if (o != files_.end())
    return o->second.exists ? std::optional<FileState>(o->second) : std::nullopt;
  auto h = t_->head_.find(path);
  if (h != t_->head_.end()) return h->second;
  return std::nullopt;
}

absl::StatusOr<std::string> Timeline::BatchBuilder::CurrentBlock(const std::string& path,
                                                                 const FileState& file,
                                                                 uint32_t block) {
  auto o = blocks_.find({path, block});
  if (o != blocks_.end()) return o->second.empty() ? std::string(kBlockSize, '\0') : o->second;
  if (block >= file.nblocks()) return std::string(kBlockSize, '\0');
  auto page = t_->GetPageOfFile(path, block, Lsn::Max(), file);
  if (!page.ok()) return page.status();
  return std::move(page->data);
}

void Timeline::BatchBuilder::PutFile(const std::string& path, const FileState& state) {
  const std::string key = keys::FileKey(t_->id_, path, tag_);
  batch_.Put(t_->store_->cf(Family::kFiles), key, EncodeFileValue(key, generation_, state));
  files_[path] = state;
}

void Timeline::BatchBuilder::PutBlockValue(const std::string& key, BlockKind kind,
                                           std::string_view data) {
  // Header and body go to the batch as two parts: the page (or its compressed
  // form) is copied once, into it.
  const BlockValueParts value =
      EncodeBlockValueParts(key, generation_, kind, data, t_->store_->page_codec(), &compressed_);
  const rocksdb::Slice key_part(key);
  const rocksdb::Slice value_parts[] = {rocksdb::Slice(value.header.data(), value.header.size()),
                                        rocksdb::Slice(value.body.data(), value.body.size())};
  batch_.Put(t_->store_->cf(Family::kBlocks), rocksdb::SliceParts(&key_part, 1),
             rocksdb::SliceParts(value_parts, value.body.empty() ? 1 : 2));
}

void Timeline::BatchBuilder::PutBlock(const std::string& path, uint32_t block, std::string data) {
  PutBlockValue(keys::BlockKey(t_->id_, path, block, tag_), BlockKind::kData, data);
  blocks_[{path, block}] = std::move(data);
}

void Timeline::BatchBuilder::PutZeroBlock(const std::string& path, uint32_t block) {
  PutBlockValue(keys::BlockKey(t_->id_, path, block, tag_), BlockKind::kZero, "");
  blocks_[{path, block}] = std::string();
}

absl::Status Timeline::BatchBuilder::CheckFileSize(const std::string& path, uint64_t size) const {
  if (size <= t_->options_.max_file_bytes) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrFormat("%s: %u bytes is larger than the largest file allowed (%u bytes)", path, size,
                      t_->options_.max_file_bytes));
}

bool Timeline::BatchBuilder::HasChildren(const std::string& dir) const {
  const std::string prefix = dir + "/";
  for (auto it = t_->head_.lower_bound(prefix);
       it != t_->head_.end() && absl::StartsWith(it->first, prefix); ++it) {
    auto o = files_.find(it->first);
    if (o == files_.end() || o->second.exists) return true;
  }
  for (auto it = files_.lower_bound(prefix);
       it != files_.end() && absl::StartsWith(it->first, prefix); ++it) {
    if (it->second.exists) return true;
  }
  return false;
}

absl::Status Timeline::BatchBuilder::ParentExists(const std::string& path) const {
  std::string parent(pg::ParentPath(path));
  if (parent.empty()) return absl::OkStatus();
  auto p = Current(parent);
  if (!p || p->kind != FileKind::kDirectory) {
    return Refuse(path, absl::StrFormat("parent directory %s does not exist", parent));
  }
  return absl::OkStatus();
}

absl::Status Timeline::BatchBuilder::Write(const std::string& path, std::optional<FileState> file,
                                           const v1::BlockWrite& w) {
  if (!file || file->kind != FileKind::kRegular)
    return Refuse(path, "write to a file that does not exist");
  if (w.zeros() && (w.offset() != 0 || !w.data().empty())) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: a write of a zero block %u carries an offset or data", path, w.block_no()));
  }
  const uint64_t len = w.zeros() ? kBlockSize : w.data().size();
  if (w.offset() + len > kBlockSize || len == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: write of %u bytes at offset %u does not fit in block %u", path, len,
                        w.offset(), w.block_no()));
  }
  CAMBIUM_RETURN_IF_ERROR(CheckFileSize(path, (uint64_t{w.block_no()} + 1) * kBlockSize));
  if (w.zeros() || (len == kBlockSize && AllZero(w.data()))) {
    // No page in the value (Postgres extends a relation with zero blocks before it
    // fills them).
    PutZeroBlock(path, w.block_no());
  } else if (len == kBlockSize) {
    PutBlock(path, w.block_no(), w.data());
  } else {
    CAMBIUM_ASSIGN_OR_RETURN(std::string content, CurrentBlock(path, *file, w.block_no()));
    std::memcpy(content.data() + w.offset(), w.data().data(), w.data().size());
    PutBlock(path, w.block_no(), std::move(content));
  }
  const uint64_t end = uint64_t{w.block_no()} * kBlockSize + w.offset() + len;
  if (end > file->size) {
    file->size = end;
    PutFile(path, *file);
  }
  return absl::OkStatus();
}

absl::Status Timeline::BatchBuilder::SetSize(const std::string& path, std::optional<FileState> file,
                                             uint64_t size) {
  if (!file || file->kind != FileKind::kRegular)
    return Refuse(path, "truncate of a file that does not exist");
  CAMBIUM_RETURN_IF_ERROR(CheckFileSize(path, size));
  if (size < file->size) {
    // Blocks cut off become zero tombstones; a partly cut block is zeroed past the end.
    const uint64_t keep = (size + kBlockSize - 1) / kBlockSize;
    for (uint64_t b = keep; b < file->nblocks(); ++b) PutZeroBlock(path, static_cast<uint32_t>(b));
    if (size % kBlockSize != 0) {
      const uint32_t last = static_cast<uint32_t>(size / kBlockSize);
      CAMBIUM_ASSIGN_OR_RETURN(std::string content, CurrentBlock(path, *file, last));
      std::memset(content.data() + size % kBlockSize, 0, kBlockSize - size % kBlockSize);
      PutBlock(path, last, std::move(content));
    }
  }
  if (size != file->size) {
    file->size = size;
    PutFile(path, *file);
  }
  return absl::OkStatus();
}

absl::Status Timeline::BatchBuilder::MoveFile(const std::string& from, const std::string& to,
                                              const FileState& src) {
  for (uint32_t b = 0; b < src.nblocks(); ++b) {
    CAMBIUM_ASSIGN_OR_RETURN(std::string content, CurrentBlock(from, src, b));
    bool zero = content.find_first_not_of('\0') == std::string::npos;
    if (!zero) PutBlock(to, b, std::move(content));
  }
  FileState moved = src;
  moved.incarnation = tag_;
  PutFile(to, moved);
  PutFile(from, FileState{.exists = false, .incarnation = tag_});
  return absl::OkStatus();
}

absl::Status Timeline::BatchBuilder::Rename(const std::string& from, const std::string& to) {
  CAMBIUM_RETURN_IF_ERROR(pg::ValidateRelativePath(to));
  auto src = Current(from);
  if (!src) return Refuse(from, "rename of a path that does not exist");
  if (from == to) return absl::OkStatus();
  if (absl::StartsWith(to, from + "/")) return Refuse(from, "cannot move a directory into itself");
  CAMBIUM_RETURN_IF_ERROR(ParentExists(to));
  auto dst = Current(to);
  if (src->kind == FileKind::kRegular) {
    if (dst && dst->kind == FileKind::kDirectory) return Refuse(to, "is a directory");
    return MoveFile(from, to, *src);
  }
  if (dst && (dst->kind != FileKind::kDirectory || HasChildren(to))) {
    return Refuse(to, "rename target exists and is not an empty directory");
  }
  // A directory: move everything under it, then the directory itself.
  std::vector<std::pair<std::string, FileState>> children;
  const std::string prefix = from + "/";
  for (auto it = t_->head_.lower_bound(prefix);
       it != t_->head_.end() && absl::StartsWith(it->first, prefix); ++it) {
    if (auto c = Current(it->first)) children.emplace_back(it->first, *c);
  }
  for (auto it = files_.lower_bound(prefix);
       it != files_.end() && absl::StartsWith(it->first, prefix); ++it) {
    if (it->second.exists && !t_->head_.count(it->first))
      children.emplace_back(it->first, it->second);
  }
  std::sort(children.begin(), children.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  FileState dir = *src;
  dir.incarnation = tag_;
  PutFile(to, dir);
  for (const auto& [path, state] : children) {
    const std::string target = to + path.substr(from.size());
    if (state.kind == FileKind::kRegular) {
      CAMBIUM_RETURN_IF_ERROR(MoveFile(path, target, state));
    } else {
      FileState d = state;
      d.incarnation = tag_;
      PutFile(target, d);
    }
  }
  for (auto it = children.rbegin(); it != children.rend(); ++it) {
    if (it->second.kind == FileKind::kDirectory)
      PutFile(it->first, FileState{.exists = false, .incarnation = tag_});
  }
  PutFile(from, FileState{.exists = false, .incarnation = tag_});
  return absl::OkStatus();
}

absl::Status Timeline::BatchBuilder::Apply(const v1::Mutation& m, Lsn tag) {
  const std::string& path = m.path();
  CAMBIUM_RETURN_IF_ERROR(pg::ValidateRelativePath(path));
  if (pg::ClassifyPath(path) != pg::PathClass::kVersioned ||
      (m.has_rename() && pg::ClassifyPath(m.rename().new_path()) != pg::PathClass::kVersioned)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: local-only and WAL paths are never versioned; the shim must not send them", path));
  }
  tag_ = tag;
  auto current = Current(path);
  switch (m.op_case()) {
    case v1::Mutation::kWrite:
      return Write(path, std::move(current), m.write());
    case v1::Mutation::kSetSize:
      return SetSize(path, std::move(current), m.set_size().size());
    case v1::Mutation::kCreate:
      if (current) return Refuse(path, "create of a path that already exists");
      CAMBIUM_RETURN_IF_ERROR(ParentExists(path));
      PutFile(path, FileState{.exists = true,
                              .kind = FileKind::kRegular,
                              .size = 0,
                              .mode = m.create().mode() & 07777,
                              .incarnation = tag_});
      return absl::OkStatus();
    case v1::Mutation::kUnlink:
      if (!current || current->kind != FileKind::kRegular)
        return Refuse(path, "unlink of a file that does not exist");
      PutFile(path, FileState{.exists = false, .incarnation = tag_});
      return absl::OkStatus();
    case v1::Mutation::kMkdir:
      if (current) return Refuse(path, "mkdir of a path that already exists");
      CAMBIUM_RETURN_IF_ERROR(ParentExists(path));
      PutFile(path, FileState{.exists = true,
                              .kind = FileKind::kDirectory,
                              .size = 0,
                              .mode = m.mkdir().mode() & 07777,
                              .incarnation = tag_});
      return absl::OkStatus();
    case v1::Mutation::kRmdir:
      if (!current || current->kind != FileKind::kDirectory)
        return Refuse(path, "rmdir of a directory that does not exist");
      if (HasChildren(path)) return Refuse(path, "directory not empty");
      PutFile(path, FileState{.exists = false, .incarnation = tag_});
      return absl::OkStatus();
    case v1::Mutation::kRename:
      return Rename(path, m.rename().new_path());
    case v1::Mutation::kChmod:
      if (!current) return Refuse(path, "chmod of a path that does not exist");
      current->mode = m.chmod().mode() & 07777;
      PutFile(path, *current);
      return absl::OkStatus();
    case v1::Mutation::OP_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(absl::StrFormat("%s: mutation without an operation", path));
}

void Timeline::BatchBuilder::CommitHead() {
  for (auto& [path, state] : files_) {
    if (state.exists) {
      t_->head_[path] = state;
    } else {
      t_->head_.erase(path);
    }
  }
}

absl::StatusOr<BatchResult> Timeline::ApplyBatch(
    uint64_t generation, uint64_t seq,
    const google::protobuf::RepeatedPtrField<v1::Mutation>& mutations, bool sync) {
  CAMBIUM_ASSIGN_OR_RETURN(WriteGuard guard, GuardWrite());
  std::unique_lock<std::mutex> lock(write_mu_);
  const uint64_t current = this->generation();
  if (generation != current) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "generation %u is no longer the writer of timeline %s (now generation %u, %s): this "
        "endpoint was fenced",
        generation, id_.ToString(), current, record().writer()));
  }
  CAMBIUM_RETURN_IF_ERROR(RefuseDetachedLocked(generation));
  last_seen_ = absl::Now();
  BatchResult result;
  if (seq > last_seq_ + 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("batch %u arrived after batch %u: batches were lost", seq, last_seq_));
  }
  if (seq == last_seq_ + 1) {
    // The head is every visible version: the current generation's (possibly stored
    // after a seal, above their tags) and what it inherited at its start.
    if (!head_loaded_) CAMBIUM_RETURN_IF_ERROR(LoadHeadLocked(Lsn::Max()));
    BatchBuilder builder(this, generation);
    const Lsn seal = seal_lsn();
    Lsn tag = last_tag_;
    for (const v1::Mutation& m : mutations) {
      if (Lsn(m.lsn()) < tag) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: tag %s is below the previous tag %s; tags must not decrease",
                            m.path(), Lsn(m.lsn()).ToString(), tag.ToString()));
      }
      tag = Lsn(m.lsn());
      // A child branched at `seal` must never see this mutation: store it just after.
      // A tag may be larger than necessary, never smaller (ARCHITECTURE.md section 2).
      CAMBIUM_RETURN_IF_ERROR(builder.Apply(m, tag <= seal ? seal + 1 : tag));
    }
    builder.batch()->Put(store_->cf(Family::kMeta), WriteStateKey(),
                         EncodeWriteState(generation, seq, tag, /*detached=*/false));
    if (!mutations.empty()) own_versions_ = true;  // before the write: readers must not skip it
    CAMBIUM_RETURN_IF_ERROR(store_->Write(builder.batch(), /*sync=*/false));
    builder.CommitHead();
    ++write_version_;
    last_seq_ = seq;
    last_tag_ = tag;
    applied_cv_.notify_all();
  }
  if (sync) {
    lock.unlock();
    CAMBIUM_RETURN_IF_ERROR(store_->Sync());
    result.synced = true;
  }
  return result;
}

absl::StatusOr<Lsn> Timeline::Barrier(uint64_t generation, uint64_t up_to_seq,
                                      absl::Duration timeout) {
  CAMBIUM_RETURN_IF_ERROR(GuardWrite().status());  // not held while waiting
  std::unique_lock<std::mutex> lock(write_mu_);
  const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(timeout);
  while (last_seq_ < up_to_seq && this->generation() == generation && !detached_ &&
         !barrier_abandoned_) {
    if (applied_cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
      return absl::DeadlineExceededError(
          absl::StrFormat("barrier waited %s for batch %u, last applied is %u",
                          absl::FormatDuration(timeout), up_to_seq, last_seq_));
    }
  }
  if (this->generation() != generation) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "generation %u is no longer the writer of timeline %s: this endpoint was fenced",
        generation, id_.ToString()));
  }
  CAMBIUM_RETURN_IF_ERROR(RefuseDetachedLocked(generation));
  if (last_seq_ < up_to_seq) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "timeline %s was deleted or moved before batch %u was applied", id_.ToString(), up_to_seq));
  }
  last_seen_ = absl::Now();
  const Lsn durable = last_tag_;
  lock.unlock();
  CAMBIUM_RETURN_IF_ERROR(store_->Sync());
  return durable;
}

}  // namespace cambium::pageserver
