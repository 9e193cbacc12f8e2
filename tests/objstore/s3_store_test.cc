// S3ObjectStore against a real S3 service: Ceph's RADOS Gateway started by
// tools/object-store.sh on loopback (never a mock). Skips when Ceph is not installed.
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/subprocess.h"
#include "gtest/gtest.h"
#include "objstore/s3_store.h"
#include "tests/harness/object_store.h"
#include "tests/harness/temp_dir.h"

namespace cambium::objstore {
namespace {

class S3StoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto dir = testing::TempDir::Create("cambium-rgw-");
    ASSERT_TRUE(dir.ok());
    dir_ = new testing::TempDir(std::move(*dir));
    auto instance = testing::StartObjectStore(dir_->Sub("rgw"), "cambium-test");
    ASSERT_TRUE(instance.ok()) << instance.status();
    if (!instance->available) GTEST_SKIP() << "no Ceph: " << instance->why;
    credentials_ = {.access_key_id = instance->access_key_id,
                    .secret_access_key = instance->secret_access_key};
    endpoint_ = instance->endpoint;
    started_ = true;
  }

  static void TearDownTestSuite() {
    if (started_) testing::StopObjectStore(dir_->Sub("rgw"));
    delete dir_;
  }

  void SetUp() override {
    if (!started_) GTEST_SKIP() << "object store not started";
  }

  static S3Options Options(const std::string& prefix) {
    S3Options options;
    options.endpoint = endpoint_;
    options.bucket = "cambium-test";
    options.prefix = prefix;
    options.region = "default";
    return options;
  }

  static inline testing::TempDir* dir_ = nullptr;
  static inline bool started_ = false;
  static inline S3Credentials credentials_;
  static inline std::string endpoint_;
};

TEST_F(S3StoreTest, PutGetListDeleteUnderAPrefix) {
  auto store = S3ObjectStore::Open(Options("run1"), credentials_);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Put("t/b/2", "two").ok());
  ASSERT_TRUE((*store)->Put("t/a/1+x=y", "one").ok());  // encoded in the path
  ASSERT_TRUE((*store)->Put("t/a/1+x=y", "one again").ok());
  EXPECT_EQ(*(*store)->Get("t/a/1+x=y"), "one again");
  auto listed = (*store)->List("t/");
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].key, "t/a/1+x=y");
  EXPECT_EQ((*listed)[0].size, 9u);
  EXPECT_EQ((*listed)[1].key, "t/b/2");
  ASSERT_TRUE((*store)->Delete("t/b/2").ok());
  ASSERT_TRUE((*store)->Delete("t/b/2").ok());
  EXPECT_EQ((*store)->Get("t/b/2").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(S3StoreTest, ListingPagesThroughMoreThanOneAnswer) {
  auto store = S3ObjectStore::Open(Options("paged"), credentials_);
  ASSERT_TRUE(store.ok()) << store.status();
  for (int i = 0; i < 1005; ++i)
    ASSERT_TRUE((*store)->Put(absl::StrCat("k/", 10000 + i), "x").ok());
  auto listed = (*store)->List("k/");
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1005u);
  EXPECT_EQ(listed->back().key, "k/11004");
}

TEST_F(S3StoreTest, LargeObjectsGoUpInPartsAndComeBackWhole) {
  S3Options options = Options("multipart");
  options.multipart_threshold = 6 << 20;
  options.part_size = 5 << 20;
  auto store = S3ObjectStore::Open(options, credentials_);
  ASSERT_TRUE(store.ok()) << store.status();
  std::string big(12 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 % 251);
  ASSERT_TRUE((*store)->Put("big", big).ok());
  auto back = (*store)->Get("big");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == big);
}

TEST_F(S3StoreTest, WrongSecretMissingBucketAndNoServiceAreClearErrors) {
  S3Credentials wrong = credentials_;
  wrong.secret_access_key = "not-the-secret";
  auto refused = S3ObjectStore::Open(Options("x"), wrong);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated) << refused.status();
  EXPECT_FALSE(absl::StrContains(refused.status().message(), "not-the-secret"));

  S3Options missing = Options("x");
  missing.bucket = "no-such-bucket";
  EXPECT_EQ(S3ObjectStore::Open(missing, credentials_).status().code(),
            absl::StatusCode::kNotFound);

  S3Options down = Options("x");
  down.endpoint = "http://127.0.0.1:1";
  down.max_attempts = 2;
  EXPECT_EQ(S3ObjectStore::Open(down, credentials_).status().code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace cambium::objstore
