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

Repository::SizeCache& Repository::SizesLocked(const Timeline& t) {
  SizeCache& c = sizes_[t.id()];
  std::set<Lsn> points;
  for (const auto& child : ChildrenLocked(t.id())) points.insert(child->ancestor_lsn());
  if (c.valid && c.write_version == t.write_version() && c.last_record == t.last_record_lsn() &&
      c.child_points == points) {
    return c;
  }
  c.write_version = t.write_version();
  c.last_record = t.last_record_lsn();
  c.child_points = points;
  c.logical = 0;
  auto files = t.ListFiles(Lsn::Max());
  if (files.ok()) {
    for (const ManifestEntry& e : *files) {
      if (e.state.kind == FileKind::kRegular) c.logical += e.state.size;
    }
  }
  c.unique = UnsharedBytes(store_, Family::kBlocks, t.id(), points) +
             UnsharedBytes(store_, Family::kFiles, t.id(), points);
  // WAL above every child's branch point is the timeline's own.
  const Lsn wal_from = points.empty() ? Lsn() : *points.rbegin();
  c.unique += store_->ApproximateSize(Family::kWal, keys::WalKey(t.id(), wal_from),
                                      keys::PrefixEnd(keys::TimelinePrefix(t.id())));
  c.valid = true;
  return c;
}

uint64_t Repository::LogicalSizeLocked(const Timeline& t) { return SizesLocked(t).logical; }

uint64_t Repository::UniqueSizeLocked(const Timeline& t) { return SizesLocked(t).unique; }

}  // namespace cambium::pageserver
