// Shim: one compute endpoint's storage: elects itself the timeline's WAL writer,
// attaches to the pageserver as its only writer, prepares the file state and the WAL
// that Postgres replays at the start LSN, and mounts the FUSE PGDATA.
//
// Starting at X (ARCHITECTURE.md section 2): the file state at X is mounted, pg_wal
// holds the WAL from the segment of the checkpoint's redo point up to X (zeros after),
// W starts at X. Postgres then performs ordinary crash recovery to X and continues the
// timeline from there. The WAL is fetched after the mount, while Postgres already
// replays: a read of pg_wal waits for the bytes it covers (ShimFs::FillWal).
//
// Thread-safety: Start, Wait and Stop from one thread.
#ifndef CAMBIUM_COMPUTE_SHIM_SHIM_H_
#define CAMBIUM_COMPUTE_SHIM_SHIM_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "common/lsn.h"

namespace cambium::shim {

// Every field is a flag (--pageserver, --mountpoint, ...) and a key of --config.
struct ShimConfig {
  // Pageserver address. Default: 127.0.0.1:6400.
  std::string pageserver = "127.0.0.1:6400";
  // Safekeeper addresses, comma-separated. Required.
  std::string safekeepers;
  // Tenant and timeline ids (32 hex digits). Required.
  std::string tenant;
  std::string timeline;
  // Where PGDATA is mounted (an empty directory). Required.
  std::string mountpoint;
  // Local scratch for WAL copies, local-only files and the page cache. Required.
  std::string scratch;
  // This endpoint's name, for the pageserver and logs. Default: "endpoint".
  std::string endpoint = "endpoint";
  // Replace a writer that still looks alive (it is known to be dead). Default: false.
  bool takeover = false;
  // Clean blocks kept in the shim's memory, in MiB (compute-shim/block_cache.h).
  // Default: 256.
  uint64_t cache_mb = 256;
  // The user Postgres runs as; every file is reported as theirs. Default: postgres.
  std::string pg_user = "postgres";
  // Written with the start LSN once the mount is ready. Default: none.
  std::string ready_file;
  // Relation files use the kernel's writeback cache (ShimFsOptions). Default: on.
  bool writeback_cache = true;
};

void AddShimFlags(CLI::App& app, ShimConfig* config);

class Shim {
 public:
  static absl::StatusOr<std::unique_ptr<Shim>> Start(const ShimConfig& config);
  ~Shim();

  Lsn start_lsn() const;
  // Makes everything durable, detaches from the pageserver and unmounts. Postgres
  // must have stopped (or crashed) first.
  absl::Status Stop();

 private:
  struct Impl;
  explicit Shim(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cambium::shim

#endif  // CAMBIUM_COMPUTE_SHIM_SHIM_H_
