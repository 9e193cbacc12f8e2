#include "common/status.h"

#include <cerrno>

#include "absl/strings/str_format.h"

namespace cambium {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

int ToErrno(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 0;
    case absl::StatusCode::kNotFound:
      return -ENOENT;
    case absl::StatusCode::kAlreadyExists:
      return -EEXIST;
    case absl::StatusCode::kInvalidArgument:
      return -EINVAL;
    case absl::StatusCode::kOutOfRange:
      return -EINVAL;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return -EACCES;
    case absl::StatusCode::kResourceExhausted:
      return -ENOSPC;
    case absl::StatusCode::kUnimplemented:
      return -EOPNOTSUPP;
    case absl::StatusCode::kDeadlineExceeded:
      return -ETIMEDOUT;
    case absl::StatusCode::kFailedPrecondition:
      // A fenced writer: the file system became read-only for this compute.
      return -EROFS;
    default:
      // kUnavailable, kDataLoss, kInternal, kAborted, kCancelled, kUnknown: the
      // storage could not do it; Postgres reports EIO and, for fsync, PANICs,
      // which is the correct reaction to a failed durability promise.
      return -EIO;
  }
}

absl::Status ErrnoToStatus(int error_number, std::string_view context) {
  // absl appends ": <strerror>" to the message.
  return absl::ErrnoToStatus(error_number, std::string(context));
}

absl::Status Annotate(const absl::Status& status, std::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrFormat("%s: %s", context, status.message()));
}

}  // namespace cambium
