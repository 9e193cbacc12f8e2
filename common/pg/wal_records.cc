#include "common/pg/wal_records.h"

#include <ctime>

#include "absl/strings/str_format.h"
#include "common/pg/wal_format.h"

namespace cambium::pg {
namespace {

// Reads fields from the record's header area with bounds checks.
class FieldReader {
 public:
  FieldReader(const uint8_t* p, uint64_t remaining) : p_(p), remaining_(remaining) {}
  template <typename T>
  bool Read(T* out) {
    if (remaining_ < sizeof(T)) return false;
    *out = Load<T>(p_);
    p_ += sizeof(T);
    remaining_ -= sizeof(T);
    return true;
  }
  uint64_t remaining() const { return remaining_; }

 private:
  const uint8_t* p_;
  uint64_t remaining_;
};

absl::Status BadRecord(const WalRecord& r, std::string_view what) {
  return absl::DataLossError(
      absl::StrFormat("WAL record at %s is malformed: %s", r.start.ToString(), what));
}

// Reads one XLogRecordBlockHeader (after its id byte); `last_rel` is the relation of
// the last block that named one, which BKPBLOCK_SAME_REL refers to.
absl::Status ReadBlockHeader(const WalRecord& r, FieldReader* in, WalBlockRef* blk,
                             std::optional<RelFileNode>* last_rel, uint64_t* datatotal) {
  if (!in->Read(&blk->flags) || !in->Read(&blk->data_len))
    return BadRecord(r, "short block header");
  blk->fork = blk->flags & kBkpBlockForkMask;
  blk->has_image = (blk->flags & kBkpBlockHasImage) != 0;
  const bool has_data = (blk->flags & kBkpBlockHasData) != 0;
  if (has_data != (blk->data_len != 0)) return BadRecord(r, "block data flag and length disagree");
  *datatotal += blk->data_len;
  if (blk->has_image) {
    uint16_t hole_offset = 0, hole_length = 0;
    if (!in->Read(&blk->image_len) || !in->Read(&hole_offset) || !in->Read(&blk->image_info)) {
      return BadRecord(r, "short block image header");
    }
    blk->apply_image = (blk->image_info & kBkpImageApply) != 0;
    const bool compressed = (blk->image_info & kBkpImageCompressedMask) != 0;
    const bool has_hole = (blk->image_info & kBkpImageHasHole) != 0;
    if (compressed) {
      if (has_hole && !in->Read(&hole_length)) return BadRecord(r, "short hole header");
    } else {
      hole_length = static_cast<uint16_t>(kBlockSize - blk->image_len);
    }
    *datatotal += blk->image_len;
    if (blk->image_len > kBlockSize ||
        (has_hole && (hole_offset == 0 || hole_length == 0 || blk->image_len == kBlockSize)) ||
        (!has_hole && (hole_offset != 0 || hole_length != 0)) ||
        (compressed && blk->image_len == kBlockSize)) {
      return BadRecord(r, "inconsistent block image header");
    }
  }
  if (!(blk->flags & kBkpBlockSameRel)) {
    RelFileNode node;
    if (!in->Read(&node.spc) || !in->Read(&node.db) || !in->Read(&node.rel)) {
      return BadRecord(r, "short relation in block header");
    }
    *last_rel = node;
  } else if (!last_rel->has_value()) {
    return BadRecord(r, "BKPBLOCK_SAME_REL without a previous relation");
  }
  blk->spc_oid = (*last_rel)->spc;
  blk->db_oid = (*last_rel)->db;
  blk->rel_oid = (*last_rel)->rel;
  if (!in->Read(&blk->block_no)) return BadRecord(r, "short block number");
  return absl::OkStatus();
}

}  // namespace

absl::Status DecodeRecordBody(WalRecord* r) {
  const auto* base = reinterpret_cast<const uint8_t*>(r->bytes.data());
  if (r->bytes.size() != r->total_len || r->total_len < kRecordHeaderSize) {
    return BadRecord(*r, "length does not match xl_tot_len");
  }
  FieldReader in(base + kRecordHeaderSize, r->total_len - kRecordHeaderSize);
  r->blocks.clear();
  r->blocks.reserve(4);
  uint64_t datatotal = 0;
  int max_block_id = -1;
  std::optional<RelFileNode> last_rel;
  uint32_t main_len = 0;
  while (in.remaining() > datatotal) {
    uint8_t id = 0;
    if (!in.Read(&id)) return BadRecord(*r, "short header");
    if (id == kXlrBlockIdDataShort) {
      uint8_t len = 0;
      if (!in.Read(&len)) return BadRecord(*r, "short main data header");
      main_len = len;
      datatotal += len;
      break;  // the main data header is always last
    } else if (id == kXlrBlockIdDataLong) {
      if (!in.Read(&main_len)) return BadRecord(*r, "short main data header");
      datatotal += main_len;
      break;
    } else if (id == kXlrBlockIdOrigin) {
      uint16_t origin;
      if (!in.Read(&origin)) return BadRecord(*r, "short origin");
    } else if (id == kXlrBlockIdToplevelXid) {
      uint32_t xid;
      if (!in.Read(&xid)) return BadRecord(*r, "short top-level xid");
    } else if (id <= kXlrMaxBlockId) {
      if (static_cast<int>(id) <= max_block_id) return BadRecord(*r, "out-of-order block id");
      max_block_id = id;
      r->blocks.push_back(WalBlockRef{.block_id = id});
      absl::Status s = ReadBlockHeader(*r, &in, &r->blocks.back(), &last_rel, &datatotal);
      if (!s.ok()) return s;
    } else {
      return BadRecord(*r, absl::StrFormat("invalid block id %u", id));
    }
  }
  if (in.remaining() != datatotal)
    return BadRecord(*r, "block and main data lengths do not add up");
  uint64_t offset = r->total_len - in.remaining();
  r->fpi_len = 0;
  for (const WalBlockRef& b : r->blocks) {
    if (b.has_image) r->fpi_len += b.image_len;
    offset += uint64_t{b.image_len} * b.has_image + b.data_len;
  }
  r->main_data_offset = static_cast<uint32_t>(offset);
  r->main_data_len = main_len;
  return absl::OkStatus();
}

absl::Time PgTimestampToTime(int64_t pg_micros) {
  return absl::FromUnixMicros(pg_micros + kPostgresEpochUnixMicros);
}

int64_t TimeToPgTimestamp(absl::Time time) {
  return absl::ToUnixMicros(time) - kPostgresEpochUnixMicros;
}

std::string FormatPgTimestampUtc(int64_t pg_micros) {
  const int64_t unix_micros = pg_micros + kPostgresEpochUnixMicros;
  int64_t seconds = unix_micros / 1000000;
  int64_t micros = unix_micros % 1000000;
  if (micros < 0) {
    micros += 1000000;
    seconds -= 1;
  }
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return absl::StrFormat("%04d-%02d-%02d %02d:%02d:%02d.%06d UTC", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
}

absl::StatusOr<std::optional<XactRecord>> DecodeXact(const WalRecord& record) {
  if (record.rmid != static_cast<uint8_t>(RmgrId::kTransaction)) return std::nullopt;
  XactRecord x;
  switch (record.info & kXlogXactOpMask) {
    case kXlogXactCommit:
      x.kind = XactKind::kCommit;
      break;
    case kXlogXactAbort:
      x.kind = XactKind::kAbort;
      break;
    case kXlogXactCommitPrepared:
      x.kind = XactKind::kCommitPrepared;
      break;
    case kXlogXactAbortPrepared:
      x.kind = XactKind::kAbortPrepared;
      break;
    default:
      return std::nullopt;
  }
  // xl_xact_commit / xl_xact_abort begin with TimestampTz xact_time.
  std::string_view main = record.main_data();
  if (main.size() < sizeof(int64_t))
    return BadRecord(record, "transaction record without xact_time");
  const auto* p = reinterpret_cast<const uint8_t*>(main.data());
  x.xact_time = Load<int64_t>(p);
  // What follows xact_time (ParseCommitRecord / ParseAbortRecord): xl_xact_xinfo if
  // XLOG_XACT_HAS_INFO, then in this order dbinfo, subxacts, relfilenodes, ...
  if ((record.info & kXlogXactHasInfo) == 0) return std::optional<XactRecord>(x);
  size_t at = sizeof(int64_t);
  auto need = [&](size_t n) { return main.size() >= at + n; };
  if (!need(4)) return BadRecord(record, "transaction record without its xinfo");
  const uint32_t xinfo = Load<uint32_t>(p + at);
  at += 4;
  if (xinfo & kXactXinfoHasDbInfo) {
    if (!need(8)) return BadRecord(record, "transaction record cut in its dbinfo");
    at += 8;
  }
  if (xinfo & kXactXinfoHasSubxacts) {
    if (!need(4)) return BadRecord(record, "transaction record cut in its subxacts");
    const int32_t n = Load<int32_t>(p + at);
    if (n < 0 || !need(4 + 4 * static_cast<size_t>(n))) {
      return BadRecord(record, "transaction record with an impossible subxact count");
    }
    at += 4 + 4 * static_cast<size_t>(n);
  }
  if (xinfo & kXactXinfoHasRelfilenodes) {
    if (!need(4)) return BadRecord(record, "transaction record cut in its relfilenodes");
    const int32_t n = Load<int32_t>(p + at);
    if (n < 0 || !need(4 + 12 * static_cast<size_t>(n))) {
      return BadRecord(record, "transaction record with an impossible relfilenode count");
    }
    at += 4;
    for (int32_t i = 0; i < n; ++i, at += 12) {
      x.dropped.push_back(RelFileNode{.spc = Load<uint32_t>(p + at),
                                      .db = Load<uint32_t>(p + at + 4),
                                      .rel = Load<uint32_t>(p + at + 8)});
    }
  }
  return std::optional<XactRecord>(std::move(x));
}

absl::StatusOr<std::optional<SmgrRecord>> DecodeSmgr(const WalRecord& record) {
  if (record.rmid != static_cast<uint8_t>(RmgrId::kStorage)) return std::nullopt;
  std::string_view main = record.main_data();
  const auto* p = reinterpret_cast<const uint8_t*>(main.data());
  SmgrRecord r;
  switch (record.rmgr_info()) {
    case kXlogSmgrCreate:  // RelFileNode rnode; ForkNumber forkNum
      if (main.size() < 16) return BadRecord(record, "short smgr create record");
      r.kind = SmgrRecord::Kind::kCreate;
      r.node = {
          .spc = Load<uint32_t>(p), .db = Load<uint32_t>(p + 4), .rel = Load<uint32_t>(p + 8)};
      r.fork = Load<uint32_t>(p + 12);
      return std::optional<SmgrRecord>(r);
    case kXlogSmgrTruncate:  // BlockNumber blkno; RelFileNode rnode; int flags
      if (main.size() < 20) return BadRecord(record, "short smgr truncate record");
      r.kind = SmgrRecord::Kind::kTruncate;
      r.truncate_to = Load<uint32_t>(p);
      r.node = {
          .spc = Load<uint32_t>(p + 4), .db = Load<uint32_t>(p + 8), .rel = Load<uint32_t>(p + 12)};
      r.truncate_flags = Load<uint32_t>(p + 16);
      return std::optional<SmgrRecord>(r);
    default:
      return std::nullopt;
  }
}

CheckPoint ParseCheckPoint(std::string_view data) {
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  CheckPoint c;
  c.redo = Lsn(Load<uint64_t>(p + 0));
  c.timeline_id = Load<uint32_t>(p + 8);
  c.prev_timeline_id = Load<uint32_t>(p + 12);
  c.full_page_writes = p[16] != 0;
  c.next_xid = Load<uint64_t>(p + 24);
  c.next_oid = Load<uint32_t>(p + 32);
  c.next_multi = Load<uint32_t>(p + 36);
  c.next_multi_offset = Load<uint32_t>(p + 40);
  c.oldest_xid = Load<uint32_t>(p + 44);
  c.oldest_xid_db = Load<uint32_t>(p + 48);
  c.oldest_multi = Load<uint32_t>(p + 52);
  c.oldest_multi_db = Load<uint32_t>(p + 56);
  c.time = Load<int64_t>(p + 64);
  c.oldest_commit_ts_xid = Load<uint32_t>(p + 72);
  c.newest_commit_ts_xid = Load<uint32_t>(p + 76);
  c.oldest_active_xid = Load<uint32_t>(p + 80);
  return c;
}

absl::StatusOr<std::optional<CheckpointRecord>> DecodeCheckpoint(const WalRecord& record) {
  if (record.rmid != static_cast<uint8_t>(RmgrId::kXlog)) return std::nullopt;
  const uint8_t type = record.rmgr_info();
  if (type != kXlogCheckpointShutdown && type != kXlogCheckpointOnline) return std::nullopt;
  std::string_view main = record.main_data();
  if (main.size() < kCheckPointSize) return BadRecord(record, "checkpoint record too short");
  return std::optional<CheckpointRecord>(
      CheckpointRecord{type == kXlogCheckpointShutdown, ParseCheckPoint(main)});
}

}  // namespace cambium::pg
