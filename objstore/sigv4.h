// AWS Signature Version 4 for S3 requests (the signing every S3-compatible service
// accepts; Debian 12's libs3 2.0 signs with version 2 only, which AWS regions opened
// since 2014 refuse). Pure functions over a request description, checked against
// AWS's published example in sigv4_test.cc.
//
// The payload is always signed by its SHA-256 (never UNSIGNED-PAYLOAD), so the
// service also verifies that the bytes it stores are the bytes we sent.
//
// Thread-safety: pure functions.
#ifndef CAMBIUM_OBJSTORE_SIGV4_H_
#define CAMBIUM_OBJSTORE_SIGV4_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "objstore/object_store.h"

namespace cambium::objstore {

struct SigV4Request {
  std::string method;  // "GET", "PUT", ...
  // The path exactly as sent, already URI-encoded ("/bucket/a%20b").
  std::string encoded_path;
  // Query parameters, not encoded; signed in canonical (sorted, encoded) form.
  std::vector<std::pair<std::string, std::string>> query;
  // Headers to sign, names in any case; must include host and x-amz-date.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload_sha256_hex;  // auth::Sha256Hex of the body
};

// RFC 3986 encoding as SigV4 requires: unreserved characters stay, everything else
// is %XX (upper case); '/' stays when `keep_slash`.
std::string UriEncode(std::string_view text, bool keep_slash);

// "a=1&b=2" with names and values encoded and sorted, as sent and as signed.
std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query);

// The Authorization header value for `request` at `amz_date` (YYYYMMDDTHHMMSSZ, the
// x-amz-date header's value) in `region` for service "s3".
std::string SignV4(const SigV4Request& request, const S3Credentials& credentials,
                   std::string_view region, std::string_view amz_date);

}  // namespace cambium::objstore

#endif  // CAMBIUM_OBJSTORE_SIGV4_H_
