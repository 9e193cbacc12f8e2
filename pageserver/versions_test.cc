#include "pageserver/versions.h"

#include "absl/strings/str_format.h"
#include "common/bytes.h"
#include "common/checksum.h"
#include "gtest/gtest.h"
#include "lz4.h"

namespace cambium::pageserver {
namespace {

TEST(Versions, BlockValueRoundTripsAndDetectsCorruption) {
  const std::string key = "some-key";
  const std::string page(kBlockSize, 'p');
  std::string value = EncodeBlockValue(key, 7, BlockKind::kData, page);
  BlockVersion v;
  ASSERT_TRUE(DecodeBlockValue(key, value, &v).ok());
  EXPECT_EQ(v.generation, 7u);
  EXPECT_EQ(v.data, page);
  std::string flipped = value;
  flipped[100] ^= 1;
  EXPECT_EQ(DecodeBlockValue(key, flipped, &v).code(), absl::StatusCode::kDataLoss);
  // The checksum covers the key: a value under the wrong key is detected.
  EXPECT_EQ(DecodeBlockValue("other-key", value, &v).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeBlockValue(key, value.substr(0, 50), &v).code(), absl::StatusCode::kDataLoss);
  std::string zero = EncodeBlockValue(key, 1, BlockKind::kZero, "");
  ASSERT_TRUE(DecodeBlockValue(key, zero, &v).ok());
  EXPECT_EQ(v.kind, BlockKind::kZero);
}

// The stored layout is the on-disk format: header (format, kind, generation,
// checksum over key, header and page) then the page, whichever encoder built it.
TEST(Versions, BlockValueLayoutIsStable) {
  const std::string key = "some-key";
  const std::string page(kBlockSize, 'q');
  std::string expected;
  AppendLittleEndian<uint8_t>(&expected, 1);  // format
  AppendLittleEndian<uint8_t>(&expected, static_cast<uint8_t>(BlockKind::kData));
  AppendLittleEndian<uint64_t>(&expected, 9);  // generation
  AppendLittleEndian<uint64_t>(&expected, Checksum64Parts({key, expected, page}));
  expected += page;
  EXPECT_TRUE(EncodeBlockValue(key, 9, BlockKind::kData, page) == expected);
  const BlockValueHeader header = EncodeBlockValueHeader(key, 9, BlockKind::kData, page);
  EXPECT_TRUE(std::string(header.data(), header.size()) + page == expected);
  EXPECT_EQ(StoredGeneration(expected), 9u);
  EXPECT_EQ(StoredGeneration("short"), 0u);

  std::string zero;
  AppendLittleEndian<uint8_t>(&zero, 1);
  AppendLittleEndian<uint8_t>(&zero, static_cast<uint8_t>(BlockKind::kZero));
  AppendLittleEndian<uint64_t>(&zero, 4);
  AppendLittleEndian<uint64_t>(&zero, Checksum64Parts({key, zero}));
  EXPECT_EQ(EncodeBlockValue(key, 4, BlockKind::kZero, ""), zero);
  const BlockValueHeader zero_header = EncodeBlockValueHeader(key, 4, BlockKind::kZero, "");
  EXPECT_EQ(std::string(zero_header.data(), zero_header.size()), zero);
}

// Issue 11: pages are stored compressed when LZ4 saves an eighth; a page that does
// not compress is stored as is. Both decode to the page, and damage to either is
// DATA_LOSS, never a wrong page.
TEST(Versions, CompressedPagesRoundTripAndIncompressibleOnesStayAsTheyAre) {
  const std::string key = "some-key";
  std::string page(kBlockSize, ' ');
  for (size_t i = 0; i + 8 <= page.size(); i += 97) {
    const std::string row = absl::StrFormat("row%05u", i);
    page.replace(i, row.size(), row);
  }
  ASSERT_EQ(page.size(), kBlockSize);
  const std::string value = EncodeBlockValue(key, 3, BlockKind::kData, page, PageCodec::kLz4);
  EXPECT_LT(value.size(), kValueHeaderSize + kBlockSize / 4);
  EXPECT_EQ(value[1], 2) << "the stored kind of a compressed page";
  BlockVersion v;
  const absl::Status decoded = DecodeBlockValue(key, value, &v);
  ASSERT_TRUE(decoded.ok()) << decoded;
  EXPECT_EQ(v.kind, BlockKind::kData);
  EXPECT_EQ(v.generation, 3u);
  EXPECT_TRUE(v.data == page);
  for (size_t at : {size_t{1}, size_t{12}, kValueHeaderSize, value.size() - 1}) {
    std::string flipped = value;
    flipped[at] ^= 0x10;
    EXPECT_EQ(DecodeBlockValue(key, flipped, &v).code(), absl::StatusCode::kDataLoss) << at;
  }
  // A body that is valid LZ4 and checksums right but is not a whole page.
  std::string scratch;
  const BlockValueParts half =
      EncodeBlockValueParts(key, 3, BlockKind::kData, page, PageCodec::kLz4, &scratch);
  std::string short_body(kBlockSize / 2, ' ');
  std::string lz4(LZ4_COMPRESSBOUND(kBlockSize), '\0');
  lz4.resize(LZ4_compress_default(short_body.data(), lz4.data(), short_body.size(), lz4.size()));
  std::string forged(half.header.data(), 2);
  AppendLittleEndian<uint64_t>(&forged, 3);
  AppendLittleEndian<uint64_t>(&forged, Checksum64Parts({key, forged, lz4}));
  forged += lz4;
  EXPECT_EQ(DecodeBlockValue(key, forged, &v).code(), absl::StatusCode::kDataLoss);

  std::string noise(kBlockSize, '\0');
  uint64_t x = 88172645463325252ull;
  for (char& c : noise) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  const std::string raw = EncodeBlockValue(key, 3, BlockKind::kData, noise, PageCodec::kLz4);
  EXPECT_TRUE(raw == EncodeBlockValue(key, 3, BlockKind::kData, noise)) << "stored as is";
  ASSERT_TRUE(DecodeBlockValue(key, raw, &v).ok());
  EXPECT_TRUE(v.data == noise);
  EXPECT_EQ(EncodeBlockValue(key, 3, BlockKind::kZero, "", PageCodec::kLz4),
            EncodeBlockValue(key, 3, BlockKind::kZero, ""));
}

TEST(Versions, FileValueRoundTrips) {
  FileState s{.exists = true,
              .kind = FileKind::kDirectory,
              .size = 123,
              .mode = 0700,
              .incarnation = Lsn(55)};
  std::string value = EncodeFileValue("k", 3, s);
  FileVersion v;
  ASSERT_TRUE(DecodeFileValue("k", value, &v).ok());
  EXPECT_EQ(v.state, s);
  EXPECT_EQ(v.generation, 3u);
  value[20] ^= 4;
  EXPECT_EQ(DecodeFileValue("k", value, &v).code(), absl::StatusCode::kDataLoss);
}

TEST(Visibility, LaterAttachAbandonsOlderGenerationsAboveItsStart) {
  // gen 1 attached at 100; gen 2 attached at 500 (gen 1 died after writing past 500);
  // gen 3 attached at 300 (gen 2 died too).
  Visibility v({{1, Lsn(100)}, {2, Lsn(500)}, {3, Lsn(300)}});
  EXPECT_TRUE(v.Visible(Lsn(250), 1));
  EXPECT_TRUE(v.Visible(Lsn(300), 1));
  EXPECT_FALSE(v.Visible(Lsn(301), 1));  // abandoned by gen 3's attach at 300
  EXPECT_TRUE(v.Visible(Lsn(300), 2));
  EXPECT_FALSE(v.Visible(Lsn(450), 2));
  EXPECT_TRUE(v.Visible(Lsn(10000), 3));  // the current generation sees all its writes
  EXPECT_TRUE(Visibility().Visible(Lsn(1), 0));
}

}  // namespace
}  // namespace cambium::pageserver
