#include "placement/etcd_client.h"

#include <curl/curl.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace cambium::placement {
namespace {

using json = nlohmann::json;

std::string B64(const std::string& s) { return absl::Base64Escape(s); }

// The smallest key above every key starting with `prefix` (etcd's range_end).
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    if (static_cast<unsigned char>(prefix.back()) != 0xff) {
      prefix.back() = static_cast<char>(prefix.back() + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');  // every key
}

// etcd's JSON encodes int64 as strings.
int64_t Int64Of(const json& j, const char* field) {
  if (!j.contains(field)) return 0;
  const json& v = j[field];
  if (v.is_number_integer()) return v.get<int64_t>();
  int64_t out = 0;
  if (v.is_string() && absl::SimpleAtoi(v.get<std::string>(), &out)) return out;
  return 0;
}

absl::StatusCode CodeOf(int grpc_code) {
  switch (grpc_code) {
    case 3:
      return absl::StatusCode::kInvalidArgument;
    case 7:
      return absl::StatusCode::kPermissionDenied;
    case 9:
      return absl::StatusCode::kFailedPrecondition;
    case 14:
      return absl::StatusCode::kUnavailable;
    case 16:
      return absl::StatusCode::kUnauthenticated;
    default:
      return absl::StatusCode::kInternal;
  }
}

size_t AppendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One POST of JSON to etcd's gateway. libcurl, not cpp-httplib: the gateway answers
// errors chunked with a trailer, which cpp-httplib 0.11 does not read.
absl::StatusOr<json> Post(const std::string& url, const std::string& token,
                          const std::string& path, const json& body) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return absl::ResourceExhaustedError("curl_easy_init failed");
  const std::string target = url + path;
  const std::string payload = body.dump();
  std::string response;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  if (!token.empty()) headers = curl_slist_append(headers, ("Authorization: " + token).c_str());
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, target.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response);
  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrFormat("etcd at %s does not answer (%s)", url, curl_easy_strerror(rc)));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  json j = json::parse(response, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    return absl::InternalError(
        absl::StrFormat("etcd at %s answered %s with HTTP %d and no JSON", url, path, status));
  }
  if (j.contains("error") || status != 200) {
    return absl::Status(CodeOf(j.value("code", 13)),
                        absl::StrFormat("etcd at %s: %s: %s", url, path,
                                        j.value("message", j.value("error", "HTTP error"))));
  }
  return j;
}

}  // namespace

EtcdClient::EtcdClient(std::string url) : url_(std::move(url)) {}
EtcdClient::~EtcdClient() = default;

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Connect(const std::string& host, int port,
                                                                const std::string& user,
                                                                const std::string& password) {
  std::unique_ptr<EtcdClient> c(new EtcdClient(absl::StrFormat("http://%s:%d", host, port)));
  absl::StatusOr<json> auth = Post(c->url_, "", "/v3/auth/authenticate",
                                   {{"name", user}, {"password", password}});
  if (!auth.ok()) return auth.status();
  c->token_ = auth->value("token", "");
  if (c->token_.empty()) {
    return absl::UnauthenticatedError(absl::StrFormat("etcd at %s gave no token", c->url_));
  }
  return c;
}

absl::Status EtcdClient::EnableAuth(const std::string& host, int port,
                                    const std::string& password) {
  const std::string url = absl::StrFormat("http://%s:%d", host, port);
  // Already on: an anonymous read is refused.
  absl::StatusOr<json> probe = Post(url, "", "/v3/kv/range", {{"key", B64("/")}});
  if (!probe.ok()) {
    if (absl::IsUnavailable(probe.status())) return probe.status();
    return absl::OkStatus();
  }
  absl::StatusOr<json> added =
      Post(url, "", "/v3/auth/user/add", {{"name", "root"}, {"password", password}});
  if (!added.ok() && added.status().message().find("already exists") == std::string::npos) {
    return added.status();
  }
  if (absl::StatusOr<json> granted =
          Post(url, "", "/v3/auth/user/grant", {{"user", "root"}, {"role", "root"}});
      !granted.ok()) {
    return granted.status();
  }
  return Post(url, "", "/v3/auth/enable", json::object()).status();
}

absl::StatusOr<json> EtcdClient::Call(const std::string& path, const json& body) {
  return Post(url_, token_, path, body);
}

absl::StatusOr<std::optional<EtcdValue>> EtcdClient::Get(const std::string& key) {
  absl::StatusOr<json> r = Call("/v3/kv/range", {{"key", B64(key)}});
  if (!r.ok()) return r.status();
  if (!r->contains("kvs") || (*r)["kvs"].empty()) return std::nullopt;
  const json& kv = (*r)["kvs"][0];
  EtcdValue v{.mod_revision = Int64Of(kv, "mod_revision")};
  if (!absl::Base64Unescape(kv.value("value", ""), &v.value)) {
    return absl::DataLossError(absl::StrFormat("etcd at %s: key %s has a malformed value", url_, key));
  }
  return v;
}

absl::StatusOr<std::vector<std::pair<std::string, EtcdValue>>> EtcdClient::List(
    const std::string& prefix) {
  absl::StatusOr<json> r =
      Call("/v3/kv/range", {{"key", B64(prefix)}, {"range_end", B64(PrefixEnd(prefix))}});
  if (!r.ok()) return r.status();
  std::vector<std::pair<std::string, EtcdValue>> out;
  if (!r->contains("kvs")) return out;
  for (const json& kv : (*r)["kvs"]) {
    std::string key;
    EtcdValue v{.mod_revision = Int64Of(kv, "mod_revision")};
    if (!absl::Base64Unescape(kv.value("key", ""), &key) ||
        !absl::Base64Unescape(kv.value("value", ""), &v.value)) {
      return absl::DataLossError(
          absl::StrFormat("etcd at %s: a key under %s is malformed", url_, prefix));
    }
    out.emplace_back(std::move(key), std::move(v));
  }
  return out;
}

absl::StatusOr<bool> EtcdClient::CompareAndPut(const std::string& key, const std::string& value,
                                               int64_t expected) {
  const json body = {
      {"compare",
       {{{"key", B64(key)},
         {"result", "EQUAL"},
         {"target", "MOD"},
         {"mod_revision", std::to_string(expected)}}}},
      {"success", {{{"request_put", {{"key", B64(key)}, {"value", B64(value)}}}}}}};
  absl::StatusOr<json> r = Call("/v3/kv/txn", body);
  if (!r.ok()) return r.status();
  return r->value("succeeded", false);
}

}  // namespace cambium::placement
