#include "auth/token_store.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "auth/private_file.h"
#include "common/files.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace cambium::auth {
namespace {

using nlohmann::json;

json ToJson(const TokenRecord& r) {
  return {{"id", r.id},
          {"scope", ScopeName(r.scope)},
          {"branches", r.branches},
          {"created_unix_micros", absl::ToUnixMicros(r.created)},
          {"expires_unix_micros", r.expires ? absl::ToUnixMicros(*r.expires) : 0},
          {"revoked", r.revoked},
          {"description", r.description},
          {"secret_sha256", r.secret_hash}};
}

absl::StatusOr<TokenRecord> FromJson(const json& j) {
  TokenRecord r;
  r.id = j.at("id").get<std::string>();
  CAMBIUM_ASSIGN_OR_RETURN(r.scope, ParseScope(j.at("scope").get<std::string>()));
  r.branches = j.at("branches").get<std::vector<std::string>>();
  r.created = absl::FromUnixMicros(j.at("created_unix_micros").get<int64_t>());
  const int64_t expires = j.at("expires_unix_micros").get<int64_t>();
  if (expires != 0) r.expires = absl::FromUnixMicros(expires);
  r.revoked = j.at("revoked").get<bool>();
  r.description = j.at("description").get<std::string>();
  r.secret_hash = j.at("secret_sha256").get<std::string>();
  if (r.id.empty() || r.secret_hash.size() != 64) {
    return absl::DataLossError("token record without an id or a SHA-256 hash");
  }
  return r;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TokenStore>> TokenStore::Open(std::string path) {
  std::unique_ptr<TokenStore> store(new TokenStore(path));
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return store;
  CAMBIUM_ASSIGN_OR_RETURN(std::string content, ReadFileToString(path));
  json doc = json::parse(content, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("tokens") ||
      !doc["tokens"].is_array()) {
    return absl::DataLossError(absl::StrFormat(
        "token store %s is damaged (not the JSON it writes); restore it from a backup", path));
  }
  absl::MutexLock lock(&store->mu_);
  for (const json& t : doc["tokens"]) {
    absl::StatusOr<TokenRecord> r;
    try {
      r = FromJson(t);
    } catch (const json::exception& e) {
      r = absl::DataLossError(e.what());
    }
    if (!r.ok()) {
      return absl::DataLossError(
          absl::StrFormat("token store %s is damaged: %s", path, r.status().message()));
    }
    store->tokens_[r->id] = *std::move(r);
  }
  return store;
}

absl::Status TokenStore::SaveLocked(const std::map<std::string, TokenRecord>& tokens) const {
  std::vector<const TokenRecord*> ordered;
  for (const auto& [id, r] : tokens) ordered.push_back(&r);
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const auto* a, const auto* b) { return a->created < b->created; });
  json list = json::array();
  for (const TokenRecord* r : ordered) list.push_back(ToJson(*r));
  return WritePrivateFileAtomically(path_, json({{"tokens", list}}).dump(1) + "\n");
}

absl::StatusOr<NewToken> TokenStore::Create(Scope scope, std::vector<std::string> branches,
                                            std::optional<absl::Duration> ttl,
                                            std::string description, absl::Time now) {
  for (const std::string& p : branches) {
    if (!ValidBranchPattern(p)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("invalid branch pattern \"%s\": expected a glob such as preview-*", p));
    }
  }
  if (ttl && *ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("a token's TTL must be positive");
  }
  CAMBIUM_ASSIGN_OR_RETURN(std::string id, RandomHex(6));
  CAMBIUM_ASSIGN_OR_RETURN(std::string token, MakeToken(id));
  NewToken out;
  out.token = token;
  out.record = TokenRecord{.id = id,
                           .scope = scope,
                           .branches = std::move(branches),
                           .created = now,
                           .expires = ttl ? std::optional<absl::Time>(now + *ttl) : std::nullopt,
                           .revoked = false,
                           .description = std::move(description),
                           .secret_hash = HashSecret(ParseToken(token)->secret)};
  absl::MutexLock lock(&mu_);
  std::map<std::string, TokenRecord> next = tokens_;
  if (next.count(id) > 0) return absl::AbortedError("token id collision; try again");
  next[id] = out.record;
  CAMBIUM_RETURN_IF_ERROR(SaveLocked(next));
  tokens_ = std::move(next);
  return out;
}

std::vector<TokenRecord> TokenStore::List() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<TokenRecord> out;
  for (const auto& [id, r] : tokens_) out.push_back(r);
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.created < b.created; });
  return out;
}

absl::StatusOr<TokenRecord> TokenStore::Revoke(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = tokens_.find(id);
  if (it == tokens_.end()) {
    return absl::NotFoundError(absl::StrFormat("no token with id \"%s\"", id));
  }
  if (it->second.revoked) return it->second;
  std::map<std::string, TokenRecord> next = tokens_;
  next[id].revoked = true;
  CAMBIUM_RETURN_IF_ERROR(SaveLocked(next));
  tokens_ = std::move(next);
  return tokens_[id];
}

absl::StatusOr<Principal> TokenStore::Authenticate(const ParsedToken& token, absl::Time now) const {
  const std::string hash = HashSecret(token.secret);
  absl::ReaderMutexLock lock(&mu_);
  auto it = tokens_.find(token.id);
  if (it == tokens_.end() || !HashesEqual(hash, it->second.secret_hash)) {
    return absl::UnauthenticatedError("invalid token");
  }
  const TokenRecord& r = it->second;
  // The secret matched: the caller holds the token, so saying why is safe.
  if (r.revoked) {
    return absl::UnauthenticatedError(absl::StrFormat("token %s has been revoked", r.id));
  }
  if (r.expires && now >= *r.expires) {
    return absl::UnauthenticatedError(
        absl::StrFormat("token %s expired at %s", r.id,
                        absl::FormatTime(absl::RFC3339_sec, *r.expires, absl::UTCTimeZone())));
  }
  return Principal{.id = r.id, .scope = r.scope, .service = false, .branches = r.branches};
}

}  // namespace cambium::auth
