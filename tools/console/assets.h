// The console's static files (tools/console/static/), compiled into the binary so
// that `cambium console` needs no files and no network at run time. The C++ source
// is generated at build time by embed_assets.cmake.
//
// Thread-safety: immutable after first use.
#ifndef CAMBIUM_TOOLS_CONSOLE_ASSETS_H_
#define CAMBIUM_TOOLS_CONSOLE_ASSETS_H_

#include <string_view>
#include <vector>

namespace cambium::console {

struct Asset {
  std::string_view path;          // "/index.html"
  std::string_view content_type;  // "text/html; charset=utf-8"
  std::string_view body;
};

// Every embedded file, in the order tools/console/CMakeLists.txt lists them.
const std::vector<Asset>& Assets();

}  // namespace cambium::console

#endif  // CAMBIUM_TOOLS_CONSOLE_ASSETS_H_
