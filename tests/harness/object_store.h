// A real S3 service for tests: Ceph's RADOS Gateway that tools/object-store.sh starts
// on loopback in its own instance directory (never a mock). Stop it with
// StopObjectStore, which also removes the instance.
//
// Thread-safety: for one test thread.
#ifndef CAMBIUM_TESTS_HARNESS_OBJECT_STORE_H_
#define CAMBIUM_TESTS_HARNESS_OBJECT_STORE_H_

#include <string>

#include "absl/status/statusor.h"

namespace cambium::testing {

struct ObjectStoreInstance {
  // False when Ceph is not installed (the script exits 77): `why` says so; skip.
  bool available = false;
  std::string why;
  std::string url;  // CAMBIUM_OBJECT_STORE: s3://BUCKET/PREFIX?endpoint=...&region=...
  std::string access_key_id;
  std::string secret_access_key;
  std::string endpoint;  // AWS_ENDPOINT_URL: http://127.0.0.1:PORT
};

// tools/object-store.sh of this checkout.
std::string ObjectStoreScript();
// Starts an instance in `dir` serving `bucket`; an error if the script fails.
absl::StatusOr<ObjectStoreInstance> StartObjectStore(const std::string& dir,
                                                     const std::string& bucket);
// Stops the instance in `dir` and removes it (best effort).
void StopObjectStore(const std::string& dir);

}  // namespace cambium::testing

#endif  // CAMBIUM_TESTS_HARNESS_OBJECT_STORE_H_
