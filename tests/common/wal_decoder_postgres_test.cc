// The WAL decoder against real PostgreSQL 15 output: a temporary cluster runs a
// workload that produces several segments, commits, a checkpoint, full-page images,
// a WAL switch, a 100 KB record spanning pages and multi-megabyte records spanning
// segment boundaries. Every record the decoder yields must match pg_waldump's line
// for it: LSN, prev-link, rmgr, xid, lengths, commit timestamp, checkpoint redo LSN.
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <sstream>

#include "absl/strings/numbers.h"
#include "common/pg/pg_control.h"
#include "common/pg/wal_decoder.h"
#include "common/pg/wal_directory.h"
#include "common/pg/wal_format.h"
#include "common/pg/wal_records.h"
#include "gtest/gtest.h"
#include "tests/harness/pg_cluster.h"

namespace cambium::pg {
namespace {

using ::cambium::testing::PgCluster;
using ::cambium::testing::PostgresBin;

struct DumpLine {
  std::string rmgr;
  uint32_t rec_len = 0;
  uint32_t tot_len = 0;
  uint32_t xid = 0;
  Lsn lsn;
  Lsn prev;
  std::string desc;
};

// Parses pg_waldump's record lines (std::regex is recursive in libstdc++ and
// overflows the stack on pg_waldump's longest lines, so sscanf it is).
std::vector<DumpLine> ParseWaldump(const std::string& out) {
  std::vector<DumpLine> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    char rmgr[32];
    unsigned rec = 0, tot = 0, xid = 0, lsn_hi = 0, lsn_lo = 0, prev_hi = 0, prev_lo = 0;
    int desc_at = -1;
    if (std::sscanf(line.c_str(),
                    "rmgr: %31s len (rec/tot): %u/ %u, tx: %u, lsn: %X/%X, prev %X/%X, desc: %n",
                    rmgr, &rec, &tot, &xid, &lsn_hi, &lsn_lo, &prev_hi, &prev_lo, &desc_at) != 8 ||
        desc_at < 0) {
      continue;
    }
    DumpLine d;
    d.rmgr = rmgr;
    d.rec_len = rec;
    d.tot_len = tot;
    d.xid = xid;
    d.lsn = Lsn((uint64_t{lsn_hi} << 32) | lsn_lo);
    d.prev = Lsn((uint64_t{prev_hi} << 32) | prev_lo);
    d.desc = line.substr(desc_at);
    lines.push_back(d);
  }
  return lines;
}

// "CHECKPOINT_ONLINE redo 0/1500718; ..." -> (shutdown?, redo)
std::optional<std::pair<bool, Lsn>> ParseCheckpointDesc(const std::string& desc) {
  char kind[16];
  unsigned hi = 0, lo = 0;
  if (std::sscanf(desc.c_str(), "CHECKPOINT_%15[A-Z] redo %X/%X;", kind, &hi, &lo) != 3) {
    return std::nullopt;
  }
  return std::make_pair(std::string(kind) == "SHUTDOWN", Lsn((uint64_t{hi} << 32) | lo));
}

class WalDecoderPostgresTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto cluster = PgCluster::Create({.settings = {{"wal_keep_size", "4GB"},
                                                   {"max_wal_size", "4GB"},
                                                   {"checkpoint_timeout", "1h"},
                                                   {"autovacuum", "off"}}});
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = cluster->release();
    auto sql = [](const std::string& q) {
      auto r = cluster_->Sql(q);
      EXPECT_TRUE(r.ok()) << q << ": " << r.status();
      return r.ok() ? *r : std::string();
    };
    sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
    for (int i = 0; i < 20; ++i) sql("INSERT INTO t VALUES (" + std::to_string(i) + ", 'row')");
    sql("BEGIN; INSERT INTO t VALUES (1000, 'aborted'); ROLLBACK");
    auto init = cluster_->Pgbench({"-i", "-s", "2", "-q"});
    ASSERT_TRUE(init.ok()) << init.status();
    sql("SELECT pg_logical_emit_message(true, 'cambium', repeat('x', 100000))");
    sql("CHECKPOINT");
    // Full-page images after the checkpoint, then big records across segments.
    sql("UPDATE pgbench_branches SET bbalance = bbalance + 1");
    sql("SELECT pg_logical_emit_message(true, 'c', repeat(md5(i::text), 100000)) "
        "FROM generate_series(1, 8) i");
    sql("SELECT pg_switch_wal()");
    for (int i = 0; i < 5; ++i)
      sql("INSERT INTO t VALUES (" + std::to_string(2000 + i) + ", 'after switch')");
    insert_lsn_ = Lsn::Parse(sql("SELECT pg_current_wal_insert_lsn()")).value_or(Lsn());
    ASSERT_TRUE(cluster_->Stop().ok());

    auto segments = ListWalSegments(cluster_->wal_dir());
    ASSERT_TRUE(segments.ok()) << segments.status();
    ASSERT_GE(segments->size(), 4u) << "workload should span several segments";
    first_ = SegmentStartLsn(segments->front().segno);
    const Lsn last_end = SegmentStartLsn(segments->back().segno + 1);
    auto bytes = ReadWalRange(cluster_->wal_dir(), 1, first_, last_end);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    wal_ = new std::string(std::move(*bytes));

    auto dump = RunCommand(
        {.argv = {PostgresBin("pg_waldump"), "-p", cluster_->wal_dir(), "-s", first_.ToString()},
         .env = {{"TZ", "UTC"}}});
    ASSERT_TRUE(dump.ok()) << dump.status();
    dump_ = new std::vector<DumpLine>(ParseWaldump(dump->out));
    ASSERT_GT(dump_->size(), 1000u) << dump->err;
  }

  static void TearDownTestSuite() {
    delete cluster_;
    delete wal_;
    delete dump_;
  }

  // Decodes the whole WAL, feeding `chunk` bytes at a time.
  static std::vector<WalRecord> Decode(size_t chunk, absl::Status* end) {
    WalDecoder decoder(first_);
    std::vector<WalRecord> records;
    for (size_t off = 0; off < wal_->size(); off += chunk) {
      decoder.Feed(std::string_view(*wal_).substr(off, chunk));
      for (;;) {
        auto next = decoder.Next();
        if (!next.ok()) {
          *end = next.status();
          return records;
        }
        if (!next->has_value()) break;
        records.push_back(std::move(**next));
      }
    }
    *end = absl::OkStatus();
    return records;
  }

  static PgCluster* cluster_;
  static std::string* wal_;
  static std::vector<DumpLine>* dump_;
  static Lsn first_;
  static Lsn insert_lsn_;
};

PgCluster* WalDecoderPostgresTest::cluster_ = nullptr;
std::string* WalDecoderPostgresTest::wal_ = nullptr;
std::vector<DumpLine>* WalDecoderPostgresTest::dump_ = nullptr;
Lsn WalDecoderPostgresTest::first_;
Lsn WalDecoderPostgresTest::insert_lsn_;

TEST_F(WalDecoderPostgresTest, EveryRecordMatchesPgWaldump) {
  absl::Status end;
  std::vector<WalRecord> records = Decode(kDefaultWalSegmentSize, &end);
  EXPECT_EQ(end.code(), absl::StatusCode::kOutOfRange) << end;
  ASSERT_EQ(records.size(), dump_->size());
  for (size_t i = 0; i < records.size(); ++i) {
    const WalRecord& r = records[i];
    const DumpLine& d = (*dump_)[i];
    SCOPED_TRACE("record " + std::to_string(i) + " at " + d.lsn.ToString() + ": " + d.desc);
    ASSERT_EQ(r.start, d.lsn);
    EXPECT_EQ(r.prev, d.prev);
    EXPECT_EQ(RmgrName(r.rmid), d.rmgr);
    EXPECT_EQ(r.xid, d.xid);
    EXPECT_EQ(r.total_len, d.tot_len);
    EXPECT_EQ(r.total_len - r.fpi_len, d.rec_len);
    if (i + 1 < records.size()) {
      // The next record starts at this one's end, or just after a page header.
      const Lsn next = records[i + 1].start;
      EXPECT_TRUE(next == r.end || (r.end.IsPageBoundary() && next > r.end && next - r.end <= 40))
          << r.end.ToString() << " vs next " << next.ToString();
    }
  }
}

TEST_F(WalDecoderPostgresTest, WorkloadCoveredTheHardCases) {
  absl::Status end;
  std::vector<WalRecord> records = Decode(kDefaultWalSegmentSize, &end);
  bool spans_segment = false, spans_pages = false, has_switch = false, has_fpi = false;
  for (const WalRecord& r : records) {
    if (r.start.SegmentNo() != (r.end - 1).SegmentNo() &&
        !(r.rmid == 0 && r.rmgr_info() == kXlogSwitch)) {
      spans_segment = true;
    }
    if (r.total_len >= 100000) spans_pages = true;
    if (r.rmid == 0 && r.rmgr_info() == kXlogSwitch) {
      has_switch = true;
      EXPECT_TRUE(r.end.IsSegmentBoundary());
    }
    if (r.fpi_len > 0) has_fpi = true;
  }
  EXPECT_TRUE(spans_segment);
  EXPECT_TRUE(spans_pages);
  EXPECT_TRUE(has_switch);
  EXPECT_TRUE(has_fpi);
}

TEST_F(WalDecoderPostgresTest, CommitTimestampsAndCheckpointRedoMatchPgWaldump) {
  absl::Status end;
  std::vector<WalRecord> records = Decode(kDefaultWalSegmentSize, &end);
  ASSERT_EQ(records.size(), dump_->size());
  int commits = 0, aborts = 0, checkpoints = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    const DumpLine& d = (*dump_)[i];
    auto xact = DecodeXact(records[i]);
    ASSERT_TRUE(xact.ok()) << xact.status();
    if (xact->has_value()) {
      const char* word = (*xact)->kind == XactKind::kCommit ? "COMMIT " : "ABORT ";
      EXPECT_EQ(d.desc.rfind(word + FormatPgTimestampUtc((*xact)->xact_time), 0), 0u)
          << d.desc << " vs " << FormatPgTimestampUtc((*xact)->xact_time);
      ((*xact)->kind == XactKind::kCommit ? commits : aborts)++;
    }
    auto ckpt = DecodeCheckpoint(records[i]);
    ASSERT_TRUE(ckpt.ok()) << ckpt.status();
    if (auto expected = ParseCheckpointDesc(d.desc)) {
      ASSERT_TRUE(ckpt->has_value()) << d.desc;
      EXPECT_EQ((*ckpt)->checkpoint.redo, expected->second);
      EXPECT_EQ((*ckpt)->shutdown, expected->first);
      ++checkpoints;
    } else {
      EXPECT_FALSE(ckpt->has_value()) << d.desc;
    }
  }
  EXPECT_GE(commits, 25);
  EXPECT_GE(aborts, 1);
  EXPECT_GE(checkpoints, 2);  // the explicit one and the shutdown checkpoint
}

TEST_F(WalDecoderPostgresTest, StreamingInOddChunksGivesTheSameRecords) {
  absl::Status end_whole, end_chunked;
  std::vector<WalRecord> whole = Decode(kDefaultWalSegmentSize, &end_whole);
  std::vector<WalRecord> chunked = Decode(3001, &end_chunked);
  ASSERT_EQ(whole.size(), chunked.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    ASSERT_EQ(whole[i].start, chunked[i].start);
    ASSERT_EQ(whole[i].end, chunked[i].end);
  }
  EXPECT_EQ(end_whole.code(), end_chunked.code());
}

TEST_F(WalDecoderPostgresTest, InsertPositionIsARecordEndAndRoundsToItself) {
  ASSERT_TRUE(insert_lsn_.valid());
  absl::Status end;
  std::vector<WalRecord> records = Decode(kDefaultWalSegmentSize, &end);
  bool found = false;
  for (const WalRecord& r : records) found |= r.end == insert_lsn_;
  EXPECT_TRUE(found) << insert_lsn_.ToString();
  EXPECT_EQ(LastRecordEndAtOrBelow(first_, *wal_, insert_lsn_).value(), insert_lsn_);
  // One byte less rounds down to the previous record's end.
  auto below = LastRecordEndAtOrBelow(first_, *wal_, insert_lsn_ - 1);
  ASSERT_TRUE(below.ok());
  EXPECT_LT(*below, insert_lsn_);
  bool below_is_end = false;
  for (const WalRecord& r : records) below_is_end |= r.end == *below;
  EXPECT_TRUE(below_is_end);
}

TEST_F(WalDecoderPostgresTest, ShutdownCheckpointInWalMatchesPgControl) {
  auto control = ReadPgControl(cluster_->pgdata());
  ASSERT_TRUE(control.ok()) << control.status();
  ASSERT_GT(control->checkpoint, first_);
  // Start a decoder exactly at the checkpoint record named by pg_control.
  WalDecoder decoder(control->checkpoint);
  decoder.Feed(std::string_view(*wal_).substr(control->checkpoint - first_));
  auto rec = decoder.Next();
  ASSERT_TRUE(rec.ok() && rec->has_value()) << rec.status();
  auto ckpt = DecodeCheckpoint(**rec);
  ASSERT_TRUE(ckpt.ok() && ckpt->has_value());
  EXPECT_TRUE((*ckpt)->shutdown);
  EXPECT_EQ((*ckpt)->checkpoint.redo, control->redo());
  EXPECT_EQ((*ckpt)->checkpoint.next_oid, control->checkpoint_copy.next_oid);
  EXPECT_EQ((*ckpt)->checkpoint.next_xid, control->checkpoint_copy.next_xid);
}

// Corruption of real segments: never a crash, never a record with a bad CRC.
TEST_F(WalDecoderPostgresTest, CorruptedRealSegmentsYieldErrorsNotCrashes) {
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const size_t span = std::min<size_t>(wal_->size(), 3 * kDefaultWalSegmentSize);
  for (int iter = 0; iter < 40; ++iter) {
    std::string bytes = wal_->substr(0, span);
    for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k)
      bytes[rng() % bytes.size()] ^= 1 << (rng() % 8);
    if (iter % 3 == 0) bytes.resize(rng() % bytes.size());
    WalDecoder decoder(first_);
    decoder.Feed(bytes);
    size_t n = 0;
    for (;;) {
      auto next = decoder.Next();
      if (!next.ok()) {
        EXPECT_TRUE(absl::IsOutOfRange(next.status()) || absl::IsDataLoss(next.status()))
            << next.status();
        break;
      }
      if (!next->has_value()) break;
      ++n;
    }
    EXPECT_LE(n, dump_->size());
  }
}

}  // namespace
}  // namespace cambium::pg
