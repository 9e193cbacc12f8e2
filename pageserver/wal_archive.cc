#include "pageserver/wal_archive.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "absl/strings/str_format.h"
#include "common/bytes.h"
#include "common/checksum.h"
#include "common/pg/wal_records.h"
#include "common/status.h"
#include "common/sync_point.h"
#include "pageserver/keys.h"
#include "pageserver/versions.h"

namespace cambium::pageserver {
namespace {

constexpr size_t kChunkBytes = 64 * 1024;

// A chunk's stored value is an 8-byte checksum followed by one of two forms:
//  - raw: the WAL bytes; checksum = Checksum64Parts({key, bytes}). Every chunk of a
//    store without LZ4, a chunk LZ4 does not shrink by an eighth, and every chunk
//    archived before chunks were compressed;
//  - LZ4: [raw size, 4 bytes LE][LZ4 block of the bytes]; checksum =
//    Checksum64Parts({key, kLz4ChunkTag, rest}).
// The tag inside the checksum tells the forms apart (a raw chunk's bytes are any WAL,
// so no leading format byte could); a value that verifies as neither is DATA_LOSS.
// Why compress here: with the family's SST files compressed by RocksDB, every
// compaction decompressed and compressed the archive again, a third of the
// pageserver's CPU during a bulk load (perf, issue 11). Compressed once as it
// arrives, the family's files are not compressed again (page_store.cc).
constexpr std::string_view kLz4ChunkTag = "lz4 wal chunk";

std::string EncodeChunk(std::string_view key, std::string_view bytes, PageCodec codec) {
  std::string value(8, '\0');  // the checksum, set below
  bool lz4 = false;
  if (codec == PageCodec::kLz4) {
    AppendLittleEndian<uint32_t>(&value, static_cast<uint32_t>(bytes.size()));
    lz4 = AppendLz4IfSmaller(bytes, &value);
    if (!lz4) value.resize(8);
  }
  if (!lz4) value.append(bytes.data(), bytes.size());
  const std::string_view rest = std::string_view(value).substr(8);
  const uint64_t checksum =
      lz4 ? Checksum64Parts({key, kLz4ChunkTag, rest}) : Checksum64Parts({key, rest});
  std::memcpy(value.data(), &checksum, 8);
  return value;
}

// A stored chunk whose checksum verified.
struct StoredChunk {
  bool lz4 = false;
  uint64_t size = 0;      // WAL bytes it holds
  std::string_view body;  // the bytes (raw), or the LZ4 block
};

// Tries the form the store writes first (`codec`), so that a chunk is hashed once
// unless it is of the other form (older, or incompressible).
absl::StatusOr<StoredChunk> ParseChunk(std::string_view key, std::string_view value,
                                       PageCodec codec, const Timeline& timeline, Lsn start) {
  if (value.size() >= 8) {
    const uint64_t stored = LoadLittleEndian<uint64_t>(value.data());
    const std::string_view rest = value.substr(8);
    const bool lz4_first = codec == PageCodec::kLz4;
    for (const bool lz4 : {lz4_first, !lz4_first}) {
      if (lz4 && rest.size() >= 4 && stored == Checksum64Parts({key, kLz4ChunkTag, rest})) {
        return StoredChunk{
            .lz4 = true, .size = LoadLittleEndian<uint32_t>(rest.data()), .body = rest.substr(4)};
      }
      if (!lz4 && stored == Checksum64Parts({key, rest})) {
        return StoredChunk{.lz4 = false, .size = rest.size(), .body = rest};
      }
    }
  }
  return absl::DataLossError(
      absl::StrFormat("archived WAL chunk at %s of timeline %s failed its checksum",
                      start.ToString(), timeline.id().ToString()));
}

// The WAL bytes of `chunk`: a view of its value, or of `scratch` once decompressed.
absl::StatusOr<std::string_view> ChunkBytes(const StoredChunk& chunk, std::string* scratch) {
  if (!chunk.lz4) return chunk.body;
  if (chunk.size > kChunkBytes) {
    return absl::DataLossError(absl::StrFormat("archived WAL chunk claims %u bytes (at most %u)",
                                               chunk.size, kChunkBytes));
  }
  scratch->resize(chunk.size);
  CAMBIUM_RETURN_IF_ERROR(
      Lz4DecompressExactly(chunk.body, chunk.size, scratch->data(), "archived WAL chunk"));
  return std::string_view(*scratch);
}

// One timeline of a history and the highest LSN of it that the history reads.
struct HistoryLevel {
  const Timeline* timeline;
  Lsn bound;
};

// The timelines of `timeline`'s history, oldest (the root) first.
std::vector<HistoryLevel> HistoryLevels(const Timeline& timeline) {
  std::vector<HistoryLevel> levels;
  Lsn bound = Lsn::Max();
  for (const Timeline* t = &timeline; t != nullptr; t = t->ancestor().get()) {
    levels.push_back({t, bound});
    if (t->ancestor()) bound = std::min(bound, t->ancestor_lsn());
  }
  std::reverse(levels.begin(), levels.end());
  return levels;
}

}  // namespace

// The archive of one timeline. `end` is always the end of a complete record (or the
// start), so stored WAL is final: bytes past it may still be rewritten upstream.
struct WalArchive::State {
  std::mutex mu;
  Lsn start;           // first byte of the timeline's own WAL
  Lsn end;             // end of stored WAL (a record boundary, or start)
  Lsn first_boundary;  // a record boundary at or after start (branch point / import end)
  int64_t max_commit_time = INT64_MIN;

  std::string Encode() const {
    std::string v;
    AppendLittleEndian<uint64_t>(&v, start.value());
    AppendLittleEndian<uint64_t>(&v, end.value());
    AppendLittleEndian<uint64_t>(&v, first_boundary.value());
    AppendLittleEndian<int64_t>(&v, max_commit_time);
    return v;
  }
  bool Decode(std::string_view v) {
    if (v.size() != 32) return false;
    start = Lsn(LoadLittleEndian<uint64_t>(v.data()));
    end = Lsn(LoadLittleEndian<uint64_t>(v.data() + 8));
    first_boundary = Lsn(LoadLittleEndian<uint64_t>(v.data() + 16));
    max_commit_time = LoadLittleEndian<int64_t>(v.data() + 24);
    return true;
  }
};

WalArchive::WalArchive(PageStore* store) : store_(store) {}
WalArchive::~WalArchive() = default;

std::string WalArchive::StateKey(const Timeline& timeline) {
  std::string key = "a|";
  timeline.tenant_id().AppendBytes(&key);
  timeline.id().AppendBytes(&key);
  return key;
}

void WalArchive::ForgetTimeline(const TimelineId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  states_.erase(id);
}

void WalArchive::InitTimeline(const Timeline& timeline, Lsn start, rocksdb::WriteBatch* batch) {
  State s;
  s.start = start;
  s.end = start;
  s.first_boundary = start;
  batch->Put(store_->cf(Family::kMeta), StateKey(timeline), s.Encode());
}

absl::StatusOr<std::shared_ptr<WalArchive::State>> WalArchive::LoadState(const Timeline& timeline) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = states_.find(timeline.id());
  if (it != states_.end()) return it->second;
  auto raw = store_->GetMeta(StateKey(timeline));
  if (!raw.ok()) return raw.status();
  auto state = std::make_shared<State>();
  if (!raw->has_value()) {
    return absl::NotFoundError(
        absl::StrFormat("timeline %s has no WAL archive", timeline.id().ToString()));
  }
  if (!state->Decode(**raw)) return absl::DataLossError("WAL archive state is malformed");
  states_.emplace(timeline.id(), state);
  return state;
}

absl::StatusOr<Lsn> WalArchive::End(const Timeline& timeline) {
  CAMBIUM_ASSIGN_OR_RETURN(std::shared_ptr<State> s, LoadState(timeline));
  std::lock_guard<std::mutex> lock(s->mu);
  return s->end;
}

absl::Status WalArchive::WaitForEnd(const Timeline& timeline, Lsn lsn, absl::Time deadline) {
  for (;;) {
    CAMBIUM_ASSIGN_OR_RETURN(Lsn end, End(timeline));
    if (end >= lsn) return absl::OkStatus();
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrFormat("the WAL archive of timeline %s is at %s, waiting for %s",
                          timeline.id().ToString(), end.ToString(), lsn.ToString()));
    }
    std::unique_lock<std::mutex> lock(mu_);
    appended_cv_.wait_for(
        lock, absl::ToChronoMilliseconds(std::min(deadline - now, absl::Milliseconds(100))));
  }
}

absl::StatusOr<Lsn> WalArchive::Start(const Timeline& timeline) {
  CAMBIUM_ASSIGN_OR_RETURN(std::shared_ptr<State> s, LoadState(timeline));
  std::lock_guard<std::mutex> lock(s->mu);
  return s->start;
}

absl::StatusOr<Lsn> WalArchive::FirstBoundary(const Timeline& timeline) {
  CAMBIUM_ASSIGN_OR_RETURN(std::shared_ptr<State> s, LoadState(timeline));
  std::lock_guard<std::mutex> lock(s->mu);
  return s->first_boundary;
}

absl::Status WalArchive::SetFirstBoundary(const Timeline& timeline, Lsn lsn) {
  CAMBIUM_ASSIGN_OR_RETURN(Timeline::WriteGuard guard, timeline.GuardWrite());
  CAMBIUM_ASSIGN_OR_RETURN(std::shared_ptr<State> s, LoadState(timeline));
  std::lock_guard<std::mutex> lock(s->mu);
  if (lsn > s->end || lsn < s->start) {
    return absl::InvalidArgumentError("first boundary outside the archived WAL");
  }
  State updated = {.start = s->start,
                   .end = s->end,
                   .first_boundary = lsn,
                   .max_commit_time = s->max_commit_time};
  rocksdb::WriteBatch batch;
  batch.Put(store_->cf(Family::kMeta), StateKey(timeline), updated.Encode());
  CAMBIUM_RETURN_IF_ERROR(store_->Write(&batch, true));
  s->first_boundary = lsn;
  return absl::OkStatus();
}

absl::Status WalArchive::Append(Timeline& timeline, Lsn at, std::string_view bytes, bool sync) {
  // Held until the batch is written: a deleted timeline's WAL is never stored again.
  CAMBIUM_ASSIGN_OR_RETURN(Timeline::WriteGuard guard, timeline.GuardWrite());
  CAMBIUM_ASSIGN_OR_RETURN(std::shared_ptr<State> s, LoadState(timeline));
  std::lock_guard<std::mutex> lock(s->mu);
  if (at > s->end) {
    return absl::FailedPreconditionError(
        absl::StrFormat("the WAL archive of timeline %s ends at %s; WAL at %s would leave a gap",
                        timeline.id().ToString(), s->end.ToString(), at.ToString()));
  }
  if (at < s->end) {
    // The overlap was archived before and is final: it must be identical.
    const Lsn from = std::max(at, s->start);
    const Lsn to = std::min(s->end, at + bytes.size());
    std::string stored;
    if (from < to) CAMBIUM_RETURN_IF_ERROR(ReadOwn(timeline, from, to, &stored));
    if (bytes.substr(from - at, stored.size()) != stored) {
      return absl::DataLossError(
          absl::StrFormat("WAL for timeline %s at %s differs from the archived WAL",
                          timeline.id().ToString(), from.ToString()));
    }
    if (at + bytes.size() <= s->end) return absl::OkStatus();  // all archived already
    bytes.remove_prefix(s->end - at);
    at = s->end;
  }
  // Decode from the stored end (a record boundary) and keep complete records only.
  pg::WalDecoder decoder(at);
  decoder.Feed(bytes);
  rocksdb::WriteBatch batch;
  Lsn new_end = at;
  int64_t max_time = s->max_commit_time;
  for (;;) {
    auto next = decoder.Next();
    if (!next.ok()) {
      if (absl::IsOutOfRange(next.status())) break;  // zero padding: WAL ends here for now
      return Annotate(next.status(),
                      absl::StrFormat("archiving WAL of timeline %s", timeline.id().ToString()));
    }
    if (!next->has_value()) break;
    const pg::WalRecord& rec = **next;
    new_end = rec.end;
    auto xact = pg::DecodeXact(rec);
    if (!xact.ok()) return xact.status();
    if (xact->has_value() && ((*xact)->kind == pg::XactKind::kCommit ||
                              (*xact)->kind == pg::XactKind::kCommitPrepared)) {
      max_time = std::max(max_time, (*xact)->xact_time);
      batch.Put(store_->cf(Family::kCommits), keys::CommitKey(timeline.id(), max_time, rec.end),
                "");
      std::string v;
      AppendLittleEndian<int64_t>(&v, max_time);
      batch.Put(store_->cf(Family::kCommits), keys::CommitLsnKey(timeline.id(), rec.end), v);
    }
  }
  if (new_end == at) return absl::OkStatus();  // no complete record yet
  // After an XLOG_SWITCH the record's end is the next segment's start; the rest of
  // the switched segment is never read, and may not have been delivered: store what
  // was given and zeros up to the segment end, so the archive stays contiguous.
  std::string zero_filled;
  std::string_view keep = bytes.substr(0, new_end - at);
  if (keep.size() < new_end - at) {
    zero_filled.assign(keep);
    zero_filled.resize(new_end - at, '\0');
    keep = zero_filled;
  }
  for (size_t off = 0; off < keep.size(); off += kChunkBytes) {
    const std::string key = keys::WalKey(timeline.id(), at + off);
    batch.Put(store_->cf(Family::kWal), key,
              EncodeChunk(key, keep.substr(off, kChunkBytes), store_->page_codec()));
  }
  State updated = {.start = s->start,
                   .end = new_end,
                   .first_boundary = s->first_boundary,
                   .max_commit_time = max_time};
  batch.Put(store_->cf(Family::kMeta), StateKey(timeline), updated.Encode());
  CAMBIUM_SYNC_POINT("WalArchive::Append:BeforeWrite");
  CAMBIUM_RETURN_IF_ERROR(store_->Write(&batch, sync));
  s->end = new_end;
  s->max_commit_time = max_time;
  timeline.RaiseLastRecordLsn(new_end);
  {
    std::lock_guard<std::mutex> lock(mu_);  // a waiter checks End() then waits under mu_
    appended_cv_.notify_all();
  }
  return absl::OkStatus();
}

absl::Status WalArchive::ReadOwn(const Timeline& timeline, Lsn from, Lsn to, std::string* out) {
  const std::string prefix = keys::TimelinePrefix(timeline.id());
  auto it = store_->NewBoundedIterator(Family::kWal, prefix, keys::PrefixEnd(prefix));
  it->SeekForPrev(keys::WalKey(timeline.id(), from));
  if (!it->Valid()) it->Seek(prefix);
  Lsn pos = from;
  std::string scratch;  // a decompressed chunk
  for (; it->Valid() && pos < to; it->Next()) {
    TimelineId t;
    Lsn chunk_start;
    const std::string_view key(it->key().data(), it->key().size());
    const std::string_view value(it->value().data(), it->value().size());
    if (!keys::ParseWalKey(key, &t, &chunk_start)) {
      return absl::DataLossError("malformed WAL archive chunk");
    }
    CAMBIUM_ASSIGN_OR_RETURN(const StoredChunk chunk,
                             ParseChunk(key, value, store_->page_codec(), timeline, chunk_start));
    const Lsn chunk_end = chunk_start + chunk.size;
    if (chunk_end <= pos) continue;
    if (chunk_start > pos) break;  // a gap: pruned
    CAMBIUM_ASSIGN_OR_RETURN(const std::string_view data, ChunkBytes(chunk, &scratch));
    const uint64_t take = std::min<uint64_t>(chunk_end - pos, to - pos);
    out->append(data.substr(pos - chunk_start, take));
    pos += take;
  }
  CAMBIUM_RETURN_IF_ERROR(FromRocks(it->status(), "read WAL archive"));
  if (pos < to) {
    return absl::OutOfRangeError(absl::StrFormat(
        "WAL %s..%s of timeline %s is not archived (pruned by GC or never received)",
        pos.ToString(), to.ToString(), timeline.id().ToString()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> WalArchive::Read(const Timeline& timeline, Lsn from, Lsn to) {
  if (to < from) return absl::InvalidArgumentError("WAL range ends before it starts");
  CAMBIUM_ASSIGN_OR_RETURN(std::shared_ptr<State> s, LoadState(timeline));
  Lsn start, end;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    start = s->start;
    end = s->end;
  }
  if (to > end) {
    return absl::OutOfRangeError(
        absl::StrFormat("WAL of timeline %s is archived up to %s; %s was requested",
                        timeline.id().ToString(), end.ToString(), to.ToString()));
  }
  std::string out;
  if (from < start) {
    if (!timeline.ancestor()) {
      return absl::OutOfRangeError(
          absl::StrFormat("WAL before %s is not archived", start.ToString()));
    }
    CAMBIUM_ASSIGN_OR_RETURN(out, Read(*timeline.ancestor(), from, std::min(to, start)));
    from = start;
  }
  if (from < to) CAMBIUM_RETURN_IF_ERROR(ReadOwn(timeline, from, to, &out));
  return out;
}

absl::StatusOr<std::optional<std::pair<Lsn, int64_t>>> WalArchive::LastCommitAtOrBelow(
    const Timeline& t, Lsn lsn) {
  std::string prefix = keys::TimelinePrefix(t.id());
  prefix.push_back('L');
  auto it = store_->NewBoundedIterator(Family::kCommits, prefix, keys::PrefixEnd(prefix));
  it->SeekForPrev(keys::CommitLsnKey(t.id(), lsn));
  CAMBIUM_RETURN_IF_ERROR(FromRocks(it->status(), "read commit index"));
  if (!it->Valid() || it->value().size() != 8) return std::optional<std::pair<Lsn, int64_t>>();
  const Lsn end(keys::LoadBigEndian64(it->key().data() + prefix.size()));
  return std::optional<std::pair<Lsn, int64_t>>(
      {end, LoadLittleEndian<int64_t>(it->value().data())});
}

absl::StatusOr<LsnLookup> WalArchive::LsnByTimestamp(const Timeline& timeline, absl::Time time) {
  if (time > absl::Now()) {
    return LsnLookup{LsnLookupKind::kFuture, timeline.last_record_lsn()};
  }
  const int64_t target = pg::TimeToPgTimestamp(time);
  bool saw_commit = false;
  const std::vector<HistoryLevel> levels = HistoryLevels(timeline);
  // Youngest first: a timeline's own commits all end above its branch point.
  for (auto level = levels.rbegin(); level != levels.rend(); ++level) {
    const Timeline* t = level->timeline;
    const Lsn bound = level->bound;
    // The last commit within the bound whose running max time is <= target.
    std::string prefix = keys::TimelinePrefix(t->id());
    prefix.push_back('T');
    auto it = store_->NewBoundedIterator(Family::kCommits, prefix, keys::PrefixEnd(prefix));
    it->SeekForPrev(keys::CommitKey(t->id(), target, Lsn::Max()));
    CAMBIUM_RETURN_IF_ERROR(FromRocks(it->status(), "read commit index"));
    TimelineId id;
    int64_t max_time;
    Lsn end;
    if (it->Valid() && keys::ParseCommitKey(std::string_view(it->key().data(), it->key().size()),
                                            &id, &max_time, &end)) {
      saw_commit = true;
      if (end > bound) {
        // Every commit up to the bound is older than the target (the max is monotonic).
        CAMBIUM_ASSIGN_OR_RETURN(auto last, LastCommitAtOrBelow(*t, bound));
        if (last.has_value()) end = last->first;
      }
      if (end <= bound) {
        const LsnLookupKind kind = end < timeline.gc_cutoff_lsn() ? LsnLookupKind::kBeforeRetention
                                                                  : LsnLookupKind::kPresent;
        return LsnLookup{kind, end};
      }
    } else {
      // Any commit at all on this level? Then the target predates all of them.
      auto any = LastCommitAtOrBelow(*t, bound);
      if (any.ok() && any->has_value()) saw_commit = true;
    }
  }
  if (!saw_commit) return LsnLookup{LsnLookupKind::kNoData, timeline.last_record_lsn()};
  CAMBIUM_ASSIGN_OR_RETURN(std::shared_ptr<State> s, LoadState(*levels.front().timeline));
  std::lock_guard<std::mutex> lock(s->mu);
  return LsnLookup{LsnLookupKind::kBeforeRetention, s->first_boundary};
}

absl::StatusOr<Lsn> WalArchive::RoundDownToRecordBoundary(const Timeline& timeline, Lsn lsn) {
  CAMBIUM_ASSIGN_OR_RETURN(std::shared_ptr<State> s, LoadState(timeline));
  Lsn start, end, first_boundary;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    start = s->start;
    end = s->end;
    first_boundary = s->first_boundary;
  }
  if (lsn >= end) return end;
  if (lsn < first_boundary) {
    if (timeline.ancestor() && lsn < start) {
      return RoundDownToRecordBoundary(*timeline.ancestor(), lsn);
    }
    return absl::OutOfRangeError(
        absl::StrFormat("no WAL record boundary at or below %s in the archive of timeline %s",
                        lsn.ToString(), timeline.id().ToString()));
  }
  // Decode from the last known boundary at or below lsn.
  Lsn from = first_boundary;
  CAMBIUM_ASSIGN_OR_RETURN(auto commit, LastCommitAtOrBelow(timeline, lsn));
  if (commit.has_value() && commit->first > from) from = commit->first;
  if (from == lsn) return lsn;
  std::string bytes;
  CAMBIUM_RETURN_IF_ERROR(ReadOwn(timeline, from, lsn, &bytes));
  auto rounded = pg::LastRecordEndAtOrBelow(from, bytes, lsn);
  if (absl::IsNotFound(rounded.status())) return from;
  return rounded;
}

absl::StatusOr<CommitHistory> WalArchive::History(const Timeline& timeline, absl::Time from,
                                                  absl::Time to, absl::Duration width,
                                                  uint64_t max_commits) {
  if (width <= absl::ZeroDuration()) return absl::InvalidArgumentError("bucket width must be > 0");
  CommitHistory out;
  out.counted_to = to;
  if (to <= from) return out;
  const int64_t from_pg = pg::TimeToPgTimestamp(from);
  const int64_t to_pg = pg::TimeToPgTimestamp(to);
  const int64_t width_us = std::max<int64_t>(1, absl::ToInt64Microseconds(width));
  std::map<int64_t, CommitBucket> buckets;  // by index from `from`
  uint64_t counted = 0;
  // Oldest timeline first: commits come in LSN order, so a bucket's first and last
  // are the first and last seen.
  for (const HistoryLevel& level : HistoryLevels(timeline)) {
    const TimelineId& id = level.timeline->id();
    std::string prefix = keys::TimelinePrefix(id);
    prefix.push_back('T');
    auto it = store_->NewBoundedIterator(Family::kCommits, prefix, keys::PrefixEnd(prefix));
    for (it->Seek(keys::CommitKey(id, from_pg, Lsn())); it->Valid(); it->Next()) {
      TimelineId key_id;
      int64_t max_time;
      Lsn end;
      if (!keys::ParseCommitKey(std::string_view(it->key().data(), it->key().size()), &key_id,
                                &max_time, &end)) {
        return absl::DataLossError(
            absl::StrFormat("malformed commit index key of timeline %s", id.ToString()));
      }
      // The index is ordered by (max time, end) and the max is monotonic in LSN: the
      // first commit past the range or past the branch point ends this timeline's part.
      if (max_time >= to_pg || end > level.bound) break;
      const CommitPoint point{end, pg::PgTimestampToTime(max_time)};
      if (counted == max_commits) {
        out.truncated = true;
        out.counted_to = point.time;
        break;
      }
      ++counted;
      const int64_t index = (max_time - from_pg) / width_us;
      CommitBucket& b = buckets[index];
      if (b.commits++ == 0) {
        b.start = from + absl::Microseconds(index * width_us);
        b.first = point;
      }
      b.last = point;
    }
    CAMBIUM_RETURN_IF_ERROR(FromRocks(it->status(), "read commit index"));
    if (out.truncated) break;
  }
  out.buckets.reserve(buckets.size());
  for (auto& [index, b] : buckets) out.buckets.push_back(b);
  return out;
}

absl::StatusOr<std::optional<CommitPoint>> WalArchive::CommitAtOrBelow(const Timeline& timeline,
                                                                       Lsn lsn) {
  std::vector<HistoryLevel> levels = HistoryLevels(timeline);
  // Youngest first: a timeline's own commits all end above its branch point.
  for (auto level = levels.rbegin(); level != levels.rend(); ++level) {
    CAMBIUM_ASSIGN_OR_RETURN(auto last,
                             LastCommitAtOrBelow(*level->timeline, std::min(lsn, level->bound)));
    if (last.has_value()) {
      return std::optional<CommitPoint>(
          CommitPoint{last->first, pg::PgTimestampToTime(last->second)});
    }
  }
  return std::optional<CommitPoint>();
}

absl::StatusOr<std::optional<CommitPoint>> WalArchive::CommitAtOrAbove(const Timeline& timeline,
                                                                       Lsn lsn) {
  for (const HistoryLevel& level : HistoryLevels(timeline)) {
    if (level.bound < lsn) continue;
    const TimelineId& id = level.timeline->id();
    std::string prefix = keys::TimelinePrefix(id);
    prefix.push_back('L');
    auto it = store_->NewBoundedIterator(Family::kCommits, prefix, keys::PrefixEnd(prefix));
    it->Seek(keys::CommitLsnKey(id, lsn));
    CAMBIUM_RETURN_IF_ERROR(FromRocks(it->status(), "read commit index"));
    if (!it->Valid() || it->value().size() != 8) continue;
    const Lsn end(keys::LoadBigEndian64(it->key().data() + prefix.size()));
    if (end > level.bound) continue;
    return std::optional<CommitPoint>(
        CommitPoint{end, pg::PgTimestampToTime(LoadLittleEndian<int64_t>(it->value().data()))});
  }
  return std::optional<CommitPoint>();
}

absl::Status WalArchive::Prune(const Timeline& timeline, Lsn before) {
  const std::string prefix = keys::TimelinePrefix(timeline.id());
  auto it = store_->NewBoundedIterator(Family::kWal, prefix, keys::PrefixEnd(prefix));
  rocksdb::WriteBatch batch;
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    TimelineId t;
    Lsn chunk_start;
    const std::string_view key(it->key().data(), it->key().size());
    if (!keys::ParseWalKey(key, &t, &chunk_start)) break;
    CAMBIUM_ASSIGN_OR_RETURN(
        const StoredChunk chunk,
        ParseChunk(key, std::string_view(it->value().data(), it->value().size()),
                   store_->page_codec(), timeline, chunk_start));
    if (chunk_start + chunk.size > before) break;
    batch.Delete(store_->cf(Family::kWal), it->key());
  }
  CAMBIUM_RETURN_IF_ERROR(FromRocks(it->status(), "prune WAL archive"));
  if (batch.Count() == 0) return absl::OkStatus();
  return store_->Write(&batch, false);
}

}  // namespace cambium::pageserver
