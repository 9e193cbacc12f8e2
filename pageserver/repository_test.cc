#include "pageserver/repository.h"

#include "common/pg/wal_format.h"
#include "common/pg/wal_records.h"
#include "common/sync_point.h"
#include "gtest/gtest.h"
#include "pageserver/keys.h"
#include "pageserver/test_util.h"
#include "tests/harness/temp_dir.h"
#include "tests/harness/wal_builder.h"

namespace cambium::pageserver {
namespace {

using namespace ::cambium::pageserver::testing;  // NOLINT
using ::cambium::testing::TempDir;
using ::cambium::testing::WalBuilder;

class RepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>(TempDir::Create("cambium-repo-").value());
    Open();
    ASSERT_TRUE(repo_->CreateTenant("acme", absl::ZeroDuration()).ok());
    auto root = repo_->CreateRootTimeline("acme", "main", kSeg1);
    ASSERT_TRUE(root.ok()) << root.status();
    main_ = *root;
    wal_ = std::make_unique<WalBuilder>(kSeg1);
    // main's writer is attached from the start, as a compute is before its WAL is
    // archived; tests then write at tags at or above kSeg1.
    gens_[main_.get()] = main_->Attach("test", kSeg1, true, absl::Seconds(30)).value();
  }

  void Open() {
    store_ = PageStore::Open(dir_->Sub("db"),
                             PageStoreOptions{.cache_bytes = 16 << 20, .compression = compression_})
                 .value();
    repo_ = Repository::Open(store_.get(), RepositoryOptions{.writer_lease = absl::Seconds(30),
                                                             .ttl_check_interval = absl::Hours(1)})
                .value();
  }

  void Reopen() {
    main_.reset();
    repo_.reset();
    store_.reset();
    Open();
    main_ = ById(repo_->GetBranch("acme", "main")->timeline_id);
  }

  std::shared_ptr<Timeline> ById(const TimelineId& id) {
    return repo_->GetTimeline(repo_->GetTenant("acme")->id, id).value();
  }
  std::shared_ptr<Timeline> Of(const std::string& branch) {
    auto b = repo_->GetBranch("acme", branch);
    EXPECT_TRUE(b.ok()) << b.status();
    return ById(b->timeline_id);
  }

  // Archives everything the WAL builder has produced so far.
  void ArchiveMainWal() {
    ASSERT_TRUE(repo_->archive().Append(*main_, kSeg1, wal_->bytes(), false).ok());
  }

  // Writes a whole block of `c` to `path` on a timeline at `lsn`, creating the file.
  void WriteBlock(Timeline& t, const std::string& path, Lsn lsn, char c, uint32_t block = 0) {
    uint64_t& gen = gens_[&t];
    if (gen == 0) {
      gen = t.Attach("test", t.last_record_lsn(), true, absl::Seconds(30)).value();
      seqs_[&t] = 0;
    }
    auto batch = Batch({MWrite(path, lsn, block, Fill(c))});
    if (!t.GetFileState(path, Lsn::Max()).value().has_value()) {
      batch = Batch({MCreate(path, lsn), MWrite(path, lsn, block, Fill(c))});
    }
    auto r = t.ApplyBatch(gen, ++seqs_[&t], batch, false);
    ASSERT_TRUE(r.ok()) << r.status();
  }

  // Main's history for point-in-time tests: commits at T(100) and T(200), each
  // writing block 0 of `path` ('1', then '2'), archived. Returns their ends.
  std::pair<Lsn, Lsn> TwoCommits(const std::string& path) {
    wal_->Add(kMessage, 0, 1, "x");
    const Lsn e1 = (wal_->AddCommit(1, PgT(100)), wal_->end());
    WriteBlock(*main_, path, e1, '1');
    const Lsn e2 = (wal_->AddCommit(2, PgT(200)), wal_->end());
    WriteBlock(*main_, path, e2, '2');
    ArchiveMainWal();
    return {e1, e2};
  }

  char Byte(const Timeline& t, const std::string& path, Lsn lsn = Lsn::Max()) {
    auto page = t.GetPage(path, 0, lsn);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->data[0] : '?';
  }

  void DetachAll() {
    for (auto& [t, g] : gens_) (void)const_cast<Timeline*>(t)->Detach(g);
  }

  // The stored WAL archive chunks, by key.
  std::map<std::string, std::string> WalChunks() {
    std::map<std::string, std::string> chunks;
    std::unique_ptr<rocksdb::Iterator> it(
        store_->db()->NewIterator(rocksdb::ReadOptions(), store_->cf(Family::kWal)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      chunks[it->key().ToString()] = it->value().ToString();
    }
    return chunks;
  }
  uint64_t WalChunkBytes() {
    uint64_t bytes = 0;
    for (const auto& [key, value] : WalChunks()) bytes += value.size();
    return bytes;
  }

  std::string compression_ = "lz4";  // PageStoreOptions::compression at the next Open
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<PageStore> store_;
  std::unique_ptr<Repository> repo_;
  std::shared_ptr<Timeline> main_;
  std::unique_ptr<WalBuilder> wal_;
  std::map<const Timeline*, uint64_t> gens_;
  std::map<const Timeline*, uint64_t> seqs_;
};

TEST_F(RepositoryTest, ArchiveTracksLastRecordAndKeepsOnlyCompleteRecords) {
  wal_->Add(kMessage, 0, 1, "first");
  wal_->AddCommit(700, PgT(10));
  wal_->Add(kMessage, 0, 1, std::string(20000, 'x'));  // spans pages
  const Lsn end = wal_->end();
  // Deliver all but the last 100 bytes: the half record is not archived.
  const std::string bytes = wal_->bytes();
  ASSERT_TRUE(
      repo_->archive()
          .Append(*main_, kSeg1, std::string_view(bytes).substr(0, bytes.size() - 100), false)
          .ok());
  const Lsn partial_end = repo_->archive().End(*main_).value();
  EXPECT_LT(partial_end, end);
  EXPECT_EQ(main_->last_record_lsn(), partial_end);
  // The caller resends from the archive's end; overlap must match.
  ASSERT_TRUE(repo_->archive().Append(*main_, kSeg1, bytes, false).ok());
  EXPECT_EQ(repo_->archive().End(*main_).value(), end);
  EXPECT_EQ(main_->last_record_lsn(), end);
  std::string tampered = bytes;
  tampered[100] ^= 1;
  EXPECT_EQ(repo_->archive().Append(*main_, kSeg1, tampered, false).code(),
            absl::StatusCode::kDataLoss);
  // Reading back is byte-identical; beyond the end is OUT_OF_RANGE.
  EXPECT_EQ(repo_->archive().Read(*main_, kSeg1, end).value(), bytes);
  EXPECT_EQ(repo_->archive().Read(*main_, kSeg1, end + 8).status().code(),
            absl::StatusCode::kOutOfRange);
  // A gap is refused.
  EXPECT_EQ(repo_->archive().Append(*main_, end + 8192, "x", false).code(),
            absl::StatusCode::kFailedPrecondition);
}

// Issue 11: with LZ4 (the default) the archive compresses WAL chunk by chunk as it
// arrives, so that compactions copy it rather than compress it again; chunks stored
// raw (by a store without LZ4, and by every store before chunks were compressed) are
// read beside compressed ones, also to check a resend's overlap; a flipped byte in
// either kind is DATA_LOSS, and pruning reads both.
TEST_F(RepositoryTest, ArchivedWalIsCompressedAndRawChunksAreStillRead) {
  compression_ = "none";
  Reopen();
  wal_->Add(kMessage, 0, 1, std::string(100000, 'r'));
  ArchiveMainWal();
  const Lsn raw_end = wal_->end();
  const std::map<std::string, std::string> raw_chunks = WalChunks();
  ASSERT_GE(raw_chunks.size(), 2u);
  EXPECT_GE(WalChunkBytes(), raw_end - kSeg1);  // stored as they are

  compression_ = "lz4";
  Reopen();
  wal_->Add(kMessage, 0, 1, std::string(100000, 'z'));
  wal_->AddCommit(710, PgT(10));
  ArchiveMainWal();  // from kSeg1 again: the overlap is compared with the raw chunks
  const Lsn end = wal_->end();
  EXPECT_LT(WalChunkBytes() - (raw_end - kSeg1) - 8 * raw_chunks.size(), (end - raw_end) / 4)
      << "the new chunks are not compressed";
  EXPECT_EQ(repo_->archive().Read(*main_, kSeg1, end).value(), wal_->bytes());
  EXPECT_EQ(repo_->archive().Read(*main_, raw_end, end).value(),
            wal_->bytes().substr(raw_end - kSeg1));

  // A flipped bit in a compressed chunk (the last) and in a raw one (the first).
  const std::map<std::string, std::string> chunks = WalChunks();
  for (const auto& [key, good] : {*chunks.rbegin(), *chunks.begin()}) {
    for (size_t at : {size_t{3}, size_t{9}, good.size() / 2, good.size() - 1}) {
      std::string bad = good;
      bad[at] ^= 0x10;
      ASSERT_TRUE(
          store_->db()->Put(rocksdb::WriteOptions(), store_->cf(Family::kWal), key, bad).ok());
      auto read = repo_->archive().Read(*main_, kSeg1, end);
      EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss) << "byte " << at;
    }
    ASSERT_TRUE(
        store_->db()->Put(rocksdb::WriteOptions(), store_->cf(Family::kWal), key, good).ok());
  }
  EXPECT_EQ(repo_->archive().Read(*main_, kSeg1, end).value(), wal_->bytes());

  // Pruning below the first compressed chunk drops the raw ones only.
  ASSERT_TRUE(repo_->archive().Prune(*main_, raw_end).ok());
  EXPECT_EQ(repo_->archive().Read(*main_, kSeg1, end).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(repo_->archive().Read(*main_, raw_end, end).value(),
            wal_->bytes().substr(raw_end - kSeg1));
}

TEST_F(RepositoryTest, TimestampLookupFollowsPostgresRecoveryTargetTime) {
  wal_->Add(kMessage, 0, 1, "x");
  wal_->AddCommit(701, PgT(10));
  Lsn e10 = wal_->end();
  wal_->AddCommit(702, PgT(20));
  wal_->AddCommit(703, PgT(15));  // a late commit with an earlier timestamp
  Lsn e15 = wal_->end();
  wal_->AddCommit(704, PgT(30));
  Lsn e30 = wal_->end();
  ArchiveMainWal();
  auto at = [&](int s) { return repo_->LsnByTimestamp("acme", "main", T(s)).value(); };
  EXPECT_EQ(at(10).kind, LsnLookupKind::kPresent);
  EXPECT_EQ(at(10).lsn, e10);
  EXPECT_EQ(at(19).lsn, e10);
  // t=25: the first commit later than 25 is the one at 30, so everything before it.
  EXPECT_EQ(at(25).lsn, e15);
  EXPECT_EQ(at(20).lsn, e15);  // the max so far stays 20 until the commit at 30
  EXPECT_EQ(at(35).lsn, e30);
  EXPECT_EQ(at(5).kind, LsnLookupKind::kBeforeRetention);
  EXPECT_EQ(repo_->LsnByTimestamp("acme", "main", absl::Now() + absl::Hours(1))->kind,
            LsnLookupKind::kFuture);
}

TEST_F(RepositoryTest, BranchPointsAreRoundedAndValidated) {
  wal_->Add(kMessage, 0, 1, "a");
  Lsn r2 = wal_->Add(kMessage, 0, 1, std::string(300, 'b'));
  Lsn r3 = wal_->AddCommit(705, PgT(40));
  ArchiveMainWal();
  // An LSN inside the record at r2 rounds down to its start (the previous record's end).
  auto b = repo_->CreateBranch("acme", "mid", "main", {.lsn = r2 + 100}, std::nullopt);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->ancestor_lsn, r2);
  b = repo_->CreateBranch("acme", "exact", "main", {.lsn = r3}, std::nullopt);
  EXPECT_EQ(b->ancestor_lsn, r3);
  b = repo_->CreateBranch("acme", "head", "main", {}, std::nullopt);
  EXPECT_EQ(b->ancestor_lsn, wal_->end());
  auto beyond =
      repo_->CreateBranch("acme", "beyond", "main", {.lsn = wal_->end() + 8}, std::nullopt);
  EXPECT_EQ(beyond.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(beyond.status().message().find("beyond the last record LSN"), std::string::npos);
  auto missing = repo_->CreateBranch("acme", "x", "preview-42", {}, std::nullopt);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "branch \"preview-42\" does not exist in tenant \"acme\"");
  EXPECT_EQ(repo_->CreateBranch("acme", "mid", "main", {}, std::nullopt).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(repo_->CreateBranch("acme", "bad/name", "main", {}, std::nullopt).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(repo_->CreateBranch("nobody", "x", "main", {}, std::nullopt).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(RepositoryTest, BranchAtATimeSeesExactlyThatState) {
  const auto [e1, e2] = TwoCommits("data");
  auto b = repo_->CreateBranch("acme", "pitr", "main", {.time = T(150)}, std::nullopt);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->ancestor_lsn, e1);
  EXPECT_EQ(Byte(*Of("pitr"), "data"), '1');
  EXPECT_EQ(Byte(*main_, "data"), '2');
}

TEST_F(RepositoryTest, DeleteIsRefusedForProtectedParentsAndLiveWriters) {
  wal_->AddCommit(1, PgT(1));
  ArchiveMainWal();
  ASSERT_TRUE(repo_->CreateBranch("acme", "child", "main", {}, std::nullopt).ok());
  ASSERT_TRUE(repo_->CreateBranch("acme", "grandchild", "child", {}, std::nullopt).ok());
  auto s = repo_->DeleteBranch("acme", "child");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("grandchild"), std::string::npos) << s;
  ASSERT_TRUE(repo_->SetProtection("acme", "grandchild", true).ok());
  s = repo_->DeleteBranch("acme", "grandchild");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("protected"), std::string::npos);
  EXPECT_EQ(repo_->ResetBranch("acme", "grandchild").status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(repo_->SetProtection("acme", "grandchild", false).ok());
  // A running endpoint blocks deletion.
  auto gc = Of("grandchild");
  auto gen = gc->Attach("endpoint-1", gc->ancestor_lsn(), false, absl::Seconds(30));
  ASSERT_TRUE(gen.ok());
  ASSERT_TRUE(gc->StreamOpened(*gen).ok());
  EXPECT_EQ(repo_->DeleteBranch("acme", "grandchild").code(),
            absl::StatusCode::kFailedPrecondition);
  gc->StreamClosed(*gen);
  ASSERT_TRUE(gc->Detach(*gen).ok());
  const TimelineId gone = gc->id();
  gc.reset();
  ASSERT_TRUE(repo_->DeleteBranch("acme", "grandchild", /*purge=*/true).ok());
  EXPECT_EQ(repo_->GetTimeline(repo_->GetTenant("acme")->id, gone).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(repo_->DeleteBranch("acme", "child", /*purge=*/true).ok());
  EXPECT_EQ(repo_->ListBranches("acme")->size(), 1u);
}

// Whoever still holds a deleted timeline (a WAL receiver, a writer's stream, GC)
// must not write it again: a resurrected record whose ancestor is gone too made the
// pageserver refuse to start ("timeline records reference missing ancestors").
TEST_F(RepositoryTest, ADeletedTimelineIsNeverWrittenAgain) {
  wal_->AddCommit(1, PgT(1));
  ArchiveMainWal();
  ASSERT_TRUE(repo_->CreateBranch("acme", "child", "main", {}, std::nullopt).ok());
  ASSERT_TRUE(repo_->CreateBranch("acme", "grandchild", "child", {}, std::nullopt).ok());
  std::shared_ptr<Timeline> stale = Of("grandchild");
  const Lsn at = stale->ancestor_lsn();
  auto gen = stale->Attach("endpoint-1", at, false, absl::Seconds(30));
  ASSERT_TRUE(gen.ok());
  ASSERT_TRUE(stale->Detach(*gen).ok());
  ASSERT_TRUE(repo_->archive().End(*stale).ok());  // its archive state is now cached
  ASSERT_TRUE(repo_->DeleteBranch("acme", "grandchild", /*purge=*/true).ok());
  ASSERT_TRUE(repo_->DeleteBranch("acme", "child", /*purge=*/true).ok());
  // The archive forgot it along with its stored state.
  EXPECT_EQ(repo_->archive().End(*stale).status().code(), absl::StatusCode::kNotFound);

  // Every write path through the stale pointer is refused.
  EXPECT_FALSE(stale->Attach("endpoint-2", at, true, absl::Seconds(30)).ok());
  EXPECT_FALSE(stale->SetGcCutoff(at).ok());
  EXPECT_FALSE(stale->ApplyBatch(*gen, 1, Batch({MCreate("base/1", at)}), true).ok());
  wal_->AddCommit(2, PgT(2));
  const std::string_view tail = std::string_view(wal_->bytes()).substr(at - kSeg1);
  EXPECT_EQ(repo_->archive().Append(*stale, at, tail, true).code(),
            absl::StatusCode::kFailedPrecondition);
  stale.reset();

  Reopen();
  EXPECT_EQ(repo_->ListBranches("acme")->size(), 1u);
}

TEST_F(RepositoryTest, ResetMovesTheBranchToItsParentsHead) {
  wal_->Add(kMessage, 0, 1, "x");
  Lsn e1 = (wal_->AddCommit(1, PgT(1)), wal_->end());
  WriteBlock(*main_, "f", e1, 'a');
  ArchiveMainWal();
  ASSERT_TRUE(repo_->CreateBranch("acme", "dev", "main", {}, std::nullopt).ok());
  auto dev = Of("dev");
  WriteBlock(*dev, "f", dev->ancestor_lsn() + 8, 'd');
  (void)dev->Detach(gens_[dev.get()]);
  Lsn e2 = (wal_->AddCommit(2, PgT(2)), wal_->end());
  WriteBlock(*main_, "f", e2, 'm');
  ArchiveMainWal();
  const TimelineId old = dev->id();
  dev.reset();
  auto reset = repo_->ResetBranch("acme", "dev");
  ASSERT_TRUE(reset.ok()) << reset.status();
  EXPECT_NE(reset->timeline_id, old);
  EXPECT_EQ(reset->ancestor_lsn, e2);
  EXPECT_EQ(Byte(*Of("dev"), "f"), 'm');
  EXPECT_FALSE(repo_->GetTimeline(repo_->GetTenant("acme")->id, old).ok());  // unreferenced: gone
}

TEST_F(RepositoryTest, RestoreInPlaceKeepsTheOldHeadAsABackup) {
  const auto [e1, e2] = TwoCommits("f");
  (void)main_->Detach(gens_[main_.get()]);
  auto r = repo_->RestoreBranch("acme", "main", {.time = T(150)}, "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->first.name, "main");
  EXPECT_EQ(r->first.ancestor_lsn, e1);
  EXPECT_EQ(r->second.name.rfind("main_old_", 0), 0u) << r->second.name;
  EXPECT_EQ(Byte(*Of("main"), "f"), '1');
  EXPECT_EQ(Byte(*Of(r->second.name), "f"), '2');
  // main's history now ends at e1: e2 is only in the backup's history, so restoring
  // main to it is refused (undoing the restore means restoring from the backup).
  auto again = repo_->RestoreBranch("acme", "main", {.lsn = e2}, "main-before-undo");
  EXPECT_FALSE(again.ok());  // e2 is beyond the restored branch's history
  EXPECT_EQ(again.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(repo_->RestoreBranch("acme", "main", {}, "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Issue 13: a branch of the longest valid name can be restored with the default
// backup name (NAME_old_<time> would be 84 characters: NAME is shortened).
TEST_F(RepositoryTest, TheLongestBranchNameRestoresWithADefaultBackupName) {
  const auto [e1, e2] = TwoCommits("f");
  const std::string name(kMaxNameLength, 'n');
  ASSERT_TRUE(repo_->CreateBranch("acme", name, "main", {}, std::nullopt).ok());
  auto r = repo_->RestoreBranch("acme", name, {.lsn = e1}, "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LE(r->second.name.size(), kMaxNameLength) << r->second.name;
  EXPECT_NE(r->second.name.find("_old_"), std::string::npos) << r->second.name;
  EXPECT_EQ(Byte(*Of(name), "f"), '1');
}

// Issue 10: every branch has its own Postgres passwords, made once and kept across
// a restart; a restore's backup gets its own.
TEST_F(RepositoryTest, EachBranchHasItsOwnDurablePasswords) {
  wal_->Add(kMessage, 0, 1, "x");
  Lsn e1 = (wal_->AddCommit(1, PgT(100)), wal_->end());
  WriteBlock(*main_, "f", e1, '1');
  ArchiveMainWal();
  (void)main_->Detach(gens_[main_.get()]);
  ASSERT_TRUE(repo_->CreateBranch("acme", "dev", "main", {.lsn = e1}, std::nullopt).ok());
  auto main_pw = repo_->GetCredentials("acme", "main");
  auto dev_pw = repo_->GetCredentials("acme", "dev");
  ASSERT_TRUE(main_pw.ok() && dev_pw.ok()) << main_pw.status() << dev_pw.status();
  EXPECT_EQ(main_pw->owner_password.size(), 32u);
  EXPECT_NE(main_pw->owner_password, main_pw->reader_password);
  EXPECT_NE(main_pw->owner_password, dev_pw->owner_password);
  EXPECT_NE(main_pw->reader_password, dev_pw->reader_password);
  EXPECT_EQ(repo_->GetCredentials("acme", "main")->owner_password, main_pw->owner_password);
  Reopen();
  auto again = repo_->GetCredentials("acme", "main");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->owner_password, main_pw->owner_password);
  EXPECT_EQ(again->reader_password, main_pw->reader_password);
  auto restored = repo_->RestoreBranch("acme", "dev", {.lsn = e1}, "dev-backup");
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(repo_->GetCredentials("acme", "dev")->owner_password, dev_pw->owner_password);
  EXPECT_NE(repo_->GetCredentials("acme", "dev-backup")->owner_password, dev_pw->owner_password);
  EXPECT_EQ(repo_->GetCredentials("acme", "nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RepositoryTest, ExpiredBranchesAreDeletedUnlessProtected) {  // to the trash
  wal_->AddCommit(1, PgT(1));
  ArchiveMainWal();
  ASSERT_TRUE(repo_->CreateBranch("acme", "temp", "main", {}, absl::Seconds(60)).ok());
  ASSERT_TRUE(repo_->CreateBranch("acme", "kept", "main", {}, absl::Seconds(60)).ok());
  ASSERT_TRUE(repo_->SetProtection("acme", "kept", true).ok());
  EXPECT_EQ(repo_->DeleteExpiredBranches(absl::Now()), 0);
  EXPECT_EQ(repo_->DeleteExpiredBranches(absl::Now() + absl::Minutes(2)), 1);
  EXPECT_FALSE(repo_->GetBranch("acme", "temp").ok());
  EXPECT_TRUE(repo_->GetBranch("acme", "kept").ok());
  EXPECT_TRUE(repo_->GetBranch("acme", "kept")->expires.has_value());
}

// Issue 10: deletes are undoable. A deleted branch leaves the namespace but keeps its
// timeline, in the trash, for the tenant's retention; undelete brings back exactly
// its data; the trash survives a restart.
TEST_F(RepositoryTest, ADeletedBranchGoesToTheTrashAndComesBackWithItsData) {
  wal_->AddCommit(1, PgT(1));
  ArchiveMainWal();
  ASSERT_TRUE(repo_->CreateBranch("acme", "dev", "main", {}, std::nullopt).ok());
  auto dev = Of("dev");
  WriteBlock(*dev, "f", dev->ancestor_lsn() + 8, 'd');
  (void)dev->Detach(gens_[dev.get()]);
  const TimelineId id = dev->id();
  dev.reset();
  ASSERT_TRUE(repo_->DeleteBranch("acme", "dev").ok());
  auto gone = repo_->GetBranch("acme", "dev");
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(gone.status().message().find("undelete"), std::string::npos) << gone.status();
  auto trash = repo_->ListDeletedBranches("acme");
  ASSERT_TRUE(trash.ok() && trash->size() == 1u);
  EXPECT_EQ((*trash)[0].name, "dev");
  ASSERT_TRUE((*trash)[0].deleted.has_value() && (*trash)[0].purge_after.has_value());
  EXPECT_GE(*(*trash)[0].purge_after - *(*trash)[0].deleted, absl::Hours(24 * 7));
  EXPECT_EQ(repo_->ListBranches("acme")->size(), 1u);

  // The name may be reused; undelete then refuses to replace the new branch.
  ASSERT_TRUE(repo_->CreateBranch("acme", "dev", "main", {}, std::nullopt).ok());
  EXPECT_EQ(repo_->UndeleteBranch("acme", "dev").status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(repo_->DeleteBranch("acme", "dev", /*purge=*/true).ok());

  Reopen();  // the trash is durable
  ASSERT_EQ(repo_->ListDeletedBranches("acme")->size(), 1u);
  auto back = repo_->UndeleteBranch("acme", "dev");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->timeline_id, id);
  EXPECT_FALSE(back->deleted.has_value());
  EXPECT_EQ(Byte(*Of("dev"), "f"), 'd');
  EXPECT_TRUE(repo_->ListDeletedBranches("acme")->empty());
  EXPECT_EQ(repo_->UndeleteBranch("acme", "dev").status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(RepositoryTest, TheTrashIsFreedByPurgeOrAfterItsRetention) {
  wal_->AddCommit(1, PgT(1));
  ArchiveMainWal();
  const TenantId tenant = repo_->GetTenant("acme")->id;
  std::map<std::string, TimelineId> ids;
  for (const char* name : {"a", "b", "c"}) {
    ASSERT_TRUE(repo_->CreateBranch("acme", name, "main", {}, std::nullopt).ok());
    ids[name] = Of(name)->id();
    ASSERT_TRUE(repo_->DeleteBranch("acme", name).ok());
  }
  // Purge from the trash: gone at once.
  ASSERT_TRUE(repo_->DeleteBranch("acme", "a", /*purge=*/true).ok());
  EXPECT_EQ(repo_->GetTimeline(tenant, ids["a"]).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo_->UndeleteBranch("acme", "a").status().code(), absl::StatusCode::kNotFound);
  // The retention frees the rest, not earlier.
  EXPECT_EQ(repo_->PurgeExpiredTrash(absl::Now()), 0);
  EXPECT_TRUE(repo_->GetTimeline(tenant, ids["b"]).ok());
  EXPECT_EQ(repo_->PurgeExpiredTrash(absl::Now() + absl::Hours(24 * 7 + 1)), 2);
  EXPECT_FALSE(repo_->GetTimeline(tenant, ids["b"]).ok());
  EXPECT_FALSE(repo_->GetTimeline(tenant, ids["c"]).ok());
  EXPECT_TRUE(repo_->ListDeletedBranches("acme")->empty());
  // A tenant's own retention.
  ASSERT_TRUE(repo_->CreateTenant("short", absl::ZeroDuration(), absl::Minutes(5)).ok());
  EXPECT_EQ(repo_->GetTenant("short")->trash_retention, absl::Minutes(5));
}

TEST_F(RepositoryTest, ExpiredBranchesGoToTheTrashAndUndeleteClearsTheTtl) {
  wal_->AddCommit(1, PgT(1));
  ArchiveMainWal();
  ASSERT_TRUE(repo_->CreateBranch("acme", "temp", "main", {}, absl::Seconds(60)).ok());
  EXPECT_EQ(repo_->DeleteExpiredBranches(absl::Now() + absl::Minutes(2)), 1);
  auto back = repo_->UndeleteBranch("acme", "temp");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->expires.has_value());
  EXPECT_EQ(repo_->DeleteExpiredBranches(absl::Now() + absl::Minutes(2)), 0);
}

TEST_F(RepositoryTest, AParentWithATrashedChildIsNotDeleted) {
  wal_->AddCommit(1, PgT(1));
  ArchiveMainWal();
  ASSERT_TRUE(repo_->CreateBranch("acme", "child", "main", {}, std::nullopt).ok());
  ASSERT_TRUE(repo_->CreateBranch("acme", "grandchild", "child", {}, std::nullopt).ok());
  ASSERT_TRUE(repo_->DeleteBranch("acme", "grandchild").ok());
  auto s = repo_->DeleteBranch("acme", "child");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("grandchild (trash)"), std::string::npos) << s;
  ASSERT_TRUE(repo_->DeleteBranch("acme", "grandchild", /*purge=*/true).ok());
  EXPECT_TRUE(repo_->DeleteBranch("acme", "child").ok());
}

// A reset keeps the old timeline while a child reads it; it must go with the last
// child (it used to stay forever, unnamed).
TEST_F(RepositoryTest, ATimelineKeptForItsChildrenGoesWithTheLastOne) {
  wal_->AddCommit(1, PgT(1));
  ArchiveMainWal();
  ASSERT_TRUE(repo_->CreateBranch("acme", "dev", "main", {}, std::nullopt).ok());
  ASSERT_TRUE(repo_->CreateBranch("acme", "feature", "dev", {}, std::nullopt).ok());
  const TimelineId old = Of("dev")->id();
  ASSERT_TRUE(repo_->ResetBranch("acme", "dev").ok());
  const TenantId tenant = repo_->GetTenant("acme")->id;
  EXPECT_TRUE(repo_->GetTimeline(tenant, old).ok());  // feature reads it
  ASSERT_TRUE(repo_->DeleteBranch("acme", "feature", /*purge=*/true).ok());
  EXPECT_EQ(repo_->GetTimeline(tenant, old).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo_->AllTimelines().size(), 2u);  // main and the reset dev
}

// Number of stored versions of one family on a timeline.
size_t CountVersions(PageStore& store, Family family, const TimelineId& id) {
  const std::string prefix = keys::TimelinePrefix(id);
  auto it = store.NewBoundedIterator(family, prefix, keys::PrefixEnd(prefix));
  size_t n = 0;
  for (it->Seek(prefix); it->Valid(); it->Next()) ++n;
  return n;
}

TEST_F(RepositoryTest, GcKeepsExactlyTheVersionsThatCanStillBeRead) {
  // Seven versions of one block, at the ends of seven commits; cutoff after the fifth.
  wal_->Add(kMessage, 0, 1, "x");
  std::vector<Lsn> ends;
  for (int i = 1; i <= 7; ++i) {
    wal_->AddCommit(i, PgT(i));
    ends.push_back(wal_->end());
  }
  ArchiveMainWal();
  for (int i = 0; i < 7; ++i) WriteBlock(*main_, "f", ends[i], static_cast<char>('1' + i));
  ASSERT_EQ(CountVersions(*store_, Family::kBlocks, main_->id()), 7u);
  auto removed = repo_->GcTimeline(main_->id(), ends[4]);
  ASSERT_TRUE(removed.ok()) << removed.status();
  // Kept: '5' (the newest at or below the cutoff), '6' and '7' (above it). The file's
  // single metadata version (its creation) is the newest at or below the cutoff.
  EXPECT_EQ(*removed, 4u);
  EXPECT_EQ(CountVersions(*store_, Family::kBlocks, main_->id()), 3u);
  EXPECT_EQ(CountVersions(*store_, Family::kFiles, main_->id()), 1u);
  EXPECT_EQ(Byte(*main_, "f", ends[4]), '5');
  EXPECT_EQ(Byte(*main_, "f", ends[5]), '6');
  EXPECT_EQ(Byte(*main_, "f"), '7');
  EXPECT_EQ(main_->gc_cutoff_lsn(), ends[4]);
  // Nothing can branch below the cutoff any more; at it, it can.
  auto below = repo_->CreateBranch("acme", "old", "main", {.lsn = ends[2]}, std::nullopt);
  EXPECT_EQ(below.status().code(), absl::StatusCode::kFailedPrecondition) << below.status();
  EXPECT_TRUE(
      repo_->CreateBranch("acme", "at-cutoff", "main", {.lsn = ends[4]}, std::nullopt).ok());
  // GC is idempotent.
  EXPECT_EQ(repo_->GcTimeline(main_->id(), ends[4]).value(), 0u);
}

TEST_F(RepositoryTest, GcKeepsTheVersionAtEveryDescendantsReadPoint) {
  wal_->Add(kMessage, 0, 1, "x");
  std::vector<Lsn> ends;
  for (int i = 1; i <= 6; ++i) {
    wal_->AddCommit(i, PgT(i));
    ends.push_back(wal_->end());
  }
  ArchiveMainWal();
  for (int i = 0; i < 6; ++i) WriteBlock(*main_, "f", ends[i], static_cast<char>('a' + i));
  // child at ends[3] (reads 'd'); grandchild of child branched at ends[1] (reads 'b').
  ASSERT_TRUE(repo_->CreateBranch("acme", "child", "main", {.lsn = ends[3]}, std::nullopt).ok());
  ASSERT_TRUE(repo_->CreateBranch("acme", "grand", "child", {.lsn = ends[1]}, std::nullopt).ok());
  auto removed = repo_->GcTimeline(main_->id(), ends[4]);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(Byte(*Of("child"), "f"), 'd');
  EXPECT_EQ(Byte(*Of("grand"), "f"), 'b');
  EXPECT_EQ(Byte(*main_, "f", ends[4]), 'e');
  EXPECT_EQ(Byte(*main_, "f"), 'f');
  // 'a' (ends[0]) and 'c' (ends[2]) were readable by nobody: 4 of 6 versions stay.
  EXPECT_EQ(*removed, 2u);
  EXPECT_EQ(CountVersions(*store_, Family::kBlocks, main_->id()), 4u);
}

TEST_F(RepositoryTest, EverythingSurvivesARestart) {
  wal_->Add(kMessage, 0, 1, "x");
  Lsn e1 = (wal_->AddCommit(1, PgT(100)), wal_->end());
  WriteBlock(*main_, "f", e1, 'r');
  ArchiveMainWal();
  ASSERT_TRUE(repo_->CreateBranch("acme", "b1", "main", {}, absl::Hours(1)).ok());
  ASSERT_TRUE(repo_->SetProtection("acme", "main", true).ok());
  ASSERT_TRUE(main_->Barrier(gens_[main_.get()], seqs_[main_.get()], absl::Seconds(5)).ok());
  gens_.clear();
  Reopen();
  EXPECT_EQ(repo_->ListBranches("acme")->size(), 2u);
  EXPECT_TRUE(repo_->GetBranch("acme", "main")->is_protected);
  EXPECT_TRUE(repo_->GetBranch("acme", "b1")->expires.has_value());
  EXPECT_EQ(Byte(*Of("b1"), "f"), 'r');
  EXPECT_EQ(repo_->LsnByTimestamp("acme", "main", T(150))->lsn, e1);
  EXPECT_EQ(repo_->archive().End(*main_).value(), wal_->end());
}

TEST_F(RepositoryTest, SizesCountLogicalAndUniqueBytes) {
  wal_->AddCommit(1, PgT(1));
  ArchiveMainWal();
  const Lsn base = main_->last_record_lsn();
  for (uint32_t b = 0; b < 10; ++b) WriteBlock(*main_, "f", base, 'x', b);
  auto info = repo_->GetBranch("acme", "main");
  EXPECT_EQ(info->logical_size, 10u * kBlockSize);
  // Unique bytes are what the store holds: ten versions, their pages compressed.
  EXPECT_GT(info->unique_size, 10u * kValueHeaderSize);
  ASSERT_TRUE(repo_->CreateBranch("acme", "copy", "main", {.lsn = base}, std::nullopt).ok());
  // The blocks are tagged at the branch point, so the child reads them all: shared.
  auto main_after = repo_->GetBranch("acme", "main");
  EXPECT_LT(main_after->unique_size, info->unique_size / 4) << info->unique_size;
  auto copy = repo_->GetBranch("acme", "copy");
  EXPECT_EQ(copy->logical_size, 10u * kBlockSize);
  EXPECT_LT(copy->unique_size, info->unique_size / 4) << info->unique_size;
}

// Number of stored versions of `path` in one family on a timeline.
size_t CountPathVersions(PageStore& store, Family family, const TimelineId& id,
                         const std::string& path) {
  const std::string prefix = keys::PathPrefix(id, path);
  auto it = store.NewBoundedIterator(family, prefix, keys::PrefixEnd(prefix));
  size_t n = 0;
  for (it->Seek(prefix); it->Valid(); it->Next()) ++n;
  return n;
}

// Issue 9, item 2: Postgres unlinks pg_internal.init without writing WAL, so the
// parent's compute can produce mutations tagged exactly X after a branch at X exists.
// The branch must not see them, and its own writer must be able to act on the files
// it mounted.
TEST_F(RepositoryTest, ABranchPointIsFrozenAgainstLaterMutationsAtThatTag) {
  wal_->Add(kMessage, 0, 1, "x");
  wal_->AddCommit(1, PgT(1));
  const Lsn x = wal_->end();
  ArchiveMainWal();
  WriteBlock(*main_, "f", x, 'a');
  WriteBlock(*main_, "pg_internal.init", x, 'i');
  auto b = repo_->CreateBranch("acme", "b", "main", {.lsn = x}, std::nullopt);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->ancestor_lsn, x);
  // The parent keeps going at the same tag: W did not move.
  auto late = main_->ApplyBatch(
      gens_[main_.get()], ++seqs_[main_.get()],
      Batch({MWrite("f", x, 0, Fill('z')), MUnlink("pg_internal.init", x), MCreate("new-file", x)}),
      false);
  ASSERT_TRUE(late.ok()) << late.status();
  auto child = Of("b");
  EXPECT_EQ(Byte(*child, "f"), 'a');
  EXPECT_EQ(Byte(*child, "f", x), 'a');
  EXPECT_TRUE(child->GetFileState("pg_internal.init", x).value()->state.exists);
  EXPECT_FALSE(child->GetFileState("new-file", Lsn::Max()).value().has_value());
  auto manifest = child->ListFiles(x);
  ASSERT_TRUE(manifest.ok());
  EXPECT_EQ(manifest->size(), 2u);  // f, pg_internal.init
  // The parent sees its own writes; its state at x is what the branch saw.
  EXPECT_EQ(Byte(*main_, "f"), 'z');
  EXPECT_EQ(Byte(*main_, "f", x), 'a');
  EXPECT_FALSE(main_->GetFileState("pg_internal.init", Lsn::Max()).value()->state.exists);
  // The branch's compute removes the file it mounted, as Postgres does at startup.
  auto g = child->Attach("child", x, false, absl::Seconds(30));
  ASSERT_TRUE(g.ok()) << g.status();
  auto unlink = child->ApplyBatch(*g, 1, Batch({MUnlink("pg_internal.init", x)}), false);
  EXPECT_TRUE(unlink.ok()) << unlink.status();
}

// Issue 9, item 5: a writer starting below the archived WAL would hide committed
// history (and GC would then delete it).
TEST_F(RepositoryTest, AttachBelowTheArchivedWalIsRefused) {
  wal_->Add(kMessage, 0, 1, "x");
  wal_->AddCommit(1, PgT(1));
  ArchiveMainWal();
  const Lsn end = wal_->end();
  auto below = main_->Attach("late", kSeg1 + 64, true, absl::Seconds(30));
  EXPECT_EQ(below.status().code(), absl::StatusCode::kFailedPrecondition) << below.status();
  EXPECT_NE(below.status().message().find(end.ToString()), std::string::npos) << below.status();
  EXPECT_TRUE(main_->Attach("at-end", end, true, absl::Seconds(30)).ok());
}

// Issue 9, item 6: a branch created while GC decides its cutoff either is refused or
// keeps every version it reads.
TEST_F(RepositoryTest, ABranchRacingGcIsRefusedOrComplete) {
  wal_->Add(kMessage, 0, 1, "x");
  std::vector<Lsn> ends;
  for (int i = 1; i <= 3; ++i) {
    wal_->AddCommit(i, PgT(i));
    ends.push_back(wal_->end());
  }
  ArchiveMainWal();
  WriteBlock(*main_, "f", ends[0], 'a');
  WriteBlock(*main_, "f", ends[2], 'c');
  absl::StatusOr<BranchInfo> racing = absl::UnknownError("not attempted");
  SyncPoints::Set("Repository::GcTimeline:CutoffDecided", [&] {
    racing = repo_->CreateBranch("acme", "racing", "main", {.lsn = ends[1]}, std::nullopt);
  });
  auto removed = repo_->GcTimeline(main_->id(), ends[2]);
  SyncPoints::ClearAll();
  ASSERT_TRUE(removed.ok()) << removed.status();
  if (racing.ok()) {
    EXPECT_EQ(Byte(*Of("racing"), "f"), 'a') << "GC deleted a version the new branch reads";
  } else {
    EXPECT_EQ(racing.status().code(), absl::StatusCode::kFailedPrecondition) << racing.status();
  }
}

// Issue 9, item 6: GC must not delete a version the current writer wrote at the same
// (file, block, tag) as an abandoned version it is about to delete.
TEST_F(RepositoryTest, GcNeverDeletesAVersionRewrittenByTheCurrentWriter) {
  const Lsn start = kSeg1 + 100, tail = kSeg1 + 500;
  uint64_t g1 = gens_[main_.get()];
  ASSERT_TRUE(main_
                  ->ApplyBatch(g1, ++seqs_[main_.get()],
                               Batch({MCreate("f", start), MWrite("f", tail, 0, Fill('x'))}), false)
                  .ok());
  // The writer died; its WAL ended at `start + 100`: the version at `tail` is abandoned.
  auto g2 = main_->Attach("next", start + 100, true, absl::Seconds(30));
  ASSERT_TRUE(g2.ok()) << g2.status();
  SyncPoints::Set("Gc:BeforeDeletingAbandoned", [&] {
    // The new writer writes the same block at the same tag.
    auto r = main_->ApplyBatch(*g2, 1, Batch({MWrite("f", tail, 0, Fill('n'))}), false);
    EXPECT_TRUE(r.ok()) << r.status();
  });
  auto removed = repo_->GcTimeline(main_->id(), kSeg1);
  SyncPoints::ClearAll();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(Byte(*main_, "f"), 'n');
}

// Issue 9, item 6: the timeline record is written by attaches, GC and the archive; a
// stale copy must never overwrite a newer one (a lost generation lets a fenced writer
// write again after a restart).
TEST_F(RepositoryTest, TheTimelineRecordIsNeverOverwrittenByAStaleCopy) {
  wal_->Add(kMessage, 0, 1, "x");
  wal_->AddCommit(1, PgT(1));
  uint64_t newer = 0;
  SyncPoints::Set("WalArchive::Append:BeforeWrite",
                  [&] { newer = main_->Attach("newer", kSeg1, true, absl::Seconds(30)).value(); });
  ArchiveMainWal();
  SyncPoints::ClearAll();
  ASSERT_NE(newer, 0u);
  ASSERT_TRUE(main_->Detach(newer).ok());
  gens_.clear();
  Reopen();
  EXPECT_EQ(main_->generation(), newer);
  EXPECT_EQ(main_->last_record_lsn(), wal_->end());
}

// Issue 9, item 11: commits in the imported WAL (initdb's) come before the imported
// state, which is the first point a compute can start at.
TEST_F(RepositoryTest, ATimeInsideTheImportedWalIsNeverABranchPoint) {
  wal_->Add(kMessage, 0, 1, "x");
  wal_->AddCommit(1, pg::TimeToPgTimestamp(absl::Now() - absl::Hours(1)));  // initdb's
  wal_->Add(kMessage, 0, 1, "checkpoint");
  const Lsn imported = wal_->end();
  ArchiveMainWal();
  ASSERT_TRUE(repo_->archive().SetFirstBoundary(*main_, imported).ok());
  // After the import (the root was created in SetUp): the imported state.
  auto after = repo_->CreateBranch("acme", "after", "main", {.time = absl::Now()}, std::nullopt);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->ancestor_lsn, imported);
  // Before the import: no state exists to start from.
  auto before = repo_->CreateBranch("acme", "before", "main",
                                    {.time = absl::Now() - absl::Minutes(30)}, std::nullopt);
  EXPECT_EQ(before.status().code(), absl::StatusCode::kFailedPrecondition) << before.status();
  auto inside = repo_->CreateBranch("acme", "inside", "main", {.lsn = imported - 8}, std::nullopt);
  EXPECT_FALSE(inside.ok());
}

// Issue 9, item 12: a dropped file's blocks are garbage once no read point can see
// them (DROP TABLE, VACUUM FULL, TRUNCATE, CLUSTER leave the old file behind).
TEST_F(RepositoryTest, GcReclaimsDroppedFilesUnlessABranchReadsThem) {
  wal_->Add(kMessage, 0, 1, "x");
  std::vector<Lsn> ends;
  for (int i = 1; i <= 4; ++i) {
    wal_->AddCommit(i, PgT(i));
    ends.push_back(wal_->end());
  }
  ArchiveMainWal();
  for (uint32_t b = 0; b < 4; ++b) WriteBlock(*main_, "rel100", ends[0], 'd', b);
  for (uint32_t b = 0; b < 4; ++b) WriteBlock(*main_, "rel200", ends[0], 'k', b);
  auto gen = gens_[main_.get()];
  ASSERT_TRUE(main_
                  ->ApplyBatch(gen, ++seqs_[main_.get()],
                               Batch({MUnlink("rel100", ends[1]), MSetSize("rel200", ends[1], 0),
                                      MUnlink("rel200", ends[2])}),
                               false)
                  .ok());
  ASSERT_TRUE(repo_->GcTimeline(main_->id(), ends[3]).ok());
  EXPECT_EQ(CountPathVersions(*store_, Family::kBlocks, main_->id(), "rel100"), 0u);
  EXPECT_EQ(CountPathVersions(*store_, Family::kBlocks, main_->id(), "rel200"), 0u);
  EXPECT_EQ(CountPathVersions(*store_, Family::kFiles, main_->id(), "rel100"), 0u);
  EXPECT_FALSE(main_->GetFileState("rel100", ends[3]).value().has_value());
  EXPECT_TRUE(main_->ListFiles(ends[3])->empty());
}

TEST_F(RepositoryTest, GcKeepsADroppedFileABranchStillReads) {
  wal_->Add(kMessage, 0, 1, "x");
  std::vector<Lsn> ends;
  for (int i = 1; i <= 3; ++i) {
    wal_->AddCommit(i, PgT(i));
    ends.push_back(wal_->end());
  }
  ArchiveMainWal();
  for (uint32_t b = 0; b < 3; ++b) WriteBlock(*main_, "rel100", ends[0], 'd', b);
  ASSERT_TRUE(repo_->CreateBranch("acme", "old", "main", {.lsn = ends[0]}, std::nullopt).ok());
  ASSERT_TRUE(main_
                  ->ApplyBatch(gens_[main_.get()], ++seqs_[main_.get()],
                               Batch({MUnlink("rel100", ends[1])}), false)
                  .ok());
  ASSERT_TRUE(repo_->GcTimeline(main_->id(), ends[2]).ok());
  auto old = Of("old");
  for (uint32_t b = 0; b < 3; ++b) {
    auto page = old->GetPage("rel100", b, Lsn::Max());
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_EQ(page->data[0], 'd');
  }
  EXPECT_FALSE(main_->GetFileState("rel100", ends[2]).value()->state.exists);
}

}  // namespace
}  // namespace cambium::pageserver
