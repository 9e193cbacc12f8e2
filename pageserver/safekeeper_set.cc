#include "pageserver/safekeeper_set.h"

#include <future>

#include "absl/strings/str_format.h"
#include "common/proto_convert.h"
#include "common/service.h"
#include "common/status.h"

namespace cambium::pageserver {

SafekeeperSet::SafekeeperSet(std::vector<std::string> addresses, absl::Duration rpc_timeout)
    : rpc_timeout_(rpc_timeout) {
  for (std::string& address : addresses) {
    auto channel = MakeChannel(address);
    Member m;
    m.client = std::make_unique<safekeeper::SafekeeperClient>(channel, address, rpc_timeout);
    m.stub = v1::SafekeeperService::NewStub(channel);
    m.address = std::move(address);
    members_.push_back(std::move(m));
  }
}

std::vector<absl::StatusOr<safekeeper::SafekeeperStatus>> SafekeeperSet::StatusAll(
    TenantId tenant, TimelineId timeline) {
  std::vector<std::future<absl::StatusOr<safekeeper::SafekeeperStatus>>> pending;
  for (Member& m : members_) {
    pending.push_back(std::async(
        std::launch::async, [&m, tenant, timeline] { return m.client->Status(tenant, timeline); }));
  }
  std::vector<absl::StatusOr<safekeeper::SafekeeperStatus>> out;
  for (auto& p : pending) out.push_back(p.get());
  return out;
}

absl::Status SafekeeperSet::DeleteTimeline(int i, TenantId tenant, TimelineId timeline) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + rpc_timeout_));
  v1::DeleteTimelineRequest request;
  ToProto(tenant, timeline, request.mutable_timeline());
  v1::DeleteTimelineResponse response;
  grpc::Status s = members_[i].stub->DeleteTimeline(&context, request, &response);
  if (s.ok()) return absl::OkStatus();
  return Annotate(FromGrpcStatus(s),
                  absl::StrFormat("DeleteTimeline on safekeeper %s", members_[i].address));
}

}  // namespace cambium::pageserver
