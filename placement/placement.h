// PlacementStore: which pageserver serves each tenant, and the tenant's move
// generation, kept in etcd (docs/scale-out.md "Where placement and generations
// live"). Keys:
//   /cambium/tenants/<name>        {"pageserver", "generation", "moving_to"} (JSON)
//   /cambium/pageservers/<name>    {"address"}
// Every change is a compare-and-put on the revision the writer read, so two
// controllers (two CLI commands) racing on one tenant cannot both move it, and a
// generation is never handed out twice.
//
// Thread-safety: not thread-safe.
#ifndef CAMBIUM_PLACEMENT_PLACEMENT_H_
#define CAMBIUM_PLACEMENT_PLACEMENT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "placement/etcd_client.h"

namespace cambium::placement {

struct TenantPlacement {
  std::string tenant;      // its name
  std::string pageserver;  // the pageserver serving it (its name in the stack)
  // Moves begun so far: a move's objects are sealed with, and keyed by, its
  // generation, so no two moves share one.
  uint64_t generation = 0;
  std::string moving_to;  // "" when settled; a move's destination while it runs
  int64_t revision = 0;   // the etcd revision it was read at; 0 = not stored yet
};

class PlacementStore {
 public:
  explicit PlacementStore(std::unique_ptr<EtcdClient> etcd) : etcd_(std::move(etcd)) {}

  absl::StatusOr<std::optional<TenantPlacement>> Get(const std::string& tenant);
  // Every tenant's placement, by tenant name (one range read).
  absl::StatusOr<std::map<std::string, TenantPlacement>> List();
  // Stores `p` if its record is still at p->revision (0: absent), and sets
  // p->revision to the new one; ABORTED, nothing written, if another writer changed
  // it meanwhile.
  absl::Status Put(TenantPlacement* p);

  absl::Status RegisterPageserver(const std::string& name, const std::string& address);
  // name -> address.
  absl::StatusOr<std::map<std::string, std::string>> Pageservers();

 private:
  std::unique_ptr<EtcdClient> etcd_;
};

}  // namespace cambium::placement

#endif  // CAMBIUM_PLACEMENT_PLACEMENT_H_
