// Sealed objects: the envelope of everything Cambium puts in an object store, so a
// reader can tell a whole object written by a known generation from a damaged,
// truncated or foreign one, whatever the store did on the way (issue "a flipped byte
// in an uploaded layer is detected").
//
//   payload | footer (32 bytes): "CMBSEAL1" | generation u64 | payload length u64 |
//                                 checksum u64 (xxHash3 over payload and the fields)
// all little endian. The footer is at the end so a writer streams the payload first.
//
// Thread-safety: pure functions.
#ifndef CAMBIUM_OBJSTORE_SEALED_OBJECT_H_
#define CAMBIUM_OBJSTORE_SEALED_OBJECT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace cambium::objstore {

inline constexpr size_t kSealFooterSize = 32;

// `payload` with its footer appended.
std::string Seal(std::string_view payload, uint64_t generation);

struct Unsealed {
  std::string_view payload;  // points into the sealed bytes
  uint64_t generation = 0;
};

// The payload and generation of `sealed`; DATA_LOSS naming `what` when the footer is
// missing, the length does not match or the checksum fails.
absl::StatusOr<Unsealed> Unseal(std::string_view sealed, std::string_view what);

}  // namespace cambium::objstore

#endif  // CAMBIUM_OBJSTORE_SEALED_OBJECT_H_
