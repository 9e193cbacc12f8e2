#include "compute-shim/mutation_sender.h"

#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/status.h"
#include "compute-shim/shim_metrics.h"

namespace cambium::shim {

MutationSender::MutationSender(PageserverClient* client, uint64_t generation,
                               MutationSenderOptions options,
                               std::function<void(uint64_t)> on_durable)
    : client_(client),
      generation_(generation),
      options_(options),
      on_durable_(std::move(on_durable)),
      last_sync_sent_(absl::Now()) {
  sender_ = std::thread([this] { SendLoop(); });
  metrics_ = metrics::Must(metrics::DefaultRegistry().AddCallback(
      metrics::MetricType::kGauge, "cambium_shim_mutation_queue_bytes",
      "Encoded bytes of mutations not yet durable at the pageserver (queued, or sent and "
      "kept for resending); writes block at twice max_unsynced_bytes.",
      {}, [this](std::vector<metrics::Sample>* out) {
        std::lock_guard<std::mutex> lock(mu_);
        out->push_back({.value = static_cast<double>(pending_bytes_ + unsynced_bytes_)});
      }));
}

MutationSender::~MutationSender() { Stop(); }

void MutationSender::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    if (ctx_) ctx_->TryCancel();
    NotifyAllLocked();
  }
  if (sender_.joinable()) sender_.join();
  if (reader_.joinable()) reader_.join();
}

void MutationSender::NotifyAllLocked() {
  cv_.notify_all();
  send_cv_.notify_one();
}

void MutationSender::FailLocked(absl::Status status) {
  if (error_.ok()) {
    error_ = std::move(status);
    LogError("mutations_failed", {{"generation", generation_}, {"status", error_}});
  }
  NotifyAllLocked();
}

absl::StatusOr<uint64_t> MutationSender::Enqueue(v1::Mutation mutation) {
  std::unique_lock<std::mutex> lock(mu_);
  // Backpressure: the retransmission buffer must stay bounded.
  cv_.wait(lock, [&] {
    return !error_.ok() || stopping_ ||
           unsynced_bytes_ + pending_bytes_ < 2 * options_.max_unsynced_bytes;
  });
  if (!error_.ok()) return error_;
  if (stopping_) return absl::CancelledError("the shim is shutting down");
  if (!full_.ok()) return full_;  // refuse new work until the pageserver has space
  // Only the sender thread waits for new mutations: it sleeps with none pending,
  // or lingers until the batch is full.
  if (pending_.empty() || pending_.size() + 1 == options_.max_batch_mutations) {
    send_cv_.notify_one();
  }
  const size_t bytes = mutation.ByteSizeLong();
  pending_bytes_ += bytes;
  pending_.push_back(Pending{std::move(mutation), bytes});
  return ++queued_;
}

absl::Status MutationSender::Barrier() {
  metrics::ScopedTimer timer(ShimMetrics::Get().mutation_barrier_seconds);
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = queued_;
  if (synced_ >= target) return error_;
  sync_wanted_ = std::max(sync_wanted_, target);
  send_cv_.notify_one();
  cv_.wait(lock, [&] { return !error_.ok() || stopping_ || synced_ >= target; });
  if (!error_.ok()) return error_;
  if (synced_ < target) return absl::CancelledError("the shim is shutting down");
  return absl::OkStatus();
}

absl::Status MutationSender::WaitApplied(uint64_t n) {
  std::unique_lock<std::mutex> lock(mu_);
  if (applied_ < n && apply_wanted_ < n) {
    apply_wanted_ = n;  // no lingering for it
    send_cv_.notify_one();
  }
  cv_.wait(lock, [&] { return !error_.ok() || stopping_ || applied_ >= n; });
  if (!error_.ok()) return error_;
  if (applied_ < n) return absl::CancelledError("the shim is shutting down");
  return absl::OkStatus();
}

bool MutationSender::OpenStreamLocked(std::unique_lock<std::mutex>& lock) {
  if (ctx_) ctx_->TryCancel();
  lock.unlock();
  if (reader_.joinable()) reader_.join();
  lock.lock();
  if (stopping_) return false;
  ctx_ = std::make_shared<grpc::ClientContext>();
  stub_ = client_->CurrentStub();
  std::shared_ptr<grpc::ClientReaderWriter<v1::PutMutationsRequest, v1::PutMutationsResponse>>
      stream(stub_->PutMutations(ctx_.get()));
  stream_ = stream;
  stream_broken_ = false;
  const uint64_t epoch = ++stream_epoch_;
  resend_from_ = 0;  // everything unsynced goes again; the pageserver skips what it has
  reader_ = std::thread([this, stream, epoch] { ReadLoop(stream, epoch); });
  // The hello: from now on the pageserver knows this writer is live.
  v1::PutMutationsRequest hello;
  hello.mutable_timeline()->CopyFrom(client_->ref());
  hello.set_generation(generation_);
  hello.set_hello(true);
  lock.unlock();
  const bool sent = stream->Write(hello);  // a failure shows up in the reader
  lock.lock();
  (void)sent;
  return !stopping_;
}

void MutationSender::ReadLoop(
    std::shared_ptr<grpc::ClientReaderWriter<v1::PutMutationsRequest, v1::PutMutationsResponse>>
        stream,
    uint64_t epoch) {
  v1::PutMutationsResponse resp;
  while (stream->Read(&resp)) {
    uint64_t applied = 0, durable = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (resp.seq() == 0) continue;  // the hello's answer
      if (!full_.ok()) {
        LogInfo("pageserver_has_space_again", {{"generation", generation_}});
        full_ = absl::OkStatus();
      }
      if (!unsynced_.empty() && resp.seq() >= unsynced_.front().request->seq() &&
          resp.seq() - unsynced_.front().request->seq() < unsynced_.size()) {
        applied = unsynced_[resp.seq() - unsynced_.front().request->seq()].last_mutation;
      }
      if (applied > applied_) applied_ = applied;
      if (resp.synced() && applied > synced_) {
        synced_ = applied;
        durable = applied;
        // Everything up to this batch is durable: it never needs resending.
        while (!unsynced_.empty() && unsynced_.front().request->seq() <= resp.seq()) {
          unsynced_bytes_ -= unsynced_.front().bytes;
          unsynced_.pop_front();
          if (resend_from_ > 0) --resend_from_;
        }
      }
      NotifyAllLocked();
    }
    if (durable > 0 && on_durable_) on_durable_(durable);
  }
  grpc::Status s = stream->Finish();
  client_->FollowMove(s);  // a moved tenant: the reconnect goes to its new pageserver
  std::lock_guard<std::mutex> lock(mu_);
  if (epoch != stream_epoch_ || stopping_) return;
  const bool full = s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
  // DATA_LOSS is the pageserver's store refusing writes after it found damage
  // (a corrupt SST in a background compaction), not a fault of the mutations:
  // like an unreachable pageserver, wait for it to be repaired and restarted
  // and resend what is unsynced.
  const bool damaged = s.error_code() == grpc::StatusCode::DATA_LOSS;
  const bool retryable = s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                         s.error_code() == grpc::StatusCode::CANCELLED || s.ok() || full || damaged;
  if (!retryable) {
    FailLocked(FromGrpcStatus(s));
    return;
  }
  if (full) {
    if (full_.ok()) LogError("pageserver_disk_full", {{"status", FromGrpcStatus(s)}});
    full_ = FromGrpcStatus(s);
  }
  LogWarning("mutation_stream_broken", {{"status", FromGrpcStatus(s)}});
  stream_broken_ = true;
  broken_since_ = absl::Now();
  NotifyAllLocked();
}

void MutationSender::SendLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_ && error_.ok()) {
    if (!stream_ || stream_broken_) {
      // An idle writer keeps reconnecting for as long as it takes, and so does one
      // whose pageserver is full (it refuses new work meanwhile).
      if ((pending_.empty() && unsynced_.empty()) || !full_.ok()) broken_since_ = absl::Now();
      if (stream_broken_ && absl::Now() - broken_since_ > options_.retry_for) {
        FailLocked(
            absl::UnavailableError(absl::StrFormat("the pageserver has been unreachable for %s",
                                                   absl::FormatDuration(options_.retry_for))));
        break;
      }
      if (stream_) {
        lock.unlock();
        absl::SleepFor(full_.ok() ? absl::Milliseconds(200) : absl::Seconds(1));
        client_->Reconnect();
        lock.lock();
        if (stopping_) break;
      }
      if (!OpenStreamLocked(lock)) break;
      continue;
    }
    // Form a batch from pending mutations (or an empty one that only syncs).
    const bool want_sync = sync_wanted_ > synced_ ||
                           unsynced_bytes_ > options_.max_unsynced_bytes ||
                           (!unsynced_.empty() && synced_ < batched_ &&
                            absl::Now() - last_sync_sent_ > options_.sync_interval);
    const bool have_unsent = resend_from_ < unsynced_.size();
    const bool sync_in_flight = [&] {
      for (size_t i = 0; i < resend_from_; ++i) {
        if (unsynced_[i].request->sync() && unsynced_[i].last_mutation >= sync_wanted_) return true;
      }
      return false;
    }();
    if (!pending_.empty() && !want_sync && apply_wanted_ <= batched_ && !have_unsent &&
        pending_.size() < options_.max_batch_mutations) {
      // Nobody waits for this batch: give it batch_linger to fill up.
      const absl::Time now = absl::Now();
      if (linger_until_ == absl::InfinitePast()) linger_until_ = now + options_.batch_linger;
      if (now < linger_until_) {
        send_cv_.wait_for(lock, absl::ToChronoNanoseconds(linger_until_ - now));
        continue;
      }
    }
    if (!pending_.empty() || (want_sync && !sync_in_flight && !have_unsent)) {
      linger_until_ = absl::InfinitePast();
      auto request = std::make_shared<v1::PutMutationsRequest>();
      request->mutable_timeline()->CopyFrom(client_->ref());
      request->set_generation(generation_);
      request->set_seq(next_seq_++);
      Batch batch;
      while (!pending_.empty() &&
             static_cast<size_t>(request->mutations_size()) < options_.max_batch_mutations) {
        batch.bytes += pending_.front().bytes;
        pending_bytes_ -= pending_.front().bytes;
        *request->add_mutations() = std::move(pending_.front().mutation);
        pending_.pop_front();
        ++batched_;
      }
      batch.last_mutation = batched_;
      request->set_sync(pending_.empty() && want_sync);
      if (request->sync()) last_sync_sent_ = absl::Now();
      batch.request = std::move(request);
      unsynced_bytes_ += batch.bytes;
      unsynced_.push_back(std::move(batch));
      continue;
    }
    if (have_unsent) {
      const std::shared_ptr<const v1::PutMutationsRequest> request =
          unsynced_[resend_from_].request;
      const size_t bytes = unsynced_[resend_from_].bytes;
      ++resend_from_;
      auto stream = stream_;
      lock.unlock();
      // Counted as the batch is handed to the stream: counted after Write returned,
      // the pageserver's acknowledgement could complete a Barrier first, and a
      // scrape (or a test) after the Barrier missed the batch. A batch whose stream
      // breaks is resent and counted again, as the metrics say.
      const ShimMetrics& m = ShimMetrics::Get();
      m.mutation_batches_sent.Increment();
      m.mutations_sent.Increment(request->mutations_size());
      m.mutation_sent_bytes.Increment(bytes);
      const bool ok = stream->Write(*request);
      lock.lock();
      if (!ok && !stream_broken_) {
        // The reader will see the error; wait for it to decide.
        send_cv_.wait_for(lock, std::chrono::milliseconds(100));
      }
      continue;
    }
    send_cv_.wait_for(lock, std::chrono::milliseconds(100));
  }
  if (ctx_) ctx_->TryCancel();
  NotifyAllLocked();
}

}  // namespace cambium::shim
