// The authorization table: for every gRPC method Cambium serves, who may call it.
// One place, checked by the Authenticator for every call; a method missing from it
// is refused, so a new RPC is closed until someone decides who may call it (the
// access test iterates over every service descriptor and fails on such a method).
//
// Management methods name the least scope a call needs; the handlers add the
// branch-aware checks (develop only on unprotected branches matching the token's
// patterns, purge and protected-branch credentials need admin). Data-path methods
// (pages, WAL, attach, archive positions) need the stack's service credential.
//
// Thread-safety: pure functions over a constant table.
#ifndef CAMBIUM_AUTH_METHOD_POLICY_H_
#define CAMBIUM_AUTH_METHOD_POLICY_H_

#include <optional>
#include <string_view>

#include "auth/token.h"

namespace cambium::auth {

enum class Need { kService, kRead, kDevelop, kAdmin };

// The requirement of a full method name ("/cambium.v1.PageService/GetPages"), or
// nullopt if the method is not in the table.
std::optional<Need> RequiredFor(std::string_view full_method);

std::string_view NeedName(Need need);  // "service", "read", "develop", "admin"

}  // namespace cambium::auth

#endif  // CAMBIUM_AUTH_METHOD_POLICY_H_
