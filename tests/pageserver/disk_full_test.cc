// The pageserver's store on a full disk (issue 9): on a small real tmpfs, writes
// that do not fit are refused with RESOURCE_EXHAUSTED and a clear message, nothing
// that failed is acknowledged, every acknowledged write survives, and writes resume
// by themselves once space is freed (no restart). Needs root (mount); skipped
// otherwise.
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "pageserver/page_store.h"
#include "tests/harness/temp_dir.h"

namespace cambium::pageserver {
namespace {

using ::cambium::testing::TempDir;

class Tmpfs {
 public:
  static std::unique_ptr<Tmpfs> Mount(const std::string& dir, const std::string& size) {
    std::filesystem::create_directories(dir);
    const std::string options = "size=" + size;
    if (mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) != 0) return nullptr;
    return std::unique_ptr<Tmpfs>(new Tmpfs(dir));
  }
  ~Tmpfs() { umount2(dir_.c_str(), MNT_DETACH); }

 private:
  explicit Tmpfs(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

std::string Incompressible(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    const uint64_t v = rng();
    std::memcpy(s.data() + i, &v, 8);
  }
  return s;
}

// A 48 MiB tmpfs with a ballast file of `ballast_bytes`; null when it cannot be
// mounted (not root).
struct SmallDisk {
  static std::unique_ptr<SmallDisk> Make(size_t ballast_bytes) {
    auto disk = std::make_unique<SmallDisk>();
    auto dir = TempDir::Create("cambium-full-");
    if (!dir.ok()) return nullptr;
    disk->dir = std::make_unique<TempDir>(std::move(*dir));
    disk->tmpfs = Tmpfs::Mount(disk->dir->Sub("fs"), "48m");
    if (disk->tmpfs == nullptr) return nullptr;
    disk->ballast = disk->dir->Sub("fs/ballast");
    std::ofstream(disk->ballast) << std::string(ballast_bytes, 'b');
    return disk;
  }
  std::string Sub(const std::string& name) const { return dir->Sub("fs/" + name); }

  std::unique_ptr<TempDir> dir;
  std::unique_ptr<Tmpfs> tmpfs;  // unmounted before `dir` goes
  std::string ballast;
};

TEST(DiskFull, WritesAreRefusedThenResumeOnceSpaceIsFreed) {
  auto disk = SmallDisk::Make(16 << 20);
  if (disk == nullptr) GTEST_SKIP() << "cannot mount a tmpfs (not root?)";
  const std::string ballast = disk->ballast;
  auto store = PageStore::Open(disk->Sub("db"), PageStoreOptions{.cache_bytes = 8 << 20,
                                                                 .compression = "none",
                                                                 .write_buffer_bytes = 4 << 20});
  ASSERT_TRUE(store.ok()) << store.status();
  std::mt19937_64 rng(42);
  int acknowledged = 0;
  absl::Status refused;
  for (int i = 0; i < 10000 && refused.ok(); ++i) {
    rocksdb::WriteBatch batch;
    for (int j = 0; j < 16; ++j) {
      batch.Put((*store)->cf(Family::kBlocks), absl::StrFormat("key-%08d-%02d", i, j),
                Incompressible(rng, 8192));
    }
    refused = (*store)->Write(&batch, /*sync=*/i % 8 == 0);
    if (refused.ok()) acknowledged = i + 1;
  }
  ASSERT_FALSE(refused.ok()) << "48 MiB never filled up";
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_NE(refused.message().find("disk is full"), std::string::npos) << refused;
  // Still full: refused again, nothing half-applied.
  rocksdb::WriteBatch again;
  again.Put((*store)->cf(Family::kBlocks), "after", Incompressible(rng, 8192));
  EXPECT_EQ((*store)->Write(&again, true).code(), absl::StatusCode::kResourceExhausted);
  // Space comes back: writes resume without a restart.
  std::filesystem::remove(ballast);
  absl::Status resumed;
  for (absl::Time deadline = absl::Now() + absl::Seconds(30); absl::Now() < deadline;) {
    resumed = (*store)->Write(&again, true);
    if (resumed.ok()) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_TRUE(resumed.ok()) << resumed;
  // Every acknowledged write is there, also after a reopen.
  auto check = [&](PageStore& s) {
    for (int i = 0; i < acknowledged; ++i) {
      std::string value;
      ASSERT_TRUE(s.db()
                      ->Get(rocksdb::ReadOptions(), s.cf(Family::kBlocks),
                            absl::StrFormat("key-%08d-00", i), &value)
                      .ok())
          << i;
      ASSERT_EQ(value.size(), 8192u);
    }
  };
  check(**store);
  store->reset();
  auto reopened = PageStore::Open(disk->Sub("db"), PageStoreOptions{.cache_bytes = 8 << 20,
                                                                    .compression = "none",
                                                                    .write_buffer_bytes = 4 << 20});
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  check(**reopened);
}

// Found by the chaos suite: once a WAL append failed with ENOSPC, the next group
// sync (PageStore::Sync, which every barrier and the WAL archive call) reached the
// failed WAL file. Debian's RocksDB 7.8 asserts on that (WritableFileWriter::
// AssertFalseAndGetStatusForPrevError) and the pageserver aborted. A sync must be
// refused like a write, and both must work again once space is back.
TEST(DiskFull, ASyncAfterAFailedWalAppendIsRefusedNotACrash) {
  auto disk = SmallDisk::Make(30 << 20);  // freed below: room to flush what the WAL has
  if (disk == nullptr) GTEST_SKIP() << "cannot mount a tmpfs (not root?)";
  const std::string ballast = disk->ballast;
  // A memtable larger than the free space: nothing is flushed, a WAL append is what
  // fails. (RocksDB clears the error once the free space exceeds a memtable.)
  const PageStoreOptions options{
      .cache_bytes = 8 << 20, .compression = "none", .write_buffer_bytes = 20 << 20};
  auto store = PageStore::Open(disk->Sub("db"), options);
  ASSERT_TRUE(store.ok()) << store.status();
  std::mt19937_64 rng(7);
  absl::Status refused;
  for (int i = 0; i < 10000 && refused.ok(); ++i) {
    rocksdb::WriteBatch batch;
    batch.Put((*store)->cf(Family::kBlocks), absl::StrFormat("key-%08d", i),
              Incompressible(rng, 64 << 10));
    refused = (*store)->Write(&batch, /*sync=*/false);
  }
  ASSERT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  absl::Status synced = (*store)->Sync();
  EXPECT_FALSE(synced.ok());
  EXPECT_EQ(synced.code(), absl::StatusCode::kResourceExhausted) << synced;
  std::filesystem::remove(ballast);
  for (absl::Time deadline = absl::Now() + absl::Seconds(30); absl::Now() < deadline;) {
    synced = (*store)->Sync();
    if (synced.ok()) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_TRUE(synced.ok()) << synced;
  rocksdb::WriteBatch after;
  after.Put((*store)->cf(Family::kBlocks), "after", "x");
  EXPECT_TRUE((*store)->Write(&after, true).ok());
}

}  // namespace
}  // namespace cambium::pageserver
