// SafekeeperServiceImpl: cambium.v1.SafekeeperService over a Safekeeper.
//
// Each Append stream is bound to one timeline and one term by its first message
// and handled synchronously: read a message, apply it (pwrite + fdatasync), answer,
// so every answer means "durable". A proposer pipelines a few messages per stream
// and coalesces what it appends meanwhile, which batches fsyncs under load.
// ReadWal serves WAL through a VerifiedWalReader (every record's CRC is checked
// before its bytes leave); with `follow` it waits for the commit LSN to move and
// ends when the client cancels, the server shuts down or the timeline is deleted.
//
// SafekeeperServer is how a Safekeeper is served: the start and stop sequence of
// cambium-safekeeper (main.cc), shared with the in-process test harness.
//
// Thread-safety: SafekeeperServiceImpl is thread-safe (gRPC calls handlers from its
// thread pool). SafekeeperServer is not: one thread starts and stops it.
#ifndef CAMBIUM_SAFEKEEPER_SAFEKEEPER_SERVICE_H_
#define CAMBIUM_SAFEKEEPER_SAFEKEEPER_SERVICE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cambium/v1/safekeeper_service.grpc.pb.h"
#include "grpcpp/server.h"
#include "safekeeper/safekeeper.h"

namespace cambium::safekeeper {

class SafekeeperServiceImpl final : public v1::SafekeeperService::Service {
 public:
  // REQUIRES: safekeeper outlives this.
  explicit SafekeeperServiceImpl(Safekeeper* safekeeper) : sk_(safekeeper) {}

  grpc::Status Elect(grpc::ServerContext* context, const v1::ElectRequest* request,
                     v1::ElectResponse* response) override;
  grpc::Status Append(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::AppendResponse, v1::AppendRequest>* stream) override;
  grpc::Status ReadWal(grpc::ServerContext* context, const v1::ReadWalRequest* request,
                       grpc::ServerWriter<v1::WalChunk>* writer) override;
  grpc::Status Status(grpc::ServerContext* context, const v1::SafekeeperStatusRequest* request,
                      v1::SafekeeperStatusResponse* response) override;
  grpc::Status ReportArchived(grpc::ServerContext* context,
                              const v1::ReportArchivedRequest* request,
                              v1::ReportArchivedResponse* response) override;
  grpc::Status DeleteTimeline(grpc::ServerContext* context,
                              const v1::DeleteTimelineRequest* request,
                              v1::DeleteTimelineResponse* response) override;

 private:
  absl::Status DoAppend(grpc::ServerContext* context,
                        grpc::ServerReaderWriter<v1::AppendResponse, v1::AppendRequest>* stream);
  absl::Status DoReadWal(grpc::ServerContext* context, const v1::ReadWalRequest& request,
                         grpc::ServerWriter<v1::WalChunk>* writer);

  Safekeeper* const sk_;
};

class SafekeeperServer {
 public:
  // Opens the safekeeper (recovering every timeline on disk), serves it on
  // `listen` (loopback; port 0 picks a free port) and starts its maintenance.
  static absl::StatusOr<std::unique_ptr<SafekeeperServer>> Start(const SafekeeperOptions& options,
                                                                 const std::string& listen);
  // Stop(kDefaultStopGrace) unless stopped already.
  ~SafekeeperServer();

  static constexpr absl::Duration kDefaultStopGrace = absl::Milliseconds(500);

  // The port it listens on.
  int port() const { return port_; }
  // As on SIGTERM: followers' ReadWal streams end, the server stops taking calls
  // and cancels those still running after `grace` (an append in progress
  // finishes its fdatasync and answers first), then every timeline's state is
  // persisted. Later calls do nothing.
  void Stop(absl::Duration grace);

 private:
  SafekeeperServer() = default;

  std::unique_ptr<Safekeeper> sk_;
  std::unique_ptr<SafekeeperServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;  // null once stopped
  int port_ = 0;
};

}  // namespace cambium::safekeeper

#endif  // CAMBIUM_SAFEKEEPER_SAFEKEEPER_SERVICE_H_
