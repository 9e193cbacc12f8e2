// Tenants over two pageservers (`up --pageservers 2`, placement in etcd) and `cambium
// tenant move` with a real Postgres committing all along: no acknowledged commit is
// lost, branches read the same on the new pageserver, the endpoint follows the move
// by itself and restarts there (docs/scale-out.md "Moving a tenant"; issue 14).
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/cli/cli_fixture.h"

namespace cambium::testing {
namespace {

class TenantMoveTest : public CliStackTest {
 protected:
  static int64_t Number(const std::string& conn, const std::string& sql) {
    int64_t n = -1;
    EXPECT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(Psql(conn, sql)), &n)) << sql;
    return n;
  }

  // The pageserver `tenant list` names for `tenant`; "" if not listed.
  static std::string PageserverOf(const std::string& tenant) {
    Result list = Cambium({"tenant", "list"});
    EXPECT_EQ(list.code, 0) << list.err;
    for (const json& t : list.out) {
      if (t.value("name", "") == tenant) return t.value("pageserver", "");
    }
    return "";
  }

  // Inserts ids 1, 2, ... one commit each until stopped; `acked` is the highest
  // acknowledged.
  struct Writer {
    std::atomic<bool> stop{false};
    std::atomic<int64_t> acked{0};
    std::atomic<int64_t> failed{0};
    std::thread thread;
    void Start(const std::string& conn) {
      thread = std::thread([this, conn] {
        for (int64_t i = 1; !stop; ++i) {
          bool ok = true;
          Psql(conn, absl::StrCat("INSERT INTO acks VALUES (", i, ")"), &ok);
          if (ok) {
            acked = i;
          } else {
            ++failed;
            --i;  // the same id again: it was not acknowledged
            absl::SleepFor(absl::Milliseconds(100));
          }
        }
      });
    }
    void Stop() {
      stop = true;
      if (thread.joinable()) thread.join();
    }
  };
};

TEST_F(TenantMoveTest, ATenantMovesBetweenPageserversWhileItsEndpointKeepsCommitting) {
  Result up = Cambium({"up", "--pageservers", "2"});
  ASSERT_EQ(up.code, 0) << up.err;
  ASSERT_EQ(up.out["pageservers"].size(), 2u) << up.out;
  const std::string main = up.out["connection_string"].get<std::string>();
  Result status = Cambium({"status"});
  ASSERT_EQ(status.code, 0) << status.err;
  EXPECT_TRUE(status.out["etcd"].is_object()) << status.out;
  EXPECT_EQ(status.out["pageservers"].size(), 2u);
  // etcd's root password is the stack's secret, readable only by its owner.
  struct stat st {};
  ASSERT_EQ(stat(dir_->Sub("secrets/etcd.password").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(PageserverOf("default"), "pageserver");

  Psql(main, "CREATE TABLE acks (id bigint PRIMARY KEY)");
  Psql(main,
       "CREATE TABLE data AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 200000) g");
  Psql(main, "CHECKPOINT");  // data pages at the pageserver, not only in WAL
  ASSERT_EQ(Cambium({"branch", "create", "before"}).code, 0);
  const std::string data_sum = Psql(main, "SELECT sum(hashtext(v)) FROM data");

  Writer writer;
  writer.Start(main);
  absl::SleepFor(absl::Seconds(2));
  Result moved = Cambium({"tenant", "move", "default", "--to", "pageserver1"});
  ASSERT_EQ(moved.code, 0) << moved.err;
  EXPECT_EQ(moved.out["moved"], true);
  EXPECT_EQ(moved.out["from"], "pageserver");
  EXPECT_EQ(moved.out["generation"], 1);
  EXPECT_GT(moved.out["bytes"].get<int64_t>(), 1 << 20) << moved.out;
  std::cout << "move: " << moved.out.dump() << "\n";
  EXPECT_EQ(PageserverOf("default"), "pageserver1");
  EXPECT_EQ(Psql(main, "SELECT sum(hashtext(v)) FROM data"), data_sum);
  const int64_t acked_before_back = writer.acked;
  absl::SleepFor(absl::Seconds(2));
  EXPECT_GT(writer.acked.load(), acked_before_back) << "commits go on after the move";
  // And back again, under a new generation.
  Result back = Cambium({"tenant", "move", "default", "--to", "pageserver"});
  ASSERT_EQ(back.code, 0) << back.err;
  EXPECT_EQ(back.out["generation"], 2);
  absl::SleepFor(absl::Seconds(2));
  Result again = Cambium({"tenant", "move", "default", "--to", "pageserver1"});
  ASSERT_EQ(again.code, 0) << again.err;
  absl::SleepFor(absl::Seconds(2));
  writer.Stop();
  const int64_t acked = writer.acked;
  ASSERT_GT(acked, 0);
  EXPECT_EQ(Number(main, absl::StrCat("SELECT count(*) FROM acks WHERE id <= ", acked)), acked);
  // A finished move leaves nothing in the transfer store (it is a whole copy of the
  // tenant each time).
  EXPECT_EQ(again.out["transfer_objects_left"], 0) << again.out;
  std::vector<std::string> left;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir_->Sub("transfers"), ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) left.push_back(it->path().string());
  }
  EXPECT_TRUE(left.empty()) << absl::StrJoin(left, ", ");

  // A branch made before the moves reads what it read then, from the new pageserver.
  Result before = Cambium({"endpoint", "start", "before"});
  ASSERT_EQ(before.code, 0) << before.err;
  EXPECT_EQ(
      Psql(before.out["connection_string"].get<std::string>(), "SELECT sum(hashtext(v)) FROM data"),
      data_sum);
  EXPECT_EQ(Psql(before.out["connection_string"].get<std::string>(), "SELECT count(*) FROM acks"),
            "0");
  // main restarted: everything acknowledged is there, served by pageserver1 alone.
  ASSERT_EQ(Cambium({"endpoint", "stop", "main"}).code, 0);
  Result restarted = Cambium({"endpoint", "start", "main"});
  ASSERT_EQ(restarted.code, 0) << restarted.err;
  const std::string main2 = restarted.out["connection_string"].get<std::string>();
  EXPECT_EQ(Number(main2, absl::StrCat("SELECT count(*) FROM acks WHERE id <= ", acked)), acked);
  EXPECT_EQ(Psql(main2, "SELECT sum(hashtext(v)) FROM data"), data_sum);
  Psql(main2, "CREATE EXTENSION IF NOT EXISTS amcheck");
  Psql(main2, "SELECT bt_index_check('acks_pkey', true)");

  // Moving to where it is is a no-op; to a pageserver that does not exist, an error
  // that names the ones that do.
  Result same = Cambium({"tenant", "move", "default", "--to", "pageserver1"});
  ASSERT_EQ(same.code, 0) << same.err;
  EXPECT_EQ(same.out["moved"], false);
  Result nowhere = Cambium({"tenant", "move", "default", "--to", "pageserver7"});
  EXPECT_NE(nowhere.code, 0);
  EXPECT_NE(nowhere.err.find("pageserver1"), std::string::npos) << nowhere.err;

  // A second tenant, placed on the first pageserver, with its own main.
  Result acme = Cambium({"tenant", "create", "acme", "--pageserver", "pageserver"});
  ASSERT_EQ(acme.code, 0) << acme.err;
  EXPECT_EQ(PageserverOf("acme"), "pageserver");
  Result branches = Cambium({"--tenant", "acme", "branch", "list"});
  ASSERT_EQ(branches.code, 0) << branches.err;
  ASSERT_EQ(branches.out.size(), 1u) << branches.out;
  EXPECT_EQ(branches.out[0]["name"], "main");
  EXPECT_EQ(Cambium({"tenant", "create", "acme"}).code, 1) << "a name is taken once";

  // down and up: the placement and both pageservers come back.
  ASSERT_EQ(Cambium({"down"}).code, 0);
  Result up2 = Cambium({"up"});
  ASSERT_EQ(up2.code, 0) << up2.err;
  EXPECT_EQ(up2.out["pageservers"].size(), 2u);
  EXPECT_EQ(PageserverOf("default"), "pageserver1");
  EXPECT_EQ(PageserverOf("acme"), "pageserver");
  const std::string main3 = up2.out["connection_string"].get<std::string>();
  EXPECT_EQ(Number(main3, absl::StrCat("SELECT count(*) FROM acks WHERE id <= ", acked)), acked);
}

// A pageserver rebuilt from an upload made before a tenant moved away restores that
// tenant as it was then. That copy must neither be served nor taken for the tenant
// by a later move back: the rebuild retires it, and the move back carries the
// tenant as it is now.
// A stack of its own (the object store is chosen when a stack starts).
class TenantRebuildTest : public TenantMoveTest {};

TEST_F(TenantRebuildTest, ARebuiltPageserverRetiresACopyOfATenantThatMovedAway) {
  namespace fs = std::filesystem;
  const std::string objects = dir_->Sub("objects");
  fs::create_directories(objects);
  Result up = Cambium({"up", "--pageservers", "2", "--object-store", "file://" + objects});
  ASSERT_EQ(up.code, 0) << up.err;
  const std::string main = up.out["connection_string"].get<std::string>();
  Psql(main, "CREATE TABLE t (v text)");
  Psql(main, "INSERT INTO t VALUES ('before the moves')");
  Psql(main, "CHECKPOINT");
  Result there = Cambium({"tenant", "move", "default", "--to", "pageserver1"});
  ASSERT_EQ(there.code, 0) << there.err;
  // pageserver1's uploads as they are now hold the tenant (the attach waited for
  // one): keep a copy, as an old backup of its store would be.
  const std::string history = objects + "/pageserver1";
  ASSERT_TRUE(fs::exists(history));
  fs::copy(history, dir_->Sub("history-then"), fs::copy_options::recursive);

  Psql(main, "INSERT INTO t VALUES ('after the first move')");
  Result back = Cambium({"tenant", "move", "default", "--to", "pageserver"});
  ASSERT_EQ(back.code, 0) << back.err;
  Psql(main, "INSERT INTO t VALUES ('after the move back')");

  // pageserver1's store goes back to that moment, and its disk is lost.
  ASSERT_EQ(Cambium({"down"}).code, 0);
  fs::remove_all(history);
  fs::rename(dir_->Sub("history-then"), history);
  Result rebuilt = Cambium({"pageserver", "rebuild", "--pageserver", "pageserver1"});
  ASSERT_EQ(rebuilt.code, 0) << rebuilt.err;
  EXPECT_EQ(rebuilt.out["pageserver_rebuilt"], "pageserver1");
  EXPECT_EQ(rebuilt.out["retired_stale_copies"], json::array({"default"})) << rebuilt.out;
  Result list = Cambium({"tenant", "list"});
  ASSERT_EQ(list.code, 0) << list.err;
  ASSERT_EQ(list.out.size(), 1u) << list.out;
  EXPECT_EQ(list.out[0]["pageserver"], "pageserver");

  // The move there again carries every row, not the restored copy's one.
  const std::string main2 = rebuilt.out["connection_string"].get<std::string>();
  Result again = Cambium({"tenant", "move", "default", "--to", "pageserver1"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(Psql(main2, "SELECT string_agg(v, ',' ORDER BY v) FROM t"),
            "after the first move,after the move back,before the moves");
  ASSERT_EQ(Cambium({"endpoint", "stop", "main"}).code, 0);
  Result restarted = Cambium({"endpoint", "start", "main"});
  ASSERT_EQ(restarted.code, 0) << restarted.err;
  EXPECT_EQ(Psql(restarted.out["connection_string"].get<std::string>(), "SELECT count(*) FROM t"),
            "3");
}

}  // namespace
}  // namespace cambium::testing
