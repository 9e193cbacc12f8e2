// In-memory AcceptorStorage for the acceptor unit tests and the seeded simulation,
// with a toy WAL record format.
//
// Toy records are [u32 total length][u32 check][payload], back to back from the
// timeline start; the check mixes the record's LSN in, so a stale record never
// validates at another position, and a zero length ends the WAL (as zero padding
// ends Postgres WAL). ToyLastRecordEnd plays the role of the Postgres decoder.
//
// SimStorage keeps only durable state: WriteDurable is durable when it returns. A
// crash can be injected into a write (a random prefix of it lands, the rest is
// lost: a torn write); Recover() then does what the disk storage does at startup:
// keep the complete records and cut the torn tail. A full disk (SetFull) refuses
// writes that need new space and every state change with RESOURCE_EXHAUSTED and
// changes nothing durable, as the disk storage promises (a prefix of a refused
// write may land in space already allocated above the flush LSN, like the bytes
// of any write that was not acknowledged: written_end()).
//
// Thread-safety: not thread-safe.
#ifndef CAMBIUM_TESTS_SAFEKEEPER_SIM_STORAGE_H_
#define CAMBIUM_TESTS_SAFEKEEPER_SIM_STORAGE_H_

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "safekeeper/acceptor.h"

namespace cambium::safekeeper::sim {

// A toy record at `at` with `payload` (REQUIRES: payload is non-empty).
std::string ToyRecord(Lsn at, std::string_view payload);
// The end of the last complete toy record in `bytes`, which start at `start` (a
// record boundary).
Lsn ToyLastRecordEnd(Lsn start, std::string_view bytes);

class SimStorage : public AcceptorStorage {
 public:
  explicit SimStorage(Lsn timeline_start);

  Lsn flush_lsn() const override { return flush_; }
  Lsn written_end() const override { return std::max(flush_, start_ + wal_.size()); }
  absl::Status PersistState(const AcceptorState& state) override;
  absl::Status WriteDurable(Lsn lsn, std::string_view bytes) override;
  absl::StatusOr<std::string> Read(Lsn lsn, uint64_t size) override;
  absl::Status Truncate(Lsn lsn, const AcceptorState& state) override;
  absl::StatusOr<Lsn> LastRecordEnd(Lsn limit) override;
  // The simulation's proposers never skip (they keep their whole log).
  absl::Status StartWalAt(Lsn lsn, const AcceptorState& state) override {
    return absl::UnimplementedError("sim: skipping WAL is not simulated");
  }

  // The next WriteDurable writes a random prefix and fails as a crash would.
  void CrashOnNextWrite(std::mt19937_64* rng) { crash_rng_ = rng; }
  bool crashed() const { return crashed_; }
  // Makes the next WriteDurable / PersistState fail (an fsync error).
  void FailNextSync() { fail_next_sync_ = true; }
  // Fills or frees the disk (see above); `rng` picks the prefix a refused write
  // leaves in allocated space.
  void SetFull(bool full, std::mt19937_64* rng = nullptr) {
    full_ = full;
    full_rng_ = rng;
  }
  bool full() const { return full_; }
  // Requests refused for a full disk so far.
  int no_space_refusals() const { return no_space_refusals_; }
  // Startup after a crash: complete records survive, the torn tail is cut.
  AcceptorState Recover();

  const AcceptorState& persisted() const { return persisted_; }
  // Every durable byte from the timeline start (including a torn tail).
  const std::string& wal() const { return wal_; }

 private:
  const Lsn start_;
  std::string wal_;
  Lsn flush_;
  AcceptorState persisted_;
  std::mt19937_64* crash_rng_ = nullptr;
  bool crashed_ = false;
  bool fail_next_sync_ = false;
  bool full_ = false;
  std::mt19937_64* full_rng_ = nullptr;
  int no_space_refusals_ = 0;
  // Bytes that have space on "disk" (written at some point, even if truncated).
  uint64_t allocated_ = 0;
};

}  // namespace cambium::safekeeper::sim

#endif  // CAMBIUM_TESTS_SAFEKEEPER_SIM_STORAGE_H_
