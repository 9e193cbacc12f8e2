#include "pageserver/versions.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "common/bytes.h"
#include "common/checksum.h"

namespace cambium::pageserver {
namespace {

constexpr uint8_t kFormat = 1;
constexpr size_t kHeaderSize = 18;  // format, kind/flags, generation, checksum
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

std::string EncodeBlockValue(std::string_view key, uint64_t generation, BlockKind kind,
                             std::string_view data) {
  std::string value;
  value.reserve(kHeaderSize + data.size());
  AppendLittleEndian<uint8_t>(&value, kFormat);
  AppendLittleEndian<uint8_t>(&value, static_cast<uint8_t>(kind));
  AppendLittleEndian<uint64_t>(&value, generation);
  AppendLittleEndian<uint64_t>(&value, 0);  // checksum, sealed below
  if (kind == BlockKind::kData) value.append(data.data(), data.size());
  SealValue(key, &value);
  return value;
}

absl::Status DecodeBlockValue(std::string_view key, std::string_view value, BlockVersion* out) {
  absl::Status s = CheckValue(key, value, kHeaderSize, "block");
  if (!s.ok()) return s;
  out->kind = static_cast<BlockKind>(value[1]);
  out->generation = LoadLittleEndian<uint64_t>(value.data() + 2);
  if (out->kind == BlockKind::kData) {
    if (value.size() != kHeaderSize + kBlockSize) {
      return absl::DataLossError(absl::StrFormat("stored block is %u bytes", value.size()));
    }
    out->data.assign(value.data() + kHeaderSize, kBlockSize);
  } else if (out->kind == BlockKind::kZero) {
    out->data.clear();
  } else {
    return absl::DataLossError("stored block version has an unknown kind");
  }
  return absl::OkStatus();
}

std::string EncodeFileValue(std::string_view key, uint64_t generation, const FileState& state) {
  std::string value;
  value.reserve(kHeaderSize + kFileBodySize);
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
  absl::Status s = CheckValue(key, value, kHeaderSize + kFileBodySize, "file");
  if (!s.ok()) return s;
  const uint8_t flags = static_cast<uint8_t>(value[1]);
  out->generation = LoadLittleEndian<uint64_t>(value.data() + 2);
  out->state.exists = flags & 1;
  out->state.kind = (flags & 2) ? FileKind::kDirectory : FileKind::kRegular;
  out->state.size = LoadLittleEndian<uint64_t>(value.data() + kHeaderSize);
  out->state.mode = LoadLittleEndian<uint32_t>(value.data() + kHeaderSize + 8);
  out->state.incarnation = Lsn(LoadLittleEndian<uint64_t>(value.data() + kHeaderSize + 12));
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
