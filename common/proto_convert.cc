#include "common/proto_convert.h"

namespace cambium {

absl::StatusOr<TimelineKey> FromProto(const v1::TimelineRef& ref) {
  TimelineKey key{FromProto<TenantIdTag>(ref.tenant_id()),
                  FromProto<TimelineIdTag>(ref.timeline_id())};
  if (key.tenant.IsZero()) return absl::InvalidArgumentError("request names no tenant id");
  if (key.timeline.IsZero()) return absl::InvalidArgumentError("request names no timeline id");
  return key;
}

}  // namespace cambium
