#include "common/status.h"

#include <cerrno>

#include "gtest/gtest.h"

namespace cambium {
namespace {

TEST(Status, GrpcMappingKeepsCodeAndMessage) {
  absl::Status s = absl::NotFoundError("branch \"preview-42\" does not exist in tenant \"acme\"");
  grpc::Status g = ToGrpcStatus(s);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(g.error_message(), s.message());
  EXPECT_EQ(FromGrpcStatus(g), s);
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
  // Every code survives the round trip.
  for (int code = 1; code <= 16; ++code) {
    absl::Status in(static_cast<absl::StatusCode>(code), "m");
    EXPECT_EQ(FromGrpcStatus(ToGrpcStatus(in)), in) << code;
  }
}

TEST(Status, ErrnoMappingNeverReturnsEnosys) {
  EXPECT_EQ(ToErrno(absl::OkStatus()), 0);
  EXPECT_EQ(ToErrno(absl::NotFoundError("x")), -ENOENT);
  EXPECT_EQ(ToErrno(absl::AlreadyExistsError("x")), -EEXIST);
  EXPECT_EQ(ToErrno(absl::ResourceExhaustedError("disk full")), -ENOSPC);
  EXPECT_EQ(ToErrno(absl::FailedPreconditionError("fenced")), -EROFS);
  EXPECT_EQ(ToErrno(absl::DataLossError("checksum")), -EIO);
  EXPECT_EQ(ToErrno(absl::UnavailableError("pageserver down")), -EIO);
  for (int code = 1; code <= 16; ++code) {
    int e = ToErrno(absl::Status(static_cast<absl::StatusCode>(code), "m"));
    EXPECT_LT(e, 0) << code;
    EXPECT_NE(e, -ENOSYS) << code;
  }
}

TEST(Status, ErrnoToStatusCarriesContext) {
  absl::Status s = ErrnoToStatus(ENOENT, "open /x/y");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "open /x/y: No such file or directory");
  EXPECT_EQ(ErrnoToStatus(ENOSPC, "write").code(), absl::StatusCode::kResourceExhausted);
}

absl::StatusOr<int> Half(int x) {
  if (x % 2) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::StatusOr<int> Quarter(int x) {
  CAMBIUM_ASSIGN_OR_RETURN(int half, Half(x));
  CAMBIUM_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

absl::Status CheckEven(int x) {
  CAMBIUM_RETURN_IF_ERROR(Half(x).status());
  return absl::OkStatus();
}

TEST(Status, MacrosPropagateErrors) {
  EXPECT_EQ(Quarter(8).value(), 2);
  EXPECT_EQ(Quarter(6).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_FALSE(CheckEven(3).ok());
}

TEST(Status, AnnotateKeepsCode) {
  absl::Status s = Annotate(absl::DataLossError("bad crc"), "segment 000000010000000000000003");
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(s.message(), "segment 000000010000000000000003: bad crc");
  EXPECT_TRUE(Annotate(absl::OkStatus(), "x").ok());
}

}  // namespace
}  // namespace cambium
