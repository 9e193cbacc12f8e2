#include "pageserver/versions.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "common/bytes.h"
#include "common/checksum.h"
#include "lz4.h"

namespace cambium::pageserver {
namespace {

constexpr uint8_t kFormat = 1;
constexpr size_t kChecksumOffset = 10;
constexpr size_t kFileBodySize = 20;  // size, mode, incarnation
// The stored kind of a page compressed with LZ4 (decoded as BlockKind::kData).
constexpr uint8_t kStoredLz4Page = 2;

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

BlockValueHeader SealedHeader(std::string_view key, uint64_t generation, uint8_t stored_kind,
                              std::string_view body) {
  BlockValueHeader header;
  header[0] = static_cast<char>(kFormat);
  header[1] = static_cast<char>(stored_kind);
  std::memcpy(header.data() + 2, &generation, 8);
  // The checksum covers the key and every value byte but itself: header[0, 10), body.
  const std::string_view sealed(header.data(), kChecksumOffset);
  const uint64_t checksum = Checksum64Parts({key, sealed, body});
  std::memcpy(header.data() + kChecksumOffset, &checksum, 8);
  return header;
}

}  // namespace

bool AppendLz4IfSmaller(std::string_view data, std::string* out) {
  const size_t at = out->size();
  const int limit = static_cast<int>(data.size() - data.size() / 8);
  out->resize(at + LZ4_COMPRESSBOUND(data.size()));
  const int n = data.empty() ? 0
                             : LZ4_compress_default(data.data(), out->data() + at,
                                                    static_cast<int>(data.size()), limit);
  out->resize(n > 0 ? at + static_cast<size_t>(n) : at);
  return n > 0;
}

absl::Status Lz4DecompressExactly(std::string_view block, size_t size, char* out,
                                  std::string_view what) {
  const int n = LZ4_decompress_safe(block.data(), out, static_cast<int>(block.size()),
                                    static_cast<int>(size));
  if (n != static_cast<int>(size)) {
    return absl::DataLossError(
        absl::StrFormat("%s does not decompress to its %u bytes (%d)", what, size, n));
  }
  return absl::OkStatus();
}

BlockValueHeader EncodeBlockValueHeader(std::string_view key, uint64_t generation, BlockKind kind,
                                        std::string_view data) {
  if (kind != BlockKind::kData) data = {};
  return SealedHeader(key, generation, static_cast<uint8_t>(kind), data);
}

BlockValueParts EncodeBlockValueParts(std::string_view key, uint64_t generation, BlockKind kind,
                                      std::string_view data, PageCodec codec,
                                      std::string* scratch) {
  if (kind == BlockKind::kData && codec == PageCodec::kLz4) {
    scratch->clear();
    if (AppendLz4IfSmaller(data, scratch)) {
      const std::string_view body(*scratch);
      return {SealedHeader(key, generation, kStoredLz4Page, body), body};
    }
  }
  if (kind != BlockKind::kData) data = {};
  return {EncodeBlockValueHeader(key, generation, kind, data), data};
}

std::string EncodeBlockValue(std::string_view key, uint64_t generation, BlockKind kind,
                             std::string_view data, PageCodec codec) {
  std::string scratch;
  const BlockValueParts parts = EncodeBlockValueParts(key, generation, kind, data, codec, &scratch);
  std::string value(parts.header.data(), parts.header.size());
  value.append(parts.body.data(), parts.body.size());
  return value;
}

absl::Status DecodeBlockValue(std::string_view key, std::string_view value, BlockVersion* out) {
  absl::Status s = CheckValue(key, value, kValueHeaderSize, "block");
  if (!s.ok()) return s;
  const uint8_t stored_kind = static_cast<uint8_t>(value[1]);
  out->generation = StoredGeneration(value);
  const std::string_view body = value.substr(kValueHeaderSize);
  if (stored_kind == static_cast<uint8_t>(BlockKind::kData)) {
    out->kind = BlockKind::kData;
    if (body.size() != kBlockSize) {
      return absl::DataLossError(absl::StrFormat("stored block is %u bytes", value.size()));
    }
    out->data.assign(body.data(), kBlockSize);
  } else if (stored_kind == kStoredLz4Page) {
    out->kind = BlockKind::kData;
    out->data.resize(kBlockSize);
    absl::Status s =
        Lz4DecompressExactly(body, kBlockSize, out->data.data(), "stored compressed block");
    if (!s.ok()) return s;
  } else if (stored_kind == static_cast<uint8_t>(BlockKind::kZero)) {
    out->kind = BlockKind::kZero;
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
