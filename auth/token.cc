#include "auth/token.h"

#include <fnmatch.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace cambium::auth {

std::string_view ScopeName(Scope scope) {
  switch (scope) {
    case Scope::kRead:
      return "read";
    case Scope::kDevelop:
      return "develop";
    case Scope::kAdmin:
      return "admin";
  }
  return "read";
}

absl::StatusOr<Scope> ParseScope(std::string_view name) {
  if (name == "read") return Scope::kRead;
  if (name == "develop") return Scope::kDevelop;
  if (name == "admin") return Scope::kAdmin;
  return absl::InvalidArgumentError(
      absl::StrFormat("unknown scope \"%s\": expected read, develop or admin", name));
}

bool Principal::HasScope(Scope needed) const {
  return service || static_cast<int>(scope) >= static_cast<int>(needed);
}

bool Principal::MayActOnBranch(std::string_view branch) const {
  if (service || branches.empty()) return true;
  const std::string name(branch);
  for (const std::string& pattern : branches) {
    if (fnmatch(pattern.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

std::string Principal::ScopeLabel() const {
  return service ? "service" : std::string(ScopeName(scope));
}

std::optional<ParsedToken> ParseToken(std::string_view token) {
  constexpr std::string_view kPrefix = "cmb_";
  if (token.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  token.remove_prefix(kPrefix.size());
  const size_t sep = token.rfind('_');
  if (sep == std::string_view::npos || sep == 0 || sep + 1 == token.size()) return std::nullopt;
  return ParsedToken{std::string(token.substr(0, sep)), std::string(token.substr(sep + 1))};
}

absl::StatusOr<std::string> RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    return absl::InternalError("OpenSSL RAND_bytes failed: no secure random bytes");
  }
  return absl::BytesToHexString(raw);
}

absl::StatusOr<std::string> MakeToken(std::string_view id) {
  absl::StatusOr<std::string> secret = RandomHex(32);
  if (!secret.ok()) return secret.status();
  return "cmb_" + std::string(id) + "_" + *secret;
}

std::string Sha256Hex(std::string_view bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

bool HashesEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool ValidBranchPattern(std::string_view pattern) {
  if (pattern.empty() || pattern.size() > 256) return false;
  for (char c : pattern) {
    if (c == '/' || static_cast<unsigned char>(c) < 0x21 || c == 0x7f) return false;
  }
  return true;
}

}  // namespace cambium::auth
