// Timeline reads: walking the ancestry for file states, pages and manifests.
#include <algorithm>

#include "absl/strings/str_format.h"
#include "pageserver/timeline.h"

namespace cambium::pageserver {

absl::StatusOr<std::optional<FileVersion>> Timeline::FindFileState(
    std::string_view path, Lsn lsn, const rocksdb::Snapshot* snap) const {
  const Timeline* t = this;
  Lsn at = lsn;
  while (t != nullptr) {
    if (t->has_own_versions()) {
      auto vis = t->visibility();
      auto found = store_->FindFile(
          t->id_, path, at, [&vis](Lsn tag, uint64_t gen) { return vis->Visible(tag, gen); }, snap);
      if (!found.ok() || found->has_value()) return found;
    }
    if (!t->ancestor_) break;
    at = std::min(at, t->ancestor_lsn_);
    t = t->ancestor_.get();
  }
  return std::optional<FileVersion>();
}

absl::StatusOr<std::optional<FileVersion>> Timeline::GetFileState(std::string_view path,
                                                                  Lsn lsn) const {
  return FindFileState(path, lsn, nullptr);
}

absl::StatusOr<std::optional<BlockVersion>> Timeline::FindBlockVersion(std::string_view path,
                                                                       uint32_t block, Lsn lsn,
                                                                       Lsn incarnation) const {
  const Timeline* t = this;
  Lsn at = lsn;
  // Versions older than the file's incarnation are not part of it: stop there.
  while (t != nullptr && at >= incarnation) {
    if (t->has_own_versions()) {  // a branch nobody wrote to holds nothing to find
      auto vis = t->visibility();
      auto found = store_->FindBlock(t->id_, path, block, at, [&vis](Lsn tag, uint64_t gen) {
        return vis->Visible(tag, gen);
      });
      if (!found.ok()) return found.status();
      if (found->has_value()) {
        if ((*found)->lsn < incarnation) return std::optional<BlockVersion>();
        return found;
      }
    }
    if (!t->ancestor_) break;
    at = std::min(at, t->ancestor_lsn_);
    t = t->ancestor_.get();
  }
  return std::optional<BlockVersion>();
}

absl::StatusOr<Page> Timeline::GetPageOfFile(std::string_view path, uint32_t block, Lsn lsn,
                                             const FileState& file) const {
  if (block >= file.nblocks()) {
    return absl::OutOfRangeError(
        absl::StrFormat("block %u of %s is beyond the end of the file (%u bytes) at %s", block,
                        path, file.size, lsn.ToString()));
  }
  auto version = FindBlockVersion(path, block, lsn, file.incarnation);
  if (!version.ok()) return version.status();
  Page page;
  if (version->has_value() && (*version)->kind == BlockKind::kData) {
    page.data = std::move((*version)->data);
    page.version_lsn = (*version)->lsn;
  } else {
    page.data.assign(kBlockSize, '\0');
    if (version->has_value()) page.version_lsn = (*version)->lsn;
  }
  return page;
}

absl::StatusOr<Page> Timeline::GetPage(std::string_view path, uint32_t block, Lsn lsn) const {
  auto file = GetFileState(path, lsn);
  if (!file.ok()) return file.status();
  if (!file->has_value() || !(*file)->state.exists) {
    return absl::NotFoundError(absl::StrFormat("file %s does not exist at %s on timeline %s", path,
                                               lsn.ToString(), id_.ToString()));
  }
  if ((*file)->state.kind != FileKind::kRegular) {
    return absl::FailedPreconditionError(absl::StrFormat("%s is a directory", path));
  }
  return GetPageOfFile(path, block, lsn, (*file)->state);
}

absl::StatusOr<std::vector<ManifestEntry>> Timeline::ListFiles(Lsn lsn) const {
  // Every path with a version anywhere in the ancestry (each level at its own bound),
  // then its state resolved through the ancestry. One snapshot keeps it consistent.
  const rocksdb::Snapshot* snap = store_->db()->GetSnapshot();
  std::vector<std::string> paths;
  absl::Status status;
  for (const Timeline* t = this; t != nullptr && status.ok(); t = t->ancestor_.get()) {
    if (!t->has_own_versions()) continue;
    status = store_->ForEachPath(
        t->id_,
        [&paths](std::string_view p) {
          paths.emplace_back(p);
          return absl::OkStatus();
        },
        snap);
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  std::vector<ManifestEntry> entries;
  for (size_t i = 0; i < paths.size() && status.ok(); ++i) {
    auto v = FindFileState(paths[i], lsn, snap);
    if (!v.ok()) {
      status = v.status();
    } else if (v->has_value() && (*v)->state.exists) {
      entries.push_back(ManifestEntry{paths[i], (*v)->state, (*v)->lsn});
    }
  }
  store_->db()->ReleaseSnapshot(snap);
  if (!status.ok()) return status;
  return entries;
}

}  // namespace cambium::pageserver
