// ObjectStore: the durable tier beyond one machine (ARCHITECTURE.md section 7,
// "Durable tiers"): a flat namespace of immutable objects under one prefix, as S3
// and its peers offer it. Implementations: S3 (s3_store.h: AWS S3, Ceph RGW, MinIO,
// R2, GCS interoperability) and a local directory (local_store.h), the embedded
// default on one machine.
//
// What every implementation guarantees to its callers (the uploaders):
//  - Put is durable when it returns OK and atomic: a reader sees no object or the
//    whole new one, never a prefix (S3 PUT semantics; rename on a local disk).
//  - Get returns the bytes last put, or NOT_FOUND. Bytes are not verified here:
//    objects that must be checked carry their own checksum (sealed_object.h), so a
//    flipped byte anywhere on the way is detected by the reader, whatever the store.
//  - List returns every key under a prefix in byte order, however many pages the
//    service takes to return them.
//  - Delete of a missing key is OK (S3 semantics), so a retried delete is harmless.
//  - Errors are statuses a person can act on: UNAUTHENTICATED / PERMISSION_DENIED for
//    credentials, NOT_FOUND naming a missing bucket, UNAVAILABLE when the service
//    cannot be reached after the retries; the message names the store by its URL,
//    never a secret.
//
// Keys are relative to the store's prefix and use '/' as the separator.
//
// Thread-safety: implementations are thread-safe.
#ifndef CAMBIUM_OBJSTORE_OBJECT_STORE_H_
#define CAMBIUM_OBJSTORE_OBJECT_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace cambium::objstore {

struct ObjectInfo {
  std::string key;  // relative to the store's prefix
  uint64_t size = 0;
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Stores `bytes` under `key`, replacing what is there.
  virtual absl::Status Put(std::string_view key, std::string_view bytes) = 0;

  // The object's bytes; NOT_FOUND if there is none.
  virtual absl::StatusOr<std::string> Get(std::string_view key) = 0;

  // Every object whose key starts with `prefix`, in byte order of their keys.
  virtual absl::StatusOr<std::vector<ObjectInfo>> List(std::string_view prefix) = 0;

  // Removes the object; OK if there is none.
  virtual absl::Status Delete(std::string_view key) = 0;

  // The store's URL without credentials, for messages and `cambium status`.
  virtual std::string Describe() const = 0;
};

// Credentials of an S3-compatible service.
struct S3Credentials {
  std::string access_key_id;
  std::string secret_access_key;
};

// The usual AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY of the environment, or, when
// `credentials_file` is not empty, that file (mode 0600 or stricter, refused
// otherwise) with lines `AWS_ACCESS_KEY_ID=...` and `AWS_SECRET_ACCESS_KEY=...`.
absl::StatusOr<S3Credentials> LoadS3Credentials(const std::string& credentials_file);

// Opens the store a URL names:
//   file:///ABSOLUTE/PATH
//   s3://BUCKET[/PREFIX][?endpoint=http://HOST:PORT&region=R&addressing=path|virtual]
// For s3, `endpoint` defaults to https://s3.REGION.amazonaws.com, `region` to
// us-east-1, addressing to path style with an endpoint and virtual-hosted without.
// Credentials come from LoadS3Credentials(`credentials_file`). Opening checks that
// the bucket (or directory) exists and is accessible with these credentials, so a
// wrong URL or key fails here, at start, not at the first upload.
absl::StatusOr<std::unique_ptr<ObjectStore>> OpenObjectStore(
    std::string_view url, const std::string& credentials_file = "");

}  // namespace cambium::objstore

#endif  // CAMBIUM_OBJSTORE_OBJECT_STORE_H_
