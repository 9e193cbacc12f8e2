#include "tests/chaos/pg_client.h"

#include <libpq-fe.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace cambium::chaos {
namespace {

std::string ConnError(PGconn* conn) {
  std::string msg = conn ? PQerrorMessage(conn) : "out of memory";
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PgClient>> PgClient::Connect(const std::string& conninfo,
                                                            absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const std::string seconds = std::to_string(
        std::max<int64_t>(1, absl::ToInt64Seconds(deadline - absl::Now() + absl::Seconds(1))));
    // Keywords override what the URI says; keepalives notice a killed server.
    const char* keys[] = {"dbname",
                          "connect_timeout",
                          "keepalives",
                          "keepalives_idle",
                          "keepalives_interval",
                          "keepalives_count",
                          nullptr};
    const char* values[] = {conninfo.c_str(), seconds.c_str(), "1", "5", "2", "3", nullptr};
    PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
    if (conn != nullptr && PQstatus(conn) == CONNECTION_OK) {
      // NOTICEs (e.g. "... does not exist, skipping" of the churn) are not news.
      PQsetNoticeProcessor(
          conn, [](void*, const char*) {}, nullptr);
      return std::unique_ptr<PgClient>(new PgClient(conn));
    }
    const std::string msg = ConnError(conn);
    PQfinish(conn);
    // PG 15: "the database system is starting up" / "... is not yet accepting
    // connections" / "... is in recovery mode" while it replays.
    const bool starting = absl::StrContains(msg, "starting up") ||
                          absl::StrContains(msg, "not yet accepting connections") ||
                          absl::StrContains(msg, "in recovery mode");
    if (!starting || absl::Now() + absl::Milliseconds(200) >= deadline) {
      return absl::UnavailableError(absl::StrCat("connect ", conninfo, ": ", msg));
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
}

PgClient::~PgClient() {
  std::lock_guard<std::mutex> lock(cancel_mu_);
  PQfinish(conn_);
}

bool PgClient::healthy() const { return PQstatus(conn_) == CONNECTION_OK; }

void PgClient::Cancel() {
  std::lock_guard<std::mutex> lock(cancel_mu_);
  PGcancel* cancel = PQgetCancel(conn_);
  if (cancel == nullptr) return;
  char err[256];
  (void)PQcancel(cancel, err, sizeof(err));
  PQfreeCancel(cancel);
}

absl::StatusOr<std::vector<Row>> PgClient::Run(const std::string& sql) {
  if (!healthy()) return absl::UnavailableError("connection is broken");
  if (PQsendQuery(conn_, sql.c_str()) == 0) {
    return absl::UnavailableError(absl::StrCat("send: ", ConnError(conn_)));
  }
  std::vector<Row> rows;
  absl::Status error;
  // Every result must be read, also after an error, to leave the connection usable.
  while (PGresult* res = PQgetResult(conn_)) {
    const ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK) {
      rows.clear();
      for (int r = 0; r < PQntuples(res); ++r) {
        Row row;
        for (int c = 0; c < PQnfields(res); ++c) row.emplace_back(PQgetvalue(res, r, c));
        rows.push_back(std::move(row));
      }
    } else if (st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY && error.ok()) {
      std::string msg = PQresultErrorMessage(res);
      while (!msg.empty() && msg.back() == '\n') msg.pop_back();
      error = absl::InternalError(msg);
    }
    PQclear(res);
  }
  if (!healthy()) {
    return absl::UnavailableError(absl::StrCat("connection lost: ", ConnError(conn_)));
  }
  if (!error.ok()) return error;
  return rows;
}

absl::Status PgClient::Exec(const std::string& sql) { return Run(sql).status(); }

absl::StatusOr<std::vector<Row>> PgClient::Query(const std::string& sql) { return Run(sql); }

absl::StatusOr<std::string> PgClient::QueryValue(const std::string& sql) {
  auto rows = Query(sql);
  if (!rows.ok()) return rows.status();
  if (rows->empty() || rows->front().empty()) {
    return absl::NotFoundError(absl::StrCat("no rows: ", sql));
  }
  return rows->front().front();
}

absl::StatusOr<std::map<std::string, std::string>> ParseConninfo(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (opts == nullptr) {
    std::string msg = err ? err : "out of memory";
    PQfreemem(err);
    return absl::InvalidArgumentError("connection string " + conninfo + ": " + msg);
  }
  std::map<std::string, std::string> out;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val != nullptr && *o->val) out[o->keyword] = o->val;
  }
  PQconninfoFree(opts);
  return out;
}

std::string SqlQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

}  // namespace cambium::chaos
