#include "common/pg/wal_decoder.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "common/checksum.h"
#include "common/pg/wal_format.h"
#include "common/pg/wal_records.h"

namespace cambium::pg {
namespace {

// Once this much input has been consumed, it is dropped from the buffer.
constexpr uint64_t kCompactThreshold = 256 * 1024;

absl::Status Corrupt(const std::string& message) { return absl::DataLossError(message); }

absl::Status EndOfWal(const std::string& message) { return absl::OutOfRangeError(message); }

}  // namespace

const char* RmgrName(uint8_t id) {
  static constexpr const char* kNames[] = {
      "XLOG",       "Transaction",   "Storage", "CLOG",     "Database",
      "Tablespace", "MultiXact",     "RelMap",  "Standby",  "Heap2",
      "Heap",       "Btree",         "Hash",    "Gin",      "Gist",
      "Sequence",   "SPGist",        "BRIN",    "CommitTs", "ReplicationOrigin",
      "Generic",    "LogicalMessage"};
  if (id <= kMaxBuiltinRmgrId) return kNames[id];
  if (id >= kMinCustomRmgrId) return "custom";
  return "invalid";
}

WalDecoder::WalDecoder(Lsn start, WalDecoderOptions options)
    : options_(options),
      system_id_(options.system_id),
      buf_start_(start),
      pos_(start),
      skip_contrecord_(start.IsPageBoundary()),
      last_end_(start) {}

void WalDecoder::Feed(std::string_view data) { buf_.append(data.data(), data.size()); }

const uint8_t* WalDecoder::Bytes(Lsn lsn, uint64_t n) const {
  if (lsn < buf_start_) return nullptr;
  uint64_t offset = lsn - buf_start_;
  if (offset > buf_.size() || buf_.size() - offset < n) return nullptr;
  return reinterpret_cast<const uint8_t*>(buf_.data()) + offset;
}

WalDecoder::Step WalDecoder::Fail(absl::Status status) {
  error_ = std::move(status);
  return Step::kError;
}

WalDecoder::Step WalDecoder::ValidatePageHeader(Lsn page, PageHeader* out) {
  const uint8_t* p = Bytes(page, kShortPageHeaderSize);
  if (p == nullptr) return Step::kNeedMore;
  const uint16_t magic = Load<uint16_t>(p);
  const uint16_t info = Load<uint16_t>(p + 2);
  const uint32_t tli = Load<uint32_t>(p + 4);
  const uint64_t pageaddr = Load<uint64_t>(p + 8);
  if (magic != kXlogPageMagic) {
    if (std::all_of(p, p + kShortPageHeaderSize, [](uint8_t b) { return b == 0; })) {
      return Fail(
          EndOfWal(absl::StrFormat("end of WAL at %s: the page is zeroed", page.ToString())));
    }
    return Fail(Corrupt(
        absl::StrFormat("invalid magic number %04X in WAL page at %s (PostgreSQL 15 writes %04X)",
                        magic, page.ToString(), kXlogPageMagic)));
  }
  if ((info & ~kXlpAllFlags) != 0) {
    return Fail(Corrupt(
        absl::StrFormat("invalid info bits %04X in WAL page at %s", info, page.ToString())));
  }
  uint32_t header_size = kShortPageHeaderSize;
  uint64_t sysid = 0;
  if (info & kXlpLongHeader) {
    p = Bytes(page, kLongPageHeaderSize);
    if (p == nullptr) return Step::kNeedMore;
    sysid = Load<uint64_t>(p + 24);
    const uint32_t seg_size = Load<uint32_t>(p + 32);
    const uint32_t blcksz = Load<uint32_t>(p + 36);
    if (system_id_ != 0 && sysid != system_id_) {
      return Fail(Corrupt(absl::StrFormat(
          "WAL page at %s is from a different database system: system identifier %u, expected %u",
          page.ToString(), sysid, system_id_)));
    }
    if (seg_size != options_.segment_size || blcksz != kWalPageSize) {
      return Fail(Corrupt(
          absl::StrFormat("WAL page at %s has segment size %u and page size %u; expected %u and %u",
                          page.ToString(), seg_size, blcksz, options_.segment_size, kWalPageSize)));
    }
    header_size = kLongPageHeaderSize;
  } else if (page.IsSegmentBoundary(options_.segment_size)) {
    return Fail(Corrupt(
        absl::StrFormat("WAL page at %s starts a segment but has no long header (info bits %04X)",
                        page.ToString(), info)));
  }
  if (pageaddr != page.value()) {
    if (pageaddr < page.value()) {
      return Fail(EndOfWal(absl::StrFormat(
          "end of WAL at %s: the page is left over from an earlier segment (page address %s)",
          page.ToString(), Lsn(pageaddr).ToString())));
    }
    return Fail(Corrupt(absl::StrFormat("unexpected page address %s in WAL page at %s",
                                        Lsn(pageaddr).ToString(), page.ToString())));
  }
  if (page > latest_page_) {
    if (tli < latest_page_tli_) {
      return Fail(Corrupt(absl::StrFormat("out-of-sequence timeline id %u (after %u) at %s", tli,
                                          latest_page_tli_, page.ToString())));
    }
    latest_page_ = page;
    latest_page_tli_ = tli;
  }
  if (system_id_ == 0 && sysid != 0) system_id_ = sysid;
  out->size = header_size;
  out->info = info;
  out->rem_len = Load<uint32_t>(Bytes(page, kShortPageHeaderSize) + 16);
  return Step::kOk;
}

WalDecoder::Step WalDecoder::SkipContinuationAtStart() {
  for (;;) {
    PageHeader header;
    Step step = ValidatePageHeader(pos_, &header);
    if (step != Step::kOk) return step;
    if (!(header.info & kXlpFirstIsContRecord)) {
      pos_ += header.size;
      return Step::kOk;
    }
    const uint64_t skip = Lsn(header.rem_len).MaxAligned().value();
    if (skip >= kWalPageSize - header.size) {
      pos_ = pos_ + kWalPageSize;  // the continuation fills this page; look at the next
      continue;
    }
    pos_ = pos_ + header.size + skip;
    return Step::kOk;
  }
}

WalDecoder::Step WalDecoder::BeginRecord() {
  if (pos_.IsPageBoundary()) {
    PageHeader header;
    Step step = ValidatePageHeader(pos_, &header);
    if (step != Step::kOk) return step;
    if (header.info & kXlpFirstIsContRecord) {
      return Fail(Corrupt(absl::StrFormat(
          "WAL page at %s begins with the continuation of a record that was never started",
          pos_.ToString())));
    }
    pos_ += header.size;
  }
  const uint32_t min_offset = pos_.SegmentOffset(options_.segment_size) < kWalPageSize
                                  ? kLongPageHeaderSize
                                  : kShortPageHeaderSize;
  if (pos_.PageOffset() < min_offset || pos_.value() % 8 != 0) {
    return Fail(Corrupt(absl::StrFormat("invalid record position %s", pos_.ToString())));
  }
  const uint8_t* p = Bytes(pos_, 4);
  if (p == nullptr) return Step::kNeedMore;
  const uint32_t total_len = Load<uint32_t>(p);
  if (total_len == 0) {
    return Fail(EndOfWal(
        absl::StrFormat("end of WAL at %s: no record follows (zero length)", pos_.ToString())));
  }
  if (total_len < kRecordHeaderSize || total_len > kMaxRecordSize) {
    return Fail(
        Corrupt(absl::StrFormat("invalid record length %u at %s", total_len, pos_.ToString())));
  }
  assembling_ = true;
  rec_start_ = pos_;
  cursor_ = pos_;
  rec_total_ = total_len;
  header_checked_ = false;
  rec_.clear();
  return Step::kOk;
}

WalDecoder::Step WalDecoder::ValidateRecordHeader(const uint8_t* header, Lsn at) {
  const Lsn prev(Load<uint64_t>(header + 8));
  const uint8_t rmid = header[17];
  if (!IsValidRmgrId(rmid)) {
    return Fail(Corrupt(
        absl::StrFormat("invalid resource manager id %u in record at %s", rmid, at.ToString())));
  }
  // A first record can only be checked loosely; later ones must link to the last
  // record read (this catches a stale but valid-looking record on a torn page).
  const bool prev_ok = have_prev_ ? prev == last_record_start_ : prev < at;
  if (!prev_ok) {
    return Fail(Corrupt(absl::StrFormat("record at %s has an incorrect prev-link %s", at.ToString(),
                                        prev.ToString())));
  }
  return Step::kOk;
}

WalDecoder::Step WalDecoder::GatherRecord() {
  while (rec_.size() < rec_total_) {
    const uint64_t remaining = rec_total_ - rec_.size();
    if (cursor_.IsPageBoundary()) {
      PageHeader header;
      Step step = ValidatePageHeader(cursor_, &header);
      if (step != Step::kOk) return step;
      if (header.info & kXlpFirstIsOverwriteContRecord) {
        // The rest of this record was never written: after a crash Postgres wrote
        // a new record here. Abandon the partial record and read that one.
        assembling_ = false;
        pos_ = cursor_;
        return Step::kRestart;
      }
      if (!(header.info & kXlpFirstIsContRecord)) {
        return Fail(Corrupt(absl::StrFormat(
            "record at %s continues on the page at %s, which has no continuation flag",
            rec_start_.ToString(), cursor_.ToString())));
      }
      if (header.rem_len == 0 || header.rem_len != remaining) {
        return Fail(Corrupt(absl::StrFormat(
            "invalid continuation length %u (expected %u) at %s for the record at %s",
            header.rem_len, remaining, cursor_.ToString(), rec_start_.ToString())));
      }
      cursor_ += header.size;
    }
    const uint64_t want = std::min<uint64_t>(remaining, kWalPageSize - cursor_.PageOffset());
    const uint64_t available = fed_end() > cursor_ ? fed_end() - cursor_ : 0;
    const uint64_t n = std::min(want, available);
    if (n == 0) return Step::kNeedMore;
    rec_.append(reinterpret_cast<const char*>(Bytes(cursor_, n)), n);
    cursor_ += n;
    if (!header_checked_ && rec_.size() >= kRecordHeaderSize) {
      Step step = ValidateRecordHeader(reinterpret_cast<const uint8_t*>(rec_.data()), rec_start_);
      if (step != Step::kOk) return step;
      header_checked_ = true;
    }
  }
  return Step::kOk;
}

absl::StatusOr<WalRecord> WalDecoder::FinishRecord() {
  const auto* h = reinterpret_cast<const uint8_t*>(rec_.data());
  uint32_t crc = Crc32cExtend(kCrc32cInit, h + kRecordHeaderSize, rec_total_ - kRecordHeaderSize);
  crc = Crc32cFinish(Crc32cExtend(crc, h, kRecordCrcOffset));
  if (crc != Load<uint32_t>(h + kRecordCrcOffset)) {
    return Corrupt(absl::StrFormat("incorrect checksum in WAL record at %s (length %u)",
                                   rec_start_.ToString(), rec_total_));
  }
  WalRecord record;
  record.start = rec_start_;
  record.total_len = rec_total_;
  record.xid = Load<uint32_t>(h + 4);
  record.prev = Lsn(Load<uint64_t>(h + 8));
  record.info = h[16];
  record.rmid = h[17];
  record.bytes = std::move(rec_);
  rec_.clear();
  absl::Status body = DecodeRecordBody(&record);
  if (!body.ok()) return body;

  Lsn end = cursor_.MaxAligned();
  if (record.rmid == static_cast<uint8_t>(RmgrId::kXlog) && record.rmgr_info() == kXlogSwitch &&
      !end.IsSegmentBoundary(options_.segment_size)) {
    // The rest of the segment is unused after a WAL switch.
    end = end.SegmentStart(options_.segment_size) + options_.segment_size;
  }
  record.end = end;
  assembling_ = false;
  pos_ = end;
  last_end_ = end;
  last_record_start_ = rec_start_;
  have_prev_ = true;
  return record;
}

void WalDecoder::DropConsumedInput() {
  const Lsn keep = assembling_ ? cursor_ : pos_;
  if (keep <= buf_start_) return;
  const uint64_t consumed = std::min<uint64_t>(keep - buf_start_, buf_.size());
  if (consumed < kCompactThreshold || consumed < buf_.size() / 2) return;
  buf_.erase(0, consumed);
  buf_start_ += consumed;
}

absl::StatusOr<std::optional<WalRecord>> WalDecoder::Next() {
  for (;;) {
    if (!error_.ok()) return error_;
    Step step = Step::kOk;
    if (skip_contrecord_) {
      step = SkipContinuationAtStart();
      if (step == Step::kOk) skip_contrecord_ = false;
    }
    if (step == Step::kOk && !assembling_) step = BeginRecord();
    if (step == Step::kOk) step = GatherRecord();
    switch (step) {
      case Step::kRestart:
        continue;
      case Step::kNeedMore:
        DropConsumedInput();
        return std::nullopt;
      case Step::kError:
        return error_;
      case Step::kOk:
        break;
    }
    absl::StatusOr<WalRecord> record = FinishRecord();
    if (!record.ok()) {
      error_ = record.status();
      return error_;
    }
    DropConsumedInput();
    return std::optional<WalRecord>(std::move(*record));
  }
}

absl::StatusOr<Lsn> LastRecordEndAtOrBelow(Lsn start, std::string_view bytes, Lsn target,
                                           WalDecoderOptions options) {
  WalDecoder decoder(start, options);
  decoder.Feed(bytes);
  std::optional<Lsn> best;
  for (;;) {
    absl::StatusOr<std::optional<WalRecord>> next = decoder.Next();
    if (!next.ok()) {
      // The end of valid WAL before target: the last record before it is the answer.
      if (absl::IsOutOfRange(next.status())) break;
      return next.status();
    }
    if (!next->has_value() || (*next)->end > target) break;
    best = (*next)->end;
  }
  if (!best) {
    return absl::NotFoundError(absl::StrFormat("no WAL record ends between %s and %s",
                                               start.ToString(), target.ToString()));
  }
  return *best;
}

}  // namespace cambium::pg
