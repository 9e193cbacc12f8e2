#include "pageserver/pageserver.h"

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "auth/private_file.h"
#include "common/logging.h"
#include "common/service.h"
#include "common/status.h"
#include "grpcpp/server_builder.h"
#include "pageserver/pageserver_metrics.h"

namespace cambium::pageserver {
namespace {

// A RocksDB integer property exposed as a gauge: DB-wide, or per column family
// (label `cf`).
struct RocksProperty {
  const char* metric;
  const char* help;
  const char* property;
  bool per_family;
};

constexpr RocksProperty kRocksProperties[] = {
    {"cambium_pageserver_rocksdb_write_stopped",
     "1 while RocksDB stops writes (too many memtables or L0 files, pending compaction).",
     "rocksdb.is-write-stopped", false},
    {"cambium_pageserver_rocksdb_delayed_write_rate_bytes_per_second",
     "The rate RocksDB slows writes down to; 0 when writes are not delayed.",
     "rocksdb.actual-delayed-write-rate", false},
    {"cambium_pageserver_rocksdb_running_compactions", "Compactions running now.",
     "rocksdb.num-running-compactions", false},
    {"cambium_pageserver_rocksdb_compaction_pending",
     "1 when a compaction is pending in the column family.", "rocksdb.compaction-pending", true},
    {"cambium_pageserver_rocksdb_pending_compaction_bytes",
     "Estimated bytes compaction must rewrite to bring the column family's levels under their "
     "targets.",
     "rocksdb.estimate-pending-compaction-bytes", true},
    {"cambium_pageserver_rocksdb_sst_files_bytes",
     "Size of all SST files of the column family (every version).", "rocksdb.total-sst-files-size",
     true},
    {"cambium_pageserver_rocksdb_live_data_bytes",
     "Estimated live data in the column family (what a full compaction would keep).",
     "rocksdb.estimate-live-data-size", true},
};

constexpr std::pair<Family, const char*> kFamilies[] = {{Family::kMeta, "meta"},
                                                        {Family::kBlocks, "blocks"},
                                                        {Family::kFiles, "files"},
                                                        {Family::kWal, "wal"},
                                                        {Family::kCommits, "commits"}};

}  // namespace

void AddPageServerFlags(CLI::App& app, PageServerConfig* c) {
  app.option_defaults()->always_capture_default();
  app.add_option("--listen", c->listen, "gRPC address, 127.0.0.1:PORT (0 = any free port)");
  app.add_option("--data-dir", c->data_dir, "Directory of the page store");
  app.add_option("--cache-mb", c->cache_mb, "Block cache size in MiB");
  app.add_option("--compression", c->compression, "SST compression: lz4, zstd or none")
      ->check(CLI::IsMember({"lz4", "zstd", "none"}));
  app.add_flag("--blob-files", c->blob_files, "Keep page versions in RocksDB blob files");
  app.add_option("--pitr-window", c->pitr_window, "PITR window of new tenants (e.g. 7d, 36h)");
  app.add_option("--writer-lease", c->writer_lease, "A silent writer may be replaced after this");
  app.add_option("--gc-interval", c->gc_interval, "How often GC runs (0 = never)");
  app.add_option("--safekeepers", c->safekeepers,
                 "Safekeepers to archive WAL from, comma-separated");
  app.add_option("--head-timeout", c->head_timeout,
                 "How long resolving a branch's exact head may wait");
  app.add_option("--import-dir", c->import_dir,
                 "ImportPgdata reads only data directories inside this directory");
  app.add_option("--max-file-mb", c->max_file_mb, "Largest file a compute may create, MiB");
  app.add_option("--max-pages-per-request", c->max_pages_per_request,
                 "Most pages per GetPages request");
  app.add_option("--max-mutations-per-batch", c->max_mutations_per_batch,
                 "Most mutations per PutMutations batch");
  app.add_option("--object-store", c->object_store,
                 "Keep the page store in this object store too: file:///PATH or "
                 "s3://BUCKET/PREFIX?endpoint=URL&region=R; an empty --data-dir restores from it");
  app.add_option("--object-store-credentials", c->object_store_credentials,
                 "File (0600) with AWS_ACCESS_KEY_ID= and AWS_SECRET_ACCESS_KEY= lines "
                 "(default: those environment variables)");
  app.add_option("--upload-interval", c->upload_interval,
                 "How often the page store goes up to the object store");
  app.add_option("--transfer-store", c->transfer_store,
                 "Object store (URL as --object-store) through which tenants move between "
                 "pageservers");
  app.add_option("--admin-token-file", c->admin_token_file,
                 "File (0600) with the admin token (cambium up writes DATA/secrets/admin.token)");
}

absl::StatusOr<std::unique_ptr<PageServer>> PageServer::Start(const PageServerConfig& config) {
  CAMBIUM_ASSIGN_OR_RETURN(absl::Duration pitr, ParseHumanDuration(config.pitr_window));
  CAMBIUM_ASSIGN_OR_RETURN(absl::Duration lease, ParseHumanDuration(config.writer_lease));
  CAMBIUM_ASSIGN_OR_RETURN(absl::Duration head_timeout, ParseHumanDuration(config.head_timeout));
  absl::Duration gc_interval = absl::ZeroDuration();
  if (config.gc_interval != "0") {
    CAMBIUM_ASSIGN_OR_RETURN(gc_interval, ParseHumanDuration(config.gc_interval));
  }
  std::unique_ptr<PageServer> server(new PageServer());
  if (!config.object_store.empty()) {
    CAMBIUM_ASSIGN_OR_RETURN(absl::Duration interval, ParseHumanDuration(config.upload_interval));
    CAMBIUM_ASSIGN_OR_RETURN(
        auto objects,
        objstore::OpenObjectStore(config.object_store, config.object_store_credentials));
    CAMBIUM_ASSIGN_OR_RETURN(server->remote_,
                             RemoteHistory::Open(std::move(objects), config.data_dir,
                                                 RemoteHistoryOptions{.interval = interval}));
    CAMBIUM_RETURN_IF_ERROR(server->remote_->RestoreIfEmpty().status());
  }
  CAMBIUM_ASSIGN_OR_RETURN(
      server->store_,
      PageStore::Open(config.data_dir, PageStoreOptions{.cache_bytes = config.cache_mb << 20,
                                                        .compression = config.compression,
                                                        .blob_files = config.blob_files}));
  CAMBIUM_ASSIGN_OR_RETURN(
      server->repo_,
      Repository::Open(
          server->store_.get(),
          RepositoryOptions{.default_pitr_window = pitr,
                            .writer_lease = lease,
                            .timeline = {.max_file_bytes = config.max_file_mb << 20}}));
  server->safekeepers_ = std::make_unique<SafekeeperSet>(
      std::vector<std::string>(absl::StrSplit(config.safekeepers, ',', absl::SkipEmpty())));
  WalReceiverOptions receiver_options;
  if (RemoteHistory* remote = server->remote_.get()) {
    remote->Start(server->store_.get(), server->repo_.get());
    receiver_options.uploaded_end = [remote](const TimelineId& t) {
      return remote->UploadedArchiveEnd(t);
    };
    receiver_options.before_safekeeper_delete = [remote] { return remote->WaitForUpload(); };
  }
  server->receiver_ = std::make_unique<WalReceiver>(server->repo_.get(), server->safekeepers_.get(),
                                                    receiver_options);
  WalReceiver* receiver = server->receiver_.get();
  if (server->safekeepers_->size() > 0) {
    server->head_resolver_ =
        std::make_unique<HeadResolver>(server->safekeepers_.get(), &server->repo_->archive(),
                                       receiver, HeadResolverOptions{.timeout = head_timeout});
    server->repo_->SetHeadSource(server->head_resolver_.get());
  }
  server->page_service_ = std::make_unique<PageServiceImpl>(
      server->repo_.get(), [receiver](std::shared_ptr<Timeline> t) { receiver->Follow(t); },
      PageServiceOptions{.max_pages_per_request = config.max_pages_per_request,
                         .max_mutations_per_batch = config.max_mutations_per_batch});
  // WAL committed while the pageserver was down is archived now.
  for (const auto& t : server->repo_->AllTimelines()) {
    if (t->generation() > 0) receiver->Follow(t);
  }
  CAMBIUM_RETURN_IF_ERROR(server->StartAuth(config));
  server->management_service_ = std::make_unique<ManagementServiceImpl>(
      server->repo_.get(),
      ManagementAuth{.tokens = server->tokens_.get(),
                     .audit = server->audit_.get(),
                     .required = server->authenticator_ != nullptr},
      config.import_dir);
  if (!config.transfer_store.empty()) {
    CAMBIUM_ASSIGN_OR_RETURN(
        server->transfers_,
        objstore::OpenObjectStore(config.transfer_store, config.object_store_credentials));
    server->management_service_->SetTransfers(
        {.store = server->transfers_.get(),
         .scratch_dir = config.data_dir + "/transfer",
         .follow = [receiver](std::shared_ptr<Timeline> t) { receiver->Follow(t); }});
  }
  if (RemoteHistory* remote = server->remote_.get()) {
    server->management_service_->SetDurabilityHook([remote] { return remote->WaitForUpload(); });
    server->management_service_->SetUploadedSource(
        [remote](const TimelineId& t) { return remote->UploadedArchiveEnd(t); });
  }
  grpc::ServerBuilder builder;
  CAMBIUM_RETURN_IF_ERROR(
      ConfigureServer(builder, config.listen, &server->port_, server->authenticator_));
  // A writer is live while its mutation stream is open; pings find a stream whose
  // shim is gone without closing its connection (a stopped or partitioned process).
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.RegisterService(server->page_service_.get());
  builder.RegisterService(server->management_service_.get());
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrFormat("cannot listen on %s (is another process using the port?)", config.listen));
  }
  server->RegisterMetrics();
  if (gc_interval > absl::ZeroDuration()) {
    server->gc_thread_ = std::thread([s = server.get(), gc_interval] { s->GcLoop(gc_interval); });
  }
  LogInfo("pageserver_started", {{"listen", absl::StrFormat("127.0.0.1:%d", server->port_)},
                                 {"data_dir", config.data_dir}});
  return server;
}

absl::Status PageServer::StartAuth(const PageServerConfig& config) {
  const ProcessSecurity security = GetProcessSecurity();
  if (security.client_token.empty()) {
    if (!config.admin_token_file.empty()) {
      return absl::InvalidArgumentError("--admin-token-file needs --service-token-file");
    }
    return absl::OkStatus();
  }
  std::string admin;
  if (!config.admin_token_file.empty()) {
    CAMBIUM_ASSIGN_OR_RETURN(admin, auth::ReadSecretFile(config.admin_token_file));
  }
  CAMBIUM_ASSIGN_OR_RETURN(tokens_, auth::TokenStore::Open(config.data_dir + "/tokens.json"));
  CAMBIUM_ASSIGN_OR_RETURN(audit_, auth::AuditLog::Open(config.data_dir + "/audit.log"));
  CAMBIUM_ASSIGN_OR_RETURN(authenticator_,
                           auth::Authenticator::Create({.service_token = security.client_token,
                                                        .admin_token = admin,
                                                        .store = tokens_.get(),
                                                        .audit = audit_.get()}));
  return absl::OkStatus();
}

void PageServer::RegisterMetrics() {
  using metrics::MetricType;
  using metrics::Sample;
  (void)PageServerMetrics::Get();  // the hot-path series exist (at 0) from the start
  metrics::Registry& r = metrics::DefaultRegistry();
  Repository* repo = repo_.get();
  metrics_.push_back(metrics::Must(
      r.AddCallback(MetricType::kGauge, "cambium_pageserver_timelines",
                    "Timelines held: every branch's, their ancestors' and the trash's.", {},
                    [repo](std::vector<Sample>* out) {
                      out->push_back({.value = static_cast<double>(repo->AllTimelines().size())});
                    })));
  metrics_.push_back(metrics::Must(
      r.AddCallback(MetricType::kGauge, "cambium_pageserver_tenants", "Tenants.", {},
                    [repo](std::vector<Sample>* out) {
                      out->push_back({.value = static_cast<double>(repo->ListTenants().size())});
                    })));
  // Per branch (read-only copies aside): the head's logical size, and the bytes only
  // it holds (what deleting it frees) as a listing last computed them: a scrape never
  // scans a timeline's versions (Repository::BranchSizesForMetrics).
  auto branch_sizes = [repo](bool unique) {
    return [repo, unique](std::vector<Sample>* out) {
      for (const Repository::BranchSizeSample& b : repo->BranchSizesForMetrics()) {
        if (unique && !b.unique_size) continue;
        out->push_back({.label_values = {b.tenant.ToString(), b.timeline.ToString(), b.branch},
                        .value = static_cast<double>(unique ? *b.unique_size : b.logical_size)});
      }
    };
  };
  metrics_.push_back(metrics::Must(
      r.AddCallback(MetricType::kGauge, "cambium_pageserver_branch_logical_size_bytes",
                    "Logical size of each branch at its head: the bytes of its data directory.",
                    {"tenant", "timeline", "branch"}, branch_sizes(false))));
  metrics_.push_back(metrics::Must(r.AddCallback(
      MetricType::kGauge, "cambium_pageserver_branch_unique_size_bytes",
      "Bytes only this branch holds (page versions and WAL no other branch reads): what "
      "deleting it frees, as of the last branch listing (at most 30 s old for an active "
      "branch listed since).",
      {"tenant", "timeline", "branch"}, branch_sizes(true))));
  PageStore* store = store_.get();
  for (const RocksProperty& p : kRocksProperties) {
    std::vector<std::string> labels;
    if (p.per_family) labels.push_back("cf");
    metrics_.push_back(metrics::Must(r.AddCallback(
        MetricType::kGauge, p.metric, p.help, labels, [store, p](std::vector<Sample>* out) {
          uint64_t value = 0;
          if (!p.per_family) {
            if (store->db()->GetIntProperty(p.property, &value)) {
              out->push_back({.value = static_cast<double>(value)});
            }
            return;
          }
          for (const auto& [family, name] : kFamilies) {
            if (store->db()->GetIntProperty(store->cf(family), p.property, &value)) {
              out->push_back({.label_values = {name}, .value = static_cast<double>(value)});
            }
          }
        })));
  }
}

void PageServer::GcLoop(absl::Duration interval) {
  std::unique_lock<std::mutex> lock(gc_mu_);
  while (!stopping_) {
    gc_cv_.wait_for(lock, absl::ToChronoMilliseconds(interval));
    if (stopping_) break;
    lock.unlock();
    for (const TenantInfo& t : repo_->ListTenants()) {
      auto r = repo_->RunGc(t.name);
      if (!r.ok()) LogWarning("gc_failed", {{"tenant", t.name}, {"status", r.status()}});
    }
    lock.lock();
  }
}

void PageServer::Shutdown() {
  if (stopping_.exchange(true)) return;
  metrics_.clear();  // the callbacks read the repository and the store
  {
    std::lock_guard<std::mutex> lock(gc_mu_);
    gc_cv_.notify_all();
  }
  if (gc_thread_.joinable()) gc_thread_.join();
  // In-flight calls get one second, then are cancelled: the sync server otherwise
  // waits out the whole deadline while any client holds an idle connection, and
  // clients resend unacknowledged work after a restart anyway.
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  if (receiver_) receiver_->Stop();
  if (remote_) remote_->Stop();  // it reads the repository and the store
  if (repo_) repo_->SetHeadSource(nullptr);
  head_resolver_.reset();
  receiver_.reset();
  safekeepers_.reset();
  repo_.reset();
  if (store_) (void)store_->Sync();
  store_.reset();
  LogInfo("pageserver_stopped");
}

PageServer::~PageServer() { Shutdown(); }

}  // namespace cambium::pageserver
