#include "pageserver/timeline.h"

#include "gtest/gtest.h"
#include "pageserver/keys.h"
#include "pageserver/test_util.h"
#include "tests/harness/temp_dir.h"

namespace cambium::pageserver {
namespace {

using namespace ::cambium::pageserver::testing;  // NOLINT
using ::cambium::testing::TempDir;

const TenantId kTenant(1, 1);

// Compares pages without printing 8 KiB on failure.
::testing::AssertionResult SamePage(const std::string& actual, const std::string& expected) {
  if (actual == expected) return ::testing::AssertionSuccess();
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure()
           << "page is " << actual.size() << " bytes, expected " << expected.size();
  }
  size_t i = 0;
  while (actual[i] == expected[i]) ++i;
  return ::testing::AssertionFailure()
         << "pages differ first at byte " << i << ": got 0x" << std::hex << int(uint8_t(actual[i]))
         << ", expected 0x" << int(uint8_t(expected[i]));
}
#define EXPECT_PAGE(actual, expected) EXPECT_TRUE(SamePage(actual, expected))
constexpr absl::Duration kLease = absl::Seconds(10);

class TimelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>(TempDir::Create("cambium-ps-").value());
    OpenStore();
  }

  void OpenStore() {
    auto store = PageStore::Open(dir_->Sub("db"), PageStoreOptions{.cache_bytes = 16 << 20});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  // A timeline persisted in the meta family, so that it can be reloaded.
  std::shared_ptr<Timeline> NewTimeline(const std::shared_ptr<Timeline>& ancestor = nullptr,
                                        Lsn at = Lsn()) {
    TimelineId id = TimelineId::Generate();
    auto record = MakeRecord(kTenant, id, ancestor.get(), at);
    rocksdb::WriteBatch b;
    b.Put(store_->cf(Family::kMeta), Timeline::RecordKey(kTenant, id), record.SerializeAsString());
    EXPECT_TRUE(store_->Write(&b, true).ok());
    auto t = Timeline::Load(store_.get(), record, ancestor);
    EXPECT_TRUE(t.ok()) << t.status();
    return *t;
  }

  // Reloads a timeline from its stored record (as a restart does).
  std::shared_ptr<Timeline> Reload(const Timeline& t, std::shared_ptr<Timeline> ancestor) {
    auto raw = store_->GetMeta(Timeline::RecordKey(kTenant, t.id()));
    EXPECT_TRUE(raw.ok() && raw->has_value());
    storage::v1::TimelineRecord record;
    EXPECT_TRUE(record.ParseFromString(**raw));
    auto loaded = Timeline::Load(store_.get(), record, std::move(ancestor));
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return *loaded;
  }

  // Attaches a writer and returns its generation.
  uint64_t Attach(Timeline& t, Lsn start, bool takeover = true) {
    auto g = t.Attach("test-writer", start, takeover, kLease);
    EXPECT_TRUE(g.ok()) << g.status();
    seqs_[&t] = 0;  // a new generation numbers its batches from 1
    return g.value_or(0);
  }

  void Apply(Timeline& t, uint64_t gen, std::initializer_list<v1::Mutation> ms) {
    uint64_t& seq = seqs_[&t];
    auto r = t.ApplyBatch(gen, ++seq, Batch(ms), false);
    ASSERT_TRUE(r.ok()) << r.status();
  }

  std::string Read(const Timeline& t, const std::string& path, uint32_t block, Lsn lsn) {
    auto p = t.GetPage(path, block, lsn);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? p->data : std::string();
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<PageStore> store_;
  std::map<const Timeline*, uint64_t> seqs_;
};

TEST_F(TimelineTest, NewestVersionAtOrBelowTheLsn) {
  auto t = NewTimeline();
  uint64_t g = Attach(*t, Lsn(100));
  Apply(*t, g, {MCreate("f", Lsn(100)), MWrite("f", Lsn(100), 0, Fill('a'))});
  Apply(*t, g, {MWrite("f", Lsn(200), 0, Fill('b'))});
  Apply(*t, g, {MWrite("f", Lsn(300), 0, Fill('c'))});
  EXPECT_PAGE(Read(*t, "f", 0, Lsn(100)), Fill('a'));
  EXPECT_PAGE(Read(*t, "f", 0, Lsn(199)), Fill('a'));
  EXPECT_PAGE(Read(*t, "f", 0, Lsn(200)), Fill('b'));
  EXPECT_PAGE(Read(*t, "f", 0, Lsn(1000)), Fill('c'));
  EXPECT_EQ(t->GetPage("f", 0, Lsn(99)).status().code(), absl::StatusCode::kNotFound);
  auto page = t->GetPage("f", 0, Lsn(250));
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->version_lsn, Lsn(200));
}

TEST_F(TimelineTest, VisibilityAcrossFourLevelsOfAncestry) {
  auto root = NewTimeline();
  uint64_t g = Attach(*root, Lsn(100));
  Apply(*root, g,
        {MCreate("f", Lsn(100)), MWrite("f", Lsn(100), 0, Fill('0')),
         MWrite("f", Lsn(100), 1, Fill('0')), MWrite("f", Lsn(100), 2, Fill('0'))});
  Apply(*root, g, {MWrite("f", Lsn(150), 1, Fill('R'))});  // after child1's branch point
  auto child1 = NewTimeline(root, Lsn(120));
  uint64_t g1 = Attach(*child1, Lsn(120));
  Apply(*child1, g1, {MWrite("f", Lsn(130), 0, Fill('1'))});
  auto child2 = NewTimeline(child1, Lsn(140));
  uint64_t g2 = Attach(*child2, Lsn(140));
  Apply(*child2, g2, {MWrite("f", Lsn(160), 2, Fill('2'))});
  auto child3 = NewTimeline(child2, Lsn(170));
  // child3: block 0 from child1 (130), block 1 from root at 100 (150 is after the
  // branch point), block 2 from child2 (160).
  EXPECT_PAGE(Read(*child3, "f", 0, Lsn(500)), Fill('1'));
  EXPECT_PAGE(Read(*child3, "f", 1, Lsn(500)), Fill('0'));
  EXPECT_PAGE(Read(*child3, "f", 2, Lsn(500)), Fill('2'));
  // Reading child3 below its branch point uses that point on every level.
  EXPECT_PAGE(Read(*child2, "f", 2, Lsn(150)), Fill('0'));
  EXPECT_PAGE(Read(*root, "f", 1, Lsn(500)), Fill('R'));
}

TEST_F(TimelineTest, BranchAtTheExactLsnOfAWriteSeesIt) {
  auto root = NewTimeline();
  uint64_t g = Attach(*root, Lsn(100));
  Apply(*root, g, {MCreate("f", Lsn(100)), MWrite("f", Lsn(200), 0, Fill('x'))});
  auto at = NewTimeline(root, Lsn(200));
  auto before = NewTimeline(root, Lsn(199));
  EXPECT_PAGE(Read(*at, "f", 0, Lsn(1000)), Fill('x'));
  // Block 0 did not exist at 199: the file had size 0.
  EXPECT_EQ(before->GetPage("f", 0, Lsn(1000)).status().code(), absl::StatusCode::kOutOfRange);
}

TEST_F(TimelineTest, WritesAfterBranchingAreInvisibleToTheOtherSide) {
  auto root = NewTimeline();
  uint64_t g = Attach(*root, Lsn(100));
  Apply(*root, g, {MCreate("f", Lsn(100)), MWrite("f", Lsn(100), 0, Fill('a'))});
  auto child = NewTimeline(root, Lsn(100));
  uint64_t gc = Attach(*child, Lsn(100));
  Apply(*root, g, {MWrite("f", Lsn(200), 0, Fill('p'))});
  Apply(*child, gc, {MWrite("f", Lsn(200), 0, Fill('c')), MCreate("only-child", Lsn(200))});
  EXPECT_PAGE(Read(*root, "f", 0, Lsn(300)), Fill('p'));
  EXPECT_PAGE(Read(*child, "f", 0, Lsn(300)), Fill('c'));
  EXPECT_FALSE(root->GetFileState("only-child", Lsn(300))->has_value());
  EXPECT_TRUE(child->GetFileState("only-child", Lsn(300)).value()->state.exists);
}

TEST_F(TimelineTest, PartialWritesMergeIntoWholeBlocks) {
  auto t = NewTimeline();
  uint64_t g = Attach(*t, Lsn(100));
  Apply(*t, g, {MCreate("f", Lsn(100)), MWrite("f", Lsn(100), 0, Fill('a'))});
  // The kernel split an 8 KiB write into 1K + 3K + 4K; two arrive in one batch.
  Apply(
      *t, g,
      {MWrite("f", Lsn(200), 0, Fill('b', 1024)), MWrite("f", Lsn(200), 0, Fill('c', 3072), 1024)});
  Apply(*t, g, {MWrite("f", Lsn(200), 0, Fill('d', 4096), 4096)});
  std::string expected = Fill('b', 1024) + Fill('c', 3072) + Fill('d', 4096);
  EXPECT_PAGE(Read(*t, "f", 0, Lsn(200)), expected);
  EXPECT_PAGE(Read(*t, "f", 0, Lsn(150)), Fill('a'));
  // A partial write extending a small file keeps it short and zero-fills the rest.
  Apply(*t, g, {MCreate("small", Lsn(300)), MWrite("small", Lsn(300), 0, "hello", 0)});
  auto st = t->GetFileState("small", Lsn(300)).value();
  EXPECT_EQ((*st).state.size, 5u);
  EXPECT_PAGE(Read(*t, "small", 0, Lsn(300)),
              std::string("hello") + std::string(kBlockSize - 5, '\0'));
}

// Issue 11: Postgres extends a relation with zero blocks before it fills them; such
// a write (flagged, or all zeros) is stored without a page, reads as zeros and
// extends the file, and covers what the block held before.
TEST_F(TimelineTest, ZeroBlockWritesExtendAndReadAsZeros) {
  auto t = NewTimeline();
  uint64_t g = Attach(*t, Lsn(100));
  v1::Mutation zeros = MAt("f", Lsn(200));
  zeros.mutable_write()->set_block_no(1);
  zeros.mutable_write()->set_zeros(true);
  Apply(*t, g, {MCreate("f", Lsn(100)), MWrite("f", Lsn(100), 0, Fill('a'))});
  Apply(*t, g, {zeros, MWrite("f", Lsn(200), 0, Fill('\0'))});
  EXPECT_EQ(t->GetFileState("f", Lsn(200)).value()->state.size, 2 * kBlockSize);
  EXPECT_PAGE(Read(*t, "f", 0, Lsn(200)), Fill('\0'));
  EXPECT_PAGE(Read(*t, "f", 1, Lsn(200)), Fill('\0'));
  EXPECT_PAGE(Read(*t, "f", 0, Lsn(150)), Fill('a'));
  // A zero-block write that also carries data is refused, whole.
  v1::Mutation bad = zeros;
  bad.set_lsn(Lsn(300).value());
  bad.mutable_write()->set_data("x");
  auto r = t->ApplyBatch(g, ++seqs_[t.get()], Batch({bad}), false);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
}

TEST_F(TimelineTest, RecreatedFileDoesNotShowItsOldBlocks) {
  auto t = NewTimeline();
  uint64_t g = Attach(*t, Lsn(100));
  Apply(*t, g,
        {MCreate("f", Lsn(100)), MWrite("f", Lsn(100), 0, Fill('o')),
         MWrite("f", Lsn(100), 1, Fill('o'))});
  Apply(*t, g, {MUnlink("f", Lsn(200))});
  EXPECT_EQ(t->GetPage("f", 0, Lsn(250)).status().code(), absl::StatusCode::kNotFound);
  Apply(*t, g,
        {MCreate("f", Lsn(300)), MSetSize("f", Lsn(300), 2 * kBlockSize),
         MWrite("f", Lsn(300), 1, Fill('n'))});
  EXPECT_PAGE(Read(*t, "f", 0, Lsn(300)), Fill('\0'));
  EXPECT_PAGE(Read(*t, "f", 1, Lsn(300)), Fill('n'));
  EXPECT_PAGE(Read(*t, "f", 0, Lsn(150)), Fill('o'));  // history is intact
}

TEST_F(TimelineTest, TruncateThenExtendReadsZeros) {
  auto t = NewTimeline();
  uint64_t g = Attach(*t, Lsn(100));
  Apply(*t, g,
        {MCreate("f", Lsn(100)), MWrite("f", Lsn(100), 0, Fill('a')),
         MWrite("f", Lsn(100), 1, Fill('a')), MWrite("f", Lsn(100), 2, Fill('a'))});
  Apply(*t, g, {MSetSize("f", Lsn(200), kBlockSize + 100)});
  EXPECT_EQ(t->GetFileState("f", Lsn(200)).value()->state.size, kBlockSize + 100);
  EXPECT_PAGE(Read(*t, "f", 1, Lsn(200)), Fill('a', 100) + Fill('\0', kBlockSize - 100));
  EXPECT_EQ(t->GetPage("f", 2, Lsn(200)).status().code(), absl::StatusCode::kOutOfRange);
  Apply(*t, g, {MSetSize("f", Lsn(300), 3 * kBlockSize)});
  EXPECT_PAGE(Read(*t, "f", 2, Lsn(300)), Fill('\0'));
  EXPECT_PAGE(Read(*t, "f", 1, Lsn(300)), Fill('a', 100) + Fill('\0', kBlockSize - 100));
  EXPECT_PAGE(Read(*t, "f", 2, Lsn(150)), Fill('a'));
}

TEST_F(TimelineTest, RenameMovesContentAndReplacesTheTarget) {
  auto t = NewTimeline();
  uint64_t g = Attach(*t, Lsn(100));
  Apply(*t, g,
        {MCreate("conf.tmp", Lsn(100)), MWrite("conf.tmp", Lsn(100), 0, "new", 0),
         MCreate("conf", Lsn(100)), MWrite("conf", Lsn(100), 0, "old-content", 0)});
  Apply(*t, g, {MRename("conf.tmp", "conf", Lsn(200))});
  EXPECT_PAGE(Read(*t, "conf", 0, Lsn(200)).substr(0, 4), std::string("new\0", 4));
  EXPECT_EQ(t->GetFileState("conf", Lsn(200)).value()->state.size, 3u);
  EXPECT_FALSE(t->GetFileState("conf.tmp", Lsn(200)).value()->state.exists);
  EXPECT_PAGE(Read(*t, "conf", 0, Lsn(150)).substr(0, 11), "old-content");
}

TEST_F(TimelineTest, DirectoriesRenameRecursivelyAndRmdirNeedsEmpty) {
  auto t = NewTimeline();
  uint64_t g = Attach(*t, Lsn(100));
  Apply(*t, g,
        {MMkdir("slot.tmp", Lsn(100)), MCreate("slot.tmp/state", Lsn(100)),
         MWrite("slot.tmp/state", Lsn(100), 0, Fill('s'))});
  auto bad = t->ApplyBatch(g, 2, Batch({MRmdir("slot.tmp", Lsn(150))}), false);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  seqs_[t.get()] = 1;
  Apply(*t, g, {MRename("slot.tmp", "slot", Lsn(200))});
  EXPECT_PAGE(Read(*t, "slot/state", 0, Lsn(200)), Fill('s'));
  auto files = t->ListFiles(Lsn(200));
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].path, "slot");
  EXPECT_EQ((*files)[1].path, "slot/state");
  Apply(*t, g, {MUnlink("slot/state", Lsn(300)), MRmdir("slot", Lsn(300))});
  EXPECT_TRUE(t->ListFiles(Lsn(300))->empty());
  EXPECT_EQ(t->ListFiles(Lsn(150))->size(), 2u);
}

TEST_F(TimelineTest, ManifestAtAnLsnFollowsAncestry) {
  auto root = NewTimeline();
  uint64_t g = Attach(*root, Lsn(100));
  Apply(*root, g,
        {MMkdir("base", Lsn(100)), MCreate("base/1", Lsn(100)),
         MWrite("base/1", Lsn(100), 0, Fill('x')), MCreate("PG_VERSION", Lsn(100))});
  Apply(*root, g, {MCreate("late", Lsn(300))});
  auto child = NewTimeline(root, Lsn(200));
  uint64_t gc = Attach(*child, Lsn(200));
  Apply(*child, gc, {MUnlink("PG_VERSION", Lsn(250)), MChmod("base/1", Lsn(250), 0640)});
  auto files = child->ListFiles(Lsn(260));
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].path, "base");
  EXPECT_EQ((*files)[1].path, "base/1");
  EXPECT_EQ((*files)[1].state.mode, 0640u);
  EXPECT_EQ((*files)[1].state.size, kBlockSize);
  EXPECT_EQ(child->ListFiles(Lsn(240))->size(), 3u);
}

TEST_F(TimelineTest, TagsMustNotDecreaseAndBadMutationsAreRefusedWhole) {
  auto t = NewTimeline();
  uint64_t g = Attach(*t, Lsn(100));
  Apply(*t, g, {MCreate("f", Lsn(200))});
  auto r = t->ApplyBatch(g, 2, Batch({MWrite("f", Lsn(150), 0, Fill('z'))}), false);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  // A batch with one bad mutation applies nothing.
  r = t->ApplyBatch(
      g, 2, Batch({MCreate("g", Lsn(300)), MWrite("missing", Lsn(300), 0, Fill('z'))}), false);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(t->GetFileState("g", Lsn(400))->has_value());
  for (const char* p :
       {"/abs", "a/../b", "pg_stat_tmp/x", "postmaster.pid", "pg_wal/000000010000000000000001"}) {
    r = t->ApplyBatch(g, 2, Batch({MCreate(p, Lsn(300))}), false);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << p;
  }
}

TEST_F(TimelineTest, ResentBatchIsAcknowledgedNotReapplied) {
  auto t = NewTimeline();
  uint64_t g = Attach(*t, Lsn(100));
  auto first = Batch({MCreate("f", Lsn(100)), MWrite("f", Lsn(100), 0, Fill('a'))});
  ASSERT_TRUE(t->ApplyBatch(g, 1, first, false).ok());
  const uint64_t applied = t->write_version();
  auto again = t->ApplyBatch(g, 1, first, true);
  ASSERT_TRUE(again.ok()) << again.status();  // a create applied twice would fail
  EXPECT_EQ(t->write_version(), applied);     // acknowledged, not applied again
  EXPECT_EQ(t->ApplyBatch(g, 5, first, false).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TimelineTest, StaleGenerationIsFencedAndLiveWriterIsNotTakenOver) {
  auto t = NewTimeline();
  uint64_t g1 = Attach(*t, Lsn(100));
  Apply(*t, g1, {MCreate("f", Lsn(100))});
  // A second endpoint without takeover is refused while the first is live.
  auto second = t->Attach("second-endpoint", Lsn(100), /*takeover=*/false, kLease);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("test-writer"), std::string::npos) << second.status();
  uint64_t g2 = Attach(*t, Lsn(100), /*takeover=*/true);
  EXPECT_EQ(g2, g1 + 1);
  auto stale = t->ApplyBatch(g1, 2, Batch({MWrite("f", Lsn(200), 0, Fill('x'))}), false);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(stale.status().message().find("fenced"), std::string::npos);
  EXPECT_EQ(t->Barrier(g1, 1, absl::Seconds(1)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // A live lease refuses a new writer without takeover; once it expired, it may attach.
  EXPECT_EQ(t->Attach("third", Lsn(100), false, kLease).status().code(),
            absl::StatusCode::kFailedPrecondition);
  absl::SleepFor(absl::Milliseconds(200));
  auto late = t->Attach("third", Lsn(100), false, absl::Milliseconds(50));
  EXPECT_TRUE(late.ok()) << late.status();
}

// Detach and liveness agree: a detached writer is not live whatever it does later,
// its later batches and barriers are refused, and a new writer attaches without
// takeover.
TEST_F(TimelineTest, ADetachedWriterIsRefusedAndDoesNotBlockTheNextAttach) {
  auto t = NewTimeline();
  uint64_t g1 = Attach(*t, Lsn(100));
  Apply(*t, g1, {MCreate("f", Lsn(100))});
  EXPECT_TRUE(t->WriterActiveWithin(kLease));
  ASSERT_TRUE(t->StreamOpened(g1).ok());
  ASSERT_TRUE(t->Detach(g1).ok());
  EXPECT_FALSE(t->WriterActiveWithin(kLease));
  // The old writer's late calls: refused, and they do not renew its lease.
  auto late = t->ApplyBatch(g1, 2, Batch({MWrite("f", Lsn(200), 0, Fill('x'))}), false);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(late.status().message().find("detached"), std::string::npos) << late.status();
  EXPECT_EQ(t->Barrier(g1, 1, absl::Seconds(1)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(t->StreamOpened(g1).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(t->WriterActiveWithin(kLease));
  EXPECT_EQ(t->GetFileState("f", Lsn(1000)).value()->state.size, 0u);
  auto next = t->Attach("next-endpoint", Lsn(100), /*takeover=*/false, kLease);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, g1 + 1);
  EXPECT_TRUE(t->WriterActiveWithin(kLease));
}

TEST_F(TimelineTest, DetachWakesABarrierWaitingForTheDetachedWriter) {
  auto t = NewTimeline();
  uint64_t g = Attach(*t, Lsn(100));
  std::thread detach([&] {
    absl::SleepFor(absl::Milliseconds(100));
    EXPECT_TRUE(t->Detach(g).ok());
  });
  const absl::Time start = absl::Now();
  auto barrier = t->Barrier(g, 1, absl::Seconds(30));
  detach.join();
  EXPECT_EQ(barrier.status().code(), absl::StatusCode::kFailedPrecondition) << barrier.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST_F(TimelineTest, AttachAtAnEarlierLsnAbandonsTheDeadWritersTail) {
  auto t = NewTimeline();
  uint64_t g1 = Attach(*t, Lsn(100));
  Apply(*t, g1, {MCreate("f", Lsn(100)), MWrite("f", Lsn(100), 0, Fill('a'))});
  // The dead writer's WAL past 200 never reached the safekeepers.
  Apply(*t, g1, {MWrite("f", Lsn(250), 0, Fill('x')), MCreate("ghost", Lsn(250))});
  uint64_t g2 = Attach(*t, Lsn(200));
  EXPECT_PAGE(Read(*t, "f", 0, Lsn(1000)), Fill('a'));
  EXPECT_FALSE(t->GetFileState("ghost", Lsn(1000))->has_value());
  // The new writer writes its own history from 200 on.
  Apply(*t, g2, {MWrite("f", Lsn(220), 0, Fill('n')), MCreate("ghost", Lsn(230))});
  EXPECT_PAGE(Read(*t, "f", 0, Lsn(260)), Fill('n'));
  EXPECT_EQ(t->GetFileState("ghost", Lsn(260)).value()->lsn, Lsn(230));
}

TEST_F(TimelineTest, BarrierWaitsForTheBatchAndReportsTheDurableTag) {
  auto t = NewTimeline();
  uint64_t g = Attach(*t, Lsn(100));
  std::thread late([&] {
    absl::SleepFor(absl::Milliseconds(100));
    Apply(*t, g, {MCreate("f", Lsn(100)), MWrite("f", Lsn(180), 0, Fill('a'))});
  });
  auto durable = t->Barrier(g, 1, absl::Seconds(10));
  late.join();
  ASSERT_TRUE(durable.ok()) << durable.status();
  EXPECT_EQ(*durable, Lsn(180));
  EXPECT_EQ(t->Barrier(g, 9, absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(TimelineTest, RestartKeepsVersionsWriterStateAndVisibility) {
  TimelineId root_id, child_id;
  uint64_t g;
  {
    auto root = NewTimeline();
    root_id = root->id();
    g = Attach(*root, Lsn(100));
    Apply(*root, g, {MCreate("f", Lsn(100)), MWrite("f", Lsn(100), 0, Fill('a'))});
    Apply(*root, g, {MWrite("f", Lsn(300), 0, Fill('b'))});
    auto child = NewTimeline(root, Lsn(200));
    child_id = child->id();
    ASSERT_TRUE(root->Barrier(g, 2, absl::Seconds(5)).ok());
  }
  store_.reset();
  OpenStore();
  storage::v1::TimelineRecord rr, cr;
  ASSERT_TRUE(rr.ParseFromString(**store_->GetMeta(Timeline::RecordKey(kTenant, root_id))));
  ASSERT_TRUE(cr.ParseFromString(**store_->GetMeta(Timeline::RecordKey(kTenant, child_id))));
  auto root = Timeline::Load(store_.get(), rr, nullptr).value();
  auto child = Timeline::Load(store_.get(), cr, root).value();
  EXPECT_PAGE(Read(*root, "f", 0, Lsn(300)), Fill('b'));
  EXPECT_PAGE(Read(*child, "f", 0, Lsn(300)), Fill('a'));
  EXPECT_EQ(root->generation(), g);
  // The writer continues where it was: batch 2 is a duplicate, batch 3 is next.
  EXPECT_TRUE(root->ApplyBatch(g, 2, Batch({MWrite("f", Lsn(300), 0, Fill('b'))}), false).ok());
  EXPECT_TRUE(root->ApplyBatch(g, 3, Batch({MWrite("f", Lsn(400), 0, Fill('c'))}), false).ok());
  EXPECT_PAGE(Read(*root, "f", 0, Lsn(400)), Fill('c'));
}

TEST_F(TimelineTest, CorruptStoredPageIsDataLossNeverServed) {
  auto t = NewTimeline();
  uint64_t g = Attach(*t, Lsn(100));
  Apply(*t, g, {MCreate("f", Lsn(100)), MWrite("f", Lsn(100), 0, Fill('a'))});
  // Flip one byte of the stored value directly in RocksDB.
  const std::string key = keys::BlockKey(t->id(), "f", 0, Lsn(100));
  std::string value;
  ASSERT_TRUE(
      store_->db()->Get(rocksdb::ReadOptions(), store_->cf(Family::kBlocks), key, &value).ok());
  value[value.size() / 2] ^= 0x10;  // inside the page (stored compressed or not)
  ASSERT_TRUE(
      store_->db()->Put(rocksdb::WriteOptions(), store_->cf(Family::kBlocks), key, value).ok());
  auto page = t->GetPage("f", 0, Lsn(100));
  EXPECT_EQ(page.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(page.status().message().find("checksum"), std::string::npos) << page.status();
}

// Issue 9, item 3: a writer that detached (or was released as dead) stays so across
// a pageserver restart; otherwise the next endpoint is refused for a lease period.
TEST_F(TimelineTest, ADetachedWriterStaysDetachedAfterARestart) {
  auto t = NewTimeline();
  uint64_t g = Attach(*t, Lsn(100));
  Apply(*t, g, {MCreate("f", Lsn(100))});
  ASSERT_TRUE(t->Detach(g).ok());
  auto reloaded = Reload(*t, nullptr);
  EXPECT_FALSE(reloaded->WriterActiveWithin(kLease));
  EXPECT_TRUE(reloaded->Attach("next", Lsn(100), /*takeover=*/false, kLease).ok());
}

// Issue 9, item 13: one mutation must not be able to make the pageserver loop over
// billions of blocks under the timeline's lock.
TEST_F(TimelineTest, FileSizesAreBounded) {
  auto t = NewTimeline();
  uint64_t g = Attach(*t, Lsn(100));
  Apply(*t, g, {MCreate("f", Lsn(100))});
  auto huge = t->ApplyBatch(g, 2, Batch({MSetSize("f", Lsn(100), uint64_t{1} << 42)}), false);
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kInvalidArgument) << huge.status();
  auto far = t->ApplyBatch(g, 2, Batch({MWrite("f", Lsn(100), 1u << 30, Fill('x'))}), false);
  EXPECT_EQ(far.status().code(), absl::StatusCode::kInvalidArgument) << far.status();
  // A Postgres relation segment (1 GiB) is fine.
  auto segment = t->ApplyBatch(g, 2, Batch({MSetSize("f", Lsn(100), uint64_t{1} << 30)}), false);
  EXPECT_TRUE(segment.ok()) << segment.status();
}

}  // namespace
}  // namespace cambium::pageserver
