// Tenant transfer: a tenant's part of one pageserver's page store, carried through an
// object store to another pageserver (docs/scale-out.md "Moving a tenant";
// issue 14).
//
// What goes: every key of the tenant, as RocksDB SST files written with
// SstFileWriter (the engine's own format, bloom filters and block checksums carry
// over): its metadata records (Repository::TenantMetaPrefixes) and, in the blocks,
// files, wal and commits families, every key of its timelines. Each SST is sealed
// (objstore/sealed_object.h) with the move's generation and put under
//   tenants/<tenant>/moves/<generation>/<family>-<n>.sst
// and, last, a sealed manifest naming each file with its size and key count:
//   tenants/<tenant>/moves/<generation>/manifest
// A manifest is put only after every file it names, so any manifest in the store is
// a whole tenant.
//
// What holds it together: ExportTenant's caller has stopped every write of the
// tenant first (Repository::FenceTenantForMove waits for writes in progress), and
// the export reads one RocksDB snapshot, so the files are one moment of the tenant:
// every batch its writer had applied (acknowledged or not) and the WAL archive at
// that moment. IngestTenant verifies every object (DATA_LOSS for a damaged,
// truncated or foreign one, naming it) before it changes anything, then ingests all
// families in one atomic IngestExternalFiles: the destination has all of the tenant
// or none of it.
//
// Cost: a scan of the tenant's keys (they are ordered by timeline, path and block,
// not by time), files of at most `max_file_bytes`, so memory stays bounded by two
// files per thread whatever the tenant's size. `threads` parts of each family's
// key space are exported at once.
//
// Thread-safety: free functions; concurrent transfers of different tenants are safe.
#ifndef CAMBIUM_PAGESERVER_TENANT_TRANSFER_H_
#define CAMBIUM_PAGESERVER_TENANT_TRANSFER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/ids.h"
#include "objstore/object_store.h"

namespace cambium::pageserver {

class PageStore;

struct TransferFile {
  std::string family;  // "meta", "blocks", "files", "wal", "commits"
  std::string key;     // object key
  uint64_t size = 0;   // bytes of the SST (unsealed)
  uint64_t entries = 0;
};

struct TransferManifest {
  TenantId tenant;
  std::string tenant_name;
  uint64_t generation = 0;
  std::vector<TimelineId> timelines;
  std::vector<TransferFile> files;
  uint64_t bytes() const;
  uint64_t entries() const;
};

struct TenantTransferOptions {
  // Largest SST file of a transfer (before sealing). Default: 64 MiB.
  uint64_t max_file_bytes = 64ull << 20;
  // Threads exporting at once, each a key range of its own (cut where the store's
  // SST files begin, by size). Default: 2.
  int threads = 2;
};

// The object key of the manifest of `tenant`'s move under `generation`.
std::string TransferManifestKey(const TenantId& tenant, uint64_t generation);

// Writes the tenant's keys (`meta_prefixes` of the meta family, every key of
// `timelines` in the others) as SST files in `scratch_dir`, puts them and then the
// manifest in `objects`, sealed with `generation`, and removes the local files.
// REQUIRES: no write of the tenant runs or starts (see the top of this file).
absl::StatusOr<TransferManifest> ExportTenant(PageStore& store, const TenantId& tenant,
                                              const std::string& tenant_name,
                                              const std::vector<std::string>& meta_prefixes,
                                              const std::vector<TimelineId>& timelines,
                                              objstore::ObjectStore& objects, uint64_t generation,
                                              const std::string& scratch_dir,
                                              const TenantTransferOptions& options = {});

// The manifest at `key`, verified. DATA_LOSS if damaged, NOT_FOUND if missing.
absl::StatusOr<TransferManifest> ReadTransferManifest(objstore::ObjectStore& objects,
                                                      const std::string& key);

// Downloads and verifies every file of `manifest` into `scratch_dir` (`threads` at
// once), then ingests them all into `store` atomically. Nothing is ingested if any
// file fails its check.
// REQUIRES: the tenant is not in `store`.
absl::Status IngestTenant(PageStore& store, objstore::ObjectStore& objects,
                          const TransferManifest& manifest, const std::string& scratch_dir,
                          int threads = 2);

}  // namespace cambium::pageserver

#endif  // CAMBIUM_PAGESERVER_TENANT_TRANSFER_H_
