// Status helpers shared by every component.
//
// Expected failures are absl::Status / absl::StatusOr<T>; no exception crosses a
// module boundary. absl status codes are numerically the gRPC codes, so the wire
// boundary maps one to one (ToGrpcStatus / FromGrpcStatus), and the FUSE boundary
// maps to a negative errno with ToErrno. Those three functions are the only places
// that translate; everything else passes Status through.
//
// Thread-safety: stateless functions.
#ifndef CAMBIUM_COMMON_STATUS_H_
#define CAMBIUM_COMMON_STATUS_H_

#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/support/status.h"

namespace cambium {

// Propagates a non-OK status to the caller.
#define CAMBIUM_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::absl::Status cambium_status_ = (expr);           \
    if (!cambium_status_.ok()) return cambium_status_; \
  } while (0)

#define CAMBIUM_STATUS_CONCAT_INNER(a, b) a##b
#define CAMBIUM_STATUS_CONCAT(a, b) CAMBIUM_STATUS_CONCAT_INNER(a, b)

// CAMBIUM_ASSIGN_OR_RETURN(auto x, Foo()); evaluates Foo(), returns its status on
// error, otherwise moves the value into the declaration.
#define CAMBIUM_ASSIGN_OR_RETURN(lhs, expr) \
  CAMBIUM_ASSIGN_OR_RETURN_IMPL(CAMBIUM_STATUS_CONCAT(cambium_statusor_, __LINE__), lhs, expr)
#define CAMBIUM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(tmp).value()

// absl -> gRPC: same code, same message.
grpc::Status ToGrpcStatus(const absl::Status& status);

// gRPC -> absl: same code, same message.
absl::Status FromGrpcStatus(const grpc::Status& status);

// absl -> negative errno for a FUSE reply. Never returns -ENOSYS: the kernel treats
// ENOSYS from fsync and some other calls as "not implemented, assume success",
// which would turn a failed barrier into a silently acknowledged one.
int ToErrno(const absl::Status& status);

// An errno from a system call -> Status with the call's context and strerror text,
// e.g. ErrnoToStatus(errno, "open /x/y") -> NOT_FOUND "open /x/y: No such file ...".
absl::Status ErrnoToStatus(int error_number, std::string_view context);

// Prepends context to a non-OK status's message, keeping its code.
absl::Status Annotate(const absl::Status& status, std::string_view context);

}  // namespace cambium

#endif  // CAMBIUM_COMMON_STATUS_H_
