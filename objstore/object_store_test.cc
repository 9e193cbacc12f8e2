#include <sys/stat.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "auth/token.h"
#include "gtest/gtest.h"
#include "objstore/local_store.h"
#include "objstore/object_key.h"
#include "objstore/object_store.h"
#include "objstore/sealed_object.h"
#include "objstore/sigv4.h"
#include "tests/harness/temp_dir.h"

namespace cambium::objstore {
namespace {

// AWS's published example "GET Object" (Signature Version 4, S3 API reference).
TEST(SigV4, SignsAwsPublishedExampleExactly) {
  SigV4Request request;
  request.method = "GET";
  request.encoded_path = "/test.txt";
  request.payload_sha256_hex = auth::Sha256Hex("");
  request.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                     {"Range", "bytes=0-9"},
                     {"x-amz-content-sha256", request.payload_sha256_hex},
                     {"x-amz-date", "20130524T000000Z"}};
  S3Credentials credentials{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};
  EXPECT_EQ(SignV4(request, credentials, "us-east-1", "20130524T000000Z"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, EncodesAndSortsTheQueryAsSigned) {
  EXPECT_EQ(UriEncode("a b/c~d+e", /*keep_slash=*/false), "a%20b%2Fc~d%2Be");
  EXPECT_EQ(UriEncode("t/1/wal 2", /*keep_slash=*/true), "t/1/wal%202");
  EXPECT_EQ(CanonicalQuery({{"prefix", "a/b"}, {"list-type", "2"}, {"uploads", ""}}),
            "list-type=2&prefix=a%2Fb&uploads=");
}

TEST(ObjectKey, RefusesKeysThatWouldEscapeOrHide) {
  EXPECT_TRUE(ValidateObjectKey("tenants/t1/wal/000000010000000000000001").ok());
  for (std::string_view bad : {"", "/abs", "a//b", "a/../b", "./a", "a b", "a/x.tmp-1", "a/"}) {
    EXPECT_EQ(ValidateObjectKey(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(SealedObject, RoundTripsPayloadAndGeneration) {
  std::string sealed = Seal("page versions", 7);
  auto unsealed = Unseal(sealed, "layer x");
  ASSERT_TRUE(unsealed.ok()) << unsealed.status();
  EXPECT_EQ(unsealed->payload, "page versions");
  EXPECT_EQ(unsealed->generation, 7u);
  EXPECT_TRUE(Unseal(Seal("", 1), "empty").ok());
}

TEST(SealedObject, EveryFlippedByteAndEveryTruncationIsDataLoss) {
  std::string sealed = Seal(std::string(100, 'x') + "tail", 3);
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::string damaged = sealed;
    damaged[i] ^= 0x01;
    EXPECT_EQ(Unseal(damaged, "layer").status().code(), absl::StatusCode::kDataLoss)
        << "byte " << i;
  }
  for (size_t keep = 0; keep < sealed.size(); ++keep) {
    EXPECT_EQ(Unseal(std::string_view(sealed).substr(0, keep), "layer").status().code(),
              absl::StatusCode::kDataLoss)
        << "kept " << keep;
  }
}

class LocalStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::TempDir::Create("cambium-objstore-");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(*dir));
    auto store = OpenObjectStore("file://" + dir_->path());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  std::optional<testing::TempDir> dir_;
  std::unique_ptr<ObjectStore> store_;
};

TEST_F(LocalStoreTest, PutGetListDelete) {
  ASSERT_TRUE(store_->Put("t/b/2", "two").ok());
  ASSERT_TRUE(store_->Put("t/a/1", "one").ok());
  ASSERT_TRUE(store_->Put("t/a/10", std::string(100000, 'z')).ok());
  ASSERT_TRUE(store_->Put("u/1", "other").ok());
  ASSERT_TRUE(store_->Put("t/a/1", "one again").ok());  // replaces
  EXPECT_EQ(*store_->Get("t/a/1"), "one again");

  auto listed = store_->List("t/");
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ((*listed)[0].key, "t/a/1");
  EXPECT_EQ((*listed)[0].size, 9u);
  EXPECT_EQ((*listed)[1].key, "t/a/10");
  EXPECT_EQ((*listed)[1].size, 100000u);
  EXPECT_EQ((*listed)[2].key, "t/b/2");
  EXPECT_EQ(store_->List("t/a/1")->size(), 2u);  // a prefix, not a directory
  EXPECT_EQ(store_->List("nothing/")->size(), 0u);
  EXPECT_EQ(store_->List("")->size(), 4u);

  ASSERT_TRUE(store_->Delete("t/a/1").ok());
  ASSERT_TRUE(store_->Delete("t/a/1").ok());  // a retried delete
  EXPECT_EQ(store_->Get("t/a/1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->List("t/")->size(), 2u);
}

TEST_F(LocalStoreTest, ACrashedPutsLeftoverIsNeverListedOrRead) {
  ASSERT_TRUE(store_->Put("t/x", "whole").ok());
  std::ofstream(dir_->Sub("t/y.tmp-123")) << "half";
  auto listed = store_->List("t/");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].key, "t/x");
}

TEST(OpenObjectStore, RefusesWhatItCannotUse) {
  EXPECT_EQ(OpenObjectStore("ftp://x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenObjectStore("file://relative/path").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenObjectStore("file:///no/such/dir/here").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(OpenObjectStore("s3://bucket/p?colour=blue").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(LoadS3Credentials, ReadsAPrivateFileAndRefusesAReadableOne) {
  auto dir = testing::TempDir::Create("cambium-creds-");
  ASSERT_TRUE(dir.ok());
  std::string path = dir->Sub("s3.env");
  std::ofstream(path) << "AWS_ACCESS_KEY_ID=AK1\nAWS_SECRET_ACCESS_KEY = s3cret\n";
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  auto credentials = LoadS3Credentials(path);
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_EQ(credentials->access_key_id, "AK1");
  EXPECT_EQ(credentials->secret_access_key, "s3cret");
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  EXPECT_FALSE(LoadS3Credentials(path).ok());

  std::ofstream(dir->Sub("empty.env")) << "AWS_ACCESS_KEY_ID=AK1\n";
  ASSERT_EQ(::chmod(dir->Sub("empty.env").c_str(), 0600), 0);
  auto missing = LoadS3Credentials(dir->Sub("empty.env"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(missing.status().message().find("AWS_SECRET_ACCESS_KEY"), std::string_view::npos);
}

}  // namespace
}  // namespace cambium::objstore
