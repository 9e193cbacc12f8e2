// The test harness's PostgresProcess: a port another process took between being
// picked and postgres binding it (tests run side by side) is not a failed start.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "tests/harness/pg_cluster.h"

namespace cambium::testing {
namespace {

TEST(PostgresProcessTest, APortTakenMeanwhileIsReplacedByAFreeOne) {
  auto cluster = PgCluster::Create({.start = false});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  // Another process listens on the port the cluster was given.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>((*cluster)->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  const int taken = (*cluster)->port();
  absl::Status started = (*cluster)->Start();
  close(fd);
  ASSERT_TRUE(started.ok()) << started;
  EXPECT_NE((*cluster)->port(), taken);
  auto one = (*cluster)->Sql("SELECT 1");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, "1");
}

}  // namespace
}  // namespace cambium::testing
