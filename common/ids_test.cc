#include "common/ids.h"

#include <set>

#include "gtest/gtest.h"

namespace cambium {
namespace {

TEST(Id128, PrintsAs32LowercaseHexDigits) {
  TenantId id(0x0123456789abcdefull, 0xfedcba9876543210ull);
  EXPECT_EQ(id.ToString(), "0123456789abcdeffedcba9876543210");
  EXPECT_EQ(TimelineId(0, 1).ToString(), "00000000000000000000000000000001");
}

TEST(Id128, ParsesEitherCaseAndRoundTrips) {
  auto id = TimelineId::Parse("0123456789ABCDEFfedcba9876543210");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->hi(), 0x0123456789abcdefull);
  EXPECT_EQ(id->lo(), 0xfedcba9876543210ull);
  EXPECT_EQ(TimelineId::Parse(id->ToString()).value(), *id);
}

TEST(Id128, RejectsWrongLengthOrDigits) {
  EXPECT_FALSE(TenantId::Parse("").ok());
  EXPECT_FALSE(TenantId::Parse("0123").ok());
  EXPECT_FALSE(TenantId::Parse("0123456789abcdef0123456789abcdeg").ok());
  EXPECT_FALSE(TenantId::Parse("0123456789abcdef0123456789abcdef0").ok());
}

TEST(Id128, GeneratedIdsAreNonZeroAndDistinct) {
  std::set<TimelineId> seen;
  for (int i = 0; i < 1000; ++i) {
    TimelineId id = TimelineId::Generate();
    EXPECT_FALSE(id.IsZero());
    EXPECT_TRUE(seen.insert(id).second);
  }
}

TEST(Id128, BytesPreserveNumericOrder) {
  TenantId small(1, 0xffffffffffffffffull), large(2, 0);
  std::string a, b;
  small.AppendBytes(&a);
  large.AppendBytes(&b);
  ASSERT_EQ(a.size(), 16u);
  EXPECT_LT(a, b);
  EXPECT_EQ(TenantId::FromBytes(a.data()), small);
  EXPECT_EQ(TenantId::FromBytes(b.data()), large);
}

}  // namespace
}  // namespace cambium
