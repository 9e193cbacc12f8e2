#include "common/pg/wal_decoder.h"

#include <random>

#include "common/checksum.h"
#include "common/pg/wal_format.h"
#include "common/pg/wal_records.h"
#include "gtest/gtest.h"
#include "tests/harness/wal_builder.h"

namespace cambium::pg {
namespace {

using ::cambium::testing::WalBuilder;

constexpr Lsn kSeg1 = Lsn(0x1000000);
constexpr uint8_t kMessage = static_cast<uint8_t>(RmgrId::kLogicalMessage);

// Decodes everything; stops at the first nullopt or error, which is returned too.
struct DecodeResult {
  std::vector<WalRecord> records;
  absl::Status end;  // OK if the decoder wanted more input
};

DecodeResult DecodeAll(WalDecoder& decoder) {
  DecodeResult result;
  for (;;) {
    auto next = decoder.Next();
    if (!next.ok()) {
      result.end = next.status();
      return result;
    }
    if (!next->has_value()) return result;
    result.records.push_back(std::move(**next));
  }
}

DecodeResult DecodeBytes(Lsn start, const std::string& bytes, size_t chunk = 0) {
  WalDecoder decoder(start);
  DecodeResult all;
  if (chunk == 0) chunk = bytes.size() + 1;
  for (size_t off = 0; off < bytes.size(); off += chunk) {
    decoder.Feed(std::string_view(bytes).substr(off, chunk));
    DecodeResult part = DecodeAll(decoder);
    for (auto& r : part.records) all.records.push_back(std::move(r));
    all.end = part.end;
    if (!part.end.ok()) break;
  }
  return all;
}

TEST(WalDecoder, DecodesSmallRecordsWithFieldsAndLinks) {
  WalBuilder wal(kSeg1);
  Lsn a = wal.Add(kMessage, 0x10, 700, "hello");
  Lsn b = wal.Add(static_cast<uint8_t>(RmgrId::kHeap), 0x00, 701, "main",
                  {{.rel_oid = 16400, .block_no = 7, .data = "blockdata"},
                   {.rel_oid = 16401, .block_no = 9, .data = "xy"}});
  DecodeResult r = DecodeBytes(kSeg1, wal.bytes());
  ASSERT_TRUE(r.end.ok()) << r.end;
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[0].start, a);
  EXPECT_EQ(a, kSeg1 + kLongPageHeaderSize);
  EXPECT_EQ(r.records[0].xid, 700u);
  EXPECT_EQ(r.records[0].info, 0x10);
  EXPECT_EQ(r.records[0].main_data(), "hello");
  EXPECT_EQ(r.records[0].end, b);
  EXPECT_EQ(r.records[1].prev, a);
  EXPECT_EQ(r.records[1].main_data(), "main");
  ASSERT_EQ(r.records[1].blocks.size(), 2u);
  EXPECT_EQ(r.records[1].blocks[0].rel_oid, 16400u);
  EXPECT_EQ(r.records[1].blocks[0].block_no, 7u);
  EXPECT_EQ(r.records[1].blocks[0].data_len, 9u);
  EXPECT_EQ(r.records[1].blocks[1].rel_oid, 16401u);
  EXPECT_EQ(r.records[1].end, wal.end());
}

TEST(WalDecoder, ReassemblesRecordsAcrossPagesAndSegments) {
  // A 40 KB record that starts near the end of segment 1 and ends in segment 2.
  WalBuilder wal(kSeg1);
  wal.Add(kMessage, 0, 1, "first");
  while (wal.end() < kSeg1 + kDefaultWalSegmentSize - 20000) {
    wal.Add(kMessage, 0, 1, std::string(4000, 'f'));
  }
  std::string big(40000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  Lsn big_at = wal.Add(kMessage, 0, 2, big);
  Lsn after = wal.Add(kMessage, 0, 3, "after");
  ASSERT_LT(big_at.SegmentNo(), after.SegmentNo());

  DecodeResult r = DecodeBytes(kSeg1, wal.bytes());
  ASSERT_TRUE(r.end.ok()) << r.end;
  ASSERT_GE(r.records.size(), 3u);
  const WalRecord& rec = r.records[r.records.size() - 2];
  EXPECT_EQ(rec.start, big_at);
  EXPECT_EQ(rec.main_data(), big);
  EXPECT_EQ(rec.end, after);
  EXPECT_EQ(r.records.back().main_data(), "after");
}

TEST(WalDecoder, ValidatesARecordHeaderSplitAcrossPages) {
  // Place a record so that only 8 bytes of its 24-byte header are on the first page.
  WalBuilder wal(kSeg1);
  const Lsn target = kSeg1 + kWalPageSize - 8;
  const uint32_t filler = static_cast<uint32_t>(target - wal.next_record_start());
  wal.AddWithTotalLen(filler);
  ASSERT_EQ(wal.end(), target);
  Lsn split = wal.Add(kMessage, 0, 5, "split header");
  ASSERT_EQ(split, target);
  wal.Add(kMessage, 0, 6, "next");
  DecodeResult r = DecodeBytes(kSeg1, wal.bytes());
  ASSERT_TRUE(r.end.ok()) << r.end;
  ASSERT_EQ(r.records.size(), 3u);
  EXPECT_EQ(r.records[1].start, split);
  EXPECT_EQ(r.records[1].main_data(), "split header");
  EXPECT_EQ(r.records[1].xid, 5u);
}

TEST(WalDecoder, RecordEndingExactlyAtPageEndEndsAtTheBoundary) {
  WalBuilder wal(kSeg1);
  const uint32_t fill = static_cast<uint32_t>(kSeg1 + kWalPageSize - wal.next_record_start());
  wal.AddWithTotalLen(fill);
  ASSERT_TRUE(wal.end().IsPageBoundary());
  Lsn next = wal.Add(kMessage, 0, 1, "on the next page");
  DecodeResult r = DecodeBytes(kSeg1, wal.bytes());
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[0].end, kSeg1 + kWalPageSize);
  EXPECT_EQ(r.records[1].start, next);
  EXPECT_EQ(next, kSeg1 + kWalPageSize + kShortPageHeaderSize);
}

TEST(WalDecoder, StreamingInAnyChunkSizeGivesTheSameRecords) {
  WalBuilder wal(kSeg1);
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    wal.Add(kMessage, 0, i, std::string(rng() % 3000, static_cast<char>('a' + i % 26)));
  }
  DecodeResult whole = DecodeBytes(kSeg1, wal.bytes());
  ASSERT_TRUE(whole.end.ok());
  ASSERT_EQ(whole.records.size(), 300u);
  for (size_t chunk : {1, 7, 24, 8192, 10000}) {
    DecodeResult streamed = DecodeBytes(kSeg1, wal.bytes(), chunk);
    ASSERT_TRUE(streamed.end.ok()) << chunk;
    ASSERT_EQ(streamed.records.size(), whole.records.size()) << chunk;
    for (size_t i = 0; i < whole.records.size(); ++i) {
      EXPECT_EQ(streamed.records[i].start, whole.records[i].start);
      EXPECT_EQ(streamed.records[i].end, whole.records[i].end);
      EXPECT_EQ(streamed.records[i].bytes, whole.records[i].bytes);
    }
  }
}

TEST(WalDecoder, SwitchSkipsToTheNextSegment) {
  WalBuilder wal(kSeg1);
  wal.Add(kMessage, 0, 1, "before");
  Lsn sw = wal.AddSwitch();
  Lsn after = wal.Add(kMessage, 0, 2, "after");
  EXPECT_EQ(after, kSeg1 + kDefaultWalSegmentSize + kLongPageHeaderSize);
  DecodeResult r = DecodeBytes(kSeg1, wal.bytes());
  ASSERT_TRUE(r.end.ok()) << r.end;
  ASSERT_EQ(r.records.size(), 3u);
  EXPECT_EQ(r.records[1].start, sw);
  EXPECT_EQ(r.records[1].end, kSeg1 + kDefaultWalSegmentSize);
  EXPECT_EQ(r.records[2].start, after);
  EXPECT_EQ(r.records[2].prev, sw);
}

TEST(WalDecoder, AbandonsAnAbortedRecordAtAnOverwriteContrecordPage) {
  WalBuilder wal(kSeg1);
  Lsn last_good = wal.Add(kMessage, 0, 1, "good");
  Lsn aborted = wal.AddAbortedRecord(20000);
  Lsn overwrite = wal.Add(static_cast<uint8_t>(RmgrId::kXlog), kXlogOverwriteContRecord, 0,
                          std::string(16, 'o'));
  Lsn after = wal.Add(kMessage, 0, 2, "after");
  DecodeResult r = DecodeBytes(kSeg1, wal.bytes());
  ASSERT_TRUE(r.end.ok()) << r.end;
  ASSERT_EQ(r.records.size(), 3u);
  EXPECT_EQ(r.records[0].start, last_good);
  EXPECT_EQ(r.records[1].start, overwrite);
  EXPECT_EQ(r.records[1].prev, last_good);
  EXPECT_GT(overwrite, aborted);
  EXPECT_EQ(r.records[2].start, after);
}

TEST(WalDecoder, StartingAtAPageThatContinuesARecordSkipsTheContinuation) {
  WalBuilder wal(kSeg1);
  wal.Add(kMessage, 0, 1, "x");
  wal.Add(kMessage, 0, 2, std::string(20000, 'c'));  // spans into pages 2 and 3
  Lsn first_full = wal.Add(kMessage, 0, 3, "first full record");
  wal.Add(kMessage, 0, 4, "next");
  const Lsn page2 = kSeg1 + 2 * kWalPageSize;
  ASSERT_GT(first_full, page2);
  std::string tail = wal.bytes().substr(page2 - kSeg1);
  DecodeResult r = DecodeBytes(page2, tail);
  ASSERT_TRUE(r.end.ok()) << r.end;
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[0].start, first_full);
  EXPECT_EQ(r.records[0].main_data(), "first full record");
}

TEST(WalDecoder, ZeroedTailIsTheEndOfWal) {
  WalBuilder wal(kSeg1);
  wal.Add(kMessage, 0, 1, "only");
  wal.AppendZeros(3 * kWalPageSize);
  DecodeResult r = DecodeBytes(kSeg1, wal.bytes());
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.end.code(), absl::StatusCode::kOutOfRange) << r.end;
}

TEST(WalDecoder, ZeroedNextPageIsTheEndOfWal) {
  WalBuilder wal(kSeg1);
  wal.AddWithTotalLen(static_cast<uint32_t>(kSeg1 + kWalPageSize - wal.next_record_start()));
  wal.AppendZeros(kWalPageSize);
  DecodeResult r = DecodeBytes(kSeg1, wal.bytes());
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.end.code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(r.end.message().find("zeroed"), std::string::npos) << r.end;
}

TEST(WalDecoder, PageFromARecycledSegmentIsTheEndOfWal) {
  // Segment 2 whose second page still carries segment 1's address.
  WalBuilder old_wal(kSeg1);
  while (old_wal.end() < kSeg1 + 2 * kWalPageSize) old_wal.Add(kMessage, 0, 1, "old old old");
  const Lsn seg2 = kSeg1 + kDefaultWalSegmentSize;
  WalBuilder wal(seg2);
  wal.AddWithTotalLen(static_cast<uint32_t>(seg2 + kWalPageSize - wal.next_record_start()));
  std::string bytes = wal.bytes() + old_wal.bytes().substr(kWalPageSize, kWalPageSize);
  DecodeResult r = DecodeBytes(seg2, bytes);
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.end.code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(r.end.message().find("earlier segment"), std::string::npos) << r.end;
}

TEST(WalDecoder, CorruptRecordFailsItsChecksum) {
  WalBuilder wal(kSeg1);
  wal.Add(kMessage, 0, 1, "good");
  Lsn bad = wal.Add(kMessage, 0, 2, "payload to corrupt");
  std::string bytes = wal.bytes();
  bytes[(bad - kSeg1) + kRecordHeaderSize + 5] ^= 0x40;
  DecodeResult r = DecodeBytes(kSeg1, bytes);
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.end.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.end.message().find("checksum"), std::string::npos) << r.end;
  // Errors are sticky.
  WalDecoder d(kSeg1);
  d.Feed(bytes);
  (void)DecodeAll(d);
  EXPECT_EQ(d.Next().status().code(), absl::StatusCode::kDataLoss);
}

TEST(WalDecoder, RejectsBrokenPrevLinkBadMagicAndForeignSystem) {
  WalBuilder wal(kSeg1);
  wal.Add(kMessage, 0, 1, "a");
  Lsn b = wal.Add(kMessage, 0, 2, "b");
  {
    std::string bytes = wal.bytes();
    bytes[(b - kSeg1) + 8] ^= 0x08;  // xl_prev
    DecodeResult r = DecodeBytes(kSeg1, bytes);
    EXPECT_EQ(r.records.size(), 1u);
    EXPECT_EQ(r.end.code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(r.end.message().find("prev-link"), std::string::npos) << r.end;
  }
  {
    std::string bytes = wal.bytes();
    bytes[0] = 0x0D;  // PostgreSQL 14's magic is D10D
    DecodeResult r = DecodeBytes(kSeg1, bytes);
    EXPECT_TRUE(r.records.empty());
    EXPECT_EQ(r.end.code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(r.end.message().find("magic"), std::string::npos) << r.end;
  }
  {
    WalDecoder d(kSeg1, {.system_id = 42});
    d.Feed(wal.bytes());
    DecodeResult r = DecodeAll(d);
    EXPECT_TRUE(r.records.empty());
    EXPECT_EQ(r.end.code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(r.end.message().find("different database system"), std::string::npos) << r.end;
  }
}

TEST(WalDecoder, LearnsTheSystemIdAndRejectsAMixedStream) {
  WalBuilder a(kSeg1, {.system_id = 111});
  while (a.end() < kSeg1 + kDefaultWalSegmentSize - 5000)
    a.Add(kMessage, 0, 1, std::string(3000, 'a'));
  a.AddSwitch();
  WalBuilder b(kSeg1 + kDefaultWalSegmentSize, {.system_id = 222});
  b.Add(kMessage, 0, 1, "other cluster");
  DecodeResult r = DecodeBytes(kSeg1, a.bytes() + b.bytes());
  EXPECT_FALSE(r.records.empty());
  EXPECT_EQ(r.end.code(), absl::StatusCode::kDataLoss);
}

TEST(WalDecoder, DecodesCommitTimestampsAndCheckpoints) {
  WalBuilder wal(kSeg1);
  const int64_t t = 817000000123456;  // 2025-11-21 ... in Postgres microseconds
  Lsn commit = wal.AddCommit(900, t);
  std::string ckpt(kCheckPointSize, '\0');
  const uint64_t redo = 0x1000028;
  std::memcpy(ckpt.data(), &redo, 8);
  ckpt[8] = 1;  // timeline 1
  wal.Add(static_cast<uint8_t>(RmgrId::kXlog), kXlogCheckpointOnline, 0, ckpt);
  DecodeResult r = DecodeBytes(kSeg1, wal.bytes());
  ASSERT_EQ(r.records.size(), 2u);
  auto x = DecodeXact(r.records[0]);
  ASSERT_TRUE(x.ok() && x->has_value());
  EXPECT_EQ((*x)->kind, XactKind::kCommit);
  EXPECT_EQ((*x)->xact_time, t);
  EXPECT_EQ(r.records[0].start, commit);
  EXPECT_EQ(PgTimestampToTime(t), absl::FromUnixMicros(t + kPostgresEpochUnixMicros));
  EXPECT_EQ(FormatPgTimestampUtc(0), "2000-01-01 00:00:00.000000 UTC");
  auto c = DecodeCheckpoint(r.records[1]);
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_FALSE((*c)->shutdown);
  EXPECT_EQ((*c)->checkpoint.redo, Lsn(redo));
  EXPECT_EQ((*c)->checkpoint.timeline_id, 1u);
  EXPECT_FALSE(DecodeXact(r.records[1])->has_value());
  EXPECT_FALSE(DecodeCheckpoint(r.records[0])->has_value());
}

TEST(LastRecordEndAtOrBelow, RoundsDownToARecordBoundary) {
  WalBuilder wal(kSeg1);
  wal.Add(kMessage, 0, 1, "a");
  Lsn b = wal.Add(kMessage, 0, 2, std::string(100, 'b'));
  Lsn c = wal.Add(kMessage, 0, 3, "c");
  EXPECT_EQ(LastRecordEndAtOrBelow(kSeg1, wal.bytes(), b).value(), b);
  EXPECT_EQ(LastRecordEndAtOrBelow(kSeg1, wal.bytes(), b + 50).value(), b);
  EXPECT_EQ(LastRecordEndAtOrBelow(kSeg1, wal.bytes(), c).value(), c);
  EXPECT_EQ(LastRecordEndAtOrBelow(kSeg1, wal.bytes(), Lsn::Max()).value(), wal.end());
  EXPECT_EQ(LastRecordEndAtOrBelow(kSeg1, wal.bytes(), kSeg1 + 10).status().code(),
            absl::StatusCode::kNotFound);
}

// Random corruption and truncation: the decoder returns records whose CRC holds and
// ends with OUT_OF_RANGE, DATA_LOSS or a request for more input; it never crashes
// (run under -DCAMBIUM_SANITIZE=ON to check memory safety too).
TEST(WalDecoderFuzz, CorruptedAndTruncatedInputNeverCrashes) {
  WalBuilder wal(kSeg1);
  std::mt19937 build_rng(1);
  for (int i = 0; i < 400; ++i) {
    if (i % 50 == 49) {
      wal.AddCommit(i, 1000 * i);
    } else {
      wal.Add(
          kMessage, 0, i, std::string(build_rng() % 12000, 'z'),
          i % 3 ? std::vector<WalBuilder::Block>{} : std::vector<WalBuilder::Block>{{.data = "d"}});
    }
  }
  const std::string clean = wal.bytes();
  const uint32_t seed = std::random_device{}();
  std::mt19937 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (int iter = 0; iter < 300; ++iter) {
    std::string bytes = clean;
    const int mode = iter % 4;
    if (mode == 0) {
      for (int k = 0; k < 1 + static_cast<int>(rng() % 8); ++k)
        bytes[rng() % bytes.size()] ^= 1 << (rng() % 8);
    } else if (mode == 1) {
      bytes.resize(rng() % bytes.size());
    } else if (mode == 2) {
      // Overwrite a random span with random bytes (garbage lengths, flags, ids).
      size_t at = rng() % bytes.size();
      for (size_t k = at; k < std::min(bytes.size(), at + 64); ++k)
        bytes[k] = static_cast<char>(rng());
    } else {
      // Splice: jump to a random later position, as a torn write would.
      size_t a = rng() % bytes.size(), b = rng() % bytes.size();
      if (a > b) std::swap(a, b);
      bytes.erase(a, b - a);
    }
    DecodeResult r = DecodeBytes(kSeg1, bytes, 1 + rng() % 20000);
    for (const WalRecord& rec : r.records) {
      const auto* h = reinterpret_cast<const uint8_t*>(rec.bytes.data());
      uint32_t crc =
          Crc32cExtend(kCrc32cInit, h + kRecordHeaderSize, rec.total_len - kRecordHeaderSize);
      crc = Crc32cFinish(Crc32cExtend(crc, h, kRecordCrcOffset));
      ASSERT_EQ(crc, Load<uint32_t>(h + kRecordCrcOffset));
      ASSERT_LE(rec.main_data_offset + rec.main_data_len, rec.total_len);
    }
    if (!r.end.ok()) {
      EXPECT_TRUE(absl::IsOutOfRange(r.end) || absl::IsDataLoss(r.end)) << r.end;
    }
  }
}

}  // namespace
}  // namespace cambium::pg
