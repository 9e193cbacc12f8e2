// WalTarget: where the compute's WAL goes to become durable (the safekeeper quorum).
//
// The shim appends every WAL byte Postgres writes, in LSN order except that the last
// partial page may be rewritten; an fsync of a WAL segment waits until a quorum has
// flushed everything appended so far.
//
// Thread-safety: implementations are thread-safe.
#ifndef CAMBIUM_COMPUTE_SHIM_WAL_TARGET_H_
#define CAMBIUM_COMPUTE_SHIM_WAL_TARGET_H_

#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/lsn.h"

namespace cambium::shim {

class WalTarget {
 public:
  virtual ~WalTarget() = default;
  // Queues WAL bytes at `lsn` (non-blocking).
  virtual absl::Status Append(Lsn lsn, std::string_view bytes) = 0;
  // Returns once WAL up to `lsn` is durable on a quorum; FAILED_PRECONDITION if this
  // writer was fenced.
  virtual absl::Status WaitForFlush(Lsn lsn, absl::Duration timeout) = 0;
};

}  // namespace cambium::shim

#endif  // CAMBIUM_COMPUTE_SHIM_WAL_TARGET_H_
