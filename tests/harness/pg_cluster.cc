#include "tests/harness/pg_cluster.h"

#include <fstream>

#include "common/pg_roles.h"
#include "common/status.h"
#include "tests/harness/net.h"

namespace cambium::testing {

absl::StatusOr<std::unique_ptr<PgCluster>> PgCluster::Create(PgClusterOptions options) {
  auto dir = TempDir::Create("cambium-pg-");
  if (!dir.ok()) return dir.status();
  auto port = FreePort();
  if (!port.ok()) return port.status();
  std::unique_ptr<PgCluster> cluster(new PgCluster(std::move(*dir)));
  cluster->pgdata_ = cluster->dir_.Sub("pgdata");

  SubprocessOptions initdb;
  initdb.argv = InitdbArgv(PostgresBin("initdb"), cluster->pgdata_);
  initdb.user = "postgres";
  auto out = CheckCommand(initdb, absl::Minutes(2));
  if (!out.ok()) return Annotate(out.status(), "initdb");
  CAMBIUM_RETURN_IF_ERROR(WritePeerAccess(cluster->pgdata_));

  if (!options.settings.empty()) {
    std::ofstream conf(cluster->pgdata_ + "/postgresql.conf", std::ios::app);
    conf << "\n# added by the Cambium test harness\n";
    for (const auto& [name, value] : options.settings) conf << name << " = '" << value << "'\n";
    if (!conf) return absl::InternalError("could not write postgresql.conf");
  }
  cluster->server_ = std::make_unique<PostgresProcess>(
      PostgresOptions{.pgdata = cluster->pgdata_,
                      .port = *port,
                      .socket_dir = cluster->dir_.path(),
                      .log_file = cluster->dir_.Sub("postgres.log")});
  if (options.start) {
    absl::Status s = cluster->Start();
    if (!s.ok()) return s;
  }
  return cluster;
}

}  // namespace cambium::testing
