#include "pageserver/import.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/pg/pg_control.h"
#include "common/pg/pgdata_layout.h"
#include "common/pg/wal_decoder.h"
#include "common/pg/wal_directory.h"
#include "common/status.h"

namespace cambium::pageserver {
namespace {

namespace fs = std::filesystem;

constexpr int kMutationsPerBatch = 256;

// The end of the checkpoint record at `checkpoint`, and the WAL from the start of its
// segment up to that end.
absl::StatusOr<std::pair<Lsn, std::string>> CheckpointWal(const std::string& pgdata,
                                                          const pg::PgControl& control) {
  const std::string wal_dir = pgdata + "/pg_wal";
  const Lsn seg_start = control.checkpoint.SegmentStart();
  // A checkpoint record is small, but may cross into the next segment.
  for (Lsn to = seg_start + kDefaultWalSegmentSize;; to = to + kDefaultWalSegmentSize) {
    auto bytes = pg::ReadWalRange(wal_dir, control.timeline_id(), seg_start, to);
    if (!bytes.ok()) return Annotate(bytes.status(), "reading the WAL of the checkpoint");
    pg::WalDecoder decoder(seg_start, {.system_id = control.system_identifier});
    decoder.Feed(*bytes);
    for (;;) {
      auto rec = decoder.Next();
      if (!rec.ok()) return Annotate(rec.status(), "decoding the WAL of the checkpoint");
      if (!rec->has_value()) break;  // read one more segment
      if ((*rec)->start == control.checkpoint) {
        const Lsn end = (*rec)->end;
        return std::make_pair(end, bytes->substr(0, end - seg_start));
      }
      if ((*rec)->start > control.checkpoint) {
        return absl::DataLossError(absl::StrFormat("no WAL record starts at the checkpoint %s",
                                                   control.checkpoint.ToString()));
      }
    }
    if (to - seg_start > 4 * kDefaultWalSegmentSize) {
      return absl::DataLossError("the checkpoint record does not end within four segments");
    }
  }
}

class Importer {
 public:
  Importer(Timeline& timeline, uint64_t generation, Lsn tag, std::string root)
      : timeline_(timeline), generation_(generation), tag_(tag), root_(std::move(root)) {}

  absl::Status Run() {
    CAMBIUM_RETURN_IF_ERROR(Walk(""));
    CAMBIUM_RETURN_IF_ERROR(Flush());
    return timeline_.Barrier(generation_, seq_, absl::Minutes(5)).status();
  }

 private:
  absl::Status Add(v1::Mutation m) {
    m.set_lsn(tag_.value());
    *batch_.Add() = std::move(m);
    if (batch_.size() >= kMutationsPerBatch) return Flush();
    return absl::OkStatus();
  }

  absl::Status Flush() {
    if (batch_.empty()) return absl::OkStatus();
    auto r = timeline_.ApplyBatch(generation_, ++seq_, batch_, false);
    batch_.Clear();
    return r.status();
  }

  absl::Status AddFile(const std::string& rel, const fs::path& path, uint32_t mode) {
    v1::Mutation create;
    create.set_path(rel);
    create.mutable_create()->set_mode(mode);
    CAMBIUM_RETURN_IF_ERROR(Add(std::move(create)));
    // Never through a symbolic link, even one swapped in after the lstat of Walk.
    const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ErrnoToStatus(errno, "open " + path.string());
    absl::Status status = ReadBlocks(fd, rel, path);
    close(fd);
    return status;
  }

  absl::Status ReadBlocks(int fd, const std::string& rel, const fs::path& path) {
    struct stat st;
    if (fstat(fd, &st) != 0) return ErrnoToStatus(errno, "stat " + path.string());
    if (!S_ISREG(st.st_mode)) {
      return absl::FailedPreconditionError(path.string() + " is not a regular file");
    }
    std::string block(kBlockSize, '\0');
    for (uint32_t b = 0;; ++b) {
      size_t n = 0;
      while (n < kBlockSize) {
        const ssize_t r = read(fd, block.data() + n, kBlockSize - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return ErrnoToStatus(errno, "read " + path.string());
        if (r == 0) break;
        n += static_cast<size_t>(r);
      }
      if (n == 0) break;
      v1::Mutation w;
      w.set_path(rel);
      w.mutable_write()->set_block_no(b);
      w.mutable_write()->set_data(block.data(), n);
      CAMBIUM_RETURN_IF_ERROR(Add(std::move(w)));
      if (n < kBlockSize) break;
    }
    return absl::OkStatus();
  }

  absl::Status Walk(const std::string& rel_dir) {
    std::error_code ec;
    std::vector<fs::directory_entry> entries;
    for (const auto& e : fs::directory_iterator(fs::path(root_) / rel_dir, ec))
      entries.push_back(e);
    if (ec)
      return absl::InternalError(absl::StrFormat("list %s/%s: %s", root_, rel_dir, ec.message()));
    std::sort(entries.begin(), entries.end());
    for (const auto& e : entries) {
      const std::string name = e.path().filename().string();
      const std::string rel = rel_dir.empty() ? name : rel_dir + "/" + name;
      struct stat st;
      if (lstat(e.path().c_str(), &st) != 0)
        return ErrnoToStatus(errno, "stat " + e.path().string());
      if (S_ISLNK(st.st_mode)) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "%s is a symbolic link (a tablespace?): tablespaces outside PGDATA are not supported",
            rel));
      }
      if (S_ISDIR(st.st_mode)) {
        v1::Mutation mkdir;
        mkdir.set_path(rel);
        mkdir.mutable_mkdir()->set_mode(st.st_mode & 07777);
        CAMBIUM_RETURN_IF_ERROR(Add(std::move(mkdir)));
        // Directories are versioned; the contents of local ones and pg_wal are not.
        if (!pg::IsLocalDirectory(rel) && rel != "pg_wal") CAMBIUM_RETURN_IF_ERROR(Walk(rel));
      } else if (S_ISREG(st.st_mode) && pg::ClassifyPath(rel) == pg::PathClass::kVersioned) {
        CAMBIUM_RETURN_IF_ERROR(AddFile(rel, e.path(), st.st_mode & 07777));
      }
    }
    return absl::OkStatus();
  }

  Timeline& timeline_;
  const uint64_t generation_;
  const Lsn tag_;
  const std::string root_;
  google::protobuf::RepeatedPtrField<v1::Mutation> batch_;
  uint64_t seq_ = 0;
};

// `pgdata` resolved (no symbolic link left), inside `import_dir` if one is set.
absl::StatusOr<std::string> CheckImportPath(const std::string& pgdata,
                                            const std::string& import_dir) {
  char resolved[PATH_MAX];
  if (realpath(pgdata.c_str(), resolved) == nullptr)
    return ErrnoToStatus(errno, "import " + pgdata);
  const std::string path = resolved;
  if (import_dir.empty()) return path;
  char dir[PATH_MAX];
  if (realpath(import_dir.c_str(), dir) == nullptr) {
    return ErrnoToStatus(errno, "the import directory " + import_dir);
  }
  const std::string prefix = std::string(dir) + "/";
  if (path.rfind(prefix, 0) != 0) {
    return absl::PermissionDeniedError(
        absl::StrFormat("%s is not inside the import directory %s (the pageserver's --import-dir)",
                        pgdata, import_dir));
  }
  return path;
}

}  // namespace

absl::StatusOr<BranchInfo> ImportPgdata(Repository& repo, const std::string& tenant,
                                        const std::string& branch, const std::string& requested,
                                        const std::string& import_dir) {
  CAMBIUM_ASSIGN_OR_RETURN(const std::string pgdata, CheckImportPath(requested, import_dir));
  auto control = pg::ReadPgControl(pgdata);
  if (!control.ok()) return Annotate(control.status(), "import");
  if (control->state != pg::DbState::kShutdowned) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s is not cleanly shut down (state: %s); stop it with `pg_ctl stop -m fast` first", pgdata,
        pg::DbStateName(control->state)));
  }
  CAMBIUM_ASSIGN_OR_RETURN(auto wal, CheckpointWal(pgdata, *control));
  const auto& [end, bytes] = wal;
  const Lsn wal_start = control->checkpoint.SegmentStart();
  CAMBIUM_ASSIGN_OR_RETURN(auto timeline, repo.CreateRootTimeline(tenant, branch, wal_start));
  CAMBIUM_RETURN_IF_ERROR(repo.archive().Append(*timeline, wal_start, bytes, /*sync=*/true));
  CAMBIUM_ASSIGN_OR_RETURN(Lsn archived, repo.archive().End(*timeline));
  if (archived != end) {
    return absl::InternalError(
        absl::StrFormat("archived WAL ends at %s, expected the checkpoint end %s",
                        archived.ToString(), end.ToString()));
  }
  CAMBIUM_RETURN_IF_ERROR(repo.archive().SetFirstBoundary(*timeline, end));
  CAMBIUM_ASSIGN_OR_RETURN(uint64_t generation, timeline->Attach("import", end, /*takeover=*/false,
                                                                 absl::ZeroDuration()));
  Importer importer(*timeline, generation, end, pgdata);
  CAMBIUM_RETURN_IF_ERROR(importer.Run());
  CAMBIUM_RETURN_IF_ERROR(timeline->Detach(generation));
  LogInfo("pgdata_imported", {{"tenant", tenant},
                              {"branch", branch},
                              {"lsn", end},
                              {"timeline", timeline->id()},
                              {"system_id", control->system_identifier}});
  return repo.GetBranch(tenant, branch);
}

}  // namespace cambium::pageserver
