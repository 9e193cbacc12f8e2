// PageServer: the cambium-pageserver process: configuration, the page store, the
// repository, the gRPC services, and background GC.
//
// Metrics (docs/metrics.md): Start registers the scrape-time gauges of the repository
// (timelines, tenants) and of RocksDB (write stalls, compactions, sizes) in
// metrics::DefaultRegistry; Shutdown unregisters them first. The hot-path counters
// and histograms are PageServerMetrics (pageserver_metrics.h).
//
// Thread-safety: Start/Shutdown from one thread; the rest is internally synchronized.
#ifndef CAMBIUM_PAGESERVER_PAGESERVER_H_
#define CAMBIUM_PAGESERVER_PAGESERVER_H_

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "auth/audit_log.h"
#include "auth/authenticator.h"
#include "auth/token_store.h"
#include "grpcpp/server.h"
#include "metrics/registry.h"
#include "pageserver/head_resolver.h"
#include "pageserver/management_service.h"
#include "pageserver/page_service.h"
#include "pageserver/page_store.h"
#include "pageserver/remote_history.h"
#include "pageserver/repository.h"
#include "pageserver/safekeeper_set.h"
#include "pageserver/wal_receiver.h"

namespace cambium::pageserver {

// Every field is a flag (--listen, --data-dir, ...) and a key of the --config file.
struct PageServerConfig {
  // gRPC address, loopback only; port 0 picks a free port. Default: 127.0.0.1:6400.
  std::string listen = "127.0.0.1:6400";
  // Directory of the page store. Default: ./pageserver-data.
  std::string data_dir = "pageserver-data";
  // Block cache size in MiB. Default: 512.
  uint64_t cache_mb = 512;
  // SST compression: lz4, zstd or none. Default: lz4.
  std::string compression = "lz4";
  // Keep page versions in RocksDB blob files. Default: false.
  bool blob_files = false;
  // PITR window of tenants created without one. Default: 7d.
  std::string pitr_window = "7d";
  // A silent writer may be replaced after this long. Default: 10s.
  std::string writer_lease = "10s";
  // How often GC runs for every tenant; 0 disables it. Default: 10m.
  std::string gc_interval = "10m";
  // Safekeepers to archive WAL from, comma-separated. Default: none.
  std::string safekeepers;
  // How long "head" (a branch, reset or `lsn` without a point) may wait for the
  // safekeepers and the archive. Default: 30s.
  std::string head_timeout = "30s";
  // Largest file a compute may create, MiB (a Postgres relation segment is 1 GiB).
  // Default: 1024.
  uint64_t max_file_mb = 1024;
  // Most pages per GetPages request. Default: 1024.
  int max_pages_per_request = 1024;
  // Most mutations per PutMutations batch. Default: 4096.
  int max_mutations_per_batch = 4096;
  // File (0600) with the admin token; only its hash is kept. Default: none (no admin
  // token; admins are then the tokens of scope admin made with the service credential).
  std::string admin_token_file;
  // ImportPgdata reads only data directories inside this directory, and never
  // through a symbolic link (docs/security.md); empty allows any directory (tests
  // and tools that run their own pageserver). Default: empty.
  std::string import_dir;
  // Where the page store is kept off this disk (docs/pageserver.md "Remote history"):
  // file:///PATH or s3://BUCKET/PREFIX?endpoint=...&region=... A start with an empty
  // --data-dir restores from it. Default: none (one disk holds everything).
  std::string object_store;
  // File (0600) with AWS_ACCESS_KEY_ID= and AWS_SECRET_ACCESS_KEY= lines for an s3://
  // store; without it, those environment variables. Default: none.
  std::string object_store_credentials;
  // How often the page store goes up to the object store. Default: 10s.
  std::string upload_interval = "10s";
  // The object store through which tenants move between pageservers (every
  // pageserver of a placement shares it; credentials as object_store_credentials).
  // Default: none, and this pageserver neither exports nor attaches tenants.
  std::string transfer_store;
};

void AddPageServerFlags(CLI::App& app, PageServerConfig* config);

class PageServer {
 public:
  static absl::StatusOr<std::unique_ptr<PageServer>> Start(const PageServerConfig& config);
  ~PageServer();

  int port() const { return port_; }
  Repository* repository() const { return repo_.get(); }
  // Stops accepting calls, finishes running ones, stops GC and closes the store.
  void Shutdown();

 private:
  PageServer() = default;
  void GcLoop(absl::Duration interval);
  // With a service token in the process security: the token store, the audit log and
  // the authenticator of every call (docs/security.md). Without one (a library test
  // in one process): none, and calls are not authenticated.
  absl::Status StartAuth(const PageServerConfig& config);
  // The scrape-time gauges (see above).
  void RegisterMetrics();

  std::unique_ptr<RemoteHistory> remote_;
  std::unique_ptr<objstore::ObjectStore> transfers_;
  std::unique_ptr<PageStore> store_;
  std::unique_ptr<Repository> repo_;
  std::unique_ptr<SafekeeperSet> safekeepers_;
  std::unique_ptr<WalReceiver> receiver_;
  std::unique_ptr<HeadResolver> head_resolver_;
  std::unique_ptr<PageServiceImpl> page_service_;
  std::unique_ptr<auth::TokenStore> tokens_;
  std::unique_ptr<auth::AuditLog> audit_;
  std::shared_ptr<auth::Authenticator> authenticator_;
  std::unique_ptr<ManagementServiceImpl> management_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;

  std::atomic<bool> stopping_{false};
  std::mutex gc_mu_;
  std::condition_variable gc_cv_;
  std::thread gc_thread_;
  std::vector<metrics::CallbackHandle> metrics_;
};

}  // namespace cambium::pageserver

#endif  // CAMBIUM_PAGESERVER_PAGESERVER_H_
