#include "common/checksum.h"

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace cambium {
namespace {

TEST(Crc32c, MatchesKnownVectors) {
  // RFC 3720 / iSCSI test vectors for CRC-32C.
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
  std::string zeros(32, '\0');
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  std::string ones(32, '\xff');
  EXPECT_EQ(Crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  EXPECT_EQ(Crc32c("", 0), 0u);
}

TEST(Crc32c, IncrementalEqualsOneShotAtEveryLength) {
  std::mt19937 rng(42);
  std::string data(1000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (size_t split = 0; split <= data.size(); split += 7) {
    uint32_t crc = Crc32cExtend(kCrc32cInit, data.data(), split);
    crc = Crc32cFinish(Crc32cExtend(crc, data.data() + split, data.size() - split));
    EXPECT_EQ(crc, Crc32c(data.data(), data.size())) << split;
  }
}

TEST(Checksum64, PartsEqualTheConcatenation) {
  EXPECT_EQ(Checksum64Parts({"key|", "header|", "page"}), Checksum64("key|header|page"));
  EXPECT_NE(Checksum64Parts({"ab", "c"}), Checksum64("abd"));
}

TEST(Checksum64, DetectsASingleBitFlip) {
  std::string page(8192, 'a');
  const uint64_t before = Checksum64(page);
  page[4000] ^= 0x01;
  EXPECT_NE(Checksum64(page), before);
  page[4000] ^= 0x01;
  EXPECT_EQ(Checksum64(page), before);
}

}  // namespace
}  // namespace cambium
