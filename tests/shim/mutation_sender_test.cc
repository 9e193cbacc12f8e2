// MutationSender against a stand-in pageserver (a real gRPC server with a scripted
// PutMutations): what the sender does with each kind of refusal.
#include "compute-shim/mutation_sender.h"

#include <atomic>

#include "absl/strings/str_format.h"
#include "cambium/v1/page_service.grpc.pb.h"
#include "common/service.h"
#include "compute-shim/pageserver_client.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"

namespace cambium::shim {
namespace {

// Refuses the first batch of the first stream with `first_refusal`, then
// acknowledges every batch as synced.
class ScriptedPageService final : public v1::PageService::Service {
 public:
  explicit ScriptedPageService(grpc::Status first_refusal) : first_refusal_(first_refusal) {}

  grpc::Status PutMutations(grpc::ServerContext*,
                            grpc::ServerReaderWriter<v1::PutMutationsResponse,
                                                     v1::PutMutationsRequest>* stream) override {
    v1::PutMutationsRequest req;
    while (stream->Read(&req)) {
      v1::PutMutationsResponse resp;
      resp.set_seq(req.seq());
      if (!req.hello()) {
        if (!refused_.exchange(true)) return first_refusal_;
        resp.set_synced(true);
      }
      if (!stream->Write(resp)) break;
    }
    return grpc::Status::OK;
  }
  bool refused() const { return refused_; }

 private:
  const grpc::Status first_refusal_;
  std::atomic<bool> refused_{false};
};

struct Stand {
  explicit Stand(grpc::Status refusal) : service(refusal) {
    grpc::ServerBuilder builder;
    EXPECT_TRUE(ConfigureServer(builder, "127.0.0.1:0", &port).ok());
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
  }
  ~Stand() { server->Shutdown(); }
  ScriptedPageService service;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

// Queues one block write to a stand-in pageserver whose first batch is refused
// with `refusal`; returns what the Barrier after it says, and whether the refusal
// was made.
absl::Status BarrierAfterARefusal(grpc::Status refusal, bool* refused) {
  Stand stand(refusal);
  PageserverClient client(absl::StrFormat("127.0.0.1:%d", stand.port), TenantId::Generate(),
                          TimelineId::Generate());
  MutationSender sender(&client, 1, MutationSenderOptions{}, nullptr);
  v1::Mutation m;
  m.set_path("base/5/16384");
  m.set_lsn(16 << 20);
  m.mutable_write()->set_block_no(0);
  m.mutable_write()->set_data(std::string(8192, 'x'));
  absl::Status status = sender.Enqueue(std::move(m)).status();
  if (status.ok()) status = sender.Barrier();
  sender.Stop();
  *refused = stand.service.refused();
  return status;
}

// Issue 11 (found by the chaos suite, CI seed 1): a corrupt SST found by a
// background compaction makes the pageserver's store refuse writes (DATA_LOSS)
// until it is repaired and restarted. That is the store's state, not the
// mutation's fault: the sender keeps what is unsynced and resends it, instead of
// failing the compute for good (Postgres then PANICked on every restart).
TEST(MutationSenderTest, ADamagedPageserverStoreIsWaitedOutNotFatal) {
  bool refused = false;
  const absl::Status barrier = BarrierAfterARefusal(
      grpc::Status(grpc::StatusCode::DATA_LOSS, "page store write: Corruption"), &refused);
  EXPECT_TRUE(refused);
  EXPECT_TRUE(barrier.ok()) << barrier;
}

// A refusal of the mutation itself (here: the writer was fenced) stays final.
TEST(MutationSenderTest, AFencedWriterFailsForGood) {
  bool refused = false;
  const absl::Status barrier = BarrierAfterARefusal(
      grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "generation 1 was fenced"), &refused);
  EXPECT_TRUE(refused);
  EXPECT_TRUE(absl::IsFailedPrecondition(barrier)) << barrier;
}

}  // namespace
}  // namespace cambium::shim
