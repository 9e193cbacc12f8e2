#include "safekeeper/safekeeper_service.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/proto_convert.h"
#include "common/service.h"
#include "common/status.h"
#include "grpcpp/server_builder.h"
#include "safekeeper/wal_reader.h"
#include "safekeeper/wire.h"

namespace cambium::safekeeper {
namespace {

constexpr uint64_t kReadChunk = 1 << 20;
// How often a following reader checks for cancellation while no WAL commits.
constexpr absl::Duration kFollowPoll = absl::Milliseconds(200);
// Once new WAL is committed, how long a following reader lets more commits join
// it before sending: under load the follower (the pageserver) gets one message,
// and this thread one wakeup, per few commits instead of per commit. Head
// resolution waits for the follower, so this bounds what it adds there.
constexpr absl::Duration kFollowBatch = absl::Milliseconds(3);

}  // namespace

grpc::Status SafekeeperServiceImpl::Elect(grpc::ServerContext* context,
                                          const v1::ElectRequest* request,
                                          v1::ElectResponse* response) {
  absl::StatusOr<TimelineKey> key = FromProto(request->timeline());
  if (!key.ok()) return ToGrpcStatus(key.status());
  absl::StatusOr<std::shared_ptr<Timeline>> tl =
      sk_->GetOrCreate(*key, Lsn(request->timeline_start_lsn()));
  if (!tl.ok()) return ToGrpcStatus(tl.status());
  absl::StatusOr<VoteResponse> vote =
      (*tl)->Vote({request->term(), Lsn(request->timeline_start_lsn())});
  if (!vote.ok()) return ToGrpcStatus(vote.status());
  ToProto(*vote, response);
  response->set_safekeeper(sk_->id());
  return grpc::Status::OK;
}

grpc::Status SafekeeperServiceImpl::Append(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::AppendResponse, v1::AppendRequest>* stream) {
  return ToGrpcStatus(DoAppend(context, stream));
}

absl::Status SafekeeperServiceImpl::DoAppend(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::AppendResponse, v1::AppendRequest>* stream) {
  v1::AppendRequest request;
  if (!stream->Read(&request)) return absl::OkStatus();
  if (!request.has_start()) {
    return absl::InvalidArgumentError("the first message of an Append stream must be AppendStart");
  }
  CAMBIUM_ASSIGN_OR_RETURN(const TimelineKey key, FromProto(request.timeline()));
  const v1::AppendStart& start = request.start();
  CAMBIUM_ASSIGN_OR_RETURN(const std::shared_ptr<Timeline> tl,
                           sk_->GetOrCreate(key, Lsn(start.timeline_start_lsn())));
  absl::StatusOr<AppendAck> ack = tl->AppendStart(AppendStartFromProto(start));
  if (!ack.ok()) {
    LogInfo("append_refused", {{"tenant", key.tenant},
                               {"timeline", key.timeline},
                               {"proposer", start.proposer()},
                               {"term", start.term()},
                               {"error", ack.status()}});
    return ack.status();
  }
  const Term term = start.term();
  const uint64_t token = ack->stream;
  v1::AppendResponse response;
  ToProto(*ack, &response);
  if (!stream->Write(response)) return absl::OkStatus();
  while (stream->Read(&request)) {
    if (!request.has_data()) {
      return absl::InvalidArgumentError("only AppendData may follow AppendStart in a stream");
    }
    if (request.has_timeline()) {
      CAMBIUM_ASSIGN_OR_RETURN(const TimelineKey other, FromProto(request.timeline()));
      if (other != key) return absl::InvalidArgumentError("an Append stream names one timeline");
    }
    const v1::AppendData& data = request.data();
    ack = tl->AppendData({term, token, Lsn(data.start_lsn()), data.data(), Lsn(data.commit_lsn()),
                          data.skip_to_start()});
    if (!ack.ok()) {
      LogInfo("append_refused", {{"tenant", key.tenant},
                                 {"timeline", key.timeline},
                                 {"term", term},
                                 {"lsn", Lsn(data.start_lsn())},
                                 {"error", ack.status()}});
      return ack.status();
    }
    ToProto(*ack, &response);
    if (!stream->Write(response)) break;
  }
  return absl::OkStatus();
}

grpc::Status SafekeeperServiceImpl::ReadWal(grpc::ServerContext* context,
                                            const v1::ReadWalRequest* request,
                                            grpc::ServerWriter<v1::WalChunk>* writer) {
  absl::Status status = DoReadWal(context, *request, writer);
  if (absl::IsDataLoss(status)) {
    LogError("wal_damaged", {{"start_lsn", Lsn(request->start_lsn())}, {"error", status}});
  }
  return ToGrpcStatus(status);
}

absl::Status SafekeeperServiceImpl::DoReadWal(grpc::ServerContext* context,
                                              const v1::ReadWalRequest& request,
                                              grpc::ServerWriter<v1::WalChunk>* writer) {
  CAMBIUM_ASSIGN_OR_RETURN(const TimelineKey key, FromProto(request.timeline()));
  CAMBIUM_ASSIGN_OR_RETURN(const std::shared_ptr<Timeline> tl, sk_->Get(key));
  const Lsn end(request.end_lsn());
  const Term term = request.term();
  const Lsn start(request.start_lsn());
  if (end.valid() && end < start) {
    return absl::InvalidArgumentError(
        absl::StrFormat("end %s is below start %s", end.ToString(), start.ToString()));
  }
  VerifiedWalReader reader(tl.get(), start, term);
  v1::WalChunk chunk;
  for (bool first = true;; first = false) {
    CAMBIUM_ASSIGN_OR_RETURN(const Timeline::ReadWindow window,
                             tl->ReadLimit(reader.position(), end, term));
    if (first && !request.follow() && end.valid() && window.limit < end) {
      return absl::OutOfRangeError(absl::StrFormat(
          "WAL up to %s is not committed on safekeeper %s yet (committed records end at %s)",
          end.ToString(), sk_->id(), window.limit.ToString()));
    }
    while (reader.position() < window.limit) {
      const Lsn at = reader.position();
      absl::StatusOr<std::string> data = reader.Read(window, kReadChunk);
      if (!data.ok()) {
        // A deletion meanwhile explains a missing segment better.
        CAMBIUM_RETURN_IF_ERROR(tl->CheckNotDeleted());
        return data.status();
      }
      if (data->empty()) break;
      chunk.set_start_lsn(at.value());
      *chunk.mutable_data() = *std::move(data);
      if (!writer->Write(chunk)) return absl::OkStatus();  // the client went away
    }
    if ((end.valid() && reader.position() >= end) || !request.follow()) return absl::OkStatus();
    if (context->IsCancelled()) return absl::CancelledError("the reader cancelled");
    if (tl->shut_down()) return absl::UnavailableError("the safekeeper is shutting down");
    tl->WaitForVisibleChange(window.visible, kFollowPoll);
    if (!context->IsCancelled() && !tl->shut_down()) absl::SleepFor(kFollowBatch);
  }
}

grpc::Status SafekeeperServiceImpl::Status(grpc::ServerContext* context,
                                           const v1::SafekeeperStatusRequest* request,
                                           v1::SafekeeperStatusResponse* response) {
  absl::StatusOr<TimelineKey> key = FromProto(request->timeline());
  if (!key.ok()) return ToGrpcStatus(key.status());
  absl::StatusOr<std::shared_ptr<Timeline>> tl = sk_->Get(*key);
  if (!tl.ok()) return ToGrpcStatus(tl.status());
  absl::StatusOr<TimelineStatus> status = (*tl)->Status();
  if (!status.ok()) return ToGrpcStatus(status.status());
  response->set_term(status->term);
  response->set_flush_lsn(status->flush_lsn.value());
  response->set_commit_lsn(status->commit_lsn.value());
  response->set_archived_lsn(status->archived_lsn.value());
  ToProto(status->history, response->mutable_term_history());
  response->set_timeline_start_lsn(status->timeline_start.value());
  response->set_wal_start_lsn(status->wal_start.value());
  response->set_record_end_lsn(status->record_end.value());
  response->set_committed_lsn(status->committed_record_lsn.value());
  response->set_safekeeper(sk_->id());
  response->set_backpressured(status->backpressured);
  return grpc::Status::OK;
}

grpc::Status SafekeeperServiceImpl::ReportArchived(grpc::ServerContext* context,
                                                   const v1::ReportArchivedRequest* request,
                                                   v1::ReportArchivedResponse* response) {
  absl::StatusOr<TimelineKey> key = FromProto(request->timeline());
  if (!key.ok()) return ToGrpcStatus(key.status());
  absl::StatusOr<std::shared_ptr<Timeline>> tl = sk_->Get(*key);
  if (!tl.ok()) return ToGrpcStatus(tl.status());
  (*tl)->ReportArchived(Lsn(request->archived_lsn()));
  return grpc::Status::OK;
}

grpc::Status SafekeeperServiceImpl::DeleteTimeline(grpc::ServerContext* context,
                                                   const v1::DeleteTimelineRequest* request,
                                                   v1::DeleteTimelineResponse* response) {
  absl::StatusOr<TimelineKey> key = FromProto(request->timeline());
  if (!key.ok()) return ToGrpcStatus(key.status());
  absl::Status deleted = sk_->DeleteTimeline(*key);
  if (!deleted.ok()) {
    LogError("timeline_delete_failed",
             {{"tenant", key->tenant}, {"timeline", key->timeline}, {"error", deleted}});
  }
  return ToGrpcStatus(deleted);
}

absl::StatusOr<std::unique_ptr<SafekeeperServer>> SafekeeperServer::Start(
    const SafekeeperOptions& options, const std::string& listen) {
  std::unique_ptr<SafekeeperServer> s(new SafekeeperServer());
  CAMBIUM_ASSIGN_OR_RETURN(s->sk_, Safekeeper::Open(options));
  s->service_ = std::make_unique<SafekeeperServiceImpl>(s->sk_.get());
  grpc::ServerBuilder builder;
  CAMBIUM_RETURN_IF_ERROR(ConfigureServer(builder, listen, &s->port_));
  builder.RegisterService(s->service_.get());
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    return absl::UnavailableError("cannot listen on " + listen);
  }
  s->sk_->StartMaintenance();
  return s;
}

SafekeeperServer::~SafekeeperServer() { Stop(kDefaultStopGrace); }

void SafekeeperServer::Stop(absl::Duration grace) {
  if (server_ == nullptr) return;
  // Followers end their streams; in-flight appends finish their fsync and answer.
  sk_->StopReaders();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_.reset();
  sk_->Shutdown();
}

}  // namespace cambium::safekeeper
