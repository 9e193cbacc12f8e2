#include "objstore/s3_store.h"

#include <curl/curl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include <map>
#include <random>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "auth/token.h"
#include "common/status.h"
#include "objstore/object_key.h"
#include "objstore/sigv4.h"

namespace cambium::objstore {

using Query = std::vector<std::pair<std::string, std::string>>;

struct S3ObjectStore::Request {
  std::string method = "GET";
  std::string encoded_path;
  Query query;
  std::string_view body;
  std::vector<std::pair<std::string, std::string>> headers;  // signed too
  std::string what;                                          // for messages: "put KEY"
};

struct S3ObjectStore::Response {
  long code = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower case
};

namespace {

void InitLibrariesOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    xmlInitParser();
  });
}

struct XmlDocDeleter {
  void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};
using XmlDocPtr = std::unique_ptr<xmlDoc, XmlDocDeleter>;

XmlDocPtr ParseXml(std::string_view body) {
  if (body.empty()) return nullptr;
  return XmlDocPtr(xmlReadMemory(
      body.data(), static_cast<int>(body.size()), "s3.xml", nullptr,
      XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
}

bool NameIs(const xmlNode* node, std::string_view name) {
  return node->type == XML_ELEMENT_NODE && reinterpret_cast<const char*>(node->name) == name;
}

std::vector<xmlNode*> Children(xmlNode* parent, std::string_view name) {
  std::vector<xmlNode*> out;
  for (xmlNode* n = parent ? parent->children : nullptr; n; n = n->next) {
    if (NameIs(n, name)) out.push_back(n);
  }
  return out;
}

std::string Text(xmlNode* node) {
  if (!node) return "";
  xmlChar* content = xmlNodeGetContent(node);
  std::string out = content ? reinterpret_cast<const char*>(content) : "";
  xmlFree(content);
  return out;
}

std::string ChildText(xmlNode* parent, std::string_view name) {
  auto found = Children(parent, name);
  return found.empty() ? "" : Text(found.front());
}

size_t AppendBody(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

size_t AppendHeader(char* data, size_t size, size_t count, void* out) {
  std::string_view line(data, size * count);
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::string value(line.substr(colon + 1));
    (*static_cast<std::map<std::string, std::string>*>(out))[absl::AsciiStrToLower(name)] =
        std::string(absl::StripAsciiWhitespace(value));
  }
  return size * count;
}

std::string AmzDate(absl::Time now) {
  return absl::FormatTime("%Y%m%dT%H%M%SZ", now, absl::UTCTimeZone());
}

bool RetryableResponse(const S3ObjectStore::Response& response) {
  if (response.code >= 500 || response.code == 429) return true;
  return absl::StrContains(response.body, "<Code>SlowDown</Code>") ||
         absl::StrContains(response.body, "<Code>RequestTimeout</Code>");
}

}  // namespace

S3ObjectStore::S3ObjectStore(S3Options options, S3Credentials credentials)
    : options_(std::move(options)), credentials_(std::move(credentials)) {
  InitLibrariesOnce();
  bool https = options_.endpoint.starts_with("https://");
  std::string host_port = options_.endpoint.substr(options_.endpoint.find("//") + 2);
  std::string authority =
      options_.path_style ? host_port : absl::StrCat(options_.bucket, ".", host_port);
  base_url_ = absl::StrCat(https ? "https://" : "http://", authority);
  // The Host header as curl would send it: without the scheme's default port.
  host_ = authority;
  if (absl::EndsWith(host_, https ? ":443" : ":80")) host_.resize(host_.rfind(':'));
}

S3ObjectStore::~S3ObjectStore() {
  std::lock_guard lock(mu_);
  for (void* handle : idle_handles_) curl_easy_cleanup(static_cast<CURL*>(handle));
}

absl::StatusOr<std::unique_ptr<S3ObjectStore>> S3ObjectStore::Open(S3Options options,
                                                                   S3Credentials credentials,
                                                                   bool create_bucket) {
  if (!absl::StartsWith(options.endpoint, "http://") &&
      !absl::StartsWith(options.endpoint, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("s3 endpoint '", options.endpoint, "' must start with http:// or https://"));
  }
  if (options.bucket.size() < 3) {
    return absl::InvalidArgumentError("s3 bucket names have 3 or more characters");
  }
  if (!options.prefix.empty() && options.prefix.back() != '/') options.prefix.push_back('/');
  std::unique_ptr<S3ObjectStore> store(
      new S3ObjectStore(std::move(options), std::move(credentials)));
  std::string bucket_path = store->BucketPath();
  if (create_bucket) {
    Request create{"PUT", bucket_path, {},
                   "",    {},          absl::StrCat("create bucket ", store->options_.bucket)};
    absl::Status status = store->Send(create).status();
    if (!status.ok() && !absl::StrContains(status.message(), "BucketAlreadyOwnedByYou"))
      return status;
  }
  Request probe{"GET",
                bucket_path,
                {{"list-type", "2"}, {"max-keys", "1"}, {"prefix", store->options_.prefix}},
                "",
                {},
                "check the bucket"};
  CAMBIUM_RETURN_IF_ERROR(store->Send(probe).status());
  return store;
}

std::string S3ObjectStore::BucketPath() const {
  // StrCat, not "/" + string: GCC 12 at -O3 reports a false -Werror=restrict there.
  return options_.path_style ? absl::StrCat("/", UriEncode(options_.bucket, false))
                             : std::string("/");
}

std::string S3ObjectStore::Describe() const {
  return absl::StrCat("s3://", options_.bucket, "/", options_.prefix, " at ", options_.endpoint);
}

std::string S3ObjectStore::ObjectPath(std::string_view key) const {
  std::string path = options_.path_style ? BucketPath() + "/" : "/";
  return path + UriEncode(options_.prefix + std::string(key), /*keep_slash=*/true);
}

void* S3ObjectStore::TakeHandle() {
  {
    std::lock_guard lock(mu_);
    if (!idle_handles_.empty()) {
      void* handle = idle_handles_.back();
      idle_handles_.pop_back();
      return handle;
    }
  }
  return curl_easy_init();
}

void S3ObjectStore::ReturnHandle(void* handle) {
  std::lock_guard lock(mu_);
  idle_handles_.push_back(handle);
}

// Maps an S3 error answer to a status naming the store and the operation.
static absl::Status ErrorFromResponse(const S3ObjectStore::Response& response,
                                      const std::string& what, const std::string& store) {
  XmlDocPtr doc = ParseXml(response.body);
  xmlNode* root = doc ? xmlDocGetRootElement(doc.get()) : nullptr;
  std::string code = ChildText(root, "Code");
  std::string message = ChildText(root, "Message");
  std::string text =
      absl::StrCat(what, " on ", store, ": HTTP ", response.code, code.empty() ? "" : " ", code,
                   message.empty() ? "" : ": ", message);
  if (code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || response.code == 401) {
    return absl::UnauthenticatedError(
        absl::StrCat(text, " (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"));
  }
  if (response.code == 403) return absl::PermissionDeniedError(text);
  if (code == "NoSuchBucket")
    return absl::NotFoundError(absl::StrCat(text, " (create the bucket first)"));
  if (response.code == 404) return absl::NotFoundError(text);
  if (code == "RequestTimeTooSkewed")
    return absl::FailedPreconditionError(absl::StrCat(text, " (fix the clock)"));
  if (response.code >= 500 || response.code == 429) return absl::UnavailableError(text);
  return absl::FailedPreconditionError(text);
}

absl::StatusOr<S3ObjectStore::Response> S3ObjectStore::SendOnce(const Request& request) {
  CURL* curl = static_cast<CURL*>(TakeHandle());
  if (!curl) return absl::ResourceExhaustedError("curl_easy_init failed");
  curl_easy_reset(curl);
  std::string amz_date = AmzDate(absl::Now());
  std::string payload_hash = auth::Sha256Hex(request.body);
  SigV4Request signing{request.method, request.encoded_path, request.query, request.headers,
                       payload_hash};
  signing.headers.emplace_back("host", host_);
  signing.headers.emplace_back("x-amz-date", amz_date);
  signing.headers.emplace_back("x-amz-content-sha256", payload_hash);
  std::string authorization = SignV4(signing, credentials_, options_.region, amz_date);

  curl_slist* headers = nullptr;
  for (const auto& [name, value] : signing.headers) {
    headers = curl_slist_append(headers, absl::StrCat(name, ": ", value).c_str());
  }
  headers = curl_slist_append(headers, absl::StrCat("Authorization: ", authorization).c_str());
  headers = curl_slist_append(headers, "Expect:");
  headers = curl_slist_append(headers, "Content-Type: application/octet-stream");

  std::string url = base_url_ + request.encoded_path;
  if (!request.query.empty()) absl::StrAppend(&url, "?", CanonicalQuery(request.query));
  Response response;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options_.connect_timeout)));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
                   static_cast<long>(absl::ToInt64Seconds(options_.stall_timeout)));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, AppendHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response.headers);
  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT" || request.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    // Never NULL: curl would then read the body from stdin.
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.empty() ? "" : request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  } else if (request.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    curl_easy_cleanup(curl);  // the connection may be half used
    return absl::UnavailableError(
        absl::StrCat(request.what, " on ", Describe(), ": ", curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.code);
  ReturnHandle(curl);
  return response;
}

absl::StatusOr<S3ObjectStore::Response> S3ObjectStore::Send(const Request& request) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  absl::Duration backoff = options_.initial_backoff;
  absl::Status last;
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<Response> response = SendOnce(request);
    bool retry;
    if (!response.ok()) {
      last = response.status();
      retry = true;
    } else if (response->code >= 200 && response->code < 300) {
      return response;
    } else {
      last = ErrorFromResponse(*response, request.what, Describe());
      retry = RetryableResponse(*response);
      if (!retry) return last;
    }
    if (attempt >= options_.max_attempts) {
      return absl::Status(last.code(),
                          absl::StrCat(last.message(), " (after ", attempt, " attempts)"));
    }
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    absl::SleepFor(backoff * jitter(rng));
    backoff *= 2;
  }
}

absl::Status S3ObjectStore::Put(std::string_view key, std::string_view bytes) {
  CAMBIUM_RETURN_IF_ERROR(ValidateObjectKey(key));
  if (bytes.size() > options_.multipart_threshold) return PutMultipart(std::string(key), bytes);
  Request request{"PUT", ObjectPath(key), {}, bytes, {}, absl::StrCat("put ", std::string(key))};
  return Send(request).status();
}

absl::Status S3ObjectStore::PutMultipart(const std::string& key, std::string_view bytes) {
  std::string path = ObjectPath(key);
  Request start{"POST", path, {{"uploads", ""}},
                "",     {},   absl::StrCat("start multipart upload of ", key)};
  CAMBIUM_ASSIGN_OR_RETURN(Response started, Send(start));
  XmlDocPtr doc = ParseXml(started.body);
  std::string upload_id = ChildText(doc ? xmlDocGetRootElement(doc.get()) : nullptr, "UploadId");
  if (upload_id.empty()) {
    return absl::InternalError(
        absl::StrCat("start multipart upload of ", key, " on ", Describe(), ": no UploadId"));
  }
  auto abort = [&](absl::Status cause) {
    Request abort_request{"DELETE", path, {{"uploadId", upload_id}},
                          "",       {},   absl::StrCat("abort upload of ", key)};
    (void)Send(abort_request);
    return cause;
  };
  std::string complete = "<CompleteMultipartUpload>";
  int part = 0;
  for (size_t offset = 0; offset < bytes.size(); offset += options_.part_size) {
    ++part;
    Request put_part{"PUT",
                     path,
                     {{"partNumber", absl::StrCat(part)}, {"uploadId", upload_id}},
                     bytes.substr(offset, options_.part_size),
                     {},
                     absl::StrCat("upload part ", part, " of ", key)};
    absl::StatusOr<Response> done = Send(put_part);
    if (!done.ok()) return abort(done.status());
    auto etag = done->headers.find("etag");
    if (etag == done->headers.end())
      return abort(absl::InternalError(absl::StrCat(put_part.what, ": no ETag")));
    absl::StrAppend(&complete, "<Part><PartNumber>", part, "</PartNumber><ETag>", etag->second,
                    "</ETag></Part>");
  }
  absl::StrAppend(&complete, "</CompleteMultipartUpload>");
  Request finish{"POST",   path, {{"uploadId", upload_id}},
                 complete, {},   absl::StrCat("complete upload of ", key)};
  absl::StatusOr<Response> finished = Send(finish);
  if (!finished.ok()) return abort(finished.status());
  // S3 may answer 200 and report an error in the body.
  XmlDocPtr answer = ParseXml(finished->body);
  xmlNode* root = answer ? xmlDocGetRootElement(answer.get()) : nullptr;
  if (root && NameIs(root, "Error")) {
    Response failed = *finished;
    failed.code = 500;
    return abort(ErrorFromResponse(failed, finish.what, Describe()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> S3ObjectStore::Get(std::string_view key) {
  CAMBIUM_RETURN_IF_ERROR(ValidateObjectKey(key));
  Request request{"GET", ObjectPath(key), {}, "", {}, absl::StrCat("get ", std::string(key))};
  CAMBIUM_ASSIGN_OR_RETURN(Response response, Send(request));
  auto length = response.headers.find("content-length");
  uint64_t expected = 0;
  if (length != response.headers.end() && absl::SimpleAtoi(length->second, &expected) &&
      expected != response.body.size()) {
    return absl::DataLossError(absl::StrCat("get ", std::string(key), " on ", Describe(), ": ",
                                            response.body.size(), " bytes of ", expected));
  }
  return std::move(response.body);
}

absl::StatusOr<std::vector<ObjectInfo>> S3ObjectStore::List(std::string_view prefix) {
  std::vector<ObjectInfo> out;
  std::string token;
  for (;;) {
    Request request{"GET",
                    BucketPath(),
                    {{"list-type", "2"}, {"prefix", options_.prefix + std::string(prefix)}},
                    "",
                    {},
                    absl::StrCat("list ", std::string(prefix))};
    if (!token.empty()) request.query.emplace_back("continuation-token", token);
    CAMBIUM_ASSIGN_OR_RETURN(Response response, Send(request));
    XmlDocPtr doc = ParseXml(response.body);
    xmlNode* root = doc ? xmlDocGetRootElement(doc.get()) : nullptr;
    if (!root || !NameIs(root, "ListBucketResult")) {
      return absl::InternalError(absl::StrCat(request.what, " on ", Describe(), ": not a listing"));
    }
    for (xmlNode* contents : Children(root, "Contents")) {
      std::string key = ChildText(contents, "Key");
      uint64_t size = 0;
      (void)absl::SimpleAtoi(ChildText(contents, "Size"), &size);
      if (!key.starts_with(options_.prefix)) continue;
      out.push_back(ObjectInfo{key.substr(options_.prefix.size()), size});
    }
    if (ChildText(root, "IsTruncated") != "true") break;
    token = ChildText(root, "NextContinuationToken");
    if (token.empty())
      return absl::InternalError(absl::StrCat(request.what, ": truncated without a token"));
  }
  return out;
}

absl::Status S3ObjectStore::Delete(std::string_view key) {
  CAMBIUM_RETURN_IF_ERROR(ValidateObjectKey(key));
  Request request{"DELETE", ObjectPath(key), {}, "", {}, absl::StrCat("delete ", std::string(key))};
  absl::Status status = Send(request).status();
  if (absl::IsNotFound(status) && !absl::StrContains(status.message(), "NoSuchBucket"))
    return absl::OkStatus();
  return status;
}

}  // namespace cambium::objstore
