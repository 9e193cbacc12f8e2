// Object keys: what every ObjectStore accepts, so that a key that works on a local
// directory works on S3 and back (an object written by one store can be copied to
// the other unchanged).
//
// Thread-safety: pure functions.
#ifndef CAMBIUM_OBJSTORE_OBJECT_KEY_H_
#define CAMBIUM_OBJSTORE_OBJECT_KEY_H_

#include <string_view>

#include "absl/status/status.h"

namespace cambium::objstore {

// INVALID_ARGUMENT unless `key` is 1-900 bytes of printable ASCII, '/'-separated
// components none of which is empty, "." or "..", and holds no ".tmp-" (the local
// store's temporary files).
absl::Status ValidateObjectKey(std::string_view key);

}  // namespace cambium::objstore

#endif  // CAMBIUM_OBJSTORE_OBJECT_KEY_H_
