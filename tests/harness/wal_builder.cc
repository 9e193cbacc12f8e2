#include "tests/harness/wal_builder.h"

#include <algorithm>
#include <cstring>

#include "common/bytes.h"
#include "common/checksum.h"
#include "common/pg/wal_format.h"

namespace cambium::testing {
WalBuilder::WalBuilder(Lsn start, Options options) : options_(options), start_(start) {}

std::string WalBuilder::BuildRecord(uint8_t rmid, uint8_t info, uint32_t xid,
                                    std::string_view main_data,
                                    const std::vector<Block>& blocks) const {
  std::string headers;
  uint8_t id = 0;
  for (const Block& b : blocks) {
    AppendLittleEndian<uint8_t>(&headers, id++);
    AppendLittleEndian<uint8_t>(&headers, pg::kBkpBlockHasData);
    AppendLittleEndian<uint16_t>(&headers, static_cast<uint16_t>(b.data.size()));
    AppendLittleEndian<uint32_t>(&headers, 1663);  // pg_default tablespace
    AppendLittleEndian<uint32_t>(&headers, 5);     // database
    AppendLittleEndian<uint32_t>(&headers, b.rel_oid);
    AppendLittleEndian<uint32_t>(&headers, b.block_no);
  }
  if (!main_data.empty()) {
    if (main_data.size() < 256) {
      AppendLittleEndian<uint8_t>(&headers, pg::kXlrBlockIdDataShort);
      AppendLittleEndian<uint8_t>(&headers, static_cast<uint8_t>(main_data.size()));
    } else {
      AppendLittleEndian<uint8_t>(&headers, pg::kXlrBlockIdDataLong);
      AppendLittleEndian<uint32_t>(&headers, static_cast<uint32_t>(main_data.size()));
    }
  }
  std::string payload = headers;
  for (const Block& b : blocks) payload += b.data;
  payload.append(main_data.data(), main_data.size());

  std::string record;
  AppendLittleEndian<uint32_t>(&record,
                               static_cast<uint32_t>(pg::kRecordHeaderSize + payload.size()));
  AppendLittleEndian<uint32_t>(&record, xid);
  AppendLittleEndian<uint64_t>(&record, prev_.value());
  AppendLittleEndian<uint8_t>(&record, info);
  AppendLittleEndian<uint8_t>(&record, rmid);
  AppendLittleEndian<uint16_t>(&record, 0);
  uint32_t crc = Crc32cExtend(kCrc32cInit, payload.data(), payload.size());
  crc = Crc32cFinish(Crc32cExtend(crc, record.data(), pg::kRecordCrcOffset));
  AppendLittleEndian<uint32_t>(&record, crc);
  return record + payload;
}

void WalBuilder::WritePageHeader(uint32_t rem_len, bool continuation) {
  const Lsn page = end();
  const bool long_header = page.IsSegmentBoundary(options_.segment_size);
  uint16_t info = 0;
  if (continuation) info |= pg::kXlpFirstIsContRecord;
  if (long_header) info |= pg::kXlpLongHeader;
  if (overwrite_next_page_) info |= pg::kXlpFirstIsOverwriteContRecord;
  overwrite_next_page_ = false;
  AppendLittleEndian<uint16_t>(&out_, pg::kXlogPageMagic);
  AppendLittleEndian<uint16_t>(&out_, info);
  AppendLittleEndian<uint32_t>(&out_, options_.timeline_id);
  AppendLittleEndian<uint64_t>(&out_, page.value());
  AppendLittleEndian<uint32_t>(&out_, rem_len);
  AppendLittleEndian<uint32_t>(&out_, 0);
  if (long_header) {
    AppendLittleEndian<uint64_t>(&out_, options_.system_id);
    AppendLittleEndian<uint32_t>(&out_, static_cast<uint32_t>(options_.segment_size));
    AppendLittleEndian<uint32_t>(&out_, kWalPageSize);
  }
}

Lsn WalBuilder::Emit(const std::string& record, size_t limit) {
  Lsn record_start;
  size_t written = 0;
  while (written < limit) {
    if (end().IsPageBoundary()) {
      WritePageHeader(written > 0 ? static_cast<uint32_t>(record.size() - written) : 0,
                      written > 0);
    }
    if (written == 0) record_start = end();
    const size_t n = std::min<size_t>(limit - written, kWalPageSize - end().PageOffset());
    out_.append(record, written, n);
    written += n;
  }
  // Records start MAXALIGNed; the padding stays inside the page.
  out_.append(end().MaxAligned() - end(), '\0');
  return record_start;
}

Lsn WalBuilder::next_record_start() const {
  if (!end().IsPageBoundary()) return end();
  return end() + (end().IsSegmentBoundary(options_.segment_size) ? pg::kLongPageHeaderSize
                                                                 : pg::kShortPageHeaderSize);
}

Lsn WalBuilder::Add(uint8_t rmid, uint8_t info, uint32_t xid, std::string_view main_data,
                    const std::vector<Block>& blocks) {
  std::string record = BuildRecord(rmid, info, xid, main_data, blocks);
  Lsn at = Emit(record, record.size());
  prev_ = at;
  return at;
}

Lsn WalBuilder::AddCommit(uint32_t xid, int64_t xact_time) {
  std::string main;
  AppendLittleEndian<int64_t>(&main, xact_time);
  return Add(static_cast<uint8_t>(pg::RmgrId::kTransaction), pg::kXlogXactCommit, xid, main);
}

std::string WalBuilder::MessageRecord(uint32_t total_len) const {
  const uint32_t short_main = total_len - pg::kRecordHeaderSize - 2;
  const uint32_t main_len = short_main < 256 ? short_main : total_len - pg::kRecordHeaderSize - 5;
  return BuildRecord(static_cast<uint8_t>(pg::RmgrId::kLogicalMessage), 0, 0,
                     std::string(main_len, 'm'), {});
}

Lsn WalBuilder::AddWithTotalLen(uint32_t total_len) {
  std::string record = MessageRecord(total_len);
  Lsn at = Emit(record, record.size());
  prev_ = at;
  return at;
}

Lsn WalBuilder::AddSwitch() {
  Lsn at = Add(static_cast<uint8_t>(pg::RmgrId::kXlog), pg::kXlogSwitch, 0, "");
  if (!end().IsSegmentBoundary(options_.segment_size)) {
    const Lsn next = end().SegmentStart(options_.segment_size) + options_.segment_size;
    out_.append(next - end(), '\0');
  }
  return at;
}

Lsn WalBuilder::AddAbortedRecord(uint32_t total_len) {
  std::string record = MessageRecord(total_len);
  if (end().IsPageBoundary()) WritePageHeader(0, false);
  const size_t on_page = kWalPageSize - end().PageOffset();
  Lsn at = Emit(record, std::min(on_page, record.size()));
  overwrite_next_page_ = true;
  return at;
}

}  // namespace cambium::testing
