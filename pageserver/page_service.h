// PageServiceImpl: the data plane of the pageserver over gRPC (proto PageService):
// writer attachment, manifests, batched page reads, tagged mutations, barriers and
// WAL for starting computes.
//
// Liveness: a writer's PutMutations stream opens with a hello naming its generation;
// from then on the writer counts as live until the stream closes, however idle the
// compute is (ARCHITECTURE.md section 7). Request sizes are bounded
// (PageServiceOptions); a larger request is refused with INVALID_ARGUMENT.
//
// Thread-safety: thread-safe; gRPC runs each call on its own thread.
#ifndef CAMBIUM_PAGESERVER_PAGE_SERVICE_H_
#define CAMBIUM_PAGESERVER_PAGE_SERVICE_H_

#include <functional>

#include "cambium/v1/page_service.grpc.pb.h"
#include "pageserver/repository.h"

namespace cambium::pageserver {

struct PageServiceOptions {
  // Most pages one GetPages request may ask for. Default: 1024 (8 MiB of pages).
  int max_pages_per_request = 1024;
  // Most mutations one PutMutations batch may carry. Default: 4096.
  int max_mutations_per_batch = 4096;
};

class PageServiceImpl final : public v1::PageService::Service {
 public:
  // on_writer runs after a writer attached and whenever it (re)connects its mutation
  // stream (the WAL receiver follows the timeline while its writer is live).
  PageServiceImpl(Repository* repo, std::function<void(std::shared_ptr<Timeline>)> on_writer,
                  PageServiceOptions options = {})
      : repo_(repo), on_writer_(std::move(on_writer)), options_(options) {}

  grpc::Status GetTimelineInfo(grpc::ServerContext* ctx, const v1::GetTimelineInfoRequest* req,
                               v1::TimelineInfo* resp) override;
  grpc::Status AttachWriter(grpc::ServerContext* ctx, const v1::AttachWriterRequest* req,
                            v1::AttachWriterResponse* resp) override;
  grpc::Status DetachWriter(grpc::ServerContext* ctx, const v1::DetachWriterRequest* req,
                            v1::DetachWriterResponse* resp) override;
  grpc::Status GetManifest(grpc::ServerContext* ctx, const v1::GetManifestRequest* req,
                           grpc::ServerWriter<v1::GetManifestResponse>* writer) override;
  grpc::Status GetPages(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::GetPagesResponse, v1::GetPagesRequest>* stream) override;
  grpc::Status PutMutations(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::PutMutationsResponse, v1::PutMutationsRequest>* stream) override;
  grpc::Status Barrier(grpc::ServerContext* ctx, const v1::BarrierRequest* req,
                       v1::BarrierResponse* resp) override;
  grpc::Status GetWal(grpc::ServerContext* ctx, const v1::GetWalRequest* req,
                      grpc::ServerWriter<v1::WalChunk>* writer) override;

 private:
  absl::StatusOr<std::shared_ptr<Timeline>> Find(const v1::TimelineRef& ref) const;
  // `status`, unless the timeline was taken out of service because its tenant moves
  // or moved to another pageserver: then where it went (UNAVAILABLE, so the shim
  // retries and follows it; common/tenant_moves.h). Also after a read that succeeded,
  // which may have met the tenant's data being deleted.
  grpc::Status Refusal(const Timeline& timeline, const absl::Status& status) const;
  void ReadPages(const Timeline& timeline, const v1::GetPagesRequest& req,
                 v1::GetPagesResponse* resp) const;

  Repository* const repo_;
  const std::function<void(std::shared_ptr<Timeline>)> on_writer_;
  const PageServiceOptions options_;
};

}  // namespace cambium::pageserver

#endif  // CAMBIUM_PAGESERVER_PAGE_SERVICE_H_
