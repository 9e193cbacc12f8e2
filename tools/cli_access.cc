// Cli: who may connect to an endpoint (docs/security.md).
//
// Postgres authenticates with pg_hba.conf and pg_ident.conf files the CLI writes
// into the endpoint's runtime directory and names on the command line (hba_file,
// ident_file), so whatever a branch's own copies say, and whatever a superuser
// does to them, an endpoint never trusts anyone:
//
//   local  peer, map cambium: OS users root and postgres, as role postgres only
//   host   127.0.0.1 and ::1, scram-sha-256 (the superuser has no password)
//
// Every tenant has an owner role and a read-only role (common/pg_roles.h). Their
// passwords are the branch's own, kept by the pageserver (GetCredentials); the CLI
// writes them into the branch's catalog through the peer socket before TCP is let
// in, as SCRAM verifiers computed here (PQencryptPasswordConn), so no plaintext
// password reaches Postgres. A child branch's catalog starts as a copy of its
// parent's, so this happens at every start that can write: a read-write endpoint
// (before its first client), and the first run of a read-only endpoint's ephemeral
// branch (which then restarts as a hot standby).
#include <libpq-fe.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/files.h"
#include "common/pg_roles.h"
#include "common/service.h"
#include "common/status.h"
#include "tools/cli.h"
#include "tools/cli_util.h"
#include "tools/pg_client.h"
#include "tools/workflows/libpq.h"

namespace cambium::cli {
namespace {

namespace fs = std::filesystem;

// `tcp` false: only the peer socket (while the passwords are being set, and for
// the CLI's own time-travel queries).
std::string HbaConf(bool tcp) {
  std::string conf =
      "# Written by cambium at every endpoint start (docs/security.md); edits are lost.\n"
      "local all all peer map=cambium\n"
      // Followers (read replicas) stream WAL as the superuser over this socket.
      "local replication all peer map=cambium\n";
  if (tcp) {
    conf += absl::StrFormat(
        "host all %s 127.0.0.1/32 reject\n"
        "host all %s ::1/128 reject\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
        "host all all ::1/128 scram-sha-256\n",
        kSuperuserRole, kSuperuserRole);
  }
  return conf;
}

std::string IdentConf() {
  return absl::StrFormat(
      "# Written by cambium (docs/security.md): who may use the endpoint's socket.\n"
      "cambium root %s\n"
      "cambium postgres %s\n",
      kSuperuserRole, kSuperuserRole);
}

// The roles and what they may do; idempotent, run as the superuser on a primary.
// The reader has pg_read_all_data and nothing else: PUBLIC loses what would let it
// write anyway (temporary tables in database postgres, large objects). The owner may
// check integrity with amcheck (installed here; its functions are superuser-only by
// default), which only reads.
std::string RolesSql() {
  return absl::StrFormat(
      R"sql(
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%1$s') THEN
    CREATE ROLE %1$s LOGIN CREATEDB CREATEROLE;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%2$s') THEN
    CREATE ROLE %2$s LOGIN;
  END IF;
END $$;
ALTER ROLE %1$s NOSUPERUSER LOGIN CREATEDB CREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE %2$s NOSUPERUSER LOGIN NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE %3$s PASSWORD NULL;
GRANT pg_read_all_data, pg_write_all_data, pg_monitor, pg_signal_backend, pg_checkpoint
  TO %1$s;
GRANT pg_read_all_data TO %2$s;
ALTER ROLE %2$s SET default_transaction_read_only = on;
ALTER DATABASE postgres OWNER TO %1$s;
ALTER SCHEMA public OWNER TO %1$s;
REVOKE TEMPORARY ON DATABASE postgres FROM PUBLIC;
GRANT TEMPORARY ON DATABASE postgres TO %1$s;
REVOKE EXECUTE ON FUNCTION lo_create(oid), lo_creat(integer), lo_from_bytea(oid, bytea),
  lo_put(oid, bigint, bytea), lo_unlink(oid), lowrite(integer, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lo_create(oid), lo_creat(integer), lo_from_bytea(oid, bytea),
  lo_put(oid, bigint, bytea), lo_unlink(oid), lowrite(integer, bytea) TO %1$s;
CREATE EXTENSION IF NOT EXISTS amcheck;
DO $$ DECLARE f regprocedure; BEGIN
  FOR f IN SELECT d.objid::regprocedure FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
           WHERE d.classid = 'pg_proc'::regclass AND e.extname = 'amcheck' LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION %%s TO %1$s', f);
  END LOOP;
END $$;
)sql",
      kOwnerRole, kReaderRole, kSuperuserRole);
}

// The message, never the statement: it may carry a password verifier.
absl::Status ExecRoleSetup(PGconn* conn, const std::string& sql) {
  return workflows::ExecCommand(conn, sql, "setting up roles");
}

// ALTER ROLE ... PASSWORD with a verifier computed here, or PASSWORD NULL.
absl::StatusOr<std::string> SetPasswordSql(PGconn* conn, const std::string& role,
                                           const std::string& password) {
  if (password.empty()) return absl::StrFormat("ALTER ROLE %s PASSWORD NULL;\n", role);
  char* verifier = PQencryptPasswordConn(conn, password.c_str(), role.c_str(), "scram-sha-256");
  if (verifier == nullptr) {
    return absl::InternalError(absl::StrCat("computing a SCRAM verifier: ", PQerrorMessage(conn)));
  }
  char* literal = PQescapeLiteral(conn, verifier, strlen(verifier));
  PQfreemem(verifier);
  if (literal == nullptr) return absl::InternalError(PQerrorMessage(conn));
  std::string sql = absl::StrFormat("ALTER ROLE %s PASSWORD %s;\n", role, literal);
  PQfreemem(literal);
  return sql;
}

}  // namespace

absl::Status Cli::PrepareEndpointRuntime(const EndpointState& ep, bool tcp) {
  CAMBIUM_RETURN_IF_ERROR(dir_.PrepareRuntimeDir());
  const std::string rd = dir_.EndpointRuntimeDir(ep.name);
  CleanStaleMount(rd + "/pgdata");
  // Made afresh as root's, so nothing the postgres user left in it (a symbolic link
  // where a configuration file goes) is followed; never while something is mounted.
  struct stat dir_st, mount_st;
  if (lstat(rd.c_str(), &dir_st) == 0 && lstat((rd + "/pgdata").c_str(), &mount_st) == 0 &&
      dir_st.st_dev != mount_st.st_dev) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s/pgdata is still mounted; unmount it (umount -l) and retry", rd));
  }
  std::error_code ec;
  fs::remove_all(rd, ec);
  if (ec) return absl::InternalError(absl::StrFormat("remove %s: %s", rd, ec.message()));
  for (const std::string& d : {rd, rd + "/pgdata"}) {
    if (mkdir(d.c_str(), 0700) != 0) return ErrnoToStatus(errno, "mkdir " + d);
  }
  CAMBIUM_RETURN_IF_ERROR(WriteHba(ep, tcp));
  CAMBIUM_RETURN_IF_ERROR(WriteFileAtomically(rd + "/pg_ident.conf", IdentConf()));
  for (const std::string& f : {rd + "/pg_hba.conf", rd + "/pg_ident.conf"}) {
    if (chmod(f.c_str(), 0644) != 0) return ErrnoToStatus(errno, "chmod " + f);
  }
  // Last: from here on the postgres user owns the directory (its socket goes here).
  return GiveToPostgres({rd, rd + "/pgdata"});
}

void Cli::RemoveRuntimeDir() const {
  // Only once nothing is mounted below it: a lazily unmounted mount is gone from
  // /proc/mounts, a live one would be removed through.
  const std::string rd = dir_.RuntimeDir();
  std::ifstream mounts("/proc/mounts");
  for (std::string device, point, rest; mounts >> device >> point && std::getline(mounts, rest);) {
    if (point.rfind(rd + "/", 0) == 0) return;
  }
  std::error_code ec;
  fs::remove_all(rd, ec);
}

absl::Status Cli::WriteHba(const EndpointState& ep, bool tcp) {
  const std::string path = dir_.EndpointRuntimeDir(ep.name) + "/pg_hba.conf";
  CAMBIUM_RETURN_IF_ERROR(WriteFileAtomically(path, HbaConf(tcp)));
  if (chmod(path.c_str(), 0644) != 0) return ErrnoToStatus(errno, "chmod " + path);
  return absl::OkStatus();
}

std::vector<std::string> Cli::PostgresAccessArgs(const EndpointState& ep) const {
  const std::string rd = dir_.EndpointRuntimeDir(ep.name);
  return {"-c", "unix_socket_directories=" + rd,       "-c", "hba_file=" + rd + "/pg_hba.conf",
          "-c", "ident_file=" + rd + "/pg_ident.conf", "-c", "password_encryption=scram-sha-256"};
}

absl::StatusOr<v1::Credentials> Cli::GetCredentials(const std::string& branch, bool read_only,
                                                    Secrets secrets) {
  if (secrets == Secrets::kOmit) return absl::UnavailableError("passwords not asked for");
  // Cached, failures too: listing endpoints of a sick stack asks once.
  const auto key = std::make_pair(branch, read_only);
  if (auto it = credentials_.find(key); it != credentials_.end()) return it->second;
  absl::StatusOr<v1::Credentials> result = [&]() -> absl::StatusOr<v1::Credentials> {
    if (secrets == Secrets::kWait) CAMBIUM_RETURN_IF_ERROR(RequireStack());
    v1::GetCredentialsRequest req;
    req.set_tenant(stack_.tenant);
    req.set_branch(branch);
    req.set_read_only(read_only);
    v1::Credentials creds;
    grpc::ClientContext ctx;
    PrepareControlCall(ctx, secrets == Secrets::kWait ? kControlCallTimeout : absl::Seconds(5));
    CAMBIUM_RETURN_IF_ERROR(FromGrpcStatus(mgmt().GetCredentials(&ctx, req, &creds)));
    return creds;
  }();
  credentials_.emplace(key, result);
  return result;
}

absl::StatusOr<std::vector<std::optional<std::string>>> Cli::MaintenanceQuery(
    const EndpointState& ep, const std::string& sql) {
  CAMBIUM_ASSIGN_OR_RETURN(PgConn conn,
                           Connect(dir_.EndpointRuntimeDir(ep.name), ep.port, kSuperuserRole, ""));
  std::unique_ptr<PGresult, void (*)(PGresult*)> r(PQexec(conn.get(), sql.c_str()), PQclear);
  if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) < 1) {
    return absl::InternalError(
        absl::StrCat("query on endpoint ", ep.name, ": ", PQerrorMessage(conn.get())));
  }
  std::vector<std::optional<std::string>> row;
  for (int i = 0; i < PQnfields(r.get()); ++i) {
    if (PQgetisnull(r.get(), 0, i)) {
      row.push_back(std::nullopt);
    } else {
      row.push_back(std::string(PQgetvalue(r.get(), 0, i)));
    }
  }
  return row;
}

absl::Status Cli::SetUpAccess(const EndpointState& ep, bool passwords, bool tcp) {
  if (!passwords && !tcp) return absl::OkStatus();
  // One superuser session through the peer socket for both steps: on a new branch
  // its first connection builds the relation cache through the mount.
  CAMBIUM_ASSIGN_OR_RETURN(PgConn conn,
                           Connect(dir_.EndpointRuntimeDir(ep.name), ep.port, kSuperuserRole, ""));
  if (passwords) {
    // Whose passwords: the branch's. A read-only endpoint's ephemeral copy takes
    // its source branch's, so the source's credentials open it. Without the right
    // to the owner's password (a read-only token), the owner cannot log in there.
    CAMBIUM_ASSIGN_OR_RETURN(v1::Credentials reader, GetCredentials(ep.branch, true));
    absl::StatusOr<v1::Credentials> owner = GetCredentials(ep.branch, false);
    if (!owner.ok() && !(ep.read_only && absl::IsPermissionDenied(owner.status()))) {
      return owner.status();
    }
    // A read-only endpoint's first run has read-only transactions by default.
    CAMBIUM_RETURN_IF_ERROR(ExecRoleSetup(conn.get(), "SET default_transaction_read_only = off"));
    // The roles and both passwords in one implicit transaction: one commit (one
    // quorum flush) instead of three.
    std::string sql = RolesSql();
    CAMBIUM_ASSIGN_OR_RETURN(std::string reader_sql,
                             SetPasswordSql(conn.get(), kReaderRole, reader.password()));
    CAMBIUM_ASSIGN_OR_RETURN(
        std::string owner_sql,
        SetPasswordSql(conn.get(), kOwnerRole, owner.ok() ? owner->password() : ""));
    absl::StrAppend(&sql, reader_sql, owner_sql);
    CAMBIUM_RETURN_IF_ERROR(ExecRoleSetup(conn.get(), sql));
  }
  if (!tcp) return absl::OkStatus();
  // Only once the branch's passwords are committed: until the reload, TCP is
  // refused, so the source's passwords never open this branch.
  CAMBIUM_RETURN_IF_ERROR(WriteHba(ep, /*tcp=*/true));
  // (A hot standby runs pg_reload_conf() too.)
  CAMBIUM_RETURN_IF_ERROR(ExecRoleSetup(conn.get(), "SELECT pg_reload_conf()"));
  // The reload is asynchronous: done once the password works over TCP.
  CAMBIUM_ASSIGN_OR_RETURN(v1::Credentials creds, GetCredentials(ep.branch, true));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (;;) {
    absl::StatusOr<PgConn> c = Connect("127.0.0.1", ep.port, creds.user(), creds.password());
    if (c.ok()) return absl::OkStatus();
    if (absl::Now() > deadline) return Annotate(c.status(), "the endpoint's credentials");
    absl::SleepFor(absl::Milliseconds(5));
  }
}

std::string Cli::Url(const EndpointState& ep, bool read_only, Secrets secrets) {
  // A read-only endpoint hands out the read-only role only.
  absl::StatusOr<v1::Credentials> creds =
      GetCredentials(ep.branch, read_only || ep.read_only, secrets);
  if (!creds.ok()) {
    return absl::StrFormat("postgresql://%s@127.0.0.1:%d/postgres",
                           read_only || ep.read_only ? kReaderRole : kOwnerRole, ep.port);
  }
  return absl::StrFormat("postgresql://%s:%s@127.0.0.1:%d/postgres", creds->user(),
                         creds->password(), ep.port);
}

std::string Cli::MaintenanceUrl(const EndpointState& ep) const {
  return absl::StrFormat("postgresql://%s@/postgres?host=%s&port=%d", kSuperuserRole,
                         dir_.EndpointRuntimeDir(ep.name), ep.port);
}

absl::StatusOr<Output> Cli::ConnectionString(const std::string& branch, bool read_only) {
  CAMBIUM_ASSIGN_OR_RETURN(auto endpoints, dir_.LoadEndpoints());
  // The branch's read-write endpoint serves both roles; failing that (for
  // --read-only), one of its read-only endpoints.
  const EndpointState* found = nullptr;
  for (const EndpointState& ep : endpoints) {
    if (!EndpointRunning(ep)) continue;
    if (ep.name == branch && !ep.read_only) found = &ep;
    if (read_only && found == nullptr && ep.read_only && ep.branch == branch &&
        ep.name.find("-q-") == std::string::npos) {
      found = &ep;
    }
  }
  if (found == nullptr) {
    return absl::NotFoundError(absl::StrFormat(
        "no endpoint runs on branch %s; start one with `cambium endpoint start %s%s`", branch,
        branch, read_only ? " --read-only" : ""));
  }
  CAMBIUM_ASSIGN_OR_RETURN(v1::Credentials creds, GetCredentials(branch, read_only));
  (void)creds;  // refused (a missing scope) before anything is printed
  Output out;
  const std::string ro = Url(*found, true);
  const std::string conn = read_only ? ro : Url(*found, false);
  out.json = {{"branch", branch},
              {"endpoint", found->name},
              {"read_only", read_only},
              {"connection_string", conn},
              {"read_only_connection_string", ro}};
  out.text = conn + "\n";
  return out;
}

}  // namespace cambium::cli
