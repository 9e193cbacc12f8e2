// The chaos suite's checks on one Postgres endpoint (main or a branch), and the
// exact sample that a branch at an LSN is compared with.
//
// Exactness: on the parent, `BEGIN; LOCK TABLE <all sampled tables> IN SHARE MODE;
// SELECT pg_current_wal_insert_lsn(); <sample>; COMMIT`. SHARE mode waits for every
// writer of those tables to finish (commit records below the insert LSN, visible to
// the sample) and keeps new writers out while the LSN and the sample are read, so
// the sample is exactly the tables' content at that LSN: what a branch at that LSN
// must show, byte for byte (a count and an order-independent hash of every row's
// text per table).
//
// Thread-safety: functions only; a PgClient is used by one thread at a time.
#ifndef CAMBIUM_TESTS_CHAOS_CHECKS_H_
#define CAMBIUM_TESTS_CHAOS_CHECKS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/chaos/pg_client.h"

namespace cambium::chaos {

// table -> "rows:hash"
using Sample = std::map<std::string, std::string>;

// The tables every sample covers.
const std::vector<std::string>& SampledTables();

// Sample of every table, in the caller's transaction (or autocommit).
absl::StatusOr<Sample> TakeSample(PgClient& client);

struct ExactPoint {
  std::string lsn;  // pg_current_wal_insert_lsn() under the locks
  Sample sample;
};
// The LOCK ... IN SHARE MODE protocol above; a lock wait over `lock_timeout_ms`
// fails (the caller skips this point).
absl::StatusOr<ExactPoint> SampleUnderLock(PgClient& client, int lock_timeout_ms = 5000);

// "" if two samples are equal, else which tables differ and how.
std::string DiffSamples(const Sample& expected, const Sample& actual);

// pgbench's invariant: sum(abalance) = sum(bbalance) = sum(tbalance) =
// sum(history.delta), read in one snapshot. "" if it holds, else the four sums.
absl::StatusOr<std::string> CheckBalances(PgClient& client);

// Every id of `acked` is in `acks`, and no id above `last_attempted` is. "" if so,
// else a description (how many lost, the first few ids).
absl::StatusOr<std::string> CheckAcked(PgClient& client, const std::vector<int64_t>& acked,
                                       int64_t last_attempted);

struct AmcheckResult {
  bool clean = false;
  // The failure was an error reading data (I/O, checksum) rather than corruption
  // amcheck found in what it read.
  bool read_error = false;
  std::string output;
};
// pg_amcheck --heapallindexed (--install-missing) on database postgres.
AmcheckResult RunAmcheck(const std::string& conninfo);

// Number of WAL segment files in a safekeeper's directory of one timeline (0 if
// the timeline directory does not exist); `exists` tells which.
struct SegmentCount {
  bool exists = false;
  int segments = 0;
  std::string dir;
};
SegmentCount CountSegments(const std::string& safekeeper_dir, const std::string& timeline_hex);

}  // namespace cambium::chaos

#endif  // CAMBIUM_TESTS_CHAOS_CHECKS_H_
