#include "pageserver/tenant_transfer.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <thread>

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
  return absl::DataLossError(
      absl::StrFormat("transfer manifest names unknown family \"%s\"", name));
}

// Writes one family's keys, in order, into SST files of at most max_file_bytes, and
// puts each (sealed) as it is finished.
class FamilyExporter {
 public:
  FamilyExporter(PageStore& store, const FamilyName& family, int part,
                 objstore::ObjectStore& objects, std::string key_prefix, uint64_t generation,
                 std::string scratch_dir, uint64_t max_file_bytes, std::vector<TransferFile>* out)
      : store_(store),
        family_(family),
        part_(part),
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
      path_ = absl::StrFormat("%s/%s-p%d-%04d.sst", scratch_dir_, family_.name, part_, next_);
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
    TransferFile f{
        .family = family_.name,
        .key = absl::StrFormat("%s%s-p%d-%04d.sst", key_prefix_, family_.name, part_, next_++),
        .size = bytes.size(),
        .entries = entries_};
    CAMBIUM_RETURN_IF_ERROR(objects_.Put(f.key, objstore::Seal(bytes, generation_)));
    out_->push_back(std::move(f));
    return absl::OkStatus();
  }

 private:
  PageStore& store_;
  const FamilyName family_;
  const int part_;
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

// Runs job(0) ... job(jobs - 1) on up to `threads` threads (this one included).
// After a failure no further job starts, and `job` may ask `stop()` to end early;
// the first failure that is not a cancellation is returned.
absl::Status RunJobs(size_t jobs, int threads,
                     const std::function<absl::Status(size_t, const std::function<bool()>&)>& job) {
  std::vector<absl::Status> results(jobs);
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  const std::function<bool()> stop = [&] { return failed.load(); };
  const auto work = [&] {
    for (size_t j = next++; j < jobs && !failed; j = next++) {
      results[j] = job(j, stop);
      if (!results[j].ok()) failed = true;
    }
  };
  std::vector<std::thread> helpers;
  for (int i = 1; i < threads && i < static_cast<int>(jobs); ++i) helpers.emplace_back(work);
  work();
  for (std::thread& t : helpers) t.join();
  for (const absl::Status& r : results) {
    if (!r.ok() && !absl::IsCancelled(r)) return r;
  }
  for (const absl::Status& r : results) CAMBIUM_RETURN_IF_ERROR(r);
  return absl::OkStatus();
}

struct KeyRange {
  std::string lo, hi;  // [lo, hi)
};

// One thread's share of an export: key ranges of one family, in key order.
struct ExportJob {
  FamilyName family;
  int part = 0;
  std::vector<KeyRange> ranges;
};

// Cuts `ranges` (sorted, disjoint) into up to `parts` consecutive groups of about
// the same size, sizes estimated from where the family's SST files begin (keys of
// the memtables count for nothing: they are few).
std::vector<std::vector<KeyRange>> SplitRanges(PageStore& store, Family family,
                                               const std::vector<KeyRange>& ranges, int parts) {
  std::vector<std::pair<std::string, uint64_t>> starts;  // file start in a range, file size
  uint64_t total = 0;
  if (parts > 1) {
    std::vector<rocksdb::LiveFileMetaData> files;
    store.db()->GetLiveFilesMetaData(&files);
    const std::string cf = store.cf(family)->GetName();
    for (const auto& f : files) {
      if (f.column_family_name != cf) continue;
      for (const KeyRange& r : ranges) {
        if (f.smallestkey > r.lo && f.smallestkey < r.hi) {
          starts.emplace_back(f.smallestkey, f.size);
          total += f.size;
        }
      }
    }
    std::sort(starts.begin(), starts.end());
  }
  std::vector<std::string> cuts;  // ascending
  uint64_t sum = 0;
  for (const auto& [key, size] : starts) {
    if (static_cast<int>(cuts.size()) + 1 >= parts) break;
    // A cut where the share before it reaches its part of the total.
    if (sum * parts >= total * (cuts.size() + 1) && (cuts.empty() || key > cuts.back())) {
      cuts.push_back(key);
    }
    sum += size;
  }
  std::vector<std::vector<KeyRange>> out(cuts.size() + 1);
  for (const KeyRange& r : ranges) {
    std::string lo = r.lo;
    for (size_t i = 0; i <= cuts.size(); ++i) {
      // The part of [lo, hi) below cut i (all of it after the last cut) is part i's.
      const bool last = i == cuts.size();
      if (!last && cuts[i] <= lo) continue;
      const std::string hi = last || cuts[i] >= r.hi ? r.hi : cuts[i];
      if (lo < hi) out[i].push_back({lo, hi});
      lo = hi;
      if (lo == r.hi) break;
    }
  }
  return out;
}

json ToJson(const TransferManifest& m) {
  json files = json::array();
  for (const TransferFile& f : m.files) {
    files.push_back(
        {{"family", f.family}, {"key", f.key}, {"size", f.size}, {"entries", f.entries}});
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
  TransferManifest m{.tenant = tenant,
                     .tenant_name = tenant_name,
                     .generation = generation,
                     .timelines = timelines};
  const std::string prefix = TenantMovePrefix(tenant, generation);
  const rocksdb::Snapshot* snapshot = store.db()->GetSnapshot();
  absl::Status status = [&]() -> absl::Status {
    // Key ranges per family, in key order (SstFileWriter takes keys ascending).
    std::vector<KeyRange> meta, data;
    for (const std::string& p : meta_prefixes) meta.push_back({p, keys::PrefixEnd(p)});
    for (const TimelineId& t : timelines) {
      const std::string p = keys::TimelinePrefix(t);
      data.push_back({p, keys::PrefixEnd(p)});
    }
    const auto by_lo = [](const KeyRange& a, const KeyRange& b) { return a.lo < b.lo; };
    std::sort(meta.begin(), meta.end(), by_lo);
    std::sort(data.begin(), data.end(), by_lo);
    // Each family cut into key ranges of about equal size, one job each, so that
    // several threads compress and write at once (one thread goes at ~200 MB/s of
    // versions, bound by the copies and LZ4, not the disk). The parts' files do not
    // overlap, so the destination ingests them side by side.
    const int threads = std::max(1, options.threads);
    std::vector<ExportJob> jobs;
    for (const FamilyName& family : kFamilies) {
      const bool is_meta = family.family == Family::kMeta;
      std::vector<std::vector<KeyRange>> parts =
          SplitRanges(store, family.family, is_meta ? meta : data, is_meta ? 1 : threads);
      for (size_t i = 0; i < parts.size(); ++i) {
        if (!parts[i].empty()) {
          jobs.push_back({.family = family, .part = static_cast<int>(i), .ranges = parts[i]});
        }
      }
    }
    std::vector<std::vector<TransferFile>> files(jobs.size());
    CAMBIUM_RETURN_IF_ERROR(RunJobs(
        jobs.size(), threads, [&](size_t j, const std::function<bool()>& stop) -> absl::Status {
          const ExportJob& job = jobs[j];
          FamilyExporter out(store, job.family, job.part, objects, prefix, generation, scratch_dir,
                             options.max_file_bytes, &files[j]);
          for (const KeyRange& r : job.ranges) {
            auto it = store.NewBoundedIterator(job.family.family, r.lo, r.hi, snapshot);
            uint64_t n = 0;
            for (it->Seek(r.lo); it->Valid(); it->Next()) {
              if (++n % 4096 == 0 && stop()) return absl::CancelledError("another part failed");
              CAMBIUM_RETURN_IF_ERROR(out.Add(it->key(), it->value()));
            }
            CAMBIUM_RETURN_IF_ERROR(
                FromRocks(it->status(), std::string("read ") + job.family.name));
          }
          return out.Finish();
        }));
    for (auto& f : files) {
      m.files.insert(m.files.end(), std::make_move_iterator(f.begin()),
                     std::make_move_iterator(f.end()));
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
                          const TransferManifest& manifest, const std::string& scratch_dir,
                          int threads) {
  std::error_code ec;
  fs::remove_all(scratch_dir, ec);
  fs::create_directories(scratch_dir, ec);
  if (ec) return absl::InternalError(absl::StrFormat("mkdir %s: %s", scratch_dir, ec.message()));
  absl::Status status = [&]() -> absl::Status {
    // Downloaded and verified by `threads` threads at once, in manifest order per family.
    const size_t count = manifest.files.size();
    std::vector<Family> families;
    for (const TransferFile& f : manifest.files) {
      CAMBIUM_ASSIGN_OR_RETURN(Family family, FamilyByName(f.family));
      families.push_back(family);
    }
    std::vector<std::string> paths(count);
    CAMBIUM_RETURN_IF_ERROR(RunJobs(
        count, std::max(1, threads), [&](size_t i, const std::function<bool()>&) -> absl::Status {
          const TransferFile& f = manifest.files[i];
          CAMBIUM_ASSIGN_OR_RETURN(std::string sealed, objects.Get(f.key));
          CAMBIUM_ASSIGN_OR_RETURN(objstore::Unsealed u, objstore::Unseal(sealed, f.key));
          if (u.generation != manifest.generation || u.payload.size() != f.size) {
            return absl::DataLossError(absl::StrFormat(
                "transfer file %s: generation %d and %d bytes, the manifest says %d and %d", f.key,
                u.generation, u.payload.size(), manifest.generation, f.size));
          }
          const std::string path = absl::StrFormat("%s/%04d.sst", scratch_dir, i);
          CAMBIUM_RETURN_IF_ERROR(WriteFileAtomically(path, u.payload));
          paths[i] = path;
          return absl::OkStatus();
        }));
    std::map<Family, std::vector<std::string>> files;
    for (size_t i = 0; i < count; ++i) files[families[i]].push_back(paths[i]);
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
