// MutationSender: streams a compute's tagged file mutations to the pageserver.
//
// Mutations are numbered in the order they are queued (their tags never decrease in
// that order) and sent in batches on one PutMutations stream. A batch that nobody
// waits for lingers up to `batch_linger` for more mutations. The pageserver
// acknowledges each batch once applied; a batch with `sync` is acknowledged once it
// and everything before it is durable. Barrier() is how fsync reaches the pageserver:
// it waits for a synced batch covering every mutation queued before the call. A sync
// is also requested every `sync_interval` while anything is unsynced, so that the
// block cache can release what it pinned.
//
// Every stream (and every reconnect) opens with a hello naming the generation: the
// pageserver counts the writer as live while the stream is open, so an idle compute
// is never taken for dead (ARCHITECTURE.md section 7). A hello refused because this
// writer was fenced or released fails the sender at once.
//
// Until a batch is covered by a synced acknowledgement it stays in a retransmission
// buffer: if the stream breaks (the pageserver restarted), the sender reconnects and
// resends every unsynced batch; the pageserver recognises batches it already applied
// by their sequence numbers. The buffer is bounded: past `max_unsynced_bytes` the
// sender asks for a sync itself, and Enqueue blocks once queued and unsynced bytes
// together pass twice that (backpressure, also while the pageserver is away).
//
// A pageserver whose store refuses writes after it found damage (DATA_LOSS) is
// waited out like an unreachable one: the damage is the store's, not the mutations'.
//
// A refusal that cannot be retried (a newer writer fenced this one, or the pageserver
// rejected a mutation) is sticky: every later call fails with it, so Postgres sees
// write and fsync errors instead of silently lost writes.
//
// A full pageserver disk (RESOURCE_EXHAUSTED) is not sticky: new mutations are refused
// at once (Postgres gets ENOSPC for that write and keeps the buffer dirty, as on a full
// local disk) while what is queued is retried every second; barriers wait; everything
// resumes once the pageserver has space again.
//
// Thread-safety: thread-safe.
#ifndef CAMBIUM_COMPUTE_SHIM_MUTATION_SENDER_H_
#define CAMBIUM_COMPUTE_SHIM_MUTATION_SENDER_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cambium/v1/page_service.pb.h"
#include "compute-shim/pageserver_client.h"
#include "metrics/registry.h"

namespace cambium::shim {

struct MutationSenderOptions {
  // Most mutations per batch. Default: 256.
  size_t max_batch_mutations = 256;
  // Bytes of unsynced batches after which the sender requests a sync. Default: 64 MiB.
  size_t max_unsynced_bytes = 64 << 20;
  // How long to keep reconnecting to an unreachable pageserver, while mutations wait,
  // before failing. Default: 60 s.
  absl::Duration retry_for = absl::Seconds(60);
  // A sync is requested when something has been unsynced this long. Default: 1 s.
  absl::Duration sync_interval = absl::Seconds(1);
  // How long a batch short of max_batch_mutations waits for more mutations when
  // nobody waits for it (no Barrier, no WaitApplied): a bulk load sends few big
  // batches instead of one message, one acknowledgement and one pageserver
  // write per block. Default: 1 ms.
  absl::Duration batch_linger = absl::Milliseconds(1);
};

class MutationSender {
 public:
  // on_durable(n) is called (from the sender's thread) whenever every mutation up to
  // number n is durable at the pageserver (synced, not merely applied: a pageserver
  // host crash loses what was applied and not synced, and the shim resends it).
  MutationSender(PageserverClient* client, uint64_t generation, MutationSenderOptions options,
                 std::function<void(uint64_t)> on_durable);
  ~MutationSender();

  // Queues a mutation; returns its number (1, 2, ...). REQUIRES: its tag is >= the tag
  // of every mutation queued before.
  absl::StatusOr<uint64_t> Enqueue(v1::Mutation mutation);
  // Waits until every mutation queued before the call is durable at the pageserver.
  absl::Status Barrier();
  // Waits until mutation `n` is applied at the pageserver (so reads see it).
  absl::Status WaitApplied(uint64_t n);
  // Stops the threads. Unsynced mutations are lost unless Barrier() returned first.
  void Stop();

 private:
  struct Batch {
    // Shared with a send in progress, which writes it without holding mu_.
    std::shared_ptr<const v1::PutMutationsRequest> request;
    uint64_t last_mutation = 0;
    size_t bytes = 0;
  };

  void SendLoop();
  void ReadLoop(
      std::shared_ptr<grpc::ClientReaderWriter<v1::PutMutationsRequest, v1::PutMutationsResponse>>
          stream,
      uint64_t epoch);
  bool OpenStreamLocked(std::unique_lock<std::mutex>& lock);
  void FailLocked(absl::Status status);
  void NotifyAllLocked();  // wakes the waiters and the sender thread

  PageserverClient* const client_;
  const uint64_t generation_;
  const MutationSenderOptions options_;
  const std::function<void(uint64_t)> on_durable_;

  mutable std::mutex mu_;
  std::condition_variable cv_;       // waiters: Barrier, WaitApplied, backpressure
  std::condition_variable send_cv_;  // the sender thread: new work or a state change
  struct Pending {
    v1::Mutation mutation;
    size_t bytes = 0;  // its encoded size
  };
  std::deque<Pending> pending_;  // GUARDED_BY(mu_): not yet in a batch
  size_t pending_bytes_ = 0;     // GUARDED_BY(mu_)
  uint64_t queued_ = 0;          // GUARDED_BY(mu_): number of the last queued mutation
  uint64_t batched_ = 0;         // GUARDED_BY(mu_): number of the last batched mutation
  std::deque<Batch> unsynced_;   // GUARDED_BY(mu_): sent (or to resend), not synced; seqs
                                 // are consecutive
  size_t unsynced_bytes_ = 0;    // GUARDED_BY(mu_)
  size_t resend_from_ = 0;       // GUARDED_BY(mu_): index into unsynced_ to (re)send next
  uint64_t next_seq_ = 1;        // GUARDED_BY(mu_)
  uint64_t applied_ = 0;         // GUARDED_BY(mu_): mutations applied
  uint64_t synced_ = 0;          // GUARDED_BY(mu_): mutations durable
  uint64_t sync_wanted_ = 0;     // GUARDED_BY(mu_): a sync must cover this mutation
  uint64_t apply_wanted_ = 0;    // GUARDED_BY(mu_): WaitApplied waits for this mutation
  absl::Time linger_until_ = absl::InfinitePast();  // GUARDED_BY(mu_): of the pending batch
  absl::Status error_;                              // GUARDED_BY(mu_): sticky
  bool stopping_ = false;                           // GUARDED_BY(mu_)

  std::shared_ptr<v1::PageService::Stub> stub_;  // GUARDED_BY(mu_): outlives stream_
  std::shared_ptr<grpc::ClientContext> ctx_;     // GUARDED_BY(mu_)
  std::shared_ptr<grpc::ClientReaderWriter<v1::PutMutationsRequest, v1::PutMutationsResponse>>
      stream_;                  // GUARDED_BY(mu_)
  uint64_t stream_epoch_ = 0;   // GUARDED_BY(mu_): bumps on every reconnect
  bool stream_broken_ = false;  // GUARDED_BY(mu_)
  absl::Status full_;           // GUARDED_BY(mu_): the pageserver's disk is full
  absl::Time broken_since_;     // GUARDED_BY(mu_)
  absl::Time last_sync_sent_;   // GUARDED_BY(mu_)
  std::thread reader_;
  std::thread sender_;
  // cambium_shim_mutation_queue_bytes. Last member: unregistered before the rest goes.
  metrics::CallbackHandle metrics_;
};

}  // namespace cambium::shim

#endif  // CAMBIUM_COMPUTE_SHIM_MUTATION_SENDER_H_
