// TokenStore: the API tokens of one pageserver, persisted in a 0600 JSON file in its
// data directory (DATA/pageserver/tokens.json).
//
// Guarantees: only SHA-256 hashes of secrets are stored, in memory and on disk. A
// change (create, revoke) is durable (file replaced atomically and fsynced) before it
// returns, and takes effect for the next authentication at once; a failed write
// changes nothing. Expiry is checked against the caller's clock at each
// authentication.
//
// Thread-safety: thread-safe; Authenticate takes a shared lock only and does no I/O,
// so gRPC's non-blocking auth processor may call it.
#ifndef CAMBIUM_AUTH_TOKEN_STORE_H_
#define CAMBIUM_AUTH_TOKEN_STORE_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "auth/token.h"

namespace cambium::auth {

struct TokenRecord {
  std::string id;                     // Default: "".
  Scope scope = Scope::kRead;         // Default: read.
  std::vector<std::string> branches;  // Default: empty (every branch).
  absl::Time created;                 // Default: the epoch.
  std::optional<absl::Time> expires;  // Default: never.
  bool revoked = false;               // Default: false.
  std::string description;            // Default: "".
  std::string secret_hash;            // SHA-256 of the secret, hex. Default: "".
};

struct NewToken {
  TokenRecord record;
  std::string token;  // the whole token with its secret: shown once, never stored
};

class TokenStore {
 public:
  // Loads `path` (a missing file is an empty store). A damaged file is an error
  // naming it: starting with no tokens would silently drop revocations too.
  static absl::StatusOr<std::unique_ptr<TokenStore>> Open(std::string path);

  // INVALID_ARGUMENT for a bad branch pattern or a non-positive TTL.
  absl::StatusOr<NewToken> Create(Scope scope, std::vector<std::string> branches,
                                  std::optional<absl::Duration> ttl, std::string description,
                                  absl::Time now);
  // Every token, revoked and expired ones included, oldest first.
  std::vector<TokenRecord> List() const;
  // NOT_FOUND if there is no token `id`. Revoking twice is not an error.
  absl::StatusOr<TokenRecord> Revoke(const std::string& id);
  // The principal of `token`; UNAUTHENTICATED (saying why, never echoing the secret)
  // if it is unknown, wrong, expired or revoked.
  absl::StatusOr<Principal> Authenticate(const ParsedToken& token, absl::Time now) const;

 private:
  explicit TokenStore(std::string path) : path_(std::move(path)) {}
  absl::Status SaveLocked(const std::map<std::string, TokenRecord>& tokens) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  mutable absl::Mutex mu_;
  std::map<std::string, TokenRecord> tokens_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cambium::auth

#endif  // CAMBIUM_AUTH_TOKEN_STORE_H_
