// Checksums.
//
// Checksum64 (xxHash3, 64 bit) protects everything Cambium stores itself: page
// versions in the pageserver, WAL chunks, control files. It is verified on every
// read; a mismatch is DATA_LOSS and the bytes are never served.
//
// Crc32c is the CRC-32C (Castagnoli) that Postgres uses for WAL records and
// pg_control (pg_crc32c: init 0xFFFFFFFF, final xor 0xFFFFFFFF). It uses the SSE4.2
// crc32 instruction when the CPU has it, else a table.
//
// Thread-safety: stateless functions.
#ifndef CAMBIUM_COMMON_CHECKSUM_H_
#define CAMBIUM_COMMON_CHECKSUM_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string_view>

namespace cambium {

uint64_t Checksum64(const void* data, size_t size);
inline uint64_t Checksum64(std::string_view bytes) {
  return Checksum64(bytes.data(), bytes.size());
}

// The checksum of the concatenation of `parts`, without concatenating them.
uint64_t Checksum64Parts(std::initializer_list<std::string_view> parts);

// Incremental CRC-32C: start with kCrc32cInit, Extend over each piece, then
// Crc32cFinish. Crc32c(data) does all three.
inline constexpr uint32_t kCrc32cInit = 0xFFFFFFFFu;
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t size);
inline uint32_t Crc32cFinish(uint32_t crc) { return crc ^ 0xFFFFFFFFu; }
inline uint32_t Crc32c(const void* data, size_t size) {
  return Crc32cFinish(Crc32cExtend(kCrc32cInit, data, size));
}

}  // namespace cambium

#endif  // CAMBIUM_COMMON_CHECKSUM_H_
