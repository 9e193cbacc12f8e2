#include "pageserver/keys.h"

namespace cambium::pageserver::keys {

void AppendBigEndian64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

void AppendBigEndian32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

uint64_t LoadBigEndian64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

uint32_t LoadBigEndian32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

std::string TimelinePrefix(const TimelineId& timeline) {
  std::string key;
  key.reserve(kTimelineBytes);
  timeline.AppendBytes(&key);
  return key;
}

std::string PathPrefix(const TimelineId& timeline, std::string_view path) {
  std::string key = TimelinePrefix(timeline);
  key.reserve(kTimelineBytes + path.size() + 13);
  key.append(path.data(), path.size());
  key.push_back('\0');
  return key;
}

std::string BlockPrefix(const TimelineId& timeline, std::string_view path, uint32_t block) {
  std::string key = PathPrefix(timeline, path);
  AppendBigEndian32(&key, block);
  return key;
}

std::string BlockKey(const TimelineId& timeline, std::string_view path, uint32_t block, Lsn lsn) {
  std::string key = BlockPrefix(timeline, path, block);
  AppendBigEndian64(&key, ~lsn.value());
  return key;
}

std::string FileKey(const TimelineId& timeline, std::string_view path, Lsn lsn) {
  std::string key = PathPrefix(timeline, path);
  AppendBigEndian64(&key, ~lsn.value());
  return key;
}

std::string WalKey(const TimelineId& timeline, Lsn start) {
  std::string key = TimelinePrefix(timeline);
  AppendBigEndian64(&key, start.value());
  return key;
}

std::string CommitKey(const TimelineId& timeline, int64_t max_commit_time, Lsn end) {
  std::string key = TimelinePrefix(timeline);
  key.push_back('T');
  // Flip the sign bit so that negative times sort before positive ones.
  AppendBigEndian64(&key, static_cast<uint64_t>(max_commit_time) ^ (1ull << 63));
  AppendBigEndian64(&key, end.value());
  return key;
}

std::string CommitLsnKey(const TimelineId& timeline, Lsn end) {
  std::string key = TimelinePrefix(timeline);
  key.push_back('L');
  AppendBigEndian64(&key, end.value());
  return key;
}

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<uint8_t>(end.back()) == 0xFF) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<uint8_t>(end.back()) + 1);
  return end;
}

bool ParseBlockKey(std::string_view key, ParsedBlockKey* out) {
  if (key.size() < kTimelineBytes + 1 + 12) return false;
  const size_t path_end = key.size() - 13;
  if (key[path_end] != '\0' || path_end <= kTimelineBytes) return false;
  out->timeline = TimelineId::FromBytes(key.data());
  out->path = key.substr(kTimelineBytes, path_end - kTimelineBytes);
  out->block = LoadBigEndian32(key.data() + path_end + 1);
  out->lsn = Lsn(~LoadBigEndian64(key.data() + path_end + 5));
  return true;
}

bool ParseFileKey(std::string_view key, ParsedFileKey* out) {
  if (key.size() < kTimelineBytes + 1 + 9) return false;
  const size_t path_end = key.size() - 9;
  if (key[path_end] != '\0' || path_end <= kTimelineBytes) return false;
  out->timeline = TimelineId::FromBytes(key.data());
  out->path = key.substr(kTimelineBytes, path_end - kTimelineBytes);
  out->lsn = Lsn(~LoadBigEndian64(key.data() + path_end + 1));
  return true;
}

bool ParseWalKey(std::string_view key, TimelineId* timeline, Lsn* start) {
  if (key.size() != kTimelineBytes + 8) return false;
  *timeline = TimelineId::FromBytes(key.data());
  *start = Lsn(LoadBigEndian64(key.data() + kTimelineBytes));
  return true;
}

bool ParseCommitKey(std::string_view key, TimelineId* timeline, int64_t* max_time, Lsn* end) {
  if (key.size() != kTimelineBytes + 17 || key[kTimelineBytes] != 'T') return false;
  *timeline = TimelineId::FromBytes(key.data());
  *max_time = static_cast<int64_t>(LoadBigEndian64(key.data() + kTimelineBytes + 1) ^ (1ull << 63));
  *end = Lsn(LoadBigEndian64(key.data() + kTimelineBytes + 9));
  return true;
}

namespace {

class PathPrefixExtractor : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "cambium.PathPrefix.v1"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    const char* nul = static_cast<const char*>(
        memchr(key.data() + kTimelineBytes, '\0', key.size() - kTimelineBytes));
    return rocksdb::Slice(key.data(), nul - key.data() + 1);
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return key.size() > kTimelineBytes &&
           memchr(key.data() + kTimelineBytes, '\0', key.size() - kTimelineBytes) != nullptr;
  }
};

}  // namespace

std::shared_ptr<const rocksdb::SliceTransform> NewPathPrefixExtractor() {
  return std::make_shared<PathPrefixExtractor>();
}

}  // namespace cambium::pageserver::keys
