#include "placement/placement.h"

#include "absl/strings/str_format.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace cambium::placement {
namespace {

using json = nlohmann::json;

constexpr char kTenants[] = "/cambium/tenants/";
constexpr char kPageservers[] = "/cambium/pageservers/";

absl::StatusOr<TenantPlacement> Parse(const std::string& name, const EtcdValue& v) {
  const json j = json::parse(v.value, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("pageserver")) {
    return absl::DataLossError(absl::StrFormat("the placement of tenant %s is malformed", name));
  }
  return TenantPlacement{.tenant = name,
                         .pageserver = j.value("pageserver", ""),
                         .generation = j.value("generation", uint64_t{0}),
                         .moving_to = j.value("moving_to", ""),
                         .revision = v.mod_revision};
}

}  // namespace

absl::StatusOr<std::optional<TenantPlacement>> PlacementStore::Get(const std::string& tenant) {
  CAMBIUM_ASSIGN_OR_RETURN(std::optional<EtcdValue> v, etcd_->Get(kTenants + tenant));
  if (!v) return std::nullopt;
  return Parse(tenant, *v);
}

absl::StatusOr<std::map<std::string, TenantPlacement>> PlacementStore::List() {
  CAMBIUM_ASSIGN_OR_RETURN(auto kvs, etcd_->List(kTenants));
  std::map<std::string, TenantPlacement> out;
  for (const auto& [key, v] : kvs) {
    CAMBIUM_ASSIGN_OR_RETURN(TenantPlacement p, Parse(key.substr(sizeof(kTenants) - 1), v));
    std::string name = p.tenant;
    out.emplace(std::move(name), std::move(p));
  }
  return out;
}

absl::Status PlacementStore::Put(TenantPlacement* p) {
  const json j = {
      {"pageserver", p->pageserver}, {"generation", p->generation}, {"moving_to", p->moving_to}};
  CAMBIUM_ASSIGN_OR_RETURN(bool put,
                           etcd_->CompareAndPut(kTenants + p->tenant, j.dump(), p->revision));
  if (!put) {
    return absl::AbortedError(absl::StrFormat(
        "the placement of tenant %s changed meanwhile (another command moved it?); look again "
        "with `cambium tenant list`",
        p->tenant));
  }
  CAMBIUM_ASSIGN_OR_RETURN(std::optional<EtcdValue> now, etcd_->Get(kTenants + p->tenant));
  if (now) p->revision = now->mod_revision;
  return absl::OkStatus();
}

absl::Status PlacementStore::RegisterPageserver(const std::string& name,
                                                const std::string& address) {
  const std::string key = kPageservers + name;
  const std::string value = json{{"address", address}}.dump();
  for (int attempt = 0; attempt < 5; ++attempt) {
    CAMBIUM_ASSIGN_OR_RETURN(std::optional<EtcdValue> old, etcd_->Get(key));
    if (old && old->value == value) return absl::OkStatus();
    CAMBIUM_ASSIGN_OR_RETURN(bool put,
                             etcd_->CompareAndPut(key, value, old ? old->mod_revision : 0));
    if (put) return absl::OkStatus();
  }
  return absl::AbortedError("the pageserver registry keeps changing; try again");
}

absl::StatusOr<std::map<std::string, std::string>> PlacementStore::Pageservers() {
  CAMBIUM_ASSIGN_OR_RETURN(auto kvs, etcd_->List(kPageservers));
  std::map<std::string, std::string> out;
  for (const auto& [key, v] : kvs) {
    const json j = json::parse(v.value, nullptr, false);
    if (j.is_object()) out[key.substr(sizeof(kPageservers) - 1)] = j.value("address", "");
  }
  return out;
}

}  // namespace cambium::placement
