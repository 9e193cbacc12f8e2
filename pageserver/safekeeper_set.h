// SafekeeperSet: the pageserver's connections to the safekeepers of its stack, one
// channel each, shared by the WAL receiver (following and reporting), head
// resolution and timeline deletion.
//
// Thread-safety: thread-safe; the clients are.
#ifndef CAMBIUM_PAGESERVER_SAFEKEEPER_SET_H_
#define CAMBIUM_PAGESERVER_SAFEKEEPER_SET_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cambium/v1/safekeeper_service.grpc.pb.h"
#include "common/ids.h"
#include "safekeeper/safekeeper_client.h"

namespace cambium::pageserver {

class SafekeeperSet {
 public:
  // `rpc_timeout` bounds each unary call (Status, ReportArchived, DeleteTimeline).
  explicit SafekeeperSet(std::vector<std::string> addresses,
                         absl::Duration rpc_timeout = absl::Seconds(2));

  int size() const { return static_cast<int>(members_.size()); }
  // Acknowledgements a commit needs: a majority.
  int quorum() const { return size() / 2 + 1; }
  const std::string& address(int i) const { return members_[i].address; }
  safekeeper::SafekeeperClient& client(int i) { return *members_[i].client; }

  // Status of the timeline on every safekeeper, asked in parallel; one result per
  // safekeeper, in order (NOT_FOUND: it never saw the timeline).
  std::vector<absl::StatusOr<safekeeper::SafekeeperStatus>> StatusAll(TenantId tenant,
                                                                      TimelineId timeline);
  // Deletes the timeline on safekeeper i (idempotent there).
  absl::Status DeleteTimeline(int i, TenantId tenant, TimelineId timeline);

 private:
  struct Member {
    std::string address;
    std::unique_ptr<safekeeper::SafekeeperClient> client;
    std::unique_ptr<v1::SafekeeperService::Stub> stub;
  };
  const absl::Duration rpc_timeout_;
  std::vector<Member> members_;
};

}  // namespace cambium::pageserver

#endif  // CAMBIUM_PAGESERVER_SAFEKEEPER_SET_H_
