// RemoteHistory over the local-directory object store (objstore/local_store.h): what
// a restore brings back, damaged objects, stale generations, pruning, an unreachable
// store. The same class against a real S3 service (Ceph RGW) with a real Postgres:
// tests/objstore/rebuild_test.cc.
#include "pageserver/remote_history.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "pageserver/page_store.h"
#include "pageserver/repository.h"
#include "pageserver/test_util.h"
#include "rocksdb/sst_file_writer.h"
#include "tests/harness/temp_dir.h"
#include "tests/harness/wal_builder.h"

namespace cambium::pageserver {
namespace {

namespace fs = std::filesystem;
using namespace ::cambium::pageserver::testing;  // NOLINT
using ::cambium::testing::TempDir;
using ::cambium::testing::WalBuilder;

class RemoteHistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>(TempDir::Create("cambium-remote-").value());
    fs::create_directories(StoreRoot());
  }
  void TearDown() override { Close(); }

  std::string StoreRoot() const { return dir_->Sub("objects"); }

  std::unique_ptr<RemoteHistory> OpenRemote(const std::string& data,
                                            RemoteHistoryOptions options = {}) {
    auto store = objstore::OpenObjectStore("file://" + StoreRoot());
    EXPECT_TRUE(store.ok()) << store.status();
    options.interval = absl::Hours(1);  // uploads only when a test asks
    options.wait_timeout = absl::Seconds(30);
    auto remote = RemoteHistory::Open(std::move(*store), data, options);
    EXPECT_TRUE(remote.ok()) << remote.status();
    return remote.ok() ? std::move(*remote) : nullptr;
  }

  // Opens the page store and repository on `data` (restoring first when asked) and
  // starts uploads.
  void Open(const std::string& data, RemoteHistoryOptions options = {}, bool restore = false,
            bool* restored = nullptr) {
    data_ = data;
    remote_ = OpenRemote(data, options);
    ASSERT_NE(remote_, nullptr);
    if (restore) {
      auto r = remote_->RestoreIfEmpty();
      ASSERT_TRUE(r.ok()) << r.status();
      if (restored != nullptr) *restored = *r;
    }
    store_ = PageStore::Open(data, PageStoreOptions{.cache_bytes = 16 << 20}).value();
    repo_ = Repository::Open(store_.get(), RepositoryOptions{.writer_lease = absl::Seconds(30),
                                                             .ttl_check_interval = absl::Hours(1)})
                .value();
    remote_->Start(store_.get(), repo_.get());
  }

  void Close() {
    if (remote_) remote_->Stop();
    main_.reset();
    repo_.reset();
    store_.reset();
    remote_.reset();
  }

  // Tenant acme with branch main: block 0 of base/1/1 is 'a' then 'b', archived.
  void MakeHistory() {
    ASSERT_TRUE(repo_->CreateTenant("acme", absl::ZeroDuration()).ok());
    main_ = repo_->CreateRootTimeline("acme", "main", kSeg1).value();
    gen_ = main_->Attach("test", kSeg1, true, absl::Seconds(30)).value();
    wal_ = std::make_unique<WalBuilder>(kSeg1);
    e1_ = (wal_->AddCommit(1, PgT(100)), wal_->end());
    Apply(Batch({MMkdir("base", e1_), MMkdir("base/1", e1_), MCreate("base/1/1", e1_),
                 MWrite("base/1/1", e1_, 0, Fill('a'))}));
    e2_ = (wal_->AddCommit(2, PgT(200)), wal_->end());
    Apply(Batch({MWrite("base/1/1", e2_, 0, Fill('b'))}));
    ASSERT_TRUE(repo_->archive().Append(*main_, kSeg1, wal_->bytes(), false).ok());
    ASSERT_TRUE(
        repo_->CreateBranch("acme", "dev", "main", BranchPoint{.lsn = e1_}, std::nullopt).ok());
  }

  void Apply(const google::protobuf::RepeatedPtrField<v1::Mutation>& batch) {
    auto r = main_->ApplyBatch(gen_, ++seq_, batch, false);
    ASSERT_TRUE(r.ok()) << r.status();
  }

  char Byte(const std::string& branch, Lsn lsn = Lsn::Max()) {
    auto b = repo_->GetBranch("acme", branch);
    EXPECT_TRUE(b.ok()) << b.status();
    if (!b.ok()) return '?';
    auto t = repo_->GetTimeline(repo_->GetTenant("acme")->id, b->timeline_id);
    EXPECT_TRUE(t.ok()) << t.status();
    if (!t.ok()) return '?';
    auto page = (*t)->GetPage("base/1/1", 0, lsn);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->data[0] : '?';
  }

  std::vector<std::string> Keys(const std::string& prefix) {
    std::vector<std::string> out;
    if (!fs::exists(StoreRoot() + "/" + prefix)) return out;
    for (const auto& e : fs::recursive_directory_iterator(StoreRoot() + "/" + prefix)) {
      if (e.is_regular_file()) out.push_back(fs::relative(e.path(), StoreRoot()).string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  std::unique_ptr<TempDir> dir_;
  std::string data_;
  std::unique_ptr<RemoteHistory> remote_;
  std::unique_ptr<PageStore> store_;
  std::unique_ptr<Repository> repo_;
  std::shared_ptr<Timeline> main_;
  std::unique_ptr<WalBuilder> wal_;
  uint64_t gen_ = 0, seq_ = 0;
  Lsn e1_, e2_;
};

TEST_F(RemoteHistoryTest, AnEmptyDataDirectoryIsRestoredToTheLastUpload) {
  Open(dir_->Sub("disk1"));
  MakeHistory();
  ASSERT_TRUE(remote_->WaitForUpload().ok());
  const Lsn archived = repo_->archive().End(*main_).value();
  EXPECT_EQ(remote_->UploadedArchiveEnd(main_->id()), archived);
  // Written after the upload: what a lost disk loses (the safekeepers still hold its
  // WAL, because they were told only the uploaded archive end).
  const Lsn e3 = (wal_->AddCommit(3, PgT(300)), wal_->end());
  Apply(Batch({MWrite("base/1/1", e3, 0, Fill('c'))}));
  EXPECT_EQ(Byte("main"), 'c');
  Close();

  bool restored = false;
  Open(dir_->Sub("disk2"), {}, /*restore=*/true, &restored);
  EXPECT_TRUE(restored);
  EXPECT_EQ(Byte("main"), 'b');
  EXPECT_EQ(Byte("main", e1_), 'a');
  EXPECT_EQ(Byte("dev"), 'a');  // the branch and its frozen point came back
  main_ =
      repo_
          ->GetTimeline(repo_->GetTenant("acme")->id, repo_->GetBranch("acme", "main")->timeline_id)
          .value();
  EXPECT_EQ(repo_->archive().End(*main_).value(), archived);
  EXPECT_EQ(remote_->UploadedArchiveEnd(main_->id()), archived);
  // The new pageserver uploads under its own, higher generation.
  ASSERT_TRUE(remote_->WaitForUpload().ok());
  EXPECT_GT(remote_->generation(), 1u);
}

TEST_F(RemoteHistoryTest, LocalDataIsUsedAsItIsAndANewStoreRestoresNothing) {
  Open(dir_->Sub("disk1"));
  bool restored = true;
  Close();
  Open(dir_->Sub("disk2"), {}, /*restore=*/true, &restored);
  EXPECT_FALSE(restored);  // nothing uploaded yet
  MakeHistory();
  ASSERT_TRUE(remote_->WaitForUpload().ok());
  Close();
  Open(dir_->Sub("disk2"), {}, /*restore=*/true, &restored);
  EXPECT_FALSE(restored);  // the disk has a store: it is not replaced
  EXPECT_EQ(Byte("main"), 'b');
}

TEST_F(RemoteHistoryTest, AnIdlePageserverUploadsNothing) {
  Open(dir_->Sub("disk1"));
  MakeHistory();
  ASSERT_TRUE(remote_->WaitForUpload().ok());
  const std::vector<std::string> after_first = Keys("");
  ASSERT_TRUE(remote_->WaitForUpload().ok());  // nothing written since
  EXPECT_EQ(Keys(""), after_first);
  const size_t indexes = Keys("index").size();
  Apply(Batch({MWrite("base/1/1", e2_, 1, Fill('z'))}));
  ASSERT_TRUE(remote_->WaitForUpload().ok());
  EXPECT_EQ(Keys("index").size(), indexes + 1);
}

// An ingested SST file (a tenant attached from another pageserver) usually takes no
// sequence number: it still is a change, and the next upload must hold it.
TEST_F(RemoteHistoryTest, AnIngestedFileIsUploadedThoughItTakesNoSequenceNumber) {
  Open(dir_->Sub("disk1"));
  MakeHistory();
  ASSERT_TRUE(remote_->WaitForUpload().ok());
  const size_t indexes = Keys("index").size();
  const std::string sst = dir_->Sub("ingest.sst");
  {
    rocksdb::SstFileWriter writer(rocksdb::EnvOptions(),
                                  store_->db()->GetOptions(store_->cf(Family::kMeta)));
    ASSERT_TRUE(writer.Open(sst).ok());
    ASSERT_TRUE(writer.Put("zz-ingested", "here").ok());
    ASSERT_TRUE(writer.Finish().ok());
  }
  rocksdb::IngestExternalFileOptions ingest;
  ingest.move_files = true;
  ASSERT_TRUE(store_->db()->IngestExternalFile(store_->cf(Family::kMeta), {sst}, ingest).ok());
  ASSERT_TRUE(remote_->WaitForUpload().ok());
  EXPECT_EQ(Keys("index").size(), indexes + 1);
  Close();
  Open(dir_->Sub("disk2"), {}, /*restore=*/true);
  auto got = store_->GetMeta("zz-ingested");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->value_or("(missing)"), "here");
}

TEST_F(RemoteHistoryTest, ADamagedObjectFailsTheRestoreWithDataLoss) {
  Open(dir_->Sub("disk1"));
  MakeHistory();
  ASSERT_TRUE(remote_->WaitForUpload().ok());
  Close();
  const std::vector<std::string> layers = Keys("layers");
  ASSERT_FALSE(layers.empty());
  {
    std::fstream f(StoreRoot() + "/" + layers.front(),
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  auto remote = OpenRemote(dir_->Sub("disk2"));
  ASSERT_NE(remote, nullptr);
  auto r = remote->RestoreIfEmpty();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_FALSE(fs::exists(dir_->Sub("disk2/CURRENT")));  // never a half-restored store
}

TEST_F(RemoteHistoryTest, ADamagedIndexIsReplacedWhenTheDiskStillHoldsTheStore) {
  Open(dir_->Sub("disk1"));
  MakeHistory();
  ASSERT_TRUE(remote_->WaitForUpload().ok());
  Close();
  for (const std::string& key : Keys("index")) {
    std::ofstream(StoreRoot() + "/" + key, std::ios::trunc) << "garbage";
  }
  // Nothing to restore from: the damage is the answer.
  auto remote = RemoteHistory::Open(objstore::OpenObjectStore("file://" + StoreRoot()).value(),
                                    dir_->Sub("disk2"));
  ASSERT_FALSE(remote.ok());
  EXPECT_EQ(remote.status().code(), absl::StatusCode::kDataLoss) << remote.status();
  // The store on disk1 is the truth: it starts and uploads everything anew.
  Open(dir_->Sub("disk1"));
  ASSERT_TRUE(remote_->WaitForUpload().ok());
  Close();
  bool restored = false;
  Open(dir_->Sub("disk3"), {}, /*restore=*/true, &restored);
  EXPECT_TRUE(restored);
  EXPECT_EQ(Byte("main"), 'b');
  EXPECT_EQ(Byte("dev"), 'a');
}

TEST_F(RemoteHistoryTest, AStalePageserverNeitherUploadsNorDeletes) {
  Open(dir_->Sub("disk1"), RemoteHistoryOptions{.keep_indexes = 1});
  MakeHistory();
  ASSERT_TRUE(remote_->WaitForUpload().ok());
  // Another pageserver attaches the same history (a rebuild elsewhere).
  auto newer = OpenRemote(dir_->Sub("disk2"));
  ASSERT_NE(newer, nullptr);
  ASSERT_TRUE(newer->RestoreIfEmpty().value());
  const std::vector<std::string> before = Keys("");
  // The old one keeps running: its uploads fail and remove nothing.
  Apply(Batch({MWrite("base/1/1", e2_, 1, Fill('z'))}));
  absl::Status s = remote_->WaitForUpload();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("claimed by another pageserver"), std::string_view::npos) << s;
  EXPECT_EQ(Keys(""), before);
}

TEST_F(RemoteHistoryTest, PruningKeepsTheNewestIndexesAndWhatTheyName) {
  Open(dir_->Sub("disk1"), RemoteHistoryOptions{.keep_indexes = 2});
  MakeHistory();
  for (int i = 0; i < 5; ++i) {
    Lsn e = (wal_->AddCommit(10 + i, PgT(300 + i)), wal_->end());
    Apply(Batch({MWrite("base/1/1", e, 0, Fill(static_cast<char>('c' + i)))}));
    // Compaction replaces files: the replaced ones must go once no kept index names them.
    ASSERT_TRUE(store_->CompactRange(Family::kBlocks, "", std::string(64, '\xff')).ok());
    ASSERT_TRUE(remote_->WaitForUpload().ok());
  }
  EXPECT_EQ(Keys("index").size(), 2u);
  const size_t layers = Keys("layers").size();
  Close();
  Open(dir_->Sub("disk2"), {}, /*restore=*/true);
  EXPECT_EQ(Byte("main"), 'g');
  EXPECT_EQ(Byte("dev"), 'a');
  // A store that only grows would keep one more set of files per upload.
  EXPECT_LT(layers, 5u * 5u);
}

TEST_F(RemoteHistoryTest, AnUnreachableStoreFailsTheWaitNotTheWrites) {
  Open(dir_->Sub("disk1"));
  MakeHistory();
  ASSERT_TRUE(remote_->WaitForUpload().ok());
  const Lsn uploaded = remote_->UploadedArchiveEnd(main_->id());
  fs::rename(StoreRoot(), StoreRoot() + ".away");
  const Lsn e3 = (wal_->AddCommit(3, PgT(300)), wal_->end());
  Apply(Batch({MWrite("base/1/1", e3, 0, Fill('c'))}));  // writes go on
  ASSERT_TRUE(repo_->archive().Append(*main_, kSeg1, wal_->bytes(), false).ok());
  absl::Status s = remote_->WaitForUpload();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not yet in the object store"), std::string_view::npos) << s;
  EXPECT_EQ(remote_->UploadedArchiveEnd(main_->id()), uploaded);  // safekeepers keep WAL
  fs::rename(StoreRoot() + ".away", StoreRoot());
  ASSERT_TRUE(remote_->WaitForUpload().ok());  // it catches up
  EXPECT_EQ(remote_->UploadedArchiveEnd(main_->id()), repo_->archive().End(*main_).value());
}

}  // namespace
}  // namespace cambium::pageserver
