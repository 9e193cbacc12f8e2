// How a pageserver answers for a tenant that is not (or no longer) served there
// because it moves to another pageserver (docs/scale-out.md "Moving a tenant"):
// UNAVAILABLE, so that a client retries, and once the move is done the message
// names the new pageserver, so that a client (the compute shim) reconnects there.
//
// Also where a move's objects live in the transfer store, shared by the pageserver
// that writes them (pageserver/tenant_transfer.h) and the CLI that removes them once
// the move is done.
//
// Thread-safety: pure functions.
#ifndef CAMBIUM_COMMON_TENANT_MOVES_H_
#define CAMBIUM_COMMON_TENANT_MOVES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/ids.h"

namespace cambium {

// UNAVAILABLE: the tenant is being moved away; retry.
absl::Status TenantMovingStatus(const TenantId& tenant);
// UNAVAILABLE: the tenant is served by the pageserver at `address` (host:port).
absl::Status TenantMovedStatus(const TenantId& tenant, std::string_view address);
// The address a TenantMovedStatus message names; none for any other message.
std::optional<std::string> MovedToAddress(absl::string_view message);

// The object key prefix of every move of `tenant`: "tenants/<tenant>/moves/".
std::string TenantMovesPrefix(const TenantId& tenant);
// The prefix of one move's objects (its files and manifest) under `generation`.
std::string TenantMovePrefix(const TenantId& tenant, uint64_t generation);

}  // namespace cambium

#endif  // CAMBIUM_COMMON_TENANT_MOVES_H_
