// PageserverClient: the compute shim's connection to the pageserver for one
// timeline: timeline info, writer attachment, manifests, batched page reads and WAL.
//
// Reads use a small pool of persistent GetPages streams so a read costs one round
// trip, not a stream setup. Transient failures (the pageserver restarting) are retried
// with backoff for up to `retry_for`; reads are idempotent. A tenant that moved to
// another pageserver is followed there (the old one answers with the new address).
//
// Thread-safety: thread-safe.
#ifndef CAMBIUM_COMPUTE_SHIM_PAGESERVER_CLIENT_H_
#define CAMBIUM_COMPUTE_SHIM_PAGESERVER_CLIENT_H_

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cambium/v1/page_service.grpc.pb.h"
#include "common/ids.h"
#include "common/lsn.h"

namespace cambium::shim {

struct PageRequest {
  std::string path;
  uint32_t block = 0;
};

struct PageResult {
  absl::Status status;
  std::string data;  // kBlockSize bytes when ok
};

class PageserverClient {
 public:
  PageserverClient(const std::string& address, TenantId tenant, TimelineId timeline,
                   absl::Duration retry_for = absl::Seconds(30));
  ~PageserverClient();

  const v1::TimelineRef& ref() const { return ref_; }
  // The current stub; keep the pointer for as long as a call or stream uses it
  // (Reconnect replaces it).
  std::shared_ptr<v1::PageService::Stub> CurrentStub();
  // A fresh stub on a new channel (after the pageserver restarted), to the address
  // a moved tenant's answer named if one did (FollowMove).
  void Reconnect();
  // After a failed call: if the pageserver answered that the tenant moved to another
  // pageserver (common/tenant_moves.h), the next Reconnect goes there.
  void FollowMove(const grpc::Status& status);
  std::string address() const;

  absl::StatusOr<v1::TimelineInfo> GetTimelineInfo();
  absl::StatusOr<v1::AttachWriterResponse> AttachWriter(const std::string& endpoint, Lsn start,
                                                        bool takeover);
  absl::Status DetachWriter(uint64_t generation);
  absl::StatusOr<std::vector<v1::FileMeta>> GetManifest(Lsn lsn);
  // One result per request, in order. A failed RPC fails every result.
  std::vector<PageResult> GetPages(Lsn lsn, const std::vector<PageRequest>& pages);
  absl::StatusOr<std::string> GetWal(Lsn from, Lsn to);
  // The archive's WAL in [from, to), handed to `sink` in order as it arrives (a
  // retried stream resumes after the last byte sunk). A sink's error ends the call
  // and is returned.
  using WalSink = std::function<absl::Status(Lsn at, std::string_view bytes)>;
  absl::Status GetWal(Lsn from, Lsn to, const WalSink& sink);

 private:
  struct PageStream;
  std::unique_ptr<PageStream> TakeStream();
  void ReturnStream(std::unique_ptr<PageStream> stream);
  template <typename Fn>
  absl::Status Retry(const char* what, Fn&& fn);

  v1::TimelineRef ref_;
  const absl::Duration retry_for_;
  mutable std::mutex mu_;
  std::string address_;                                    // GUARDED_BY(mu_)
  std::shared_ptr<v1::PageService::Stub> stub_;            // GUARDED_BY(mu_) for replacement
  std::vector<std::unique_ptr<PageStream>> idle_streams_;  // GUARDED_BY(mu_)
  uint64_t next_request_id_ = 1;                           // GUARDED_BY(mu_)
};

}  // namespace cambium::shim

#endif  // CAMBIUM_COMPUTE_SHIM_PAGESERVER_CLIENT_H_
