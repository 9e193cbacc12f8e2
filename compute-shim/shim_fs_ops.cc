// ShimFs: the libfuse3 high-level operation table.
//
// Mount-wide settings (init): inode numbers are ours (use_ino), unlinked-but-open
// files keep working (hard_remove, nullpath_ok), direct_io is decided per open
// (relation files use the page cache, written back by default, every other file
// direct_io; see ShimFs::OpenHandle), and the kernel may cache attributes, lookups
// and pages for long because this process is the only writer of the tree.
#include "compute-shim/shim_fs.h"

#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "compute-shim/shim_metrics.h"

namespace cambium::shim {
namespace {

ShimFs* Self() { return static_cast<ShimFs*>(fuse_get_context()->private_data); }

// cambium_shim_fuse_operations_total{op}: one relaxed increment per call.
void Count(FuseOp op) { ShimMetrics::Get().CountFuse(op); }

void* Init(fuse_conn_info* conn, fuse_config* cfg) {
  cfg->use_ino = 1;
  cfg->hard_remove = 1;
  cfg->nullpath_ok = 1;
  cfg->direct_io = 0;  // decided per open (ShimFs::OpenHandle)
  cfg->kernel_cache = 0;
  cfg->auto_cache = 0;
  cfg->entry_timeout = 3600;
  cfg->attr_timeout = 3600;
  cfg->negative_timeout = 3600;
  conn->max_write = 1 << 20;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  // Relation files are written back from the page cache (ShimFs::WriteCached);
  // every other file is direct_io, which the writeback cache does not change.
  if (Self()->options().writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
    conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  } else {
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  }
  // Cached pages change only through this mount: the kernel must not drop a
  // file's pages whenever its mtime moved (every write moves it).
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  LogInfo("fuse_init",
          {{"protocol", absl::StrFormat("%d.%d", conn->proto_major, conn->proto_minor)},
           {"writeback_cache", (conn->want & FUSE_CAP_WRITEBACK_CACHE) != 0},
           {"max_write", conn->max_write},
           {"max_background", conn->max_background}});
  return fuse_get_context()->private_data;
}

int GetAttr(const char* p, struct stat* st, fuse_file_info* fi) {
  Count(FuseOp::kGetAttr);
  return Self()->GetAttr(p, st, fi);
}
int OpenDir(const char* p, fuse_file_info* fi) {
  Count(FuseOp::kOpenDir);
  return Self()->OpenDir(p, fi);
}
int ReadDir(const char* p, void* buf, fuse_fill_dir_t filler, off_t, fuse_file_info* fi,
            fuse_readdir_flags) {
  Count(FuseOp::kReadDir);
  return Self()->ReadDir(p, buf, filler, fi);
}
int ReleaseDir(const char* p, fuse_file_info* fi) {
  Count(FuseOp::kReleaseDir);
  return Self()->ReleaseDir(p, fi);
}
int Mkdir(const char* p, mode_t m) {
  Count(FuseOp::kMkdir);
  return Self()->Mkdir(p, m);
}
int Rmdir(const char* p) {
  Count(FuseOp::kRmdir);
  return Self()->Rmdir(p);
}
int Unlink(const char* p) {
  Count(FuseOp::kUnlink);
  return Self()->Unlink(p);
}
int Rename(const char* a, const char* b, unsigned int f) {
  Count(FuseOp::kRename);
  return Self()->Rename(a, b, f);
}
int Chmod(const char* p, mode_t m, fuse_file_info* fi) {
  Count(FuseOp::kChmod);
  return Self()->Chmod(p, m, fi);
}
int Chown(const char* p, uid_t u, gid_t g, fuse_file_info* fi) {
  Count(FuseOp::kChown);
  return Self()->Chown(p, u, g, fi);
}
int Truncate(const char* p, off_t s, fuse_file_info* fi) {
  Count(FuseOp::kTruncate);
  return Self()->Truncate(p, s, fi);
}
int Utimens(const char* p, const struct timespec tv[2], fuse_file_info* fi) {
  Count(FuseOp::kUtimens);
  return Self()->Utimens(p, tv, fi);
}
int Create(const char* p, mode_t m, fuse_file_info* fi) {
  Count(FuseOp::kCreate);
  return Self()->Create(p, m, fi);
}
int Open(const char* p, fuse_file_info* fi) {
  Count(FuseOp::kOpen);
  return Self()->Open(p, fi);
}
int Read(const char* p, char* b, size_t s, off_t o, fuse_file_info* fi) {
  Count(FuseOp::kRead);
  return Self()->Read(p, b, s, o, fi);
}
int Write(const char* p, const char* b, size_t s, off_t o, fuse_file_info* fi) {
  Count(FuseOp::kWrite);
  return Self()->Write(p, b, s, o, fi);
}
int Fsync(const char* p, int d, fuse_file_info* fi) {
  Count(FuseOp::kFsync);
  return Self()->Fsync(p, d, fi);
}
int FsyncDir(const char* p, int d, fuse_file_info* fi) {
  Count(FuseOp::kFsyncDir);
  return Self()->FsyncDir(p, d, fi);
}
int Release(const char* p, fuse_file_info* fi) {
  Count(FuseOp::kRelease);
  return Self()->Release(p, fi);
}
int Flush(const char*, fuse_file_info*) {
  Count(FuseOp::kFlush);
  return 0;
}
int StatFs(const char* p, struct statvfs* st) {
  Count(FuseOp::kStatFs);
  return Self()->StatFs(p, st);
}
int Symlink(const char* target, const char* link) {
  Count(FuseOp::kSymlink);
  // Postgres creates symbolic links only for tablespaces outside PGDATA, which a
  // branchable data directory cannot contain.
  (void)target;
  (void)link;
  return -EPERM;
}
int Fallocate(const char*, int, off_t, off_t, fuse_file_info*) {
  Count(FuseOp::kFallocate);
  // Not supported: glibc's posix_fallocate falls back to writing zeros.
  return -EOPNOTSUPP;
}

fuse_operations MakeOperations() {
  fuse_operations ops{};
  ops.init = Init;
  ops.getattr = GetAttr;
  ops.opendir = OpenDir;
  ops.readdir = ReadDir;
  ops.releasedir = ReleaseDir;
  ops.mkdir = Mkdir;
  ops.rmdir = Rmdir;
  ops.unlink = Unlink;
  ops.rename = Rename;
  ops.chmod = Chmod;
  ops.chown = Chown;
  ops.truncate = Truncate;
  ops.utimens = Utimens;
  ops.create = Create;
  ops.open = Open;
  ops.read = Read;
  ops.write = Write;
  ops.fsync = Fsync;
  ops.fsyncdir = FsyncDir;
  ops.release = Release;
  ops.flush = Flush;
  ops.statfs = StatFs;
  ops.fallocate = Fallocate;
  ops.symlink = Symlink;
  return ops;
}

}  // namespace

const fuse_operations& ShimFs::Operations() {
  static const fuse_operations ops = MakeOperations();
  return ops;
}

}  // namespace cambium::shim
