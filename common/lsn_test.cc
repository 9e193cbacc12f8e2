#include "common/lsn.h"

#include "gtest/gtest.h"

namespace cambium {
namespace {

TEST(Lsn, PrintsLikePostgres) {
  EXPECT_EQ(Lsn(0x16B374D848ull).ToString(), "16/B374D848");
  EXPECT_EQ(Lsn(0x1500718).ToString(), "0/1500718");
  EXPECT_EQ(Lsn(0).ToString(), "0/0");
  EXPECT_EQ(Lsn::Max().ToString(), "FFFFFFFF/FFFFFFFF");
}

TEST(Lsn, ParsesWithAndWithoutLeadingZeros) {
  EXPECT_EQ(Lsn::Parse("16/B374D848").value(), Lsn(0x16B374D848ull));
  EXPECT_EQ(Lsn::Parse("0/01000028").value(), Lsn(0x1000028));
  EXPECT_EQ(Lsn::Parse("0/1000028").value(), Lsn(0x1000028));
  EXPECT_EQ(Lsn::Parse("ff/ffffffff").value(), Lsn(0xFFFFFFFFFFull));
}

TEST(Lsn, RejectsMalformedText) {
  for (const char* bad : {"", "/", "1/", "/1", "12345", "0/123456789", "g/0", "1/2/3", " 0/1"}) {
    auto lsn = Lsn::Parse(bad);
    EXPECT_FALSE(lsn.ok()) << bad;
    if (!lsn.ok()) {
      EXPECT_EQ(lsn.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
}

TEST(Lsn, RoundTripsThroughText) {
  for (uint64_t v : {0ull, 1ull, 0x1000028ull, 0xFFFFFFFFull, 0x100000000ull, 0xDEADBEEFCAFEull}) {
    EXPECT_EQ(Lsn::Parse(Lsn(v).ToString()).value(), Lsn(v));
  }
}

TEST(Lsn, SegmentAndPageMath) {
  Lsn lsn(0x3002010);  // segment 3, offset 0x2010: page 1 of the segment, offset 16
  EXPECT_EQ(lsn.SegmentNo(), 3u);
  EXPECT_EQ(lsn.SegmentOffset(), 0x2010u);
  EXPECT_EQ(lsn.PageOffset(), 16u);
  EXPECT_EQ(lsn.PageStart(), Lsn(0x3002000));
  EXPECT_EQ(lsn.SegmentStart(), Lsn(0x3000000));
  EXPECT_FALSE(lsn.IsPageBoundary());
  EXPECT_TRUE(Lsn(0x3000000).IsSegmentBoundary());
  EXPECT_EQ(Lsn(0x1000029).MaxAligned(), Lsn(0x1000030));
  EXPECT_EQ(Lsn(0x1000030).MaxAligned(), Lsn(0x1000030));
  EXPECT_EQ(SegmentStartLsn(3), Lsn(0x3000000));
  // Another segment size.
  EXPECT_EQ(Lsn(0x3002010).SegmentNo(64ull << 20), 0u);
}

TEST(Lsn, ArithmeticAndOrder) {
  Lsn a(100);
  Lsn b = a + 28;
  EXPECT_EQ(b - a, 28u);
  EXPECT_LT(a, b);
  b += 4;
  EXPECT_EQ(b, Lsn(132));
  EXPECT_FALSE(Lsn::Invalid().valid());
}

TEST(WalSegmentFileName, MatchesPostgresNames) {
  EXPECT_EQ(WalSegmentFileName(1, 1), "000000010000000000000001");
  // 256 segments of 16 MiB per 4 GiB "log id".
  EXPECT_EQ(WalSegmentFileName(1, 256), "000000010000000100000000");
  EXPECT_EQ(WalSegmentFileName(0x2A, 0x1FF), "0000002A00000001000000FF");
  auto parsed = ParseWalSegmentFileName("0000002A00000001000000FF");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->timeline_id, 0x2Au);
  EXPECT_EQ(parsed->segno, 0x1FFu);
}

TEST(WalSegmentFileName, RejectsOtherFiles) {
  for (const char* bad :
       {"00000001.history", "000000010000000000000001.partial", "0000000100000000000001",
        "00000001000000000000010X", "000000010000000000000100"}) {  // seg part must be < 256
    EXPECT_FALSE(ParseWalSegmentFileName(bad).ok()) << bad;
  }
}

TEST(BlockNo, ByteOffset) {
  EXPECT_EQ(BlockNo(0).ByteOffset(), 0u);
  EXPECT_EQ(BlockNo(3).ByteOffset(), 3u * 8192);
  EXPECT_EQ(BlockNo(0xFFFFFFFEu).ByteOffset(), 0xFFFFFFFEull * 8192);
}

}  // namespace
}  // namespace cambium
