#include "common/pg/pgdata_layout.h"

#include <array>
#include <cctype>

#include "absl/strings/str_format.h"

namespace cambium::pg {
namespace {

// Directories whose contents are process-local (PostgreSQL 15).
constexpr std::array<std::string_view, 8> kLocalDirectories = {
    "pg_stat_tmp", "pg_notify", "pg_subtrans", "pg_snapshots",
    "pg_dynshmem", "log",       "pg_log",      "base/pgsql_tmp"};

// Top-level files that are process-local.
constexpr std::array<std::string_view, 3> kLocalFiles = {"postmaster.pid", "postmaster.opts",
                                                         "pg_internal.init.tmp"};

bool StartsWithDir(std::string_view path, std::string_view dir) {
  return path.size() > dir.size() && path.substr(0, dir.size()) == dir && path[dir.size()] == '/';
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

bool IsLocalDirectory(std::string_view path) {
  for (std::string_view dir : kLocalDirectories) {
    if (path == dir || StartsWithDir(path, dir)) return true;
  }
  // A tablespace's temporary files: pg_tblspc/<oid>/<PG_15_catversion>/pgsql_tmp
  // (base/pgsql_tmp is listed; a database directory never holds one).
  if (!StartsWithDir(path, "pg_tblspc")) return false;
  std::string_view rest = path.substr(std::string_view("pg_tblspc/").size());
  const size_t oid_end = rest.find('/');
  if (oid_end == std::string_view::npos || !AllDigits(rest.substr(0, oid_end))) return false;
  rest = rest.substr(oid_end + 1);
  const size_t version_end = rest.find('/');
  if (version_end == std::string_view::npos || version_end == 0) return false;
  rest = rest.substr(version_end + 1);
  return rest == "pgsql_tmp" || StartsWithDir(rest, "pgsql_tmp");
}

namespace {

// <relfilenode>[_fsm|_vm|_init][.<segment>]
bool IsRelationFileName(std::string_view rest) {
  size_t end = 0;
  while (end < rest.size() && std::isdigit(static_cast<unsigned char>(rest[end]))) ++end;
  if (end == 0) return false;
  rest = rest.substr(end);
  if (!rest.empty() && rest[0] == '_') {  // fork: _fsm, _vm, _init
    size_t dot = rest.find('.');
    std::string_view fork =
        rest.substr(1, dot == std::string_view::npos ? rest.size() - 1 : dot - 1);
    if (fork != "fsm" && fork != "vm" && fork != "init") return false;
    rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot);
  }
  if (!rest.empty()) return rest[0] == '.' && AllDigits(rest.substr(1));
  return true;
}

bool InRelationDirectory(std::string_view parent) {
  return parent == "base" || StartsWithDir(parent, "base") || parent == "global" ||
         StartsWithDir(parent, "pg_tblspc");
}

}  // namespace

bool IsTempRelationFile(std::string_view name) {
  // t<backend>_<relfilenode>, optionally _<fork> and .<segment>
  if (name.size() < 4 || name[0] != 't') return false;
  size_t underscore = name.find('_', 1);
  if (underscore == std::string_view::npos || !AllDigits(name.substr(1, underscore - 1))) {
    return false;
  }
  return IsRelationFileName(name.substr(underscore + 1));
}

bool IsRelationFile(std::string_view path) {
  const std::string_view parent = ParentPath(path);
  // global/, base/<database>/ or pg_tblspc/<tablespace>/<version>/<database>/
  const bool in_database = parent == "global" ||
                           (ParentPath(parent) == "base" && AllDigits(BaseName(parent))) ||
                           (StartsWithDir(parent, "pg_tblspc") && AllDigits(BaseName(parent)) &&
                            ParentPath(ParentPath(ParentPath(parent))) == "pg_tblspc");
  return in_database && IsRelationFileName(BaseName(path));
}

PathClass ClassifyPath(std::string_view path) {
  if (path == "pg_wal" || StartsWithDir(path, "pg_wal")) {
    return path == "pg_wal" ? PathClass::kVersioned : PathClass::kWal;
  }
  for (std::string_view f : kLocalFiles) {
    if (path == f) return PathClass::kLocal;
  }
  std::string_view parent = ParentPath(path);
  if (!parent.empty() && IsLocalDirectory(parent)) return PathClass::kLocal;
  if (InRelationDirectory(parent) && IsTempRelationFile(BaseName(path))) {
    return PathClass::kLocal;
  }
  return PathClass::kVersioned;
}

absl::Status ValidateRelativePath(std::string_view path) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrFormat("invalid path \"%s\": %s", path, why));
  };
  if (path.empty()) return bad("empty");
  if (path.size() > 1024) return bad("longer than 1024 bytes");
  if (path.front() == '/' || path.back() == '/')
    return bad("must be relative, without a trailing '/'");
  if (path.find('\0') != std::string_view::npos) return bad("contains NUL");
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string_view part =
        path.substr(start, slash == std::string_view::npos ? path.npos : slash - start);
    if (part.empty() || part == "." || part == "..") return bad("empty, '.' or '..' component");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return absl::OkStatus();
}

std::string_view ParentPath(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
}

std::string_view BaseName(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace cambium::pg
