// ShimFs operations called directly (no kernel mount), with a fake WAL target and a
// real in-process pageserver: the file-system rules of issue 9 that are about what
// the shim does with one call.
//  - O_SYNC/O_DSYNC writes of WAL wait for the quorum (open_datasync);
//  - WAL written below the start LSN must be what was replayed;
//  - open(O_TRUNC) truncates;
//  - written blocks stay pinned in the cache until durable, not merely applied;
//  - a block written through the page cache in parts is one whole version;
//  - WAL fetched while Postgres already replays: a read waits for its bytes (issue 11).
#include "compute-shim/shim_fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/sync_point.h"
#include "compute-shim/block_cache.h"
#include "compute-shim/mutation_sender.h"
#include "compute-shim/pageserver_client.h"
#include "compute-shim/shim_metrics.h"
#include "gtest/gtest.h"
#include "pageserver/pageserver.h"
#include "tests/harness/temp_dir.h"

namespace cambium::shim {
namespace {

using ::cambium::testing::TempDir;

class FakeWal : public WalTarget {
 public:
  absl::Status Append(Lsn lsn, std::string_view bytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    appended_.emplace_back(lsn, std::string(bytes));
    return absl::OkStatus();
  }
  absl::Status WaitForFlush(Lsn lsn, absl::Duration) override {
    std::lock_guard<std::mutex> lock(mu_);
    flushed_ = std::max(flushed_, lsn);
    return absl::OkStatus();
  }
  Lsn flushed() {
    std::lock_guard<std::mutex> lock(mu_);
    return flushed_;
  }
  size_t appends() {
    std::lock_guard<std::mutex> lock(mu_);
    return appended_.size();
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<Lsn, std::string>> appended_;
  Lsn flushed_;
};

// The first WAL segment of timeline 1 starts at 16 MiB; the compute starts 10000
// bytes into it.
constexpr Lsn kSegment(16 << 20);
constexpr Lsn kWalStart = kSegment + 10000;
const std::string kSegmentName = "000000010000000000000001";

class ShimFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>(TempDir::Create("cambium-shimfs-").value());
    pageserver::PageServerConfig config;
    config.listen = "127.0.0.1:0";
    config.data_dir = dir_->Sub("ps");
    config.gc_interval = "0";
    config.cache_mb = 16;
    config.writer_lease = "1s";
    config_ = config;
    server_ = pageserver::PageServer::Start(config).value();
    auto* repo = server_->repository();
    ASSERT_TRUE(repo->CreateTenant("acme", absl::ZeroDuration()).ok());
    auto root = repo->CreateRootTimeline("acme", "main", kSegment);
    ASSERT_TRUE(root.ok()) << root.status();
    timeline_ = *root;
    client_ = std::make_unique<PageserverClient>(absl::StrFormat("127.0.0.1:%d", server_->port()),
                                                 timeline_->tenant_id(), timeline_->id());
    auto attached = client_->AttachWriter("test", kWalStart, false);
    ASSERT_TRUE(attached.ok()) << attached.status();
    cache_ = BlockCache::Create(1024);
    BlockCache* cache = cache_.get();
    sender_ = std::make_unique<MutationSender>(
        client_.get(), attached->generation(),
        MutationSenderOptions{.sync_interval = absl::Hours(1)}, [this, cache](uint64_t n) {
          durable_ = std::max<uint64_t>(durable_, n);
          cache->MutationsDurable(n);
        });
    fs_ = std::make_unique<ShimFs>(
        ShimFsOptions{.scratch = dir_->Sub("scratch"), .uid = getuid(), .gid = getgid()},
        client_.get(), sender_.get(), cache, &wal_, kWalStart);
    v1::FileMeta dir;
    dir.set_path("pg_wal");
    dir.set_kind(v1::FILE_KIND_DIRECTORY);
    dir.set_mode(0700);
    v1::FileMeta version;
    version.set_path("PG_VERSION");
    version.set_kind(v1::FILE_KIND_REGULAR);
    version.set_mode(0600);
    ASSERT_TRUE(fs_->LoadManifest({dir}).ok());
    // The WAL replayed up to the start: recognisable bytes.
    for (size_t i = 0; i < kWalStart - kSegment; ++i) replayed_.push_back(static_cast<char>(i * 7));
    ASSERT_TRUE(fs_->AddWalSegment(kSegmentName, replayed_).ok());
  }

  void TearDown() override {
    fs_.reset();
    if (sender_) sender_->Stop();
    sender_.reset();
    server_.reset();
  }

  uint64_t Open(const std::string& path, int flags) {
    fuse_file_info fi{};
    fi.flags = flags;
    EXPECT_EQ(fs_->Open(path.c_str(), &fi), 0) << path;
    return fi.fh;
  }
  std::string Read(const std::string& path, uint64_t fh, size_t size, off_t off, int* result) {
    std::string buf(size, '\0');
    fuse_file_info fi{};
    fi.fh = fh;
    *result = fs_->Read(path.c_str(), buf.data(), size, off, &fi);
    buf.resize(std::max(*result, 0));
    return buf;
  }
  int Write(const std::string& path, uint64_t fh, std::string_view data, off_t off) {
    fuse_file_info fi{};
    fi.fh = fh;
    return fs_->Write(path.c_str(), data.data(), data.size(), off, &fi);
  }
  void Release(const std::string& path, uint64_t fh) {
    fuse_file_info fi{};
    fi.fh = fh;
    fs_->Release(path.c_str(), &fi);
  }
  off_t Size(const std::string& path) {
    struct stat st;
    EXPECT_EQ(fs_->GetAttr(path.c_str(), &st, nullptr), 0);
    return st.st_size;
  }
  // Makes `dirs` in order, then creates `path` (read-write) and expects the kernel's
  // page cache in front of it: no direct_io, the cache kept across opens.
  fuse_file_info CreatePageCached(const std::vector<std::string>& dirs, const std::string& path) {
    for (const std::string& d : dirs) EXPECT_EQ(fs_->Mkdir(d.c_str(), 0700), 0) << d;
    fuse_file_info fi{};
    fi.flags = O_RDWR | O_CREAT;
    EXPECT_EQ(fs_->Create(path.c_str(), 0600, &fi), 0) << path;
    EXPECT_EQ(fi.direct_io, 0u) << path;
    EXPECT_EQ(fi.keep_cache, 1u) << path << ": nothing changes the file but this mount";
    return fi;
  }

  std::unique_ptr<TempDir> dir_;
  pageserver::PageServerConfig config_;
  std::unique_ptr<pageserver::PageServer> server_;
  std::shared_ptr<pageserver::Timeline> timeline_;
  std::unique_ptr<PageserverClient> client_;
  std::unique_ptr<BlockCache> cache_;
  std::unique_ptr<MutationSender> sender_;
  std::atomic<uint64_t> durable_{0};
  FakeWal wal_;
  std::unique_ptr<ShimFs> fs_;
  std::string replayed_;
  const std::string wal_path_ = "/pg_wal/" + kSegmentName;
};

// Issue 9, item 7: with wal_sync_method=open_datasync Postgres never calls fsync on
// WAL; the write itself must not return before the quorum has it.
TEST_F(ShimFsTest, ADsyncWalWriteReturnsOnlyOnceTheQuorumHasIt) {
  const std::string record(512, 'r');
  uint64_t plain = Open(wal_path_, O_WRONLY);
  ASSERT_EQ(Write(wal_path_, plain, record, kWalStart - kSegment), 512);
  EXPECT_LT(wal_.flushed(), kWalStart + 512);  // a plain write waits for nothing
  Release(wal_path_, plain);
  uint64_t dsync = Open(wal_path_, O_WRONLY | O_DSYNC);
  ASSERT_EQ(Write(wal_path_, dsync, record, kWalStart - kSegment + 512), 512);
  EXPECT_GE(wal_.flushed(), kWalStart + 1024);
  Release(wal_path_, dsync);
}

// Issue 9, item 9: Postgres rewrites the page holding the start LSN with the bytes it
// replayed; different bytes below the start mean its recovery stopped short.
TEST_F(ShimFsTest, WalBelowTheStartMustBeWhatWasReplayed) {
  const off_t page = static_cast<off_t>((kWalStart - kSegment) / 8192 * 8192);
  std::string rewrite = replayed_.substr(page) + std::string(100, 'n');
  uint64_t fh = Open(wal_path_, O_WRONLY);
  EXPECT_EQ(Write(wal_path_, fh, rewrite, page), static_cast<int>(rewrite.size()));
  const size_t appends = wal_.appends();
  std::string forked = rewrite;
  forked[50] ^= 1;  // below the start
  EXPECT_EQ(Write(wal_path_, fh, forked, page), -EIO);
  EXPECT_EQ(wal_.appends(), appends);  // nothing of the fork went to the safekeepers
  Release(wal_path_, fh);
}

// Issue 11: a new endpoint's WAL is fetched while Postgres already replays it. A read
// of bytes not there yet waits for them (here the "fetch" arrives while the reader
// waits, from the sync point); bytes past the fetched end read as zeros at once.
TEST_F(ShimFsTest, AReadOfWalStillBeingFetchedWaitsForItsBytes) {
  const std::string name = "000000010000000000000002";
  const std::string path = "/pg_wal/" + name;
  const Lsn segment(uint64_t{2} << 24);
  ASSERT_TRUE(fs_->AddWalSegmentFilledLater(name, 3 * 8192).ok());
  std::string wal(3 * 8192, '\0');
  for (size_t i = 0; i < wal.size(); ++i) wal[i] = static_cast<char>(i * 13 + 1);
  ASSERT_TRUE(fs_->FillWal(segment, std::string_view(wal).substr(0, 8192)).ok());
  int waits = 0;
  SyncPoints::Set("ShimFs::WaitWalFilled:Waits", [&] {
    ++waits;
    ASSERT_TRUE(fs_->FillWal(segment + 8192, std::string_view(wal).substr(8192)).ok());
  });
  uint64_t fh = Open(path, O_RDONLY);
  int r = 0;
  EXPECT_EQ(Read(path, fh, 8192, 0, &r), wal.substr(0, 8192));  // there: no wait
  EXPECT_EQ(waits, 0);
  EXPECT_EQ(Read(path, fh, 16384, 8192, &r), wal.substr(8192));  // waited for the rest
  EXPECT_EQ(waits, 1);
  EXPECT_EQ(Read(path, fh, 8192, 3 * 8192, &r), std::string(8192, '\0'));  // past the end
  EXPECT_EQ(waits, 1);
  SyncPoints::ClearAll();
  // Bytes must come in order within a segment.
  EXPECT_FALSE(fs_->FillWal(segment + 100, "x").ok());
  fs_->EndWalFill(absl::OkStatus());
  EXPECT_EQ(Read(path, fh, 100, 0, &r), wal.substr(0, 100));
  Release(path, fh);
}

// Issue 11: a WAL segment wholly before the start LSN is final (Postgres writes no
// WAL before its start point), so the replay reads it through the kernel's page
// cache, a readahead window per request instead of one request per 8 KiB page. The
// segment holding the start LSN, and any segment once opened for writing or
// renamed (recycled), keep direct_io: their bytes change, and a reader's cached
// page would go stale (a walsender re-reads the page being written).
TEST_F(ShimFsTest, WalWhollyBeforeTheStartIsReadThroughThePageCache) {
  const std::string sealed = "000000010000000000000002";
  const std::string last = "000000010000000000000003";
  ASSERT_TRUE(fs_->AddWalSegmentFilledLater(sealed, 16 << 20).ok());
  ASSERT_TRUE(fs_->AddWalSegmentFilledLater(last, 3 * 8192).ok());
  const auto open = [&](const std::string& name, int flags) {
    fuse_file_info fi{};
    fi.flags = flags;
    const std::string path = "/pg_wal/" + name;
    EXPECT_EQ(fs_->Open(path.c_str(), &fi), 0) << path;
    Release(path, fi.fh);
    return fi;
  };
  fuse_file_info fi = open(sealed, O_RDONLY);
  EXPECT_EQ(fi.direct_io, 0u);
  EXPECT_EQ(fi.keep_cache, 0u) << "what an earlier open cached is dropped";
  EXPECT_EQ(open(last, O_RDONLY).direct_io, 1u);
  // Opened for writing: direct from then on, for every open.
  EXPECT_EQ(open(sealed, O_RDWR).direct_io, 1u);
  EXPECT_EQ(open(sealed, O_RDONLY).direct_io, 1u);
  // Renamed (Postgres recycles old segments under new names): direct.
  const std::string other = "000000010000000000000004";
  ASSERT_TRUE(fs_->AddWalSegmentFilledLater(other, 16 << 20).ok());
  ASSERT_EQ(open(other, O_RDONLY).direct_io, 0u);
  const std::string renamed = "/pg_wal/000000010000000000000009";
  ASSERT_EQ(fs_->Rename(("/pg_wal/" + other).c_str(), renamed.c_str(), 0), 0);
  EXPECT_EQ(open("000000010000000000000009", O_RDONLY).direct_io, 1u);
  fs_->EndWalFill(absl::OkStatus());
}

// Issue 11: Postgres' spill files (sorts, hashes, CREATE INDEX) and temporary
// relations are written and read 8 KiB at a time; through direct_io every one was
// a FUSE request. They go through the page cache: the kernel writes them back in
// pieces of any size and offset, which land in the scratch file as they are.
TEST_F(ShimFsTest, LocalFilesGoThroughThePageCacheAndWalDoesNot) {
  const std::string spill = "/base/pgsql_tmp/pgsql_tmp7.0";
  fuse_file_info fi = CreatePageCached({"/base", "/base/pgsql_tmp"}, spill);
  std::string expected(3 * 8192 + 100, '\0');
  const auto put = [&](off_t off, size_t n, char c) {
    const std::string piece(n, c);
    ASSERT_EQ(Write(spill, fi.fh, piece, off), static_cast<int>(n));
    expected.replace(off, n, piece);
  };
  put(4096, 4096, 'b');  // the second page of a block before its first
  put(0, 4096, 'a');
  put(3 * 8192, 100, 'z');  // a tail, not a whole page
  put(8192, 8192 + 13, 'c');
  EXPECT_EQ(Size(spill), static_cast<off_t>(expected.size()));
  int r = 0;
  EXPECT_EQ(Read(spill, fi.fh, 1 << 20, 0, &r), expected);
  EXPECT_EQ(fs_->Fsync(spill.c_str(), 0, &fi), 0);
  Release(spill, fi.fh);
  fuse_file_info reopened{};
  reopened.flags = O_RDONLY;
  ASSERT_EQ(fs_->Open(spill.c_str(), &reopened), 0);
  EXPECT_EQ(reopened.direct_io, 0u);
  EXPECT_EQ(Read(spill, reopened.fh, 1 << 20, 0, &r), expected);
  Release(spill, reopened.fh);
  // A segment being made in pg_wal is not a local file: every byte must be seen.
  fuse_file_info temp{};
  temp.flags = O_RDWR | O_CREAT;
  ASSERT_EQ(fs_->Create("/pg_wal/xlogtemp.7", 0600, &temp), 0);
  EXPECT_EQ(temp.direct_io, 1u);
  Release("/pg_wal/xlogtemp.7", temp.fh);
  // A local file whose pages the kernel may hold never becomes a WAL segment.
  EXPECT_EQ(fs_->Rename(spill.c_str(), "/pg_wal/000000010000000000000009", 0), -EXDEV);
  const uint64_t fh = Open(spill, O_RDONLY);
  EXPECT_EQ(Read(spill, fh, 1 << 20, 0, &r), expected);
  Release(spill, fh);
}

// Issue 11: a fetch that fails makes every read of the bytes it did not bring fail
// (Postgres' recovery then stops with an error) instead of serving zeros as WAL.
TEST_F(ShimFsTest, AFailedWalFetchFailsReadsOfTheMissingBytes) {
  const std::string name = "000000010000000000000002";
  const std::string path = "/pg_wal/" + name;
  const Lsn segment(uint64_t{2} << 24);
  ASSERT_TRUE(fs_->AddWalSegmentFilledLater(name, 2 * 8192).ok());
  const std::string first(8192, 'w');
  ASSERT_TRUE(fs_->FillWal(segment, first).ok());
  fs_->EndWalFill(absl::UnavailableError("pageserver went away"));
  uint64_t fh = Open(path, O_RDONLY);
  int r = 0;
  EXPECT_EQ(Read(path, fh, 8192, 0, &r), first);
  EXPECT_EQ(r, 8192);
  Read(path, fh, 8192, 8192, &r);
  EXPECT_EQ(r, -EIO);
  Release(path, fh);
}

// Issue 9, item 10: `printf ab > file` on an existing file.
TEST_F(ShimFsTest, OpenWithOTruncTruncatesVersionedAndLocalFiles) {
  for (const std::string path : {"/PG_VERSION", "/postmaster.opts"}) {
    fuse_file_info fi{};
    fi.flags = O_WRONLY | O_CREAT;
    ASSERT_EQ(fs_->Create(path.c_str(), 0600, &fi), 0) << path;
    ASSERT_EQ(Write(path, fi.fh, "abcdefgh", 0), 8);
    Release(path, fi.fh);
    EXPECT_EQ(Size(path), 8);
    uint64_t fh = Open(path, O_WRONLY | O_TRUNC);
    EXPECT_EQ(Size(path), 0) << path;
    ASSERT_EQ(Write(path, fh, "ab", 0), 2);
    Release(path, fh);
    EXPECT_EQ(Size(path), 2) << path;
    uint64_t read_only = Open(path, O_RDONLY | O_TRUNC);  // O_TRUNC without write: ignored
    EXPECT_EQ(Size(path), 2);
    Release(path, read_only);
  }
}

// Issue 10, item 7: the postgres user can reach a scratch directory it owns; a
// symbolic link it plants where the shim puts a local file must not make the shim
// (root) truncate or write the file it points to.
TEST_F(ShimFsTest, AScratchFileIsNeverOpenedThroughASymbolicLink) {
  const std::string victim = dir_->Sub("victim");
  {
    std::ofstream out(victim);
    out << "precious";
  }
  // Node ids are small counters: cover every one not in use yet.
  for (int id = 0; id < 4096; ++id) {
    const std::string link = dir_->Sub("scratch/local/" + std::to_string(id));
    ASSERT_TRUE(symlink(victim.c_str(), link.c_str()) == 0 || errno == EEXIST) << link;
  }
  fuse_file_info fi{};
  fi.flags = O_WRONLY | O_CREAT;
  const int created = fs_->Create("/postmaster.opts", 0600, &fi);
  EXPECT_LT(created, 0);
  if (created == 0) {
    Write("/postmaster.opts", fi.fh, "overwritten", 0);
    Release("/postmaster.opts", fi.fh);
  }
  std::ifstream in(victim);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "precious");
}

// Issue 11: relation files go through the kernel's page cache, written back: the
// kernel hands a block over in pages, together, apart or in either order, with
// other blocks' writes in between (ShimFs::WriteCached). A block's version is made
// once, whole. A part whose rest never comes (that page was not dirty) becomes a
// version over the block's current content at an fsync, or when the rest is read.
TEST_F(ShimFsTest, ABlockWrittenBackInPartsBecomesOneWholeVersion) {
  const std::string rel = "/base/5/16384";
  fuse_file_info fi = CreatePageCached({"/base", "/base/5"}, rel);
  const uint64_t fh = fi.fh;
  auto read = [&](off_t off, size_t size) {
    int n = 0;
    return Read(rel, fh, size, off, &n);
  };
  ASSERT_TRUE(sender_->Barrier().ok());
  const ShimMetrics& metrics = ShimMetrics::Get();
  const double sent_before = metrics.mutations_sent.Value();
  const double completed_before = metrics.partial_blocks_completed.Value();

  // Block 0's second page first, block 1 whole in between, then block 0's first page.
  const std::string a(8192, 'a');
  const std::string b(8192, 'b');
  ASSERT_EQ(Write(rel, fh, std::string_view(a).substr(4096), 4096), 4096);
  EXPECT_EQ(read(4096, 4096), a.substr(4096)) << "a part answers reads of its own bytes";
  ASSERT_EQ(Write(rel, fh, b, 8192), 8192);
  ASSERT_EQ(Write(rel, fh, std::string_view(a).substr(0, 4096), 0), 4096);
  EXPECT_EQ(read(0, 8192), a);
  EXPECT_EQ(read(8192, 8192), b);
  ASSERT_TRUE(sender_->Barrier().ok());
  EXPECT_EQ(metrics.mutations_sent.Value() - sent_before, 2) << "one version per block";

  // A part a whole write of its block follows is superseded, never versioned.
  ASSERT_EQ(Write(rel, fh, std::string(4096, 'x'), 16384), 4096);
  const std::string y(8192, 'y');
  ASSERT_EQ(Write(rel, fh, y, 16384), 8192);
  // A lone part (the block's other page never changed): an fsync versions it over
  // the block's content.
  ASSERT_EQ(Write(rel, fh, std::string(4096, 'c'), 8192 + 4096), 4096);
  fuse_file_info sync_fi{};
  sync_fi.fh = fh;
  ASSERT_EQ(fs_->Fsync(rel.c_str(), 0, &sync_fi), 0);
  EXPECT_EQ(read(8192, 8192), b.substr(0, 4096) + std::string(4096, 'c'));
  EXPECT_EQ(read(16384, 8192), y);
  // A read of bytes a part does not cover completes it the same way (the kernel
  // reads only pages it does not hold dirty).
  ASSERT_EQ(Write(rel, fh, std::string(4096, 'd'), 0), 4096);
  EXPECT_EQ(read(0, 8192), std::string(4096, 'd') + a.substr(4096));
  EXPECT_EQ(metrics.partial_blocks_completed.Value() - completed_before, 2);
  // A truncation drops the parts past the new end.
  ASSERT_EQ(Write(rel, fh, std::string(4096, 'z'), 16384), 4096);
  ASSERT_EQ(fs_->Truncate(rel.c_str(), 16384, &sync_fi), 0);
  EXPECT_EQ(read(16384, 8192), "");
  ASSERT_EQ(fs_->Fsync(rel.c_str(), 0, &sync_fi), 0);
  EXPECT_EQ(Size(rel), 16384);
  Release(rel, fh);
  // Every other file keeps direct_io (partial writes are theirs to make).
  fuse_file_info other{};
  other.flags = O_RDWR | O_CREAT;
  ASSERT_EQ(fs_->Create("/base/5/pg_filenode.map", 0600, &other), 0);
  EXPECT_EQ(other.direct_io, 1u);
  Release("/base/5/pg_filenode.map", other.fh);
}

// Issue 11: the small files every start reads first, one request at a time, come
// in one GetPages round trip before the mount (each of those reads waited
// 20-110 ms behind the WAL fetch, 0.4 s before Postgres' first log line).
TEST_F(ShimFsTest, PrefetchReadsTheSmallNonRelationFilesInOneRoundTrip) {
  ASSERT_EQ(fs_->Mkdir("/base", 0700), 0);
  ASSERT_EQ(fs_->Mkdir("/base/5", 0700), 0);
  const std::map<std::string, std::string> files = {
      {"/postgresql.conf", std::string(8192, 'c') + "shared_buffers = 1GB\n"},
      {"/PG_VERSION", "15\n"},
      {"/base/5/16384", std::string(8192, 'r')}};  // a relation file: the page cache's
  for (const auto& [path, content] : files) {
    fuse_file_info fi{};
    fi.flags = O_RDWR | O_CREAT;
    ASSERT_EQ(fs_->Create(path.c_str(), 0600, &fi), 0);
    ASSERT_EQ(Write(path, fi.fh, content, 0), static_cast<int>(content.size()));
    Release(path, fi.fh);
  }
  ASSERT_TRUE(sender_->Barrier().ok());
  for (const auto& [path, content] : files) {
    struct stat st;
    ASSERT_EQ(fs_->GetAttr(path.c_str(), &st, nullptr), 0);
    cache_->Remove(st.st_ino);  // as after a mount: nothing cached
  }
  const ShimMetrics& metrics = ShimMetrics::Get();
  const double pages_before = metrics.getpages_pages.Value();
  absl::StatusOr<size_t> prefetched = fs_->Prefetch(Lsn::Max(), 256 << 10, 512);
  ASSERT_TRUE(prefetched.ok()) << prefetched.status();
  EXPECT_EQ(*prefetched, 3u);  // postgresql.conf's two blocks and PG_VERSION
  EXPECT_EQ(metrics.getpages_pages.Value() - pages_before, 3);
  for (const std::string path : {"/postgresql.conf", "/PG_VERSION"}) {
    const uint64_t fh = Open(path, O_RDONLY);
    int n = 0;
    EXPECT_EQ(Read(path, fh, 16384, 0, &n), files.at(path)) << path;
    Release(path, fh);
  }
  EXPECT_EQ(metrics.getpages_pages.Value() - pages_before, 3)
      << "prefetched files were fetched again";
  // Bounded: nothing is prefetched past max_blocks.
  EXPECT_EQ(fs_->Prefetch(Lsn::Max(), 256 << 10, 1).value_or(99), 1u);
}

// Issue 9, item 8: a block is pinned until the pageserver synced it; applied is not
// durable (a pageserver host crash loses it, and the shim resends it).
TEST_F(ShimFsTest, WrittenBlocksArePinnedUntilDurableNotJustApplied) {
  fuse_file_info fi{};
  fi.flags = O_WRONLY | O_CREAT;
  ASSERT_EQ(fs_->Create("/data", 0600, &fi), 0);
  ASSERT_EQ(Write("/data", fi.fh, std::string(8192, 'd'), 0), 8192);
  Release("/data", fi.fh);
  ASSERT_TRUE(sender_->WaitApplied(2).ok());  // create + write applied
  EXPECT_LT(durable_.load(), 2u) << "applied mutations were reported durable";
  EXPECT_EQ(cache_->stats().dirty, 1u);
  ASSERT_TRUE(sender_->Barrier().ok());
  // The callback runs on the sender's reader thread, right after the barrier's ack.
  for (absl::Time deadline = absl::Now() + absl::Seconds(10);
       durable_.load() < 2 && absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_GE(durable_.load(), 2u);
  EXPECT_EQ(cache_->stats().dirty, 0u);
}

// Issue 9, item 3: after a pageserver restart an idle compute (no mutation to send)
// must still count as its timeline's writer.
TEST_F(ShimFsTest, AnIdleWriterStaysLiveAcrossAPageserverRestart) {
  const int port = server_->port();
  timeline_.reset();
  server_.reset();
  config_.listen = absl::StrFormat("127.0.0.1:%d", port);
  auto restarted = pageserver::PageServer::Start(config_);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  server_ = std::move(*restarted);
  absl::SleepFor(absl::Seconds(3));  // three leases; the compute sends nothing
  auto tenant = server_->repository()->GetTenant("acme");
  ASSERT_TRUE(tenant.ok());
  auto branch = server_->repository()->GetBranch("acme", "main");
  ASSERT_TRUE(branch.ok());
  auto t = server_->repository()->GetTimeline(tenant->id, branch->timeline_id);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE((*t)->WriterActiveWithin(absl::Seconds(1)))
      << "an idle writer was taken for dead after a pageserver restart";
}

}  // namespace
}  // namespace cambium::shim
