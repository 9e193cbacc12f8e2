// WAL recorded from a real PostgreSQL 15 cluster (pgbench -i and a short pgbench
// run) is streamed through three cambium-safekeeper processes the way Postgres
// writes it (whole pages, the last one zero-padded and rewritten at the next
// write, writes of one to many pages), then read back with ReadWal from every
// safekeeper and from the proposer: byte-identical.
#include <iostream>
#include <random>

#include "common/pg/wal_decoder.h"
#include "common/pg/wal_directory.h"
#include "common/status.h"
#include "gtest/gtest.h"
#include "safekeeper/safekeeper_client.h"
#include "safekeeper/wal_proposer.h"
#include "tests/harness/pg_cluster.h"
#include "tests/harness/temp_dir.h"
#include "tests/safekeeper/sk_harness.h"

namespace cambium::safekeeper {
namespace {

using ::cambium::testing::PgCluster;
using ::cambium::testing::ServiceProcess;
using ::cambium::testing::TempDir;
using testing::PostgresLikeWrites;

// WAL [from, to) of a fresh cluster that ran pgbench -i and a short pgbench.
struct RecordedWal {
  Lsn from;
  std::string bytes;
};
absl::StatusOr<RecordedWal> RecordPostgresWal() {
  CAMBIUM_ASSIGN_OR_RETURN(auto cluster,
                           PgCluster::Create({.settings = {{"wal_keep_size", "1GB"}}}));
  CAMBIUM_ASSIGN_OR_RETURN(std::string first, cluster->Sql("SELECT pg_current_wal_insert_lsn()"));
  CAMBIUM_RETURN_IF_ERROR(cluster->Pgbench({"-i", "-s", "1", "-q"}).status());
  CAMBIUM_RETURN_IF_ERROR(cluster->Pgbench({"-c", "2", "-t", "150"}).status());
  CAMBIUM_ASSIGN_OR_RETURN(std::string last, cluster->Sql("SELECT pg_current_wal_flush_lsn()"));
  CAMBIUM_RETURN_IF_ERROR(cluster->Stop());
  CAMBIUM_ASSIGN_OR_RETURN(const Lsn first_lsn, Lsn::Parse(first));
  CAMBIUM_ASSIGN_OR_RETURN(const Lsn last_lsn, Lsn::Parse(last));
  RecordedWal wal{first_lsn.SegmentStart(), ""};
  CAMBIUM_ASSIGN_OR_RETURN(wal.bytes, pg::ReadWalRange(cluster->wal_dir(), 1, wal.from, last_lsn));
  return wal;
}

// Flush points: record ends a random 1 to 150 records apart (a commit flushes
// after a few records, the WAL writer or a full buffer after many), ending at the
// last complete record.
absl::StatusOr<std::vector<Lsn>> FlushPoints(const RecordedWal& wal) {
  std::vector<Lsn> flushes;
  pg::WalDecoder decoder(wal.from);
  decoder.Feed(wal.bytes);
  std::mt19937_64 rng(7);
  int until_flush = 1;
  Lsn records_end = wal.from;
  for (;;) {
    CAMBIUM_ASSIGN_OR_RETURN(std::optional<pg::WalRecord> next, decoder.Next());
    if (!next) break;
    records_end = next->end;
    if (--until_flush == 0) {
      flushes.push_back(records_end);
      until_flush = 1 + static_cast<int>(rng() % 150);
    }
  }
  if (flushes.empty() || flushes.back() != records_end) flushes.push_back(records_end);
  return flushes;
}

TEST(SafekeeperPostgresWal, StreamsThroughSafekeepersAndReadsBackByteIdentical) {
  auto wal = RecordPostgresWal();
  ASSERT_TRUE(wal.ok()) << wal.status();
  ASSERT_GT(wal->bytes.size(), 16u << 20) << "the WAL should cross segments";
  auto flushes = FlushPoints(*wal);
  ASSERT_TRUE(flushes.ok()) << flushes.status();
  const Lsn records_end = flushes->back();
  const auto writes = PostgresLikeWrites(wal->from, wal->bytes, *flushes);
  size_t rewrites = 0;
  for (size_t i = 1; i < writes.size(); ++i) rewrites += writes[i].lsn < writes[i - 1].end();
  std::cout << "postgres WAL " << wal->from.ToString() << ".." << records_end.ToString() << ": "
            << writes.size() << " writes, " << rewrites << " of them rewrite a page\n";
  EXPECT_GT(rewrites, writes.size() / 2);

  auto dir = TempDir::Create("cambium-sk-pg-");
  ASSERT_TRUE(dir.ok());
  std::vector<std::unique_ptr<ServiceProcess>> sks;
  std::vector<std::string> addresses;
  for (int i = 0; i < 3; ++i) {
    auto sk = testing::StartSafekeeperProcess(dir->Sub("sk" + std::to_string(i)),
                                              "sk" + std::to_string(i));
    ASSERT_TRUE(sk.ok()) << sk.status();
    addresses.push_back((*sk)->address());
    sks.push_back(std::move(*sk));
  }
  const ProposerOptions options =
      testing::TestProposerOptions(addresses, TenantId(1, 2), TimelineId(3, 4), wal->from);
  auto proposer = WalProposer::Create(options);
  ASSERT_TRUE(proposer.ok());
  auto start = (*proposer)->Elect();
  ASSERT_TRUE(start.ok()) << start.status();
  ASSERT_EQ(*start, wal->from);
  for (const auto& w : writes) {
    absl::Status flushed = testing::AppendAndWait(**proposer, w);
    ASSERT_TRUE(flushed.ok()) << flushed;
  }
  const std::string expected = wal->bytes.substr(0, records_end - wal->from);
  auto via_proposer = (*proposer)->ReadWal(wal->from, records_end);
  ASSERT_TRUE(via_proposer.ok()) << via_proposer.status();
  EXPECT_TRUE(*via_proposer == expected);
  for (auto& sk : sks) {
    auto read = testing::ReadCommittedWal(sk->address(), options.tenant, options.timeline,
                                          wal->from, records_end);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_TRUE(*read == expected) << sk->address();
  }
}

}  // namespace
}  // namespace cambium::safekeeper
