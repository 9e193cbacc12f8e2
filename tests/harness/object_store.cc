#include "tests/harness/object_store.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/subprocess.h"

namespace cambium::testing {

std::string ObjectStoreScript() {
  return std::string(CAMBIUM_SOURCE_DIR) + "/tools/object-store.sh";
}

absl::StatusOr<ObjectStoreInstance> StartObjectStore(const std::string& dir,
                                                     const std::string& bucket) {
  SubprocessOptions start{
      .argv = {ObjectStoreScript(), "start"},
      .env = {{"CAMBIUM_OBJECT_STORE_DIR", dir}, {"CAMBIUM_OBJECT_STORE_BUCKET", bucket}}};
  absl::StatusOr<CommandResult> result = RunCommand(start, absl::Minutes(3));
  if (!result.ok()) return result.status();
  ObjectStoreInstance out;
  if (result->exit_code == 77) {
    out.why = result->err;
    return out;
  }
  if (result->exit_code != 0) {
    return absl::InternalError(absl::StrCat("tools/object-store.sh start: ", result->err));
  }
  // NAME=value lines; values that need it are single-quoted.
  for (absl::string_view line : absl::StrSplit(result->out, '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    std::string& value = kv.second;
    if (value.size() >= 2 && value.front() == '\'') value = value.substr(1, value.size() - 2);
    if (kv.first == "CAMBIUM_OBJECT_STORE") out.url = value;
    if (kv.first == "AWS_ACCESS_KEY_ID") out.access_key_id = value;
    if (kv.first == "AWS_SECRET_ACCESS_KEY") out.secret_access_key = value;
    if (kv.first == "AWS_ENDPOINT_URL") out.endpoint = value;
  }
  out.available = true;
  return out;
}

void StopObjectStore(const std::string& dir) {
  (void)RunCommand({.argv = {ObjectStoreScript(), "stop", "--purge"},
                    .env = {{"CAMBIUM_OBJECT_STORE_DIR", dir}}},
                   absl::Minutes(1));
}

}  // namespace cambium::testing
