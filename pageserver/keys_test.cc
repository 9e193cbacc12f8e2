#include "pageserver/keys.h"

#include "gtest/gtest.h"

namespace cambium::pageserver::keys {
namespace {

const TimelineId kTimeline(0x1111, 0x2222);

TEST(Keys, NewerVersionsSortFirstWithinABlock) {
  EXPECT_LT(BlockKey(kTimeline, "base/5/1", 3, Lsn(200)),
            BlockKey(kTimeline, "base/5/1", 3, Lsn(100)));
  EXPECT_LT(FileKey(kTimeline, "base/5/1", Lsn(200)), FileKey(kTimeline, "base/5/1", Lsn(100)));
  // Blocks are ordered by number, and all of a path's keys are contiguous.
  EXPECT_LT(BlockKey(kTimeline, "base/5/1", 3, Lsn(1)),
            BlockKey(kTimeline, "base/5/1", 4, Lsn(999)));
  const std::string p1 = PathPrefix(kTimeline, "base/5/1");
  const std::string other = BlockKey(kTimeline, "base/5/1.1", 0, Lsn(5));
  EXPECT_FALSE(other.compare(0, p1.size(), p1) == 0);
  EXPECT_LT(BlockKey(kTimeline, "base/5/1", 0xFFFFFFFF, Lsn(0)), PrefixEnd(p1));
}

TEST(Keys, ParseRoundTrips) {
  // Parsed keys view into the key: keep it alive.
  const std::string block_key = BlockKey(kTimeline, "global/pg_control", 0, Lsn(0x1500718));
  ParsedBlockKey b;
  ASSERT_TRUE(ParseBlockKey(block_key, &b));
  EXPECT_EQ(b.timeline, kTimeline);
  EXPECT_EQ(b.path, "global/pg_control");
  EXPECT_EQ(b.block, 0u);
  EXPECT_EQ(b.lsn, Lsn(0x1500718));
  const std::string file_key = FileKey(kTimeline, "base/1", Lsn(7));
  ParsedFileKey f;
  ASSERT_TRUE(ParseFileKey(file_key, &f));
  EXPECT_EQ(f.path, "base/1");
  EXPECT_EQ(f.lsn, Lsn(7));
  EXPECT_FALSE(ParseBlockKey("short", &b));
  TimelineId t;
  Lsn l;
  ASSERT_TRUE(ParseWalKey(WalKey(kTimeline, Lsn(42)), &t, &l));
  EXPECT_EQ(l, Lsn(42));
  int64_t time;
  ASSERT_TRUE(ParseCommitKey(CommitKey(kTimeline, -5, Lsn(9)), &t, &time, &l));
  EXPECT_EQ(time, -5);
  EXPECT_LT(CommitKey(kTimeline, -5, Lsn(9)), CommitKey(kTimeline, 3, Lsn(1)));
}

TEST(Keys, PrefixExtractorIsTimelineAndPath) {
  auto extractor = NewPathPrefixExtractor();
  const std::string key = BlockKey(kTimeline, "base/5/1", 3, Lsn(100));
  ASSERT_TRUE(extractor->InDomain(key));
  EXPECT_EQ(extractor->Transform(key).ToString(), PathPrefix(kTimeline, "base/5/1"));
  EXPECT_FALSE(extractor->InDomain("tooshort"));
}

}  // namespace
}  // namespace cambium::pageserver::keys
