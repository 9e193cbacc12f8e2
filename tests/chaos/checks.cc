#include "tests/chaos/checks.h"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/subprocess.h"
#include "tests/harness/postgres_process.h"

namespace cambium::chaos {
namespace fs = std::filesystem;

const std::vector<std::string>& SampledTables() {
  static const std::vector<std::string> tables = {"acks",
                                                  "markers",
                                                  "churn",
                                                  "pgbench_accounts",
                                                  "pgbench_branches",
                                                  "pgbench_tellers",
                                                  "pgbench_history"};
  return tables;
}

absl::StatusOr<Sample> TakeSample(PgClient& client) {
  std::string sql;
  for (const std::string& t : SampledTables()) {
    sql += sql.empty() ? "SELECT " : " UNION ALL SELECT ";
    sql += absl::StrFormat(
        "'%s', count(*) || ':' || coalesce(sum(hashtext(x::text)::bigint), 0) FROM %s x", t, t);
  }
  auto rows = client.Query(sql);
  if (!rows.ok()) return rows.status();
  Sample s;
  for (const Row& r : *rows) s[r.at(0)] = r.at(1);
  return s;
}

absl::StatusOr<ExactPoint> SampleUnderLock(PgClient& client, int lock_timeout_ms) {
  const std::string tables = absl::StrJoin(SampledTables(), ", ");
  absl::Status s = client.Exec(absl::StrFormat(
      "BEGIN; SET LOCAL lock_timeout = %d; LOCK TABLE %s IN SHARE MODE", lock_timeout_ms, tables));
  auto rollback = [&](absl::Status why) {
    (void)client.Exec("ROLLBACK");
    return why;
  };
  if (!s.ok()) return rollback(s);
  ExactPoint p;
  auto lsn = client.QueryValue("SELECT pg_current_wal_insert_lsn()");
  if (!lsn.ok()) return rollback(lsn.status());
  p.lsn = *lsn;
  auto sample = TakeSample(client);
  if (!sample.ok()) return rollback(sample.status());
  p.sample = *std::move(sample);
  s = client.Exec("COMMIT");
  if (!s.ok()) return s;
  return p;
}

std::string DiffSamples(const Sample& expected, const Sample& actual) {
  std::vector<std::string> diffs;
  for (const auto& [table, want] : expected) {
    auto it = actual.find(table);
    const std::string got = it == actual.end() ? "(missing)" : it->second;
    if (got != want) diffs.push_back(absl::StrFormat("%s: expected %s, got %s", table, want, got));
  }
  return absl::StrJoin(diffs, "; ");
}

absl::StatusOr<std::string> CheckBalances(PgClient& client) {
  auto rows = client.Query(
      "SELECT (SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts), "
      "(SELECT coalesce(sum(bbalance), 0) FROM pgbench_branches), "
      "(SELECT coalesce(sum(tbalance), 0) FROM pgbench_tellers), "
      "(SELECT coalesce(sum(delta), 0) FROM pgbench_history)");
  if (!rows.ok()) return rows.status();
  const Row& r = rows->at(0);
  if (r[0] == r[1] && r[1] == r[2] && r[2] == r[3]) return std::string();
  return absl::StrFormat("sum(abalance)=%s sum(bbalance)=%s sum(tbalance)=%s sum(delta)=%s", r[0],
                         r[1], r[2], r[3]);
}

absl::StatusOr<std::string> CheckAcked(PgClient& client, const std::vector<int64_t>& acked,
                                       int64_t last_attempted) {
  auto rows = client.Query("SELECT id FROM acks ORDER BY id");
  if (!rows.ok()) return rows.status();
  std::set<int64_t> present;
  int64_t phantom = 0, first_phantom = 0;
  for (const Row& r : *rows) {
    int64_t id = 0;
    if (!absl::SimpleAtoi(r.at(0), &id)) continue;
    present.insert(id);
    if (id > last_attempted && phantom++ == 0) first_phantom = id;
  }
  std::vector<int64_t> lost;
  for (int64_t id : acked) {
    if (!present.count(id)) lost.push_back(id);
  }
  std::string out;
  if (!lost.empty()) {
    std::vector<int64_t> head(lost.begin(), lost.begin() + std::min<size_t>(lost.size(), 10));
    out =
        absl::StrFormat("%d of %d acknowledged commits missing (ids %s%s; last acked %d)",
                        lost.size(), acked.size(), absl::StrJoin(head, ","),
                        lost.size() > head.size() ? ",..." : "", acked.empty() ? 0 : acked.back());
  }
  if (phantom > 0) {
    out += absl::StrFormat("%s%d rows with ids never attempted (first %d, last attempted %d)",
                           out.empty() ? "" : "; ", phantom, first_phantom, last_attempted);
  }
  return out;
}

AmcheckResult RunAmcheck(const std::string& conninfo) {
  AmcheckResult res;
  // pg_amcheck takes -d as a pattern, not a connection string: pass its parts.
  auto params = ParseConninfo(conninfo);
  if (!params.ok()) {
    res.output = params.status().ToString();
    return res;
  }
  auto get = [&](const char* key, const char* fallback) {
    auto it = params->find(key);
    return it == params->end() ? std::string(fallback) : it->second;
  };
  SubprocessOptions o;
  o.argv = {testing::PostgresBin("pg_amcheck"),
            "--heapallindexed",
            "--install-missing",
            "--no-password",
            "-h",
            get("host", "127.0.0.1"),
            "-p",
            get("port", "5432"),
            "-U",
            get("user", "postgres"),
            "-d",
            get("dbname", "postgres")};
  if (params->count("password")) o.env["PGPASSWORD"] = params->at("password");
  auto r = RunCommand(o, absl::Minutes(10));
  if (!r.ok()) {
    res.output = r.status().ToString();
    return res;
  }
  res.output = r->out + r->err;
  res.clean = r->exit_code == 0;  // 2: corruption found, 1: another failure
  for (const char* marker : {"could not read", "Input/output error", "I/O error", "could not open",
                             "could not connect", "connection to server"}) {
    if (absl::StrContains(res.output, marker)) res.read_error = true;
  }
  if (res.output.size() > 3000) res.output = res.output.substr(0, 3000) + "...";
  return res;
}

SegmentCount CountSegments(const std::string& safekeeper_dir, const std::string& timeline_hex) {
  SegmentCount c;
  static const std::regex kSegment("^[0-9A-F]{24}(\\.partial)?$");
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(safekeeper_dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory() && it->path().filename() == timeline_hex) {
      c.exists = true;
      c.dir = it->path().string();
      for (const auto& f : fs::directory_iterator(it->path(), ec)) {
        if (std::regex_match(f.path().filename().string(), kSegment)) ++c.segments;
      }
      break;
    }
  }
  return c;
}

}  // namespace cambium::chaos
