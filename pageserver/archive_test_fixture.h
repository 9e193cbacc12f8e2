// The fixture of pageserver tests that archive WAL and ask the repository about it
// (commit history, changes, snapshots): a repository over a fresh store with tenant
// "acme" (24 h PITR window) and its root branch "main" at kSeg1, whose WAL a
// WalBuilder writes (one logical message first) and ArchiveMain() archives.
#ifndef CAMBIUM_PAGESERVER_ARCHIVE_TEST_FIXTURE_H_
#define CAMBIUM_PAGESERVER_ARCHIVE_TEST_FIXTURE_H_

#include <memory>

#include "gtest/gtest.h"
#include "pageserver/repository.h"
#include "pageserver/test_util.h"
#include "tests/harness/temp_dir.h"
#include "tests/harness/wal_builder.h"

namespace cambium::pageserver::testing {

class ArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<cambium::testing::TempDir>(
        cambium::testing::TempDir::Create("cambium-archive-").value());
    store_ = PageStore::Open(dir_->Sub("db"), PageStoreOptions{.cache_bytes = 16 << 20}).value();
    repo_ = Repository::Open(store_.get(), RepositoryOptions{.ttl_check_interval = absl::Hours(1)})
                .value();
    ASSERT_TRUE(repo_->CreateTenant("acme", absl::Hours(24)).ok());
    main_ = repo_->CreateRootTimeline("acme", "main", kSeg1).value();
    wal_ = std::make_unique<cambium::testing::WalBuilder>(kSeg1);
    wal_->Add(kMessage, 0, 1, "x");
  }

  // Archives everything the WAL builder has written so far (again: overlaps match).
  void ArchiveMain() {
    ASSERT_TRUE(repo_->archive().Append(*main_, kSeg1, wal_->bytes(), false).ok());
  }

  std::unique_ptr<cambium::testing::TempDir> dir_;
  std::unique_ptr<PageStore> store_;
  std::unique_ptr<Repository> repo_;
  std::shared_ptr<Timeline> main_;
  std::unique_ptr<cambium::testing::WalBuilder> wal_;
};

}  // namespace cambium::pageserver::testing

#endif  // CAMBIUM_PAGESERVER_ARCHIVE_TEST_FIXTURE_H_
