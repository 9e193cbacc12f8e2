// WalRecordEnds: the tag a WAL write allows is the end of the last complete record
// written, through Postgres-like writes (zero-padded pages, the partial last page
// rewritten), records spanning pages, XLOG_SWITCH and a gap.
#include "compute-shim/wal_record_ends.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/harness/wal_builder.h"

namespace cambium::shim {
namespace {

using testing::WalBuilder;

const Lsn kStart(0x3000000);  // a segment start

// Postgres' write of WAL up to `flush`: from the page of `written` to the end of
// flush's page, zero-padded after `flush`.
std::string Pages(const std::string& wal, Lsn written, Lsn flush, Lsn* at) {
  *at = written.PageStart();
  const Lsn to = flush.IsPageBoundary() ? flush : flush.PageStart() + kWalPageSize;
  std::string bytes = wal.substr(*at - kStart, flush - *at);
  bytes.resize(to - *at, '\0');
  return bytes;
}

TEST(WalRecordEnds, TagsTheLastCompleteRecordNotThePaddedPageEnd) {
  WalBuilder wal(kStart);
  std::vector<Lsn> ends;
  for (int i = 0; i < 40; ++i) {
    wal.AddWithTotalLen(60 + (i * 977) % 3000);  // some records cross pages
    ends.push_back(wal.end());
  }
  WalRecordEnds tracker(kStart);
  Lsn written = kStart;
  for (Lsn flush : ends) {
    Lsn at;
    const std::string bytes = Pages(wal.bytes(), written, flush, &at);
    // The write goes to the end of the page; the tag is exactly the record end.
    EXPECT_EQ(tracker.Written(at, bytes), flush);
    written = flush;
  }
  EXPECT_EQ(tracker.record_end(), ends.back());
}

TEST(WalRecordEnds, APartialRecordDoesNotAdvanceTheTag) {
  WalBuilder wal(kStart);
  wal.AddWithTotalLen(100);
  const Lsn first = wal.end();
  wal.AddWithTotalLen(20000);  // spans three pages
  const Lsn second = wal.end();
  WalRecordEnds tracker(kStart);
  // The first page holds record 1 and the start of record 2.
  EXPECT_EQ(tracker.Written(kStart, std::string_view(wal.bytes()).substr(0, kWalPageSize)), first);
  // The next page: record 2 is still incomplete.
  EXPECT_EQ(tracker.Written(kStart + kWalPageSize,
                            std::string_view(wal.bytes()).substr(kWalPageSize, kWalPageSize)),
            first);
  // The rest completes it.
  const std::string_view rest = std::string_view(wal.bytes()).substr(2 * kWalPageSize);
  EXPECT_EQ(tracker.Written(kStart + 2 * kWalPageSize, rest), second);
}

TEST(WalRecordEnds, ASwitchRecordMovesTheTagToTheNextSegment) {
  WalBuilder wal(kStart, {.segment_size = 1 << 20});
  wal.AddWithTotalLen(300);
  wal.AddSwitch();
  const Lsn next_segment = kStart + (1 << 20);
  WalRecordEnds tracker(kStart, 1 << 20);
  EXPECT_EQ(tracker.Written(kStart, wal.bytes()), next_segment);
  // Postgres then writes from the next segment on.
  WalBuilder more(next_segment, {.segment_size = 1 << 20});
  more.AddWithTotalLen(500);
  EXPECT_EQ(tracker.Written(next_segment, more.bytes()), more.end());
}

TEST(WalRecordEnds, AGapFallsBackToTheRawEndUntilARecordIsDecodedAgain) {
  WalBuilder wal(kStart);
  for (int i = 0; i < 30; ++i) wal.AddWithTotalLen(1500);
  WalRecordEnds tracker(kStart);
  ASSERT_EQ(tracker.Written(kStart, std::string_view(wal.bytes()).substr(0, 100)), kStart);
  // Bytes from page 2 on arrive without page 1: the raw end is the only safe tag...
  const Lsn page2 = kStart + 2 * kWalPageSize;
  const std::string_view from2 = std::string_view(wal.bytes()).substr(2 * kWalPageSize);
  const Lsn tag = tracker.Written(page2, from2.substr(0, 10));
  EXPECT_EQ(tag, page2 + 10);
  // ...until records are decoded from that page on.
  EXPECT_EQ(tracker.Written(page2, from2), wal.end());
}

}  // namespace
}  // namespace cambium::shim
