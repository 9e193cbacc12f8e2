// Conversions between Cambium's strong types and their cambium.v1 wire forms.
//
// Thread-safety: pure functions.
#ifndef CAMBIUM_COMMON_PROTO_CONVERT_H_
#define CAMBIUM_COMMON_PROTO_CONVERT_H_

#include "absl/status/statusor.h"
#include "cambium/v1/common.pb.h"
#include "common/ids.h"

namespace cambium {

template <typename Tag>
void ToProto(const Id128<Tag>& id, v1::Id128* out) {
  out->set_hi(id.hi());
  out->set_lo(id.lo());
}

template <typename Tag>
Id128<Tag> FromProto(const v1::Id128& id) {
  return Id128<Tag>(id.hi(), id.lo());
}

// The 32-hex-digit form of an id, as Id128::ToString prints it.
inline std::string IdHex(const v1::Id128& id) { return FromProto<TenantIdTag>(id).ToString(); }

inline void ToProto(const TenantId& tenant, const TimelineId& timeline, v1::TimelineRef* out) {
  ToProto(tenant, out->mutable_tenant_id());
  ToProto(timeline, out->mutable_timeline_id());
}

// The ids of a TimelineRef; INVALID_ARGUMENT if either is missing or zero.
struct TimelineKey {
  TenantId tenant;
  TimelineId timeline;
  auto operator<=>(const TimelineKey&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const TimelineKey& k) {
    return H::combine(std::move(h), k.tenant, k.timeline);
  }
};
absl::StatusOr<TimelineKey> FromProto(const v1::TimelineRef& ref);

}  // namespace cambium

#endif  // CAMBIUM_COMMON_PROTO_CONVERT_H_
