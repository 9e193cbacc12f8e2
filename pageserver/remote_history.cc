#include "pageserver/remote_history.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/files.h"
#include "common/logging.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "objstore/sealed_object.h"
#include "pageserver/page_store.h"
#include "pageserver/repository.h"
#include "rocksdb/utilities/checkpoint.h"

namespace cambium::pageserver {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kGenerations[] = "generations/";
constexpr char kLayers[] = "layers/";
constexpr char kIndex[] = "index/";
constexpr char kIndexFiles[] = "index-files/";
constexpr int kIndexFormat = 1;
// Files of the data directory that are not RocksDB's and go up with every index.
constexpr const char* kSideFiles[] = {"tokens.json", "audit.log"};

std::string Hex16(uint64_t v) { return absl::StrFormat("%016x", v); }

// A MANIFEST's name and size: it grows with every change of the store's set of files.
std::string ManifestStamp(const std::string& name, uint64_t size) {
  return absl::StrCat(name, ":", size);
}

// Size and modification time of a file ("" if there is none): whether it changed.
std::string FileStamp(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return "";
  return absl::StrCat(st.st_size, "@", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec);
}

// The generation of "index/G-S" or "generations/G"; 0 if the key is not one.
uint64_t GenerationOfKey(std::string_view key, std::string_view prefix) {
  uint64_t g = 0;
  if (!key.starts_with(prefix) || key.size() < prefix.size() + 16 ||
      !absl::SimpleHexAtoi(absl::string_view(key.data() + prefix.size(), 16), &g)) {
    return 0;
  }
  return g;
}

// RocksDB's own files in a data directory (what a restore replaces).
bool IsEngineFile(const std::string& name) {
  return name == "CURRENT" || name == "IDENTITY" || absl::StartsWith(name, "MANIFEST-") ||
         absl::StartsWith(name, "OPTIONS-") || absl::EndsWith(name, ".sst") ||
         absl::EndsWith(name, ".log") || absl::EndsWith(name, ".blob");
}

// SST and blob files never change once written: each goes up once.
bool IsImmutableFile(const std::string& name) {
  return absl::EndsWith(name, ".sst") || absl::EndsWith(name, ".blob");
}

struct Index {
  uint64_t generation = 0;
  struct File {
    std::string name, key;
    uint64_t size = 0;
  };
  std::vector<File> files;
  std::map<TimelineId, Lsn> archive_ends;
};

// The immutable files `index` names, by local name: what later uploads name again
// instead of putting them anew.
template <typename Map>
void RememberLayers(const Index& index, Map* layers) {
  layers->clear();
  for (const Index::File& f : index.files) {
    if (IsImmutableFile(f.name)) (*layers)[f.name] = {.key = f.key, .size = f.size};
  }
}

std::string EncodeIndex(const Index& index) {
  json j = {{"format", kIndexFormat}, {"generation", index.generation}};
  j["created_unix_micros"] = absl::ToUnixMicros(absl::Now());
  json& files = j["files"] = json::array();
  for (const Index::File& f : index.files) {
    files.push_back({{"name", f.name}, {"key", f.key}, {"size", f.size}});
  }
  json& ends = j["archive_ends"] = json::object();
  for (const auto& [id, lsn] : index.archive_ends) ends[id.ToString()] = lsn.value();
  return j.dump();
}

absl::StatusOr<Index> DecodeIndex(std::string_view text, const std::string& key) {
  Index index;
  try {
    json j = json::parse(text);
    if (j.at("format").get<int>() != kIndexFormat) {
      return absl::FailedPreconditionError(
          absl::StrFormat("index %s has format %d; this pageserver reads format %d", key,
                          j.at("format").get<int>(), kIndexFormat));
    }
    index.generation = j.at("generation").get<uint64_t>();
    for (const json& f : j.at("files")) {
      index.files.push_back({.name = f.at("name").get<std::string>(),
                             .key = f.at("key").get<std::string>(),
                             .size = f.at("size").get<uint64_t>()});
    }
    for (const auto& [id, lsn] : j.at("archive_ends").items()) {
      CAMBIUM_ASSIGN_OR_RETURN(TimelineId t, TimelineId::Parse(id));
      index.archive_ends[t] = Lsn(lsn.get<uint64_t>());
    }
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("index ", key, " is not a valid index: ", e.what()));
  }
  for (const Index::File& f : index.files) {
    // A name that could leave the data directory is never written.
    if (f.name.empty() || f.name.find('/') != std::string::npos || f.name == "." ||
        f.name == "..") {
      return absl::DataLossError(absl::StrCat("index ", key, " names a bad file: ", f.name));
    }
  }
  return index;
}

// The object `key`, unsealed and checked to hold `size` bytes (when size >= 0).
absl::StatusOr<std::string> GetSealed(objstore::ObjectStore& store, const std::string& key,
                                      int64_t size = -1) {
  CAMBIUM_ASSIGN_OR_RETURN(std::string sealed, store.Get(key));
  CAMBIUM_ASSIGN_OR_RETURN(objstore::Unsealed u, objstore::Unseal(sealed, key));
  if (size >= 0 && u.payload.size() != static_cast<uint64_t>(size)) {
    return absl::DataLossError(absl::StrFormat("object %s holds %d bytes; its index says %d", key,
                                               u.payload.size(), size));
  }
  return std::string(u.payload);
}

}  // namespace

absl::StatusOr<std::unique_ptr<RemoteHistory>> RemoteHistory::Open(
    std::unique_ptr<objstore::ObjectStore> store, std::string data_dir,
    RemoteHistoryOptions options) {
  std::unique_ptr<RemoteHistory> h(
      new RemoteHistory(std::move(store), std::move(data_dir), options));
  CAMBIUM_RETURN_IF_ERROR(h->ClaimGeneration());
  if (absl::Status loaded = h->LoadNewestIndex(); !loaded.ok()) {
    // With a store on this disk, the newest index only says what is up already: a
    // damaged one is replaced by the next upload (everything goes up again). Without
    // one, it is what a restore needs, and its damage is the answer.
    std::error_code ec;
    if (!fs::exists(h->data_dir_ + "/CURRENT", ec)) return loaded;
    LogWarning("remote_index_unreadable", {{"status", loaded}, {"action", "uploading anew"}});
  }
  LogInfo("remote_history_opened", {{"store", h->store_->Describe()},
                                    {"generation", h->generation_},
                                    {"newest_index", h->newest_index_}});
  return h;
}

RemoteHistory::~RemoteHistory() { Stop(); }

absl::Status RemoteHistory::ClaimGeneration() {
  uint64_t highest = 0;
  CAMBIUM_ASSIGN_OR_RETURN(auto markers, store_->List(kGenerations));
  for (const auto& o : markers) highest = std::max(highest, GenerationOfKey(o.key, kGenerations));
  CAMBIUM_ASSIGN_OR_RETURN(auto indexes, store_->List(kIndex));
  for (const auto& o : indexes) highest = std::max(highest, GenerationOfKey(o.key, kIndex));
  generation_ = highest + 1;
  json marker = {{"generation", generation_},
                 {"claimed_unix_micros", absl::ToUnixMicros(absl::Now())},
                 {"pid", getpid()}};
  return Annotate(store_->Put(absl::StrCat(kGenerations, Hex16(generation_)),
                              objstore::Seal(marker.dump(), generation_)),
                  absl::StrCat("claiming generation ", generation_, " in ", store_->Describe()));
}

absl::Status RemoteHistory::LoadNewestIndex() {
  CAMBIUM_ASSIGN_OR_RETURN(auto indexes, store_->List(kIndex));
  if (indexes.empty()) return absl::OkStatus();
  const std::string key = indexes.back().key;
  CAMBIUM_ASSIGN_OR_RETURN(std::string text, GetSealed(*store_, key));
  CAMBIUM_ASSIGN_OR_RETURN(Index index, DecodeIndex(text, key));
  std::lock_guard<std::mutex> lock(mu_);
  newest_index_ = key;
  uploaded_ = index.archive_ends;
  // A local SST of the same name and size as one the index names is that file: file
  // numbers are never reused once a synced MANIFEST names them, and an index names
  // only files of a checkpoint, which are in the synced MANIFEST.
  RememberLayers(index, &sst_);
  return absl::OkStatus();
}

absl::StatusOr<bool> RemoteHistory::RestoreIfEmpty() {
  std::error_code ec;
  if (fs::exists(data_dir_ + "/CURRENT", ec)) return false;
  std::string key;
  {
    std::lock_guard<std::mutex> lock(mu_);
    key = newest_index_;
  }
  if (key.empty()) return false;
  const absl::Time start = absl::Now();
  CAMBIUM_ASSIGN_OR_RETURN(std::string text, GetSealed(*store_, key));
  CAMBIUM_ASSIGN_OR_RETURN(Index index, DecodeIndex(text, key));
  fs::create_directories(data_dir_, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", data_dir_, ": ", ec.message()));
  // What an interrupted restore (or create) left is replaced, never mixed in: a stray
  // WAL log would be replayed into the restored store.
  for (const auto& entry : fs::directory_iterator(data_dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && IsEngineFile(name)) fs::remove(entry.path(), ec);
  }
  uint64_t bytes = 0;
  const Index::File* current = nullptr;
  for (const Index::File& f : index.files) {
    if (f.name == "CURRENT") {
      current = &f;  // last: it makes the directory a store
      continue;
    }
    CAMBIUM_ASSIGN_OR_RETURN(std::string data,
                             GetSealed(*store_, f.key, static_cast<int64_t>(f.size)));
    CAMBIUM_RETURN_IF_ERROR(WriteFileAtomically(data_dir_ + "/" + f.name, data));
    bytes += data.size();
  }
  if (current == nullptr) {
    return absl::DataLossError(absl::StrCat("index ", key, " names no CURRENT file"));
  }
  CAMBIUM_ASSIGN_OR_RETURN(std::string data,
                           GetSealed(*store_, current->key, static_cast<int64_t>(current->size)));
  CAMBIUM_RETURN_IF_ERROR(WriteFileAtomically(data_dir_ + "/CURRENT", data));
  LogInfo("remote_history_restored", {{"index", key},
                                      {"files", index.files.size()},
                                      {"bytes", bytes},
                                      {"ms", absl::ToInt64Milliseconds(absl::Now() - start)}});
  return true;
}

void RemoteHistory::Start(PageStore* store, Repository* repo) {
  page_store_ = store;
  repo_ = repo;
  auto& registry = metrics::DefaultRegistry();
  metrics_.push_back(metrics::Must(registry.AddCallback(
      metrics::MetricType::kGauge, "cambium_pageserver_remote_lag_bytes",
      "WAL archived on this pageserver that no uploaded index holds yet, per timeline: what a "
      "lost disk would make the safekeepers resend.",
      {"tenant", "timeline"}, [this](std::vector<metrics::Sample>* out) { Collect(out); })));
  metrics_.push_back(metrics::Must(registry.AddCallback(
      metrics::MetricType::kGauge, "cambium_pageserver_remote_last_upload_age_seconds",
      "Seconds since the object store last held everything written here (an upload, or a "
      "check that nothing was written since); +Inf before the first.",
      {}, [this](std::vector<metrics::Sample>* out) {
        std::lock_guard<std::mutex> lock(mu_);
        out->push_back({{}, absl::ToDoubleSeconds(absl::Now() - last_success_)});
      })));
  metrics_.push_back(metrics::Must(registry.AddCallback(
      metrics::MetricType::kCounter, "cambium_pageserver_remote_uploads_total",
      "Uploads of the page store to the object store, by result.", {"result"},
      [this](std::vector<metrics::Sample>* out) {
        out->push_back({{"ok"}, static_cast<double>(uploads_.load())});
        out->push_back({{"error"}, static_cast<double>(upload_failures_.load())});
      })));
  metrics_.push_back(metrics::Must(registry.AddCallback(
      metrics::MetricType::kCounter, "cambium_pageserver_remote_uploaded_bytes_total",
      "Bytes put to the object store (layers, index files, indexes).", {},
      [this](std::vector<metrics::Sample>* out) {
        out->push_back({{}, static_cast<double>(uploaded_bytes_.load())});
      })));
  thread_ = std::thread([this] { Run(); });
}

void RemoteHistory::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  metrics_.clear();
}

absl::Status RemoteHistory::WaitForUpload() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t ticket = ++requested_;
  cv_.notify_all();
  const bool done = cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.wait_timeout), [&] {
    return completed_ >= ticket || failed_ >= ticket || stopping_;
  });
  if (completed_ >= ticket) return absl::OkStatus();
  if (failed_ >= ticket) {
    return absl::UnavailableError(
        absl::StrCat("the change is made but not yet in the object store (", store_->Describe(),
                     "), so a lost disk would lose it: ", last_error_.message(),
                     ". Uploads are retried; the change needs no retry"));
  }
  if (!done) {
    return absl::DeadlineExceededError(absl::StrFormat(
        "the change is made but no upload to %s finished within %s; uploads are retried",
        store_->Describe(), absl::FormatDuration(options_.wait_timeout)));
  }
  return absl::UnavailableError("the pageserver is shutting down");
}

Lsn RemoteHistory::UploadedArchiveEnd(const TimelineId& timeline) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = uploaded_.find(timeline);
  return it == uploaded_.end() ? Lsn() : it->second;
}

void RemoteHistory::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  absl::Time next = absl::Now();
  while (!stopping_) {
    // A request no upload answered yet starts one at once; otherwise the interval.
    // A failed upload is retried at the next interval or request, never in a loop.
    auto pending = [&] { return requested_ > std::max(completed_, failed_); };
    cv_.wait_until(lock, absl::ToChronoTime(next), [&] { return stopping_ || pending(); });
    if (stopping_) break;
    if (!pending() && absl::Now() < next) continue;
    const uint64_t covers = requested_;
    lock.unlock();
    const absl::Time start = absl::Now();
    absl::Status s = UploadOnce();
    lock.lock();
    next = absl::Now() + options_.interval;
    if (s.ok()) {
      completed_ = std::max(completed_, covers);
      last_success_ = absl::Now();
      last_error_ = absl::OkStatus();
      ++uploads_;
      LogDebug("remote_upload_done", {{"ms", absl::ToInt64Milliseconds(absl::Now() - start)}});
    } else {
      failed_ = std::max(failed_, covers);
      last_error_ = s;
      ++upload_failures_;
      LogWarning("remote_upload_failed", {{"status", s}, {"store", store_->Describe()}});
    }
    cv_.notify_all();
  }
}

absl::Status RemoteHistory::CheckNotStale() {
  CAMBIUM_ASSIGN_OR_RETURN(auto markers, store_->List(kGenerations));
  for (const auto& o : markers) {
    const uint64_t g = GenerationOfKey(o.key, kGenerations);
    if (g > generation_) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "generation %d of %s was claimed by another pageserver; this one (generation %d) no "
          "longer uploads or deletes",
          g, store_->Describe(), generation_));
    }
  }
  return absl::OkStatus();
}

absl::Status RemoteHistory::UploadOnce() {
  // Nothing written since the last upload (no new sequence number, the same set of
  // files, the same token store): that upload still is the store's state, and nothing
  // goes up, so an idle pageserver costs the object store nothing. The files count
  // because an ingested one (a tenant attached from another pageserver) usually
  // takes no sequence number; every change of them is a MANIFEST record, so the
  // MANIFEST's name and size stand for them (compared with the one the last upload
  // holds). Read before the checkpoint, so a change racing with it goes up next time.
  const uint64_t sequence = page_store_->db()->GetLatestSequenceNumber();
  const std::string tokens = FileStamp(data_dir_ + "/" + kSideFiles[0]);
  std::string manifest;
  {
    std::vector<std::string> live;
    uint64_t manifest_size = 0;
    rocksdb::Status s = page_store_->db()->GetLiveFiles(live, &manifest_size,
                                                        /*flush_memtable=*/false);
    if (!s.ok()) return absl::InternalError("listing the page store's files: " + s.ToString());
    for (const std::string& f : live) {
      if (absl::StrContains(f, "MANIFEST-")) {
        manifest = ManifestStamp(fs::path(f).filename().string(), manifest_size);
      }
    }
  }
  if (uploaded_sequence_ && *uploaded_sequence_ == sequence && uploaded_tokens_ == tokens &&
      uploaded_manifest_ == manifest) {
    return absl::OkStatus();
  }
  CAMBIUM_RETURN_IF_ERROR(CheckNotStale());
  // Archive ends read after a sync are in the checkpoint taken after them.
  CAMBIUM_RETURN_IF_ERROR(page_store_->Sync());
  Index index{.generation = generation_};
  for (const auto& t : repo_->AllTimelines()) {
    if (t->deleted()) continue;
    absl::StatusOr<Lsn> end = repo_->archive().End(*t);
    if (end.ok() && end->valid()) index.archive_ends[t->id()] = *end;
  }
  const std::string dir = data_dir_ + "/.upload-checkpoint";
  std::error_code ec;
  fs::remove_all(dir, ec);
  {
    rocksdb::Checkpoint* raw = nullptr;
    rocksdb::Status s = rocksdb::Checkpoint::Create(page_store_->db(), &raw);
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    // 0: flush the memtables first, so the SST files hold everything.
    if (s.ok()) s = checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/0);
    if (!s.ok()) return absl::InternalError("checkpoint of the page store: " + s.ToString());
  }
  const std::string name = absl::StrCat(Hex16(generation_), "-", Hex16(next_seq_));
  const std::string files_prefix = absl::StrCat(kIndexFiles, name, "/");
  // Reads `path`, puts it sealed under `key`, and names it `name` in the index.
  auto upload = [&](const std::string& path, const std::string& name,
                    const std::string& key) -> absl::Status {
    CAMBIUM_ASSIGN_OR_RETURN(std::string data, ReadFileToString(path));
    std::string sealed = objstore::Seal(data, generation_);
    CAMBIUM_RETURN_IF_ERROR(store_->Put(key, sealed));
    uploaded_bytes_ += sealed.size();
    index.files.push_back({.name = name, .key = key, .size = data.size()});
    return absl::OkStatus();
  };
  absl::Status status;
  std::string checkpoint_manifest;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!status.ok()) break;
    const std::string file = entry.path().filename().string();
    if (absl::StartsWith(file, "MANIFEST-")) {
      // What this upload holds (the checkpoint's copy stops at the size it took).
      checkpoint_manifest = ManifestStamp(file, entry.file_size(ec));
    }
    if (!IsImmutableFile(file)) {
      status = upload(entry.path().string(), file, files_prefix + file);
      continue;
    }
    auto known = sst_.find(file);
    if (known != sst_.end() && known->second.size == entry.file_size(ec)) {
      index.files.push_back({.name = file, .key = known->second.key, .size = known->second.size});
      continue;
    }
    status =
        upload(entry.path().string(), file, absl::StrCat(kLayers, Hex16(generation_), "/", file));
  }
  if (ec && status.ok()) status = absl::InternalError("listing " + dir + ": " + ec.message());
  for (const char* side : kSideFiles) {
    if (!status.ok()) break;
    const std::string path = data_dir_ + "/" + side;
    if (fs::exists(path, ec)) status = upload(path, side, files_prefix + side);
  }
  fs::remove_all(dir, ec);
  CAMBIUM_RETURN_IF_ERROR(status);
  // Last: the index makes the upload visible, and only once everything it names is in.
  const std::string index_key = absl::StrCat(kIndex, name);
  CAMBIUM_RETURN_IF_ERROR(CheckNotStale());
  const std::string sealed_index = objstore::Seal(EncodeIndex(index), generation_);
  CAMBIUM_RETURN_IF_ERROR(store_->Put(index_key, sealed_index));
  uploaded_bytes_ += sealed_index.size();
  ++next_seq_;
  RememberLayers(index, &sst_);
  uploaded_sequence_ = sequence;
  uploaded_tokens_ = tokens;
  uploaded_manifest_ = checkpoint_manifest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    newest_index_ = index_key;
    uploaded_ = index.archive_ends;
  }
  // A failed prune leaves garbage, never a gap: it is retried after the next upload.
  if (absl::Status s = Prune(); !s.ok()) LogWarning("remote_prune_failed", {{"status", s}});
  return absl::OkStatus();
}

absl::Status RemoteHistory::Prune() {
  CAMBIUM_ASSIGN_OR_RETURN(auto indexes, store_->List(kIndex));
  std::vector<std::string> ours, older;
  for (const auto& o : indexes) {
    const uint64_t g = GenerationOfKey(o.key, kIndex);
    if (g == generation_) ours.push_back(o.key);
    if (g < generation_) older.push_back(o.key);
  }
  if (ours.empty()) return absl::OkStatus();  // older generations' indexes are the history
  std::vector<std::string> drop = older;
  const size_t keep = static_cast<size_t>(std::max(1, options_.keep_indexes));
  std::vector<std::string> kept;
  for (size_t i = 0; i < ours.size(); ++i) {
    (i + keep < ours.size() ? drop : kept).push_back(ours[i]);
  }
  if (drop.empty()) return absl::OkStatus();
  // Every layer a kept index names stays.
  std::set<std::string> live;
  for (const std::string& key : kept) {
    CAMBIUM_ASSIGN_OR_RETURN(std::string text, GetSealed(*store_, key));
    CAMBIUM_ASSIGN_OR_RETURN(Index index, DecodeIndex(text, key));
    for (const Index::File& f : index.files) live.insert(f.key);
  }
  CAMBIUM_RETURN_IF_ERROR(CheckNotStale());
  for (const std::string& key : drop) {
    // The index first: a store never holds an index whose files are gone.
    CAMBIUM_RETURN_IF_ERROR(store_->Delete(key));
    const std::string files = absl::StrCat(kIndexFiles, key.substr(sizeof(kIndex) - 1), "/");
    CAMBIUM_ASSIGN_OR_RETURN(auto objects, store_->List(files));
    for (const auto& o : objects) CAMBIUM_RETURN_IF_ERROR(store_->Delete(o.key));
  }
  CAMBIUM_ASSIGN_OR_RETURN(auto layers, store_->List(kLayers));
  for (const auto& o : layers) {
    // Layers above this generation are not ours to judge (CheckNotStale said there are
    // none; a newer pageserver may appear meanwhile and claim only new keys).
    if (GenerationOfKey(o.key, kLayers) > generation_) continue;
    if (!live.count(o.key)) CAMBIUM_RETURN_IF_ERROR(store_->Delete(o.key));
  }
  return absl::OkStatus();
}

void RemoteHistory::Collect(std::vector<metrics::Sample>* out) {
  if (repo_ == nullptr) return;
  for (const auto& t : repo_->AllTimelines()) {
    if (t->deleted() || t->generation() == 0) continue;
    absl::StatusOr<Lsn> end = repo_->archive().End(*t);
    if (!end.ok()) continue;
    const Lsn up = UploadedArchiveEnd(t->id());
    out->push_back(
        {{t->tenant_id().ToString(), t->id().ToString()},
         static_cast<double>(end->value() > up.value() ? end->value() - up.value() : 0)});
  }
}

}  // namespace cambium::pageserver
