// Stored versions of blocks and files, and which versions a reader may see.
//
// Value encodings (little-endian), each protected by an xxHash3 over the key and
// every value byte except the checksum itself, so a flipped bit in either is
// DATA_LOSS:
//   block: format(1)=1 | kind(1) | generation(8) | checksum(8) | body
//          kind 0: body = the 8 KiB page; kind 1 (zero): no body;
//          kind 2: body = the page as one LZ4 block (decompresses to exactly 8 KiB)
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

// How pages are stored. kLz4: compressed one by one, kept as is when LZ4 saves less
// than an eighth. Compressing the value (instead of RocksDB's SST blocks) shrinks
// what every later step handles: the batch, RocksDB's WAL and its CRC32C (the
// table-driven one in Debian's build; 27% of the pageserver's CPU while a
// checkpoint's pages arrived), the memtable, flushes and compactions (which then
// copy pages without compressing them again; issue 11).
enum class PageCodec { kNone, kLz4 };

// LZ4 as the page values and the WAL archive's chunks (wal_archive.cc) use it:
// appends the LZ4 block of `data` to *out if that saves at least an eighth
// (RocksDB's own rule for SST blocks) and returns true; otherwise leaves *out as it
// was and returns false.
bool AppendLz4IfSmaller(std::string_view data, std::string* out);
// Decompresses `block` into out[0, size): DATA_LOSS (naming `what`) unless it
// decompresses to exactly `size` bytes.
absl::Status Lz4DecompressExactly(std::string_view block, size_t size, char* out,
                                  std::string_view what);

// The header of a stored page (kind 0) or zero block; the stored value is the header
// followed by `data` (kData only).
// REQUIRES for kData: data.size() == kBlockSize.
BlockValueHeader EncodeBlockValueHeader(std::string_view key, uint64_t generation, BlockKind kind,
                                        std::string_view data);
// A block value as its two parts, which the writer hands RocksDB as they are
// (rocksdb::SliceParts): the header, and the body (the page, its LZ4 form in
// *scratch, or nothing for kZero). *scratch must outlive the result's use.
struct BlockValueParts {
  BlockValueHeader header;
  std::string_view body;
};
BlockValueParts EncodeBlockValueParts(std::string_view key, uint64_t generation, BlockKind kind,
                                      std::string_view data, PageCodec codec, std::string* scratch);
// The whole value: header and body.
std::string EncodeBlockValue(std::string_view key, uint64_t generation, BlockKind kind,
                             std::string_view data, PageCodec codec = PageCodec::kNone);
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
