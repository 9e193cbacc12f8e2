// A tenant moved between two pageservers' stores through an object store
// (tenant_transfer.h, Repository's tenant_moves.cc): whole on the destination, out
// of service and then gone on the source, and nothing half-done on a failure.
#include "pageserver/tenant_transfer.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "common/status.h"
#include "common/tenant_moves.h"
#include "gtest/gtest.h"
#include "objstore/object_store.h"
#include "pageserver/keys.h"
#include "pageserver/repository.h"
#include "pageserver/test_util.h"
#include "tests/harness/temp_dir.h"
#include "tests/harness/wal_builder.h"

namespace cambium::pageserver {
namespace {

namespace fs = std::filesystem;
using namespace ::cambium::pageserver::testing;  // NOLINT
using ::cambium::testing::TempDir;
using ::cambium::testing::WalBuilder;

struct Side {
  std::unique_ptr<PageStore> store;
  std::unique_ptr<Repository> repo;
};

class TenantTransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>(TempDir::Create("cambium-transfer-").value());
    fs::create_directories(dir_->Sub("objects"));
    objects_ = objstore::OpenObjectStore("file://" + dir_->Sub("objects")).value();
    Open(src_, "src");
    Open(dst_, "dst");
    // Tenant "acme" on the source: main with two blocks written over two commits,
    // a child branch between them with its own write, WAL archived; and "other",
    // which stays.
    ASSERT_TRUE(src_.repo->CreateTenant("acme", absl::ZeroDuration()).ok());
    ASSERT_TRUE(src_.repo->CreateTenant("other", absl::ZeroDuration()).ok());
    main_ = src_.repo->CreateRootTimeline("acme", "main", kSeg1).value();
    other_ = src_.repo->CreateRootTimeline("other", "main", kSeg1).value();
    gen_ = main_->Attach("ep", kSeg1, true, absl::Seconds(30)).value();
    WalBuilder wal(kSeg1);
    wal.Add(kMessage, 0, 1, "x");
    e1_ = (wal.AddCommit(1, PgT(100)), wal.end());
    Apply(*main_, {MCreate("rel", e1_), MWrite("rel", e1_, 0, Fill('1'))});
    e2_ = (wal.AddCommit(2, PgT(200)), wal.end());
    ASSERT_TRUE(src_.repo->archive().Append(*main_, kSeg1, wal.bytes(), false).ok());
    ASSERT_TRUE(src_.repo->CreateBranch("acme", "child", "main", {.lsn = e1_}, std::nullopt).ok());
    Apply(*main_, {MWrite("rel", e2_, 0, Fill('2')), MWrite("rel", e2_, 1, Fill('b'))});
    auto other_gen = other_->Attach("ep2", kSeg1, true, absl::Seconds(30)).value();
    ASSERT_TRUE(
        other_
            ->ApplyBatch(other_gen, 1,
                         Batch({MCreate("o", kSeg1 + 8), MWrite("o", kSeg1 + 8, 0, Fill('o'))}),
                         false)
            .ok());
  }

  void Open(Side& side, const std::string& name) {
    side.repo.reset();
    side.store.reset();
    side.store =
        PageStore::Open(dir_->Sub(name), PageStoreOptions{.cache_bytes = 16 << 20}).value();
    side.repo =
        Repository::Open(side.store.get(), RepositoryOptions{.writer_lease = absl::Seconds(30),
                                                             .ttl_check_interval = absl::Hours(1)})
            .value();
  }

  void Apply(Timeline& t, std::initializer_list<v1::Mutation> ms) {
    auto r = t.ApplyBatch(gen_, ++seq_, Batch(ms), false);
    ASSERT_TRUE(r.ok()) << r.status();
  }

  // Fences and exports acme from the source, under generation `g`.
  absl::StatusOr<TransferManifest> Export(uint64_t g = 7) {
    auto m = src_.repo->FenceTenantForMove("acme");
    if (!m.ok()) return m.status();
    return ExportTenant(*src_.store, m->id, m->name, m->meta_prefixes, m->timelines, *objects_, g,
                        dir_->Sub("src-scratch"), {.max_file_bytes = 1});
  }

  absl::Status Attach(const TransferManifest& m) {
    CAMBIUM_RETURN_IF_ERROR(dst_.repo->PrepareAttach(m.tenant));
    CAMBIUM_RETURN_IF_ERROR(IngestTenant(*dst_.store, *objects_, m, dir_->Sub("dst-scratch")));
    return dst_.repo->LoadAttachedTenant(m.tenant).status();
  }

  static char Byte(Repository& repo, const std::string& branch, uint32_t block, Lsn lsn) {
    auto b = repo.GetBranch("acme", branch);
    EXPECT_TRUE(b.ok()) << b.status();
    if (!b.ok()) return '?';
    auto t = repo.GetTimeline(b->tenant_id, b->timeline_id);
    EXPECT_TRUE(t.ok()) << t.status();
    if (!t.ok()) return '?';
    auto page = (*t)->GetPage("rel", block, lsn);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->data[0] : '?';
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<objstore::ObjectStore> objects_;
  Side src_, dst_;
  std::shared_ptr<Timeline> main_, other_;
  uint64_t gen_ = 0;
  uint64_t seq_ = 0;
  Lsn e1_, e2_;
};

TEST_F(TenantTransferTest, AMovedTenantIsWholeOnTheDestinationAndGoneFromTheSource) {
  const TenantId acme = src_.repo->GetTenant("acme")->id;
  const TimelineId main_id = main_->id();
  const Lsn archived = src_.repo->archive().End(*main_).value();
  auto m = Export();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_GT(m->files.size(), 5u) << "one key per file: the export rolls over to new files";
  EXPECT_EQ(m->timelines.size(), 2u);
  ASSERT_TRUE(Attach(*m).ok());

  // Branches, pages at both points, the archive and the writer all came along.
  Repository& dst = *dst_.repo;
  EXPECT_EQ(dst.ListBranches("acme")->size(), 2u);
  EXPECT_EQ(Byte(dst, "main", 0, e1_), '1');
  EXPECT_EQ(Byte(dst, "main", 0, Lsn::Max()), '2');
  EXPECT_EQ(Byte(dst, "main", 1, Lsn::Max()), 'b');
  EXPECT_EQ(Byte(dst, "child", 0, Lsn::Max()), '1');
  auto moved_main = dst.GetTimeline(acme, main_id).value();
  EXPECT_EQ(dst.archive().End(*moved_main).value(), archived);
  EXPECT_EQ(moved_main->last_record_lsn(), archived);
  // The writer's next batch continues its sequence there; a resend is acknowledged.
  EXPECT_TRUE(moved_main->ApplyBatch(gen_, seq_, Batch({}), false).ok());
  EXPECT_TRUE(
      moved_main->ApplyBatch(gen_, seq_ + 1, Batch({MWrite("rel", e2_ + 8, 0, Fill('3'))}), true)
          .ok());
  EXPECT_EQ(Byte(dst, "main", 0, Lsn::Max()), '3');

  // The source: refused while moving, then forwards, and its copy is gone, also
  // after a restart; the other tenant is untouched.
  auto moving = src_.repo->GetTimeline(acme, main_id);
  EXPECT_EQ(moving.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(MovedToAddress(moving.status().message()).has_value());
  ASSERT_TRUE(src_.repo->FinishMove(acme, "127.0.0.1:7001").ok());
  for (int restart = 0; restart < 2; ++restart) {
    auto gone = src_.repo->GetTimeline(acme, main_id);
    EXPECT_EQ(gone.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(MovedToAddress(gone.status().message()), "127.0.0.1:7001") << gone.status();
    EXPECT_FALSE(src_.repo->GetTenant("acme").ok());
    EXPECT_FALSE(src_.store->HasAnyKey(Family::kBlocks, keys::TimelinePrefix(main_id)).value());
    for (const std::string& p : Repository::TenantMetaPrefixes(acme)) {
      EXPECT_FALSE(src_.store->HasAnyKey(Family::kMeta, p).value());
    }
    EXPECT_TRUE(src_.repo->GetTimeline(src_.repo->GetTenant("other")->id, other_->id()).ok());
    main_.reset();
    other_.reset();
    Open(src_, "src");
    other_ = src_.repo
                 ->GetTimeline(src_.repo->GetTenant("other")->id,
                               src_.repo->GetBranch("other", "main")->timeline_id)
                 .value();
  }
  EXPECT_EQ(other_->GetPage("o", 0, Lsn::Max())->data[0], 'o');

  // And back again: the forwarding address gives way to the tenant.
  auto back_fence = dst.FenceTenantForMove("acme");
  ASSERT_TRUE(back_fence.ok()) << back_fence.status();
  auto back = ExportTenant(*dst_.store, back_fence->id, back_fence->name, back_fence->meta_prefixes,
                           back_fence->timelines, *objects_, 8, dir_->Sub("dst-scratch"));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_TRUE(src_.repo->PrepareAttach(acme).ok());
  ASSERT_TRUE(IngestTenant(*src_.store, *objects_, *back, dir_->Sub("src-scratch")).ok());
  ASSERT_TRUE(src_.repo->LoadAttachedTenant(acme).ok());
  Open(src_, "src");
  EXPECT_EQ(Byte(*src_.repo, "main", 0, Lsn::Max()), '3');
  EXPECT_EQ(Byte(*src_.repo, "child", 0, Lsn::Max()), '1');
}

TEST_F(TenantTransferTest, WritesAfterTheFenceAreRefusedAndAnAbortServesTheTenantAgain) {
  const TenantId acme = src_.repo->GetTenant("acme")->id;
  auto m = src_.repo->FenceTenantForMove("acme");
  ASSERT_TRUE(m.ok()) << m.status();
  // The writer's stream still holds the timeline: its batch and a barrier waiting
  // for it are refused, not acknowledged.
  EXPECT_EQ(main_->ApplyBatch(gen_, seq_ + 1, Batch({MWrite("rel", e2_, 0, Fill('x'))}), false)
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(main_->Barrier(gen_, seq_ + 1, absl::Seconds(30)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(src_.repo->MoveStatus(acme).code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(src_.repo->GetTenant("acme").ok());
  // A restart keeps it out of service; the export may be retried then.
  main_.reset();
  other_.reset();
  Open(src_, "src");
  EXPECT_EQ(src_.repo->MoveStatus(acme).code(), absl::StatusCode::kUnavailable);
  auto again = src_.repo->FenceTenantForMove("acme");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->timelines.size(), 2u);
  // Abort: served again, with everything, and the writer goes on.
  ASSERT_TRUE(src_.repo->AbortMove(acme).ok());
  EXPECT_TRUE(src_.repo->MoveStatus(acme).ok());
  EXPECT_EQ(Byte(*src_.repo, "main", 0, Lsn::Max()), '2');
  auto t = src_.repo->GetTimeline(acme, src_.repo->GetBranch("acme", "main")->timeline_id).value();
  EXPECT_TRUE(
      t->ApplyBatch(gen_, seq_ + 1, Batch({MWrite("rel", e2_ + 8, 0, Fill('4'))}), false).ok());
  EXPECT_EQ(Byte(*src_.repo, "main", 0, Lsn::Max()), '4');
}

// Two threads export a family in two key ranges, cut where the store's SST files
// begin: their files do not overlap, and the destination holds every version.
TEST_F(TenantTransferTest, AnExportInPartsIsWholeOnTheDestination) {
  const TenantId acme = src_.repo->GetTenant("acme")->id;
  constexpr uint32_t kBlocks = 64;
  Apply(*main_, {MCreate("big", e2_ + 4)});
  for (uint32_t round = 0; round < 4; ++round) {
    for (uint32_t b = round * kBlocks / 4; b < (round + 1) * kBlocks / 4; ++b) {
      Apply(*main_, {MWrite("big", e2_ + 8 * (b + 1), b, Fill(static_cast<char>('A' + b % 26)))});
    }
    ASSERT_TRUE(
        src_.store->db()->Flush(rocksdb::FlushOptions(), src_.store->cf(Family::kBlocks)).ok());
  }
  auto fenced = src_.repo->FenceTenantForMove("acme");
  ASSERT_TRUE(fenced.ok()) << fenced.status();
  auto m = ExportTenant(*src_.store, fenced->id, fenced->name, fenced->meta_prefixes,
                        fenced->timelines, *objects_, 9, dir_->Sub("src-scratch"),
                        {.max_file_bytes = 64 << 10, .threads = 2});
  ASSERT_TRUE(m.ok()) << m.status();
  int parts = 0;
  for (const TransferFile& f : m->files) parts += absl::StrContains(f.key, "blocks-p1-");
  EXPECT_GT(parts, 0) << "the blocks family went in two parts";
  ASSERT_TRUE(Attach(*m).ok());
  auto moved = dst_.repo->GetTimeline(acme, main_->id()).value();
  for (uint32_t b = 0; b < kBlocks; ++b) {
    auto page = moved->GetPage("big", b, Lsn::Max());
    ASSERT_TRUE(page.ok()) << b << ": " << page.status();
    EXPECT_EQ(page->data[0], static_cast<char>('A' + b % 26)) << b;
  }
  EXPECT_EQ(Byte(*dst_.repo, "main", 1, Lsn::Max()), 'b');
}

TEST_F(TenantTransferTest, ADamagedTransferObjectIsRefusedAndNothingIsIngested) {
  auto m = Export();
  ASSERT_TRUE(m.ok()) << m.status();
  // Flip one byte in the middle of a blocks file as the store holds it.
  const TransferFile* blocks = nullptr;
  for (const TransferFile& f : m->files) {
    if (f.family == "blocks") blocks = &f;
  }
  ASSERT_NE(blocks, nullptr);
  const std::string path = dir_->Sub("objects/" + blocks->key);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good()) << path;
    const auto at = static_cast<std::streamoff>(blocks->size / 2);
    f.seekg(at);
    const char c = static_cast<char>(f.get());
    f.seekp(at);
    f.put(static_cast<char>(c ^ 0x20));
  }
  absl::Status s = Attach(*m);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find(blocks->key), std::string::npos) << s;
  EXPECT_FALSE(dst_.repo->GetTenant("acme").ok());
  EXPECT_FALSE(
      dst_.store->HasAnyKey(Family::kMeta, Repository::TenantMetaPrefixes(m->tenant)[1]).value());
  // A manifest of another tenant's id, or one sealed by another generation, is refused too.
  auto manifest = objects_->Get(TransferManifestKey(m->tenant, 7)).value();
  manifest[manifest.size() / 2] ^= 1;
  ASSERT_TRUE(objects_->Put(TransferManifestKey(m->tenant, 9), manifest).ok());
  EXPECT_EQ(ReadTransferManifest(*objects_, TransferManifestKey(m->tenant, 9)).status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace cambium::pageserver
