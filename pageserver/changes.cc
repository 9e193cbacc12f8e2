// Repository: which relations changed between two points of a branch's history
// (ListChanges; `cambium changes`, issue 12).
//
// The answer comes from the WAL archive between the two points, the pageserver's own
// record of every change: each record names the blocks it changes (its block
// references), Storage records create and truncate relation files, and commit and
// abort records list the relation files they drop. Decoding the range once costs
// what changed, whatever the database's size; no page version is read.
//
// Not a change (so that reading a table never lists it): full-page images written
// for hint bits, and Heap2 pruning, vacuum, freezing and visibility-map records,
// which rewrite pages without changing a row.
#include <algorithm>
#include <map>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "common/pg/wal_decoder.h"
#include "common/pg/wal_format.h"
#include "common/status.h"
#include "pageserver/repository.h"

namespace cambium::pageserver {
namespace {

// WAL is read and decoded in pieces of this size.
constexpr uint64_t kReadChunk = 8 << 20;

bool MaintenanceOnly(const pg::WalRecord& r) {
  if (r.rmid == static_cast<uint8_t>(pg::RmgrId::kXlog)) {
    return r.rmgr_info() == pg::kXlogFpiForHint;
  }
  if (r.rmid == static_cast<uint8_t>(pg::RmgrId::kHeap2)) {
    switch (r.rmgr_info() & 0x70) {
      case pg::kXlogHeap2Prune:
      case pg::kXlogHeap2Vacuum:
      case pg::kXlogHeap2FreezePage:
      case pg::kXlogHeap2Visible:
        return true;
      default:
        return false;
    }
  }
  return false;
}

struct Accumulator {
  absl::flat_hash_set<uint32_t> blocks;
  RelationChange change;
};

using ChangeMap = std::map<std::pair<pg::RelFileNode, uint32_t>, Accumulator>;

Accumulator& Touch(ChangeMap& map, const pg::RelFileNode& node, uint32_t fork, Lsn at) {
  auto [it, first] = map.try_emplace({node, fork});
  Accumulator& a = it->second;
  if (first) {
    a.change.node = node;
    a.change.fork = fork;
    a.change.first_lsn = at;
  }
  a.change.last_lsn = at;
  return a;
}

absl::Status Account(const pg::WalRecord& r, ChangeMap& map) {
  if (!MaintenanceOnly(r)) {
    for (const pg::WalBlockRef& b : r.blocks) {
      Accumulator& a =
          Touch(map, {.spc = b.spc_oid, .db = b.db_oid, .rel = b.rel_oid}, b.fork, r.start);
      a.blocks.insert(b.block_no);
      ++a.change.records;
    }
  }
  CAMBIUM_ASSIGN_OR_RETURN(std::optional<pg::SmgrRecord> smgr, pg::DecodeSmgr(r));
  if (smgr.has_value()) {
    if (smgr->kind == pg::SmgrRecord::Kind::kCreate) {
      Touch(map, smgr->node, smgr->fork, r.start).change.created = true;
    } else {
      Touch(map, smgr->node, 0, r.start).change.truncated = true;
    }
  }
  CAMBIUM_ASSIGN_OR_RETURN(std::optional<pg::XactRecord> xact, pg::DecodeXact(r));
  if (xact.has_value()) {
    for (const pg::RelFileNode& node : xact->dropped) {
      Touch(map, node, 0, r.start).change.dropped = true;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ChangeSet> Repository::ListChanges(const std::string& tenant,
                                                  const std::string& branch,
                                                  const BranchPoint& since,
                                                  const BranchPoint& until,
                                                  std::optional<BlocksOf> blocks_of) {
  if (!since.lsn.has_value() && !since.time.has_value()) {
    return absl::InvalidArgumentError("changes need a starting point: a time or an LSN");
  }
  std::shared_ptr<Timeline> timeline;
  ChangeSet out;
  if (!until.lsn.has_value() && !until.time.has_value()) {
    CAMBIUM_ASSIGN_OR_RETURN(auto head, ResolveBranchHead(tenant, branch));
    timeline = head.first;
    out.until = head.second;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
    CAMBIUM_ASSIGN_OR_RETURN(auto current, BranchTimelineLocked(*t, branch));
    if (timeline && timeline != current) {
      return absl::AbortedError(absl::StrFormat(
          "branch \"%s\" was reset or restored while its head was resolved; retry", branch));
    }
    timeline = current;
    if (until.lsn.has_value() || until.time.has_value()) {
      CAMBIUM_ASSIGN_OR_RETURN(out.until, ResolvePointLocked(*timeline, until));
    }
    CAMBIUM_ASSIGN_OR_RETURN(out.since, ResolvePointLocked(*timeline, since));
  }
  if (out.since > out.until) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the range is reversed: since resolves to %s, after until at %s",
                        out.since.ToString(), out.until.ToString()));
  }
  // Not under mu_: the timeline is held, and the archive reads follow its ancestors.
  ChangeMap map;
  pg::WalDecoder decoder(out.since);
  for (Lsn at = out.since; at < out.until;) {
    const Lsn to = std::min(out.until, at + kReadChunk);
    CAMBIUM_ASSIGN_OR_RETURN(std::string bytes, archive_.Read(*timeline, at, to));
    out.wal_bytes_read += bytes.size();
    decoder.Feed(bytes);
    at = to;
    while (true) {
      absl::StatusOr<std::optional<pg::WalRecord>> record = decoder.Next();
      if (!record.ok()) {
        // The archive verified every record it stored: anything but a clean end of
        // the fed bytes is damage.
        return absl::DataLossError(absl::StrFormat("WAL of branch \"%s\" at %s: %s", branch,
                                                   decoder.position().ToString(),
                                                   record.status().message()));
      }
      if (!record->has_value()) break;
      if ((*record)->end > out.until) break;
      ++out.records_read;
      CAMBIUM_RETURN_IF_ERROR(Account(**record, map));
    }
  }
  // The commit that made a record visible: the first whose end is past the record's
  // start (a commit ending exactly there precedes it).
  auto commit_time = [&](Lsn start) -> absl::StatusOr<std::optional<absl::Time>> {
    CAMBIUM_ASSIGN_OR_RETURN(std::optional<CommitPoint> c,
                             archive_.CommitAtOrAbove(*timeline, start + 1));
    if (!c.has_value() || c->end > out.until) return std::optional<absl::Time>();
    return std::optional<absl::Time>(c->time);
  };
  for (auto& [key, a] : map) {
    a.change.blocks_changed = a.blocks.size();
    if (blocks_of && key.second == 0 && key.first.db == blocks_of->db &&
        key.first.rel == blocks_of->rel) {
      if (a.blocks.size() > kMaxListedBlocks) {
        a.change.blocks_truncated = true;
      } else {
        a.change.blocks.assign(a.blocks.begin(), a.blocks.end());
        std::sort(a.change.blocks.begin(), a.change.blocks.end());
      }
    }
    CAMBIUM_ASSIGN_OR_RETURN(a.change.first_commit, commit_time(a.change.first_lsn));
    CAMBIUM_ASSIGN_OR_RETURN(a.change.last_commit, commit_time(a.change.last_lsn));
    out.changes.push_back(a.change);
  }
  auto commit_below = [&](Lsn lsn) -> absl::StatusOr<std::optional<absl::Time>> {
    CAMBIUM_ASSIGN_OR_RETURN(std::optional<CommitPoint> c,
                             archive_.CommitAtOrBelow(*timeline, lsn));
    return c ? std::optional<absl::Time>(c->time) : std::nullopt;
  };
  CAMBIUM_ASSIGN_OR_RETURN(out.since_commit, commit_below(out.since));
  CAMBIUM_ASSIGN_OR_RETURN(out.until_commit, commit_below(out.until));
  return out;
}

}  // namespace cambium::pageserver
