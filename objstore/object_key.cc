#include "objstore/object_key.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace cambium::objstore {

absl::Status ValidateObjectKey(std::string_view key) {
  auto invalid = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("object key '", std::string(key), "' ", std::string(why)));
  };
  if (key.empty() || key.size() > 900) return invalid("must be 1-900 bytes");
  for (char c : key) {
    if (c < 0x21 || c > 0x7e) return invalid("must be printable ASCII without spaces");
  }
  for (size_t start = 0; start <= key.size();) {
    size_t end = std::min(key.find('/', start), key.size());
    std::string_view part = key.substr(start, end - start);
    if (part.empty() || part == "." || part == "..")
      return invalid("has an empty, '.' or '..' component");
    start = end + 1;
  }
  if (key.find(".tmp-") != std::string_view::npos) return invalid("must not contain '.tmp-'");
  return absl::OkStatus();
}

}  // namespace cambium::objstore
