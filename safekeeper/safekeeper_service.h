// SafekeeperServiceImpl: cambium.v1.SafekeeperService over a Safekeeper.
//
// Each Append stream is bound to one timeline and one term by its first message
// and handled synchronously: read a message, apply it (pwrite + fdatasync), answer,
// so every answer means "durable". A proposer pipelines a few messages per stream
// and coalesces what it appends meanwhile, which batches fsyncs under load.
// ReadWal with `follow` waits for the commit LSN to move and ends when the client
// cancels or the server shuts down.
//
// Thread-safety: thread-safe (gRPC calls handlers from its thread pool).
#ifndef CAMBIUM_SAFEKEEPER_SAFEKEEPER_SERVICE_H_
#define CAMBIUM_SAFEKEEPER_SAFEKEEPER_SERVICE_H_

#include "cambium/v1/safekeeper_service.grpc.pb.h"
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

 private:
  absl::Status DoAppend(grpc::ServerContext* context,
                        grpc::ServerReaderWriter<v1::AppendResponse, v1::AppendRequest>* stream);
  absl::Status DoReadWal(grpc::ServerContext* context, const v1::ReadWalRequest& request,
                         grpc::ServerWriter<v1::WalChunk>* writer);

  Safekeeper* const sk_;
};

}  // namespace cambium::safekeeper

#endif  // CAMBIUM_SAFEKEEPER_SAFEKEEPER_SERVICE_H_
