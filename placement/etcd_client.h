// EtcdClient: the few etcd v3 operations Cambium's placement needs (a read, a
// listing, a compare-and-put), over etcd's JSON gateway (HTTP on the client port:
// /v3/kv/range, /v3/kv/txn, /v3/auth/*) with etcd's own authentication: a user and
// password exchanged for a token that every call carries.
//
// Why the gateway and not etcd's gRPC API: Debian packages etcd's server but no C++
// client, and the gateway is part of the server (3.4: /v3/), so the calls need only
// an HTTP client (libcurl, already the S3 client's) and no copied .proto files.
//
// Guarantees: CompareAndPut is one etcd transaction (linearizable): it puts only if
// the key's mod revision is still the one read, so two writers racing on one key
// cannot both win. Errors name the etcd URL, never the password or the token.
//
// Thread-safety: not thread-safe (one per thread; the CLI uses one).
#ifndef CAMBIUM_PLACEMENT_ETCD_CLIENT_H_
#define CAMBIUM_PLACEMENT_ETCD_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace cambium::placement {

struct EtcdValue {
  std::string value;
  int64_t mod_revision = 0;
};

class EtcdClient {
 public:
  // Connects to etcd at 127.0.0.1:`port` (or `host`) and authenticates as `user`.
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Connect(const std::string& host, int port,
                                                             const std::string& user,
                                                             const std::string& password);
  // On a fresh etcd (authentication off): adds user root with `password`, grants it
  // role root and turns authentication on. OK if authentication is already on.
  static absl::Status EnableAuth(const std::string& host, int port, const std::string& password);
  ~EtcdClient();

  absl::StatusOr<std::optional<EtcdValue>> Get(const std::string& key);
  // Every key under `prefix`, in key order.
  absl::StatusOr<std::vector<std::pair<std::string, EtcdValue>>> List(const std::string& prefix);
  // Puts `value` at `key` if its mod revision is `expected` (0: the key must not
  // exist). False, nothing written, if it is not.
  absl::StatusOr<bool> CompareAndPut(const std::string& key, const std::string& value,
                                     int64_t expected);

 private:
  explicit EtcdClient(std::string url);
  absl::StatusOr<nlohmann::json> Call(const std::string& path, const nlohmann::json& body);

  const std::string url_;
  std::string token_;
};

}  // namespace cambium::placement

#endif  // CAMBIUM_PLACEMENT_ETCD_CLIENT_H_
