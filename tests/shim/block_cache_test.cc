// BlockCache: clean blocks are evicted least recently used first, dirty ones stay
// until durable, and a reused slot never shows an earlier block's bytes.
#include "compute-shim/block_cache.h"

#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace cambium::shim {
namespace {

std::string Block(char fill) { return std::string(kBlockSize, fill); }

std::string ReadBack(BlockCache& cache, uint64_t file, uint32_t block, bool* present) {
  std::string out(kBlockSize, '?');
  auto r = cache.Read(file, block, out.data());
  EXPECT_TRUE(r.ok());
  *present = r.ok() && *r;
  return out;
}

TEST(BlockCacheTest, CleanBlocksAreEvictedOldestFirstAndDirtyOnesStayUntilDurable) {
  auto cache = BlockCache::Create(64);  // the smallest capacity
  // Block 0 of file 1 is written (dirty until mutation 1 is durable).
  ASSERT_TRUE(cache->Write(1, 0, Block('d').data(), 1).ok());
  // 200 clean blocks pass through a cache of 64.
  for (uint32_t b = 0; b < 200; ++b) {
    ASSERT_TRUE(cache->Fill(2, b, Block(static_cast<char>('a' + b % 26)).data()).ok());
  }
  bool present = false;
  EXPECT_EQ(ReadBack(*cache, 1, 0, &present), Block('d'));
  EXPECT_TRUE(present) << "a dirty block was evicted";
  ReadBack(*cache, 2, 0, &present);
  EXPECT_FALSE(present) << "the oldest clean block should be gone";
  EXPECT_EQ(ReadBack(*cache, 2, 199, &present), Block(static_cast<char>('a' + 199 % 26)));
  EXPECT_TRUE(present);
  EXPECT_LE(cache->stats().present, 65u);
  // Durable: it becomes clean and can go like any other.
  cache->MutationsDurable(1);
  EXPECT_EQ(cache->stats().dirty, 0u);
  for (uint32_t b = 200; b < 300; ++b) ASSERT_TRUE(cache->Fill(2, b, Block('z').data()).ok());
  ReadBack(*cache, 1, 0, &present);
  EXPECT_FALSE(present);
}

TEST(BlockCacheTest, AFillNeverOverwritesANewerWriteAndSlotsAreReusedCleanly) {
  auto cache = BlockCache::Create(64);
  ASSERT_TRUE(cache->Write(1, 5, Block('w').data(), 7).ok());
  ASSERT_TRUE(cache->Fill(1, 5, Block('f').data()).ok());  // fetched before the write
  bool present = false;
  EXPECT_EQ(ReadBack(*cache, 1, 5, &present), Block('w'));
  // Truncation and removal free slots; blocks stored in them later read as themselves.
  for (uint32_t b = 0; b < 10; ++b) ASSERT_TRUE(cache->Fill(3, b, Block('t').data()).ok());
  cache->Truncate(3, 4);
  ReadBack(*cache, 3, 4, &present);
  EXPECT_FALSE(present);
  EXPECT_EQ(ReadBack(*cache, 3, 3, &present), Block('t'));
  cache->Remove(3);
  ReadBack(*cache, 3, 0, &present);
  EXPECT_FALSE(present);
  for (uint32_t b = 0; b < 10; ++b) {
    ASSERT_TRUE(cache->Fill(4, b, Block(static_cast<char>('0' + b)).data()).ok());
  }
  for (uint32_t b = 0; b < 10; ++b) {
    EXPECT_EQ(ReadBack(*cache, 4, b, &present), Block(static_cast<char>('0' + b)));
  }
  EXPECT_EQ(ReadBack(*cache, 1, 5, &present), Block('w'));
}

TEST(BlockCacheTest, BlocksAcrossManyChunksKeepTheirOwnBytes) {
  // 1,000 dirty blocks fill four 2 MiB chunks of slots (256 each); every one reads
  // back as itself, also once half of them went and others took their slots.
  auto cache = BlockCache::Create(64);
  auto fill = [](uint32_t b) {
    std::string data(kBlockSize, static_cast<char>(b % 251));
    std::memcpy(data.data(), &b, sizeof(b));
    data[kBlockSize - 1] = static_cast<char>(b / 251);
    return data;
  };
  for (uint32_t b = 0; b < 1000; ++b) ASSERT_TRUE(cache->Write(7, b, fill(b).data(), 1).ok());
  bool present = false;
  for (uint32_t b = 0; b < 1000; ++b) {
    ASSERT_EQ(ReadBack(*cache, 7, b, &present), fill(b)) << "block " << b;
    ASSERT_TRUE(present);
  }
  cache->Truncate(7, 500);
  for (uint32_t b = 0; b < 500; ++b) {
    ASSERT_TRUE(cache->Write(8, b, fill(b + 5000).data(), 1).ok());
  }
  for (uint32_t b = 0; b < 500; ++b) {
    ASSERT_EQ(ReadBack(*cache, 7, b, &present), fill(b)) << "block " << b;
    ASSERT_EQ(ReadBack(*cache, 8, b, &present), fill(b + 5000)) << "block " << b;
  }
  EXPECT_EQ(cache->stats().present, 1000u);
}

}  // namespace
}  // namespace cambium::shim
