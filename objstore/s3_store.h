// S3ObjectStore: an ObjectStore on the S3 API (AWS S3, Ceph RGW, MinIO, R2, GCS
// interoperability), over libcurl with SigV4 signing (sigv4.h) and libxml2 for the
// service's XML answers.
//
// - Addressing: path style (http://HOST/BUCKET/KEY, what RGW and MinIO expect on an
//   IP endpoint) or virtual-hosted (https://BUCKET.HOST/KEY, AWS's default).
// - Put sends objects up to `multipart_threshold` in one PUT, larger ones as a
//   multipart upload of `part_size` parts (aborted if any part fails, so no hidden
//   parts are left billed). Every payload is signed by its SHA-256, so the service
//   rejects bytes damaged on the way.
// - Retries: connection failures, timeouts, HTTP 5xx, 429 and SlowDown/RequestTimeout
//   are retried `max_attempts` times with exponential backoff and jitter; other
//   errors are returned at once (a wrong key does not get better by asking again).
// - Connections are reused (a pool of curl handles), one request per handle at a time.
//
// Thread-safety: thread-safe.
#ifndef CAMBIUM_OBJSTORE_S3_STORE_H_
#define CAMBIUM_OBJSTORE_S3_STORE_H_

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "objstore/object_store.h"

namespace cambium::objstore {

struct S3Options {
  std::string endpoint;  // scheme://host[:port], no path
  std::string bucket;
  std::string prefix;  // "" or ending in '/'
  std::string region = "us-east-1";
  bool path_style = true;
  // Objects larger than this go up in parts. Default: 64 MiB.
  size_t multipart_threshold = 64 << 20;
  // Default: 16 MiB (S3's minimum is 5 MiB except for the last part).
  size_t part_size = 16 << 20;
  // Attempts per request, counting the first. Default: 6 (about 3 s of backoff).
  int max_attempts = 6;
  // First backoff; doubles per attempt. Default: 100 ms.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  // Connecting gives up after this. Default: 5 s.
  absl::Duration connect_timeout = absl::Seconds(5);
  // A transfer slower than 1 KiB/s for this long is aborted (and retried). Default: 30 s.
  absl::Duration stall_timeout = absl::Seconds(30);
};

class S3ObjectStore final : public ObjectStore {
 public:
  // Checks that the bucket answers with these credentials (a one-key listing).
  // `create_bucket` creates it first (OK if it is already ours): for tests and
  // `tools/object-store.sh`; a production bucket is made by its operator.
  static absl::StatusOr<std::unique_ptr<S3ObjectStore>> Open(S3Options options,
                                                             S3Credentials credentials,
                                                             bool create_bucket = false);
  ~S3ObjectStore() override;

  absl::Status Put(std::string_view key, std::string_view bytes) override;
  absl::StatusOr<std::string> Get(std::string_view key) override;
  absl::StatusOr<std::vector<ObjectInfo>> List(std::string_view prefix) override;
  absl::Status Delete(std::string_view key) override;
  std::string Describe() const override;

  struct Request;
  struct Response;

 private:
  S3ObjectStore(S3Options options, S3Credentials credentials);

  absl::StatusOr<Response> Send(const Request& request);
  absl::StatusOr<Response> SendOnce(const Request& request);
  absl::Status PutMultipart(const std::string& key, std::string_view bytes);
  std::string ObjectPath(std::string_view key) const;  // encoded, with the prefix
  std::string BucketPath() const;
  void* TakeHandle();
  void ReturnHandle(void* handle);

  const S3Options options_;
  const S3Credentials credentials_;
  std::string host_;  // the Host header
  std::string base_url_;

  std::mutex mu_;
  std::vector<void*> idle_handles_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cambium::objstore

#endif  // CAMBIUM_OBJSTORE_S3_STORE_H_
