#include "pageserver/versions.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "common/bytes.h"
#include "common/checksum.h"

namespace cambium::pageserver {
namespace {

constexpr uint8_t kFormat = 1;
constexpr size_t kChecksumOffset = 10;
constexpr size_t kFileBodySize = 20;  // size, mode, incarnation

uint64_t ValueChecksum(std::string_view key, std::string_view value) {
  return Checksum64Parts(
      {key, value.substr(0, kChecksumOffset), value.substr(kChecksumOffset + 8)});
}

void SealValue(std::string_view key, std::string* value) {
  const uint64_t checksum = ValueChecksum(key, *value);
  std::memcpy(value->data() + kChecksumOffset, &checksum, 8);
}

absl::Status CheckValue(std::string_view key, std::string_view value, size_t min_size,
                        const char* what) {
  if (value.size() < min_size || static_cast<uint8_t>(value[0]) != kFormat) {
    return absl::DataLossError(
        absl::StrFormat("stored %s version is malformed (%u bytes, format %u)", what, value.size(),
                        value.empty() ? 0 : static_cast<uint8_t>(value[0])));
  }
  if (LoadLittleEndian<uint64_t>(value.data() + kChecksumOffset) != ValueChecksum(key, value)) {
    return absl::DataLossError(
        absl::StrFormat("stored %s version failed its checksum: the page store is corrupt", what));
  }
  return absl::OkStatus();
}

}  // namespace

BlockValueHeader EncodeBlockValueHeader(std::string_view key, uint64_t generation, BlockKind kind,
                                        std::string_view data) {
  if (kind != BlockKind::kData) data = {};
  BlockValueHeader header;
  header[0] = static_cast<char>(kFormat);
  header[1] = static_cast<char>(kind);
  std::memcpy(header.data() + 2, &generation, 8);
  // The checksum covers the key and every value byte but itself: header[0, 10), data.
  const std::string_view sealed(header.data(), kChecksumOffset);
  const uint64_t checksum = Checksum64Parts({key, sealed, data});
  std::memcpy(header.data() + kChecksumOffset, &checksum, 8);
  return header;
}

std::string EncodeBlockValue(std::string_view key, uint64_t generation, BlockKind kind,
                             std::string_view data) {
  const BlockValueHeader header = EncodeBlockValueHeader(key, generation, kind, data);
  std::string value(header.data(), header.size());
  if (kind == BlockKind::kData) value.append(data.data(), data.size());
  return value;
}

absl::Status DecodeBlockValue(std::string_view key, std::string_view value, BlockVersion* out) {
  absl::Status s = CheckValue(key, value, kValueHeaderSize, "block");
  if (!s.ok()) return s;
  out->kind = static_cast<BlockKind>(value[1]);
  out->generation = StoredGeneration(value);
  if (out->kind == BlockKind::kData) {
    if (value.size() != kValueHeaderSize + kBlockSize) {
      return absl::DataLossError(absl::StrFormat("stored block is %u bytes", value.size()));
    }
    out->data.assign(value.data() + kValueHeaderSize, kBlockSize);
  } else if (out->kind == BlockKind::kZero) {
    out->data.clear();
  } else {
    return absl::DataLossError("stored block version has an unknown kind");
  }
  return absl::OkStatus();
}

std::string EncodeFileValue(std::string_view key, uint64_t generation, const FileState& state) {
  std::string value;
  value.reserve(kValueHeaderSize + kFileBodySize);
  AppendLittleEndian<uint8_t>(&value, kFormat);
  AppendLittleEndian<uint8_t>(
      &value,
      static_cast<uint8_t>((state.exists ? 1 : 0) | (state.kind == FileKind::kDirectory ? 2 : 0)));
  AppendLittleEndian<uint64_t>(&value, generation);
  AppendLittleEndian<uint64_t>(&value, 0);
  AppendLittleEndian<uint64_t>(&value, state.size);
  AppendLittleEndian<uint32_t>(&value, state.mode);
  AppendLittleEndian<uint64_t>(&value, state.incarnation.value());
  SealValue(key, &value);
  return value;
}

absl::Status DecodeFileValue(std::string_view key, std::string_view value, FileVersion* out) {
  absl::Status s = CheckValue(key, value, kValueHeaderSize + kFileBodySize, "file");
  if (!s.ok()) return s;
  const uint8_t flags = static_cast<uint8_t>(value[1]);
  out->generation = StoredGeneration(value);
  out->state.exists = flags & 1;
  out->state.kind = (flags & 2) ? FileKind::kDirectory : FileKind::kRegular;
  out->state.size = LoadLittleEndian<uint64_t>(value.data() + kValueHeaderSize);
  out->state.mode = LoadLittleEndian<uint32_t>(value.data() + kValueHeaderSize + 8);
  out->state.incarnation = Lsn(LoadLittleEndian<uint64_t>(value.data() + kValueHeaderSize + 12));
  return absl::OkStatus();
}

Visibility::Visibility(std::vector<std::pair<uint64_t, Lsn>> attaches) {
  std::sort(attaches.begin(), attaches.end());
  for (const auto& [gen, start] : attaches) generations_.push_back(gen);
  suffix_min_start_.resize(attaches.size());
  Lsn min = Lsn::Max();
  for (size_t i = attaches.size(); i-- > 0;) {
    min = std::min(min, attaches[i].second);
    suffix_min_start_[i] = min;
  }
}

bool Visibility::Visible(Lsn tag, uint64_t generation) const {
  // Attaches by later generations abandoned this generation's versions above their
  // start LSN; the lowest such start is the bound.
  auto it = std::upper_bound(generations_.begin(), generations_.end(), generation);
  if (it == generations_.end()) return true;
  return tag <= suffix_min_start_[it - generations_.begin()];
}

}  // namespace cambium::pageserver
