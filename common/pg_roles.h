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
// Thread-safety: constants only.
#ifndef CAMBIUM_COMMON_PG_ROLES_H_
#define CAMBIUM_COMMON_PG_ROLES_H_

namespace cambium {

inline constexpr char kOwnerRole[] = "cambium_owner";
inline constexpr char kReaderRole[] = "cambium_reader";
inline constexpr char kSuperuserRole[] = "postgres";

}  // namespace cambium

#endif  // CAMBIUM_COMMON_PG_ROLES_H_
