// Stored versions of blocks and files, and which versions a reader may see.
//
// Value encodings (little-endian), each protected by an xxHash3 over the key and
// every value byte except the checksum itself, so a flipped bit in either is
// DATA_LOSS:
//   block: format(1)=1 | kind(1) | generation(8) | checksum(8) | page(8192, data only)
//   file:  format(1)=1 | flags(1) | generation(8) | checksum(8) | size(8) | mode(4) |
//          incarnation_lsn(8)
//
// Visibility implements the abandoned-tail rule (docs/pageserver.md, rule 6).
//
// Thread-safety: value types and pure functions; Visibility is immutable once built.
#ifndef CAMBIUM_PAGESERVER_VERSIONS_H_
#define CAMBIUM_PAGESERVER_VERSIONS_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/bytes.h"
#include "common/lsn.h"

namespace cambium::pageserver {

enum class BlockKind : uint8_t {
  kData = 0,  // an 8 KiB page
  kZero = 1,  // a tombstone: reads as zeros (written by truncation)
};

struct BlockVersion {
  Lsn lsn;
  uint64_t generation = 0;
  BlockKind kind = BlockKind::kData;
  std::string data;  // kBlockSize bytes for kData, empty for kZero
};

enum class FileKind : uint8_t { kRegular = 0, kDirectory = 1 };

// The state of a path at some LSN.
struct FileState {
  bool exists = false;
  FileKind kind = FileKind::kRegular;
  uint64_t size = 0;
  uint32_t mode = 0600;
  // The tag at which this incarnation of the path was created; block versions older
  // than this are not part of the file.
  Lsn incarnation;

  uint64_t nblocks() const { return (size + kBlockSize - 1) / kBlockSize; }
  bool operator==(const FileState&) const = default;
};

struct FileVersion {
  Lsn lsn;
  uint64_t generation = 0;
  FileState state;
};

// The header every stored value starts with: format, kind/flags, generation, checksum.
inline constexpr size_t kValueHeaderSize = 18;
using BlockValueHeader = std::array<char, kValueHeaderSize>;

// The header of a block value; the stored value is the header followed by `data`
// (kData only). The writer hands RocksDB the two parts (rocksdb::SliceParts), so the
// page is copied once, into the batch.
// REQUIRES for kData: data.size() == kBlockSize.
BlockValueHeader EncodeBlockValueHeader(std::string_view key, uint64_t generation, BlockKind kind,
                                        std::string_view data);
// The whole value: header and data.
std::string EncodeBlockValue(std::string_view key, uint64_t generation, BlockKind kind,
                             std::string_view data);
absl::Status DecodeBlockValue(std::string_view key, std::string_view value, BlockVersion* out);

std::string EncodeFileValue(std::string_view key, uint64_t generation, const FileState& state);
absl::Status DecodeFileValue(std::string_view key, std::string_view value, FileVersion* out);

// The generation of a stored block or file value, read without verifying the value
// (GC reads it for every key it scans); 0 if the value is too short to hold one.
inline uint64_t StoredGeneration(std::string_view value) {
  constexpr size_t kGenerationOffset = 2;
  if (value.size() < kGenerationOffset + 8) return 0;
  return LoadLittleEndian<uint64_t>(value.data() + kGenerationOffset);
}

// Which versions of a timeline are visible: attaching generation g at start LSN X
// abandons every version of a generation < g tagged above X.
class Visibility {
 public:
  Visibility() = default;
  // attaches: (generation, start_lsn) pairs in any order.
  explicit Visibility(std::vector<std::pair<uint64_t, Lsn>> attaches);

  bool Visible(Lsn tag, uint64_t generation) const;

 private:
  std::vector<uint64_t> generations_;  // ascending
  std::vector<Lsn> suffix_min_start_;  // min start LSN of attaches at index >= i
};

}  // namespace cambium::pageserver

#endif  // CAMBIUM_PAGESERVER_VERSIONS_H_
