// Repository::ListChanges (the relations changed between two points, from the WAL
// archive) and snapshots (immutable, protected named points).
#include "common/bytes.h"
#include "common/pg/wal_format.h"
#include "common/pg/wal_records.h"
#include "gtest/gtest.h"
#include "pageserver/archive_test_fixture.h"
#include "pageserver/repository.h"
#include "pageserver/test_util.h"
#include "tests/harness/temp_dir.h"
#include "tests/harness/wal_builder.h"

namespace cambium::pageserver {
namespace {

using namespace ::cambium::pageserver::testing;  // NOLINT
using ::cambium::testing::WalBuilder;

constexpr uint8_t kHeap = static_cast<uint8_t>(pg::RmgrId::kHeap);
constexpr uint8_t kHeap2 = static_cast<uint8_t>(pg::RmgrId::kHeap2);
constexpr uint8_t kXlog = static_cast<uint8_t>(pg::RmgrId::kXlog);
constexpr uint8_t kStorage = static_cast<uint8_t>(pg::RmgrId::kStorage);
constexpr uint8_t kXact = static_cast<uint8_t>(pg::RmgrId::kTransaction);

std::string Node(uint32_t rel) {
  std::string out;
  AppendLittleEndian<uint32_t>(&out, 1663);
  AppendLittleEndian<uint32_t>(&out, 5);
  AppendLittleEndian<uint32_t>(&out, rel);
  return out;
}

class ChangesTest : public ArchiveTest {
 protected:
  // A heap insert into `rel` touching `blocks`.
  void Insert(uint32_t rel, std::vector<uint32_t> blocks) {
    std::vector<WalBuilder::Block> refs;
    for (uint32_t b : blocks) refs.push_back({.rel_oid = rel, .block_no = b, .data = "row"});
    wal_->Add(kHeap, 0x00, 7, "i", refs);
  }
  Lsn Commit(int seconds, std::vector<uint32_t> dropped = {}) {
    if (dropped.empty()) {
      wal_->AddCommit(100, PgT(seconds));
    } else {
      std::string main;
      AppendLittleEndian<int64_t>(&main, PgT(seconds));
      AppendLittleEndian<uint32_t>(&main, pg::kXactXinfoHasRelfilenodes);
      AppendLittleEndian<int32_t>(&main, static_cast<int32_t>(dropped.size()));
      for (uint32_t rel : dropped) main += Node(rel);
      wal_->Add(kXact, pg::kXlogXactCommit | pg::kXlogXactHasInfo, 100, main);
    }
    return wal_->end();
  }
  ChangeSet Changes(Lsn since, std::optional<Lsn> until = std::nullopt) {
    auto c = repo_->ListChanges("acme", "main", {.lsn = since}, {.lsn = until});
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : ChangeSet();
  }
  static const RelationChange* Find(const ChangeSet& c, uint32_t rel) {
    for (const RelationChange& r : c.changes) {
      if (r.node.rel == rel && r.fork == 0) return &r;
    }
    return nullptr;
  }
};

TEST_F(ChangesTest, ListsExactlyTheRelationsChangedInTheRange) {
  Insert(16384, {0});
  const Lsn before = Commit(1);
  Insert(16384, {1, 2, 2});
  Insert(16390, {7});
  wal_->Add(kStorage, pg::kXlogSmgrCreate, 0, Node(16400) + std::string("\0\0\0\0", 4));
  Insert(16400, {0});
  const Lsn middle = Commit(2);
  Insert(16500, {3});
  Commit(3, /*dropped=*/{16390});
  ArchiveMain();

  ChangeSet c = Changes(before, middle);
  EXPECT_EQ(c.since, before);
  EXPECT_EQ(c.until, middle);
  ASSERT_EQ(c.changes.size(), 3u);
  const RelationChange* a = Find(c, 16384);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->blocks_changed, 2u);  // blocks 1 and 2; block 0 was before the range
  EXPECT_EQ(a->records, 3u);
  ASSERT_TRUE(a->first_commit.has_value());
  EXPECT_EQ(*a->first_commit, T(2));
  EXPECT_FALSE(a->created || a->dropped);
  const RelationChange* created = Find(c, 16400);
  ASSERT_NE(created, nullptr);
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->blocks_changed, 1u);
  EXPECT_EQ(Find(c, 16500), nullptr);

  // The blocks of one relation, on request.
  auto listed = repo_->ListChanges("acme", "main", {.lsn = before}, {.lsn = middle},
                                   BlocksOf{.db = 5, .rel = 16384});
  ASSERT_TRUE(listed.ok()) << listed.status();
  for (const RelationChange& r : listed->changes) {
    if (r.node.rel == 16384) {
      EXPECT_EQ(r.blocks, (std::vector<uint32_t>{1, 2}));
    } else {
      EXPECT_TRUE(r.blocks.empty());
    }
  }

  // To the head: the later insert and the drop too.
  ChangeSet all = Changes(middle);
  ASSERT_NE(Find(all, 16500), nullptr);
  const RelationChange* dropped = Find(all, 16390);
  ASSERT_NE(dropped, nullptr);
  EXPECT_TRUE(dropped->dropped);
  EXPECT_EQ(Find(all, 16384), nullptr);
  EXPECT_GT(all.wal_bytes_read, 0u);
}

TEST_F(ChangesTest, MaintenanceThatChangesNoRowIsNoChange) {
  const Lsn before = Commit(1);
  wal_->Add(kXlog, pg::kXlogFpiForHint, 0, "", {{.rel_oid = 16384, .block_no = 0, .data = "h"}});
  wal_->Add(kHeap2, pg::kXlogHeap2Prune, 0, "p", {{.rel_oid = 16384, .block_no = 1, .data = "p"}});
  wal_->Add(kHeap2, pg::kXlogHeap2Visible, 0, "v",
            {{.rel_oid = 16384, .block_no = 2, .data = "v"}});
  Commit(2);
  ArchiveMain();
  EXPECT_TRUE(Changes(before).changes.empty());
}

TEST_F(ChangesTest, ABranchSeesItsParentsChangesBelowItsBranchPoint) {
  const Lsn start = Commit(1);
  Insert(16384, {0});
  const Lsn point = Commit(2);
  Insert(16385, {0});  // after the branch point: not the branch's
  Commit(3);
  ArchiveMain();
  ASSERT_TRUE(repo_->CreateBranch("acme", "dev", "main", {.lsn = point}, std::nullopt).ok());
  auto c = repo_->ListChanges("acme", "dev", {.lsn = start}, {});
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->changes.size(), 1u);
  EXPECT_EQ(c->changes[0].node.rel, 16384u);
  EXPECT_EQ(c->until, point);
}

TEST_F(ChangesTest, RefusesAMissingOrReversedRange) {
  const Lsn a = Commit(1);
  Insert(16384, {0});
  const Lsn b = Commit(2);
  ArchiveMain();
  EXPECT_EQ(repo_->ListChanges("acme", "main", {}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(repo_->ListChanges("acme", "main", {.lsn = b}, {.lsn = a}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(repo_->ListChanges("acme", "main", {.time = T(-100)}, {}).ok());
  EXPECT_EQ(repo_->ListChanges("acme", "nope", {.lsn = a}, {}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ChangesTest, ASnapshotIsProtectedImmutableAndDeletedOnlyAsOne) {
  const Lsn point = Commit(1);
  ArchiveMain();
  auto s = repo_->CreateBranch("acme", "before", "main", {}, std::nullopt, BranchKind::kSnapshot);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->snapshot);
  EXPECT_TRUE(s->is_protected);
  EXPECT_EQ(s->ancestor_lsn, point);
  // No writer attaches to it, also after a restart of the repository.
  auto frozen = [&] {
    auto t = repo_->GetTimeline(repo_->GetTenant("acme")->id, s->timeline_id).value();
    return t->Attach("w", point, /*takeover=*/true, absl::Seconds(10)).status().code();
  };
  EXPECT_EQ(frozen(), absl::StatusCode::kFailedPrecondition);
  main_.reset();
  repo_.reset();
  repo_ = Repository::Open(store_.get(), RepositoryOptions{.ttl_check_interval = absl::Hours(1)})
              .value();
  main_ =
      repo_
          ->GetTimeline(repo_->GetTenant("acme")->id, repo_->GetBranch("acme", "main")->timeline_id)
          .value();
  EXPECT_EQ(frozen(), absl::StatusCode::kFailedPrecondition);

  EXPECT_EQ(repo_->SetProtection("acme", "before", false).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(repo_->ResetBranch("acme", "before").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(repo_->DeleteBranch("acme", "before").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(repo_->DeleteSnapshot("acme", "main").code(), absl::StatusCode::kNotFound);
  // The history it pins: main cannot go while it reads main's timeline.
  EXPECT_EQ(repo_->DeleteBranch("acme", "main", true).code(),
            absl::StatusCode::kFailedPrecondition);

  // A branch made from it starts at its point.
  auto from = repo_->CreateBranch("acme", "again", "before", {}, std::nullopt);
  ASSERT_TRUE(from.ok()) << from.status();
  EXPECT_EQ(from->ancestor_lsn, point);
  ASSERT_TRUE(repo_->DeleteBranch("acme", "again", true).ok());

  absl::Time purge_after;
  ASSERT_TRUE(repo_->DeleteSnapshot("acme", "before", false, &purge_after).ok());
  EXPECT_FALSE(repo_->GetBranch("acme", "before").ok());
  // Undoable, as every delete: it comes back a snapshot.
  auto back = repo_->UndeleteBranch("acme", "before");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->snapshot);
  EXPECT_TRUE(repo_->DeleteSnapshot("acme", "before", true).ok());
}

TEST_F(ChangesTest, ABranchRestoresToItsSnapshotsExactPoint) {
  const Lsn point = Commit(1);
  ArchiveMain();
  ASSERT_TRUE(
      repo_->CreateBranch("acme", "before", "main", {}, std::nullopt, BranchKind::kSnapshot).ok());
  ASSERT_TRUE(repo_->CreateBranch("acme", "dev", "main", {}, std::nullopt).ok());
  Insert(16384, {0});
  Commit(2);
  ArchiveMain();
  EXPECT_EQ(repo_->RestoreBranch("acme", "dev", {.snapshot = "before"}, "").status().code(),
            absl::StatusCode::kFailedPrecondition);  // a snapshot of main, not of dev
  EXPECT_FALSE(repo_->RestoreBranch("acme", "main", {.snapshot = "dev"}, "").ok());
  auto r = repo_->RestoreBranch("acme", "main", {.snapshot = "before"}, "main_before");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->first.ancestor_lsn, point);
  EXPECT_EQ(r->first.last_record_lsn, point);
  EXPECT_EQ(r->second.name, "main_before");
}

TEST_F(ChangesTest, AMaskedBranchHidesItsPastUntilAndAfterMasking) {
  const Lsn before = Commit(1);
  ArchiveMain();
  auto m = repo_->CreateBranch("acme", "masked", "main", {}, std::nullopt, BranchKind::kMasked);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->masking);
  EXPECT_EQ(repo_->RequireNotMasking("acme", "masked").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(repo_->CreateBranch("acme", "peek", "masked", {}, std::nullopt).status().code(),
            absl::StatusCode::kFailedPrecondition);

  auto done = repo_->CompleteMasking("acme", "masked");
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_FALSE(done->masking);
  EXPECT_EQ(done->history_floor, done->last_record_lsn);
  EXPECT_TRUE(repo_->RequireNotMasking("acme", "masked").ok());
  EXPECT_EQ(repo_->CompleteMasking("acme", "masked").status().code(),
            absl::StatusCode::kFailedPrecondition);

  // Nothing below the floor through it or its children; at the floor, fine.
  EXPECT_EQ(
      repo_->CreateBranch("acme", "old", "masked", {.lsn = kSeg1}, std::nullopt).status().code(),
      absl::StatusCode::kFailedPrecondition);
  auto child = repo_->CreateBranch("acme", "child", "masked", {}, std::nullopt);
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ(child->history_floor, done->history_floor);
  EXPECT_FALSE(repo_->ListChanges("acme", "child", {.lsn = kSeg1}, {}).ok());
  EXPECT_FALSE(repo_->RestoreBranch("acme", "masked", {.lsn = kSeg1}, "").ok());
  auto info = repo_->GetBranch("acme", "masked");
  ASSERT_TRUE(info.ok() && info->restorable.has_value());
  EXPECT_EQ(info->restorable->earliest_lsn, done->history_floor);
  // main itself is untouched by its child's floor.
  EXPECT_TRUE(repo_->CreateBranch("acme", "m2", "main", {.lsn = before}, std::nullopt).ok());
}

}  // namespace
}  // namespace cambium::pageserver
