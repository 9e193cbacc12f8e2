// The Postgres roles Cambium gives every tenant (docs/security.md), named here once
// for the pageserver (which serves their passwords, GetCredentials) and the CLI
// (which creates them and sets the passwords in each branch's catalog).
//
//   cambium_owner   LOGIN CREATEDB CREATEROLE, not a superuser: owns database
//                   postgres and schema public, reads and writes all data.
//   cambium_reader  LOGIN, member of pg_read_all_data and nothing else.
//   postgres        the superuser: no password, so only the peer-authenticated
//                   Unix socket of an endpoint lets it in (OS users root and postgres).
//
// InitdbArgv is the one way Cambium (`up`, and the test harness's vanilla clusters)
// makes a cluster: superuser postgres, UTF8, locale C, no trust anywhere (peer on the
// socket, SCRAM over TCP).
//
// Thread-safety: constants and a pure function.
#ifndef CAMBIUM_COMMON_PG_ROLES_H_
#define CAMBIUM_COMMON_PG_ROLES_H_

#include <string>
#include <vector>

namespace cambium {

inline constexpr char kOwnerRole[] = "cambium_owner";
inline constexpr char kReaderRole[] = "cambium_reader";
inline constexpr char kSuperuserRole[] = "postgres";

// initdb's command line for a new cluster in `pgdata` (run it as OS user postgres).
inline std::vector<std::string> InitdbArgv(const std::string& initdb, const std::string& pgdata) {
  return {initdb,
          "-N",
          "-D",
          pgdata,
          "-U",
          "postgres",
          "-E",
          "UTF8",
          "--locale=C",
          "--auth-local=peer",
          "--auth-host=scram-sha-256"};
}

}  // namespace cambium

#endif  // CAMBIUM_COMMON_PG_ROLES_H_
