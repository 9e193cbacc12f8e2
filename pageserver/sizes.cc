// Repository: per-timeline sizes for branch listings.
//
// logical size: the sum of the sizes of the regular files at the head.
// unique size: bytes of versions (and WAL) stored on the timeline itself that no
// descendant can read: what deleting it (or GC once nothing references it) frees.
// Both are cached until the timeline is written to or its children change.
#include <set>

#include "pageserver/keys.h"
#include "pageserver/repository.h"

namespace cambium::pageserver {
namespace {

// Sums the stored bytes of the versions in one family that no read point can see.
// Keys of one block (or file) are consecutive, newest first; for each read point
// the newest version at or below it is shared.
uint64_t UnsharedBytes(PageStore* store, Family family, const TimelineId& id,
                       const std::set<Lsn>& read_points) {
  const std::string prefix = keys::TimelinePrefix(id);
  auto it = store->NewBoundedIterator(family, prefix, keys::PrefixEnd(prefix));
  uint64_t bytes = 0;
  std::string group;
  std::set<Lsn> unclaimed;
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    const rocksdb::Slice key = it->key();
    if (key.size() < 8) continue;
    const std::string_view g(key.data(), key.size() - 8);
    if (g != group) {
      group.assign(g);
      unclaimed = read_points;
    }
    const Lsn tag(~keys::LoadBigEndian64(key.data() + key.size() - 8));
    // Points at or above this tag whose newest version is this one claim it.
    auto first = unclaimed.lower_bound(tag);
    if (first != unclaimed.end()) {
      unclaimed.erase(first, unclaimed.end());
      continue;
    }
    bytes += key.size() + it->value().size();
  }
  return bytes;
}

}  // namespace

Repository::SizeInputs Repository::SizeInputsLocked(const TimelineId& id) const {
  SizeInputs in;
  auto it = timelines_.find(id);
  if (it == timelines_.end()) return in;
  in.timeline = it->second;
  for (const auto& child : ChildrenLocked(id)) in.child_points.insert(child->ancestor_lsn());
  return in;
}

uint64_t Repository::LogicalSizeAt(const Timeline& t, Lsn lsn) {
  // A timeline nobody wrote to has its ancestor's files at the branch point; many
  // branches of one point share that answer.
  if (!t.has_own_versions() && t.ancestor()) {
    return LogicalSizeAt(*t.ancestor(), std::min(lsn, t.ancestor_lsn()));
  }
  const auto key = std::make_pair(t.id(), lsn);
  const uint64_t version = t.write_version();
  {
    std::lock_guard<std::mutex> lock(sizes_mu_);
    auto it = logical_sizes_.find(key);
    if (it != logical_sizes_.end() && it->second.first == version) return it->second.second;
  }
  uint64_t total = 0;
  auto files = t.ListFiles(lsn);
  if (files.ok()) {
    for (const ManifestEntry& e : *files) {
      if (e.state.kind == FileKind::kRegular) total += e.state.size;
    }
  }
  std::lock_guard<std::mutex> lock(sizes_mu_);
  logical_sizes_[key] = {version, total};
  return total;
}

uint64_t Repository::UniqueWalBytes(const SizeInputs& in) {
  const Timeline& t = *in.timeline;
  const Lsn wal_from = in.child_points.empty() ? Lsn() : *in.child_points.rbegin();
  return store_->ApproximateSize(Family::kWal, keys::WalKey(t.id(), wal_from),
                                 keys::PrefixEnd(keys::TimelinePrefix(t.id())));
}

uint64_t Repository::UniqueVersionBytes(const SizeInputs& in) {
  const Timeline& t = *in.timeline;
  if (!t.has_own_versions()) return 0;
  {
    // An active timeline changes constantly: a scan at most every 30 s.
    std::lock_guard<std::mutex> lock(sizes_mu_);
    auto it = unique_sizes_.find(t.id());
    if (it != unique_sizes_.end() && it->second.child_points == in.child_points &&
        (it->second.write_version == t.write_version() ||
         absl::Now() - it->second.computed < absl::Seconds(30))) {
      return it->second.bytes;
    }
  }
  UniqueSizeEntry entry;
  entry.write_version = t.write_version();
  entry.child_points = in.child_points;
  entry.bytes = UnsharedBytes(store_, Family::kBlocks, t.id(), in.child_points) +
                UnsharedBytes(store_, Family::kFiles, t.id(), in.child_points);
  entry.computed = absl::Now();
  std::lock_guard<std::mutex> lock(sizes_mu_);
  unique_sizes_[t.id()] = entry;
  return entry.bytes;
}

std::vector<Repository::BranchSizeSample> Repository::BranchSizesForMetrics() {
  std::vector<BranchSizeSample> out;
  std::vector<SizeInputs> inputs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, t] : tenants_) {
      for (const auto& [name, b] : t.branches) {
        if (b.read_only_copy()) continue;
        const TimelineId timeline = TimelineId::FromBytes(b.timeline_id().data());
        out.push_back({.tenant = id, .timeline = timeline, .branch = name});
        inputs.push_back(SizeInputsLocked(timeline));
      }
    }
  }
  for (size_t i = 0; i < out.size(); ++i) {
    const SizeInputs& in = inputs[i];
    if (!in.timeline) continue;
    out[i].logical_size = LogicalSizeAt(*in.timeline, Lsn::Max());
    if (!in.timeline->has_own_versions()) {
      out[i].unique_size = UniqueWalBytes(in);
      continue;
    }
    std::lock_guard<std::mutex> lock(sizes_mu_);
    auto it = unique_sizes_.find(in.timeline->id());
    if (it != unique_sizes_.end()) out[i].unique_size = it->second.bytes + UniqueWalBytes(in);
  }
  return out;
}

void Repository::ForgetSizes(const TimelineId& id) {
  std::lock_guard<std::mutex> lock(sizes_mu_);
  unique_sizes_.erase(id);
  auto it = logical_sizes_.lower_bound({id, Lsn()});
  while (it != logical_sizes_.end() && it->first.first == id) it = logical_sizes_.erase(it);
}

void Repository::FillSizes(BranchInfo* info, const SizeInputs& in) {
  if (!in.timeline) return;
  info->logical_size = LogicalSizeAt(*in.timeline, Lsn::Max());
  info->unique_wal_bytes = UniqueWalBytes(in);
  info->unique_size = UniqueVersionBytes(in) + info->unique_wal_bytes;
}

}  // namespace cambium::pageserver
