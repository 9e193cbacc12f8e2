// Tokens, scopes and principals of Cambium's API (docs/security.md).
//
// A token is "cmb_<id>_<secret>": <id> is public (it names the token in lists and the
// audit log), <secret> is 256 random bits from OpenSSL's RAND_bytes in hex. Only
// SHA-256(secret) is ever stored: for a 256-bit random secret a slow password hash
// adds nothing. Hashes are compared with CRYPTO_memcmp (constant time), so the time
// a refusal takes does not tell how much of a guess was right.
//
// Scopes are ordered: read < develop < admin. A token may carry branch-name glob
// patterns (fnmatch, e.g. "preview-*"); they limit what develop-level calls may act
// on. The stack's service credential is a principal of its own ("service"): it may
// call every method, including the data path that user tokens never reach.
//
// Thread-safety: pure functions and value types.
#ifndef CAMBIUM_AUTH_TOKEN_H_
#define CAMBIUM_AUTH_TOKEN_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace cambium::auth {

// Values equal those of proto cambium.v1.Scope.
enum class Scope { kRead = 1, kDevelop = 2, kAdmin = 3 };

std::string_view ScopeName(Scope scope);  // "read", "develop", "admin"
absl::StatusOr<Scope> ParseScope(std::string_view name);

// Ids of the two tokens that do not come from the token store.
inline constexpr std::string_view kServiceId = "service";
inline constexpr std::string_view kAdminId = "admin";

// Who made a call, as the authenticator established it.
struct Principal {
  // The token's public id ("service" for the stack's own credential). Default: "".
  std::string id;
  // Meaningless for the service principal, which may do everything. Default: read.
  Scope scope = Scope::kRead;
  bool service = false;  // Default: false.
  // Glob patterns of branch names develop-level calls may act on; empty = all.
  // Default: empty.
  std::vector<std::string> branches;

  // The service principal or at least `needed`.
  bool HasScope(Scope needed) const;
  // True if `branch` matches one of the patterns (or there are none).
  bool MayActOnBranch(std::string_view branch) const;
  // "read", "develop", "admin" or "service".
  std::string ScopeLabel() const;
};

// A token split into its parts; nullopt if it is not "cmb_<id>_<secret>".
struct ParsedToken {
  std::string id;
  std::string secret;
};
std::optional<ParsedToken> ParseToken(std::string_view token);

// 32 random bytes in hex (64 characters); INTERNAL if OpenSSL's generator fails.
absl::StatusOr<std::string> RandomHex(size_t bytes);
// A new token "cmb_<id>_<secret>" with a fresh secret.
absl::StatusOr<std::string> MakeToken(std::string_view id);

// SHA-256 of `bytes`, in lowercase hex (also the S3 payload hash, objstore/sigv4.h).
std::string Sha256Hex(std::string_view bytes);
// SHA-256 of `secret`, in hex.
inline std::string HashSecret(std::string_view secret) { return Sha256Hex(secret); }
// Constant-time comparison of two hex hashes (of equal length; unequal lengths differ).
bool HashesEqual(std::string_view a, std::string_view b);

// True if `pattern` is a usable branch pattern: non-empty, printable, no '/'.
bool ValidBranchPattern(std::string_view pattern);

}  // namespace cambium::auth

#endif  // CAMBIUM_AUTH_TOKEN_H_
