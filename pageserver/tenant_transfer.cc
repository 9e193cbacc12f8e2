#include "pageserver/tenant_transfer.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>

#include "absl/strings/str_format.h"
#include "common/files.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/tenant_moves.h"
#include "nlohmann/json.hpp"
#include "objstore/sealed_object.h"
#include "pageserver/keys.h"
#include "pageserver/page_store.h"
#include "rocksdb/sst_file_writer.h"

namespace cambium::pageserver {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct FamilyName {
  Family family;
  const char* name;
};
constexpr FamilyName kFamilies[] = {{Family::kMeta, "meta"},
                                    {Family::kBlocks, "blocks"},
                                    {Family::kFiles, "files"},
                                    {Family::kWal, "wal"},
                                    {Family::kCommits, "commits"}};

absl::StatusOr<Family> FamilyByName(const std::string& name) {
  for (const FamilyName& f : kFamilies) {
    if (name == f.name) return f.family;
  }
  return absl::DataLossError(absl::StrFormat("transfer manifest names unknown family \"%s\"", name));
}

// Writes one family's keys, in order, into SST files of at most max_file_bytes, and
// puts each (sealed) as it is finished.
class FamilyExporter {
 public:
  FamilyExporter(PageStore& store, const FamilyName& family, objstore::ObjectStore& objects,
                 std::string key_prefix, uint64_t generation, std::string scratch_dir,
                 uint64_t max_file_bytes, std::vector<TransferFile>* out)
      : store_(store),
        family_(family),
        objects_(objects),
        key_prefix_(std::move(key_prefix)),
        generation_(generation),
        scratch_dir_(std::move(scratch_dir)),
        max_file_bytes_(max_file_bytes),
        out_(out) {}

  absl::Status Add(const rocksdb::Slice& key, const rocksdb::Slice& value) {
    if (!writer_) {
      writer_ = std::make_unique<rocksdb::SstFileWriter>(
          rocksdb::EnvOptions(), store_.db()->GetOptions(store_.cf(family_.family)),
          store_.cf(family_.family));
      path_ = absl::StrFormat("%s/%s-%04d.sst", scratch_dir_, family_.name, next_);
      CAMBIUM_RETURN_IF_ERROR(FromRocks(writer_->Open(path_), "open " + path_));
      entries_ = 0;
      raw_bytes_ = 0;
    }
    CAMBIUM_RETURN_IF_ERROR(FromRocks(writer_->Put(key, value), "write " + path_));
    ++entries_;
    // Counted from what went in: FileSize() lags by the block being built.
    raw_bytes_ += key.size() + value.size();
    if (raw_bytes_ >= max_file_bytes_) return Finish();
    return absl::OkStatus();
  }

  // Finishes and puts the open file, if any.
  absl::Status Finish() {
    if (!writer_) return absl::OkStatus();
    CAMBIUM_RETURN_IF_ERROR(FromRocks(writer_->Finish(), "finish " + path_));
    writer_.reset();
    CAMBIUM_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path_));
    std::error_code ec;
    fs::remove(path_, ec);
    TransferFile f{.family = family_.name,
                   .key = absl::StrFormat("%s%s-%04d.sst", key_prefix_, family_.name, next_++),
                   .size = bytes.size(),
                   .entries = entries_};
    CAMBIUM_RETURN_IF_ERROR(objects_.Put(f.key, objstore::Seal(bytes, generation_)));
    out_->push_back(std::move(f));
    return absl::OkStatus();
  }

 private:
  PageStore& store_;
  const FamilyName family_;
  objstore::ObjectStore& objects_;
  const std::string key_prefix_;
  const uint64_t generation_;
  const std::string scratch_dir_;
  const uint64_t max_file_bytes_;
  std::vector<TransferFile>* const out_;
  std::unique_ptr<rocksdb::SstFileWriter> writer_;
  std::string path_;
  uint64_t entries_ = 0;
  uint64_t raw_bytes_ = 0;
  int next_ = 0;
};

json ToJson(const TransferManifest& m) {
  json files = json::array();
  for (const TransferFile& f : m.files) {
    files.push_back({{"family", f.family}, {"key", f.key}, {"size", f.size}, {"entries", f.entries}});
  }
  json timelines = json::array();
  for (const TimelineId& t : m.timelines) timelines.push_back(t.ToString());
  return {{"version", 1},
          {"tenant", m.tenant.ToString()},
          {"tenant_name", m.tenant_name},
          {"generation", m.generation},
          {"timelines", timelines},
          {"files", files}};
}

absl::StatusOr<TransferManifest> FromJson(std::string_view text, const std::string& key) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  const auto bad = [&](std::string_view why) {
    return absl::DataLossError(absl::StrFormat("transfer manifest %s: %s", key, why));
  };
  if (!j.is_object() || j.value("version", 0) != 1) return bad("not a version 1 manifest");
  TransferManifest m;
  auto tenant = TenantId::Parse(j.value("tenant", ""));
  if (!tenant.ok()) return bad("bad tenant id");
  m.tenant = *tenant;
  m.tenant_name = j.value("tenant_name", "");
  m.generation = j.value("generation", uint64_t{0});
  if (!j.contains("timelines") || !j["timelines"].is_array()) return bad("no timelines");
  for (const json& t : j["timelines"]) {
    auto id = t.is_string() ? TimelineId::Parse(t.get<std::string>())
                            : absl::StatusOr<TimelineId>(absl::InvalidArgumentError(""));
    if (!id.ok()) return bad("bad timeline id");
    m.timelines.push_back(*id);
  }
  if (!j.contains("files") || !j["files"].is_array()) return bad("no files");
  for (const json& f : j["files"]) {
    if (!f.is_object()) return bad("bad file entry");
    m.files.push_back(TransferFile{.family = f.value("family", ""),
                                   .key = f.value("key", ""),
                                   .size = f.value("size", uint64_t{0}),
                                   .entries = f.value("entries", uint64_t{0})});
    CAMBIUM_RETURN_IF_ERROR(FamilyByName(m.files.back().family).status());
  }
  return m;
}

}  // namespace

uint64_t TransferManifest::bytes() const {
  uint64_t total = 0;
  for (const TransferFile& f : files) total += f.size;
  return total;
}

uint64_t TransferManifest::entries() const {
  uint64_t total = 0;
  for (const TransferFile& f : files) total += f.entries;
  return total;
}

std::string TransferManifestKey(const TenantId& tenant, uint64_t generation) {
  return TenantMovePrefix(tenant, generation) + "manifest";
}

absl::StatusOr<TransferManifest> ExportTenant(PageStore& store, const TenantId& tenant,
                                              const std::string& tenant_name,
                                              const std::vector<std::string>& meta_prefixes,
                                              const std::vector<TimelineId>& timelines,
                                              objstore::ObjectStore& objects, uint64_t generation,
                                              const std::string& scratch_dir,
                                              const TenantTransferOptions& options) {
  std::error_code ec;
  fs::remove_all(scratch_dir, ec);
  fs::create_directories(scratch_dir, ec);
  if (ec) return absl::InternalError(absl::StrFormat("mkdir %s: %s", scratch_dir, ec.message()));
  TransferManifest m{.tenant = tenant, .tenant_name = tenant_name, .generation = generation,
                     .timelines = timelines};
  const std::string prefix = TenantMovePrefix(tenant, generation);
  const rocksdb::Snapshot* snapshot = store.db()->GetSnapshot();
  absl::Status status = [&]() -> absl::Status {
    // Key ranges per family, in key order (SstFileWriter takes keys ascending).
    std::vector<std::string> meta(meta_prefixes);
    std::sort(meta.begin(), meta.end());
    std::vector<std::string> data;
    for (const TimelineId& t : timelines) data.push_back(keys::TimelinePrefix(t));
    std::sort(data.begin(), data.end());
    for (const FamilyName& family : kFamilies) {
      FamilyExporter out(store, family, objects, prefix, generation, scratch_dir,
                         options.max_file_bytes, &m.files);
      for (const std::string& p : family.family == Family::kMeta ? meta : data) {
        auto it = store.NewBoundedIterator(family.family, p, keys::PrefixEnd(p), snapshot);
        for (it->Seek(p); it->Valid(); it->Next()) {
          CAMBIUM_RETURN_IF_ERROR(out.Add(it->key(), it->value()));
        }
        CAMBIUM_RETURN_IF_ERROR(FromRocks(it->status(), std::string("read ") + family.name));
      }
      CAMBIUM_RETURN_IF_ERROR(out.Finish());
    }
    return absl::OkStatus();
  }();
  store.db()->ReleaseSnapshot(snapshot);
  fs::remove_all(scratch_dir, ec);
  CAMBIUM_RETURN_IF_ERROR(status);
  CAMBIUM_RETURN_IF_ERROR(
      objects.Put(prefix + "manifest", objstore::Seal(ToJson(m).dump(), generation)));
  return m;
}

absl::StatusOr<TransferManifest> ReadTransferManifest(objstore::ObjectStore& objects,
                                                      const std::string& key) {
  CAMBIUM_ASSIGN_OR_RETURN(std::string sealed, objects.Get(key));
  CAMBIUM_ASSIGN_OR_RETURN(objstore::Unsealed u, objstore::Unseal(sealed, key));
  CAMBIUM_ASSIGN_OR_RETURN(TransferManifest m, FromJson(u.payload, key));
  if (u.generation != m.generation) {
    return absl::DataLossError(
        absl::StrFormat("transfer manifest %s is sealed by generation %d but names %d", key,
                        u.generation, m.generation));
  }
  return m;
}

absl::Status IngestTenant(PageStore& store, objstore::ObjectStore& objects,
                          const TransferManifest& manifest, const std::string& scratch_dir) {
  std::error_code ec;
  fs::remove_all(scratch_dir, ec);
  fs::create_directories(scratch_dir, ec);
  if (ec) return absl::InternalError(absl::StrFormat("mkdir %s: %s", scratch_dir, ec.message()));
  absl::Status status = [&]() -> absl::Status {
    std::map<Family, std::vector<std::string>> files;
    int n = 0;
    for (const TransferFile& f : manifest.files) {
      CAMBIUM_ASSIGN_OR_RETURN(std::string sealed, objects.Get(f.key));
      CAMBIUM_ASSIGN_OR_RETURN(objstore::Unsealed u, objstore::Unseal(sealed, f.key));
      if (u.generation != manifest.generation || u.payload.size() != f.size) {
        return absl::DataLossError(absl::StrFormat(
            "transfer file %s: generation %d and %d bytes, the manifest says %d and %d", f.key,
            u.generation, u.payload.size(), manifest.generation, f.size));
      }
      const std::string path = absl::StrFormat("%s/%04d.sst", scratch_dir, n++);
      CAMBIUM_RETURN_IF_ERROR(WriteFileAtomically(path, u.payload));
      CAMBIUM_ASSIGN_OR_RETURN(Family family, FamilyByName(f.family));
      files[family].push_back(path);
    }
    std::vector<rocksdb::IngestExternalFileArg> args;
    for (auto& [family, paths] : files) {
      rocksdb::IngestExternalFileArg arg;
      arg.column_family = store.cf(family);
      arg.external_files = std::move(paths);
      arg.options.move_files = true;
      // RocksDB checks every block's checksum of the files before it takes them.
      arg.options.verify_checksums_before_ingest = true;
      args.push_back(std::move(arg));
    }
    if (args.empty()) return absl::OkStatus();
    return FromRocks(store.db()->IngestExternalFiles(args),
                     "ingest tenant " + manifest.tenant.ToString());
  }();
  fs::remove_all(scratch_dir, ec);
  return status;
}

}  // namespace cambium::pageserver
