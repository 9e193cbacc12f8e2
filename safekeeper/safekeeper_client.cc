#include "safekeeper/safekeeper_client.h"

#include "absl/strings/str_format.h"
#include "common/proto_convert.h"
#include "common/service.h"
#include "common/status.h"
#include "safekeeper/wire.h"

namespace cambium::safekeeper {
namespace {

absl::Status FromRpc(const grpc::Status& status, const std::string& address,
                     std::string_view what) {
  if (status.ok()) return absl::OkStatus();
  return Annotate(FromGrpcStatus(status), absl::StrFormat("%s on safekeeper %s", what, address));
}

}  // namespace

WalFollower::~WalFollower() {
  if (reader_ != nullptr && !done_) {
    context_.TryCancel();
    v1::WalChunk chunk;
    while (reader_->Read(&chunk)) {
    }
    reader_->Finish().ok();
  }
}

absl::StatusOr<std::optional<WalBytes>> WalFollower::Next() {
  if (done_) return std::optional<WalBytes>();
  v1::WalChunk chunk;
  if (reader_->Read(&chunk)) {
    return std::optional<WalBytes>(
        WalBytes{Lsn(chunk.start_lsn()), std::move(*chunk.mutable_data())});
  }
  done_ = true;
  grpc::Status status = reader_->Finish();
  if (status.ok() || status.error_code() == grpc::StatusCode::CANCELLED) {
    return std::optional<WalBytes>();
  }
  return FromGrpcStatus(status);
}

SafekeeperClient::SafekeeperClient(const std::string& address, absl::Duration rpc_timeout)
    : SafekeeperClient(MakeChannel(address), address, rpc_timeout) {}

SafekeeperClient::SafekeeperClient(std::shared_ptr<grpc::Channel> channel,
                                   const std::string& address, absl::Duration rpc_timeout)
    : address_(address),
      rpc_timeout_(rpc_timeout),
      stub_(v1::SafekeeperService::NewStub(std::move(channel))) {}

void SafekeeperClient::SetDeadline(grpc::ClientContext* context) const {
  context->set_deadline(absl::ToChronoTime(absl::Now() + rpc_timeout_));
}

absl::StatusOr<SafekeeperStatus> SafekeeperClient::Status(TenantId tenant, TimelineId timeline) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::SafekeeperStatusRequest request;
  ToProto(tenant, timeline, request.mutable_timeline());
  v1::SafekeeperStatusResponse r;
  CAMBIUM_RETURN_IF_ERROR(FromRpc(stub_->Status(&context, request, &r), address_, "Status"));
  SafekeeperStatus s;
  s.safekeeper = r.safekeeper();
  s.term = r.term();
  s.history = HistoryFromProto(r.term_history());
  s.timeline_start = Lsn(r.timeline_start_lsn());
  s.wal_start = Lsn(r.wal_start_lsn());
  s.flush_lsn = Lsn(r.flush_lsn());
  s.record_end = Lsn(r.record_end_lsn());
  s.commit_lsn = Lsn(r.commit_lsn());
  s.committed_lsn = Lsn(r.committed_lsn());
  s.archived_lsn = Lsn(r.archived_lsn());
  return s;
}

absl::StatusOr<std::string> SafekeeperClient::ReadWal(TenantId tenant, TimelineId timeline,
                                                      Lsn from, Lsn to, Term term) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::ReadWalRequest request;
  ToProto(tenant, timeline, request.mutable_timeline());
  request.set_start_lsn(from.value());
  request.set_end_lsn(to.value());
  request.set_term(term);
  std::unique_ptr<grpc::ClientReader<v1::WalChunk>> reader = stub_->ReadWal(&context, request);
  std::string out;
  v1::WalChunk chunk;
  while (reader->Read(&chunk)) {
    if (Lsn(chunk.start_lsn()) != from + out.size()) {
      context.TryCancel();
      while (reader->Read(&chunk)) {
      }
      reader->Finish().ok();
      return absl::InternalError(absl::StrFormat("safekeeper %s sent WAL at %s, expected %s",
                                                 address_, Lsn(chunk.start_lsn()).ToString(),
                                                 (from + out.size()).ToString()));
    }
    out += chunk.data();
  }
  CAMBIUM_RETURN_IF_ERROR(FromRpc(reader->Finish(), address_, "ReadWal"));
  return out;
}

std::unique_ptr<WalFollower> SafekeeperClient::Follow(TenantId tenant, TimelineId timeline,
                                                      Lsn from) {
  std::unique_ptr<WalFollower> follower(new WalFollower());
  v1::ReadWalRequest request;
  ToProto(tenant, timeline, request.mutable_timeline());
  request.set_start_lsn(from.value());
  request.set_follow(true);
  follower->reader_ = stub_->ReadWal(&follower->context_, request);
  return follower;
}

absl::Status SafekeeperClient::ReportArchived(TenantId tenant, TimelineId timeline, Lsn archived) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::ReportArchivedRequest request;
  ToProto(tenant, timeline, request.mutable_timeline());
  request.set_archived_lsn(archived.value());
  v1::ReportArchivedResponse response;
  return FromRpc(stub_->ReportArchived(&context, request, &response), address_, "ReportArchived");
}

absl::Status SafekeeperClient::DeleteTimeline(TenantId tenant, TimelineId timeline) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::DeleteTimelineRequest request;
  ToProto(tenant, timeline, request.mutable_timeline());
  v1::DeleteTimelineResponse response;
  return FromRpc(stub_->DeleteTimeline(&context, request, &response), address_, "DeleteTimeline");
}

}  // namespace cambium::safekeeper
