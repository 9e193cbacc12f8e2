#include "objstore/object_store.h"

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "auth/private_file.h"
#include "common/status.h"
#include "objstore/local_store.h"
#include "objstore/s3_store.h"

namespace cambium::objstore {
namespace {

constexpr char kKeyIdVar[] = "AWS_ACCESS_KEY_ID";
constexpr char kSecretVar[] = "AWS_SECRET_ACCESS_KEY";

absl::StatusOr<S3Options> ParseS3Url(const std::string& url) {
  absl::string_view rest = url;
  absl::ConsumePrefix(&rest, "s3://");
  absl::string_view query;
  if (size_t q = rest.find('?'); q != absl::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  S3Options options;
  size_t slash = rest.find('/');
  options.bucket = std::string(rest.substr(0, slash));
  if (slash != absl::string_view::npos)
    options.prefix = std::string(absl::StripSuffix(rest.substr(slash + 1), "/"));
  std::string addressing;
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (kv.first == "endpoint") {
      options.endpoint = std::string(absl::StripSuffix(kv.second, "/"));
    } else if (kv.first == "region") {
      options.region = std::string(kv.second);
    } else if (kv.first == "addressing") {
      addressing = std::string(kv.second);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("object store URL: unknown parameter '",
                                                     std::string(kv.first),
                                                     "' (known: endpoint, region, addressing)"));
    }
  }
  if (addressing.empty()) {
    options.path_style = !options.endpoint.empty();
  } else if (addressing == "path" || addressing == "virtual") {
    options.path_style = addressing == "path";
  } else {
    return absl::InvalidArgumentError("object store URL: addressing is 'path' or 'virtual'");
  }
  if (options.endpoint.empty())
    options.endpoint = absl::StrCat("https://s3.", options.region, ".amazonaws.com");
  return options;
}

}  // namespace

absl::StatusOr<S3Credentials> LoadS3Credentials(const std::string& credentials_file) {
  S3Credentials credentials;
  if (!credentials_file.empty()) {
    CAMBIUM_ASSIGN_OR_RETURN(std::string content, auth::ReadSecretFile(credentials_file));
    for (absl::string_view line : absl::StrSplit(content, '\n', absl::SkipWhitespace())) {
      std::pair<absl::string_view, absl::string_view> kv =
          absl::StrSplit(line, absl::MaxSplits('=', 1));
      absl::string_view name = absl::StripAsciiWhitespace(kv.first);
      std::string value(absl::StripAsciiWhitespace(kv.second));
      if (name == kKeyIdVar) credentials.access_key_id = value;
      if (name == kSecretVar) credentials.secret_access_key = value;
    }
  } else {
    const char* id = std::getenv(kKeyIdVar);
    const char* secret = std::getenv(kSecretVar);
    if (id) credentials.access_key_id = id;
    if (secret) credentials.secret_access_key = secret;
  }
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat("no S3 credentials: set ", kKeyIdVar, " and ", kSecretVar,
                     credentials_file.empty() ? " in the environment or name a credentials file"
                                              : absl::StrCat(" in ", credentials_file)));
  }
  return credentials;
}

absl::StatusOr<std::unique_ptr<ObjectStore>> OpenObjectStore(std::string_view url,
                                                             const std::string& credentials_file) {
  if (url.starts_with("file://")) {
    CAMBIUM_ASSIGN_OR_RETURN(auto store, LocalObjectStore::Open(std::string(url.substr(7))));
    return std::unique_ptr<ObjectStore>(std::move(store));
  }
  if (url.starts_with("s3://")) {
    CAMBIUM_ASSIGN_OR_RETURN(S3Options options, ParseS3Url(std::string(url)));
    CAMBIUM_ASSIGN_OR_RETURN(S3Credentials credentials, LoadS3Credentials(credentials_file));
    CAMBIUM_ASSIGN_OR_RETURN(auto store,
                             S3ObjectStore::Open(std::move(options), std::move(credentials)));
    return std::unique_ptr<ObjectStore>(std::move(store));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("object store URL '", std::string(url),
                   "': expected file:///PATH or s3://BUCKET/PREFIX?endpoint=...&region=..."));
}

}  // namespace cambium::objstore
