#include "common/tenant_moves.h"

#include "absl/strings/str_format.h"

namespace cambium {
namespace {

constexpr absl::string_view kMovedTo = " moved to pageserver ";

}  // namespace

absl::Status TenantMovingStatus(const TenantId& tenant) {
  return absl::UnavailableError(absl::StrFormat(
      "tenant %s is moving to another pageserver; retry shortly", tenant.ToString()));
}

absl::Status TenantMovedStatus(const TenantId& tenant, std::string_view address) {
  return absl::UnavailableError(
      absl::StrFormat("tenant %s%s%s", tenant.ToString(), kMovedTo, address));
}

std::optional<std::string> MovedToAddress(absl::string_view message) {
  const size_t at = message.find(kMovedTo);
  if (at == absl::string_view::npos) return std::nullopt;
  absl::string_view rest = message.substr(at + kMovedTo.size());
  rest = rest.substr(0, rest.find_first_of(" ;,)"));
  if (rest.empty()) return std::nullopt;
  return std::string(rest);
}

std::string TenantMovesPrefix(const TenantId& tenant) {
  return absl::StrFormat("tenants/%s/moves/", tenant.ToString());
}

std::string TenantMovePrefix(const TenantId& tenant, uint64_t generation) {
  return absl::StrFormat("%s%016x/", TenantMovesPrefix(tenant), generation);
}

}  // namespace cambium
