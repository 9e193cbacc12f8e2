// Fixed-width little-endian integers in byte strings: the encoding of Cambium's own
// small on-disk records (pageserver values and state, WAL archive chunks, ...).
//
// Thread-safety: pure functions.
#ifndef CAMBIUM_COMMON_BYTES_H_
#define CAMBIUM_COMMON_BYTES_H_

#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

namespace cambium {

template <typename T>
requires std::is_trivially_copyable_v<T>
inline void AppendLittleEndian(std::string* out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));  // every host Cambium builds on is little-endian
  out->append(buf, sizeof(T));
}

// REQUIRES: p points at sizeof(T) readable bytes.
template <typename T>
requires std::is_trivially_copyable_v<T>
inline T LoadLittleEndian(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// True if every byte of `s` is zero: the first one, and each equal to the next
// (one memcmp, vectorised, instead of a loop).
inline bool AllZero(std::string_view s) {
  return s.empty() || (s[0] == '\0' && std::memcmp(s.data(), s.data() + 1, s.size() - 1) == 0);
}

}  // namespace cambium

#endif  // CAMBIUM_COMMON_BYTES_H_
