#include "pageserver/wal_receiver.h"

#include <set>

#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "pageserver/pageserver_metrics.h"
#include "safekeeper/safekeeper_client.h"

namespace cambium::pageserver {
namespace {

// How long a follower waits for WAL before it checks whether the writer is gone.
constexpr absl::Duration kIdleCheck = absl::Seconds(2);
// How often an unchanged archived LSN is reported again (wal_receiver.h, reported_).
constexpr absl::Duration kReportRefresh = absl::Seconds(30);

}  // namespace

struct WalReceiver::Follower {
  std::shared_ptr<Timeline> timeline;
  std::thread thread;
  std::atomic<bool> done{false};
  std::mutex mu;
  safekeeper::WalFollower* current = nullptr;  // GUARDED_BY(mu): to cancel on stop
  // The highest commit LSN learned from a safekeeper: its status when the follower
  // (re)connects, then the end of each committed chunk received.
  std::atomic<uint64_t> known_committed{0};
};

namespace {

void RaiseTo(std::atomic<uint64_t>& value, Lsn lsn) {
  uint64_t seen = value.load(std::memory_order_relaxed);
  while (seen < lsn.value() &&
         !value.compare_exchange_weak(seen, lsn.value(), std::memory_order_relaxed)) {
  }
}

}  // namespace

WalReceiver::WalReceiver(Repository* repo, SafekeeperSet* safekeepers, WalReceiverOptions options)
    : repo_(repo), safekeepers_(safekeepers), options_(options) {
  if (safekeepers_->size() > 0) housekeeping_ = std::thread([this] { Housekeeping(); });
  metrics_ = metrics::Must(metrics::DefaultRegistry().AddCallback(
      metrics::MetricType::kGauge, "cambium_pageserver_wal_archive_lag_bytes",
      "Committed WAL a safekeeper reported (at the receiver's last status query or chunk) that "
      "the archive does not hold yet, per followed timeline.",
      {"tenant", "timeline"}, [this](std::vector<metrics::Sample>* out) { CollectLag(out); }));
}

void WalReceiver::CollectLag(std::vector<metrics::Sample>* out) {
  std::vector<std::pair<std::shared_ptr<Timeline>, Lsn>> known;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, f] : followers_) {
      known.emplace_back(f->timeline, Lsn(f->known_committed.load(std::memory_order_relaxed)));
    }
  }
  for (const auto& [t, committed] : known) {
    if (t->deleted()) continue;
    auto end = repo_->archive().End(*t);
    if (!end.ok()) continue;
    out->push_back({.label_values = {t->tenant_id().ToString(), t->id().ToString()},
                    .value = committed > *end ? static_cast<double>(committed - *end) : 0.0});
  }
}

WalReceiver::~WalReceiver() { Stop(); }

void WalReceiver::Stop() {
  if (stopping_.exchange(true)) return;
  std::map<TimelineId, std::unique_ptr<Follower>> followers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    followers.swap(followers_);
    stop_cv_.notify_all();
  }
  for (auto& [id, f] : followers) {
    {
      std::lock_guard<std::mutex> lock(f->mu);
      if (f->current) f->current->Cancel();
    }
    if (f->thread.joinable()) f->thread.join();
  }
  if (housekeeping_.joinable()) housekeeping_.join();
}

void WalReceiver::Follow(const std::shared_ptr<Timeline>& timeline) {
  if (safekeepers_->size() == 0 || stopping_) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = followers_.find(timeline->id());
  if (it != followers_.end()) {
    if (!it->second->done) return;
    it->second->thread.join();
    followers_.erase(it);
  }
  auto f = std::make_unique<Follower>();
  f->timeline = timeline;
  Follower* raw = f.get();
  f->thread = std::thread([this, raw] { Run(raw); });
  followers_[timeline->id()] = std::move(f);
}

void WalReceiver::Run(Follower* f) {
  LogInfo("wal_receiver_started", {{"timeline", f->timeline->id()}});
  absl::Duration backoff = absl::Milliseconds(100);
  while (!stopping_ && !f->timeline->deleted()) {
    const Lsn before = repo_->archive().End(*f->timeline).value_or(Lsn());
    if (FollowOnce(f)) break;  // the writer is gone and everything committed is archived
    // Backoff only while nothing arrives (errors, no safekeeper reachable).
    if (repo_->archive().End(*f->timeline).value_or(Lsn()) > before) {
      backoff = absl::Milliseconds(100);
      continue;
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(2));
  }
  LogInfo("wal_receiver_stopped", {{"timeline", f->timeline->id()}});
  f->done = true;
}

int WalReceiver::PickSafekeeper(const Timeline& t, Lsn* committed) {
  auto statuses = safekeepers_->StatusAll(t.tenant_id(), t.id());
  int best = -1;
  *committed = Lsn();
  const absl::Time now = absl::Now();
  std::lock_guard<std::mutex> lock(mu_);
  for (int i = 0; i < static_cast<int>(statuses.size()); ++i) {
    if (!statuses[i].ok()) continue;
    auto avoided = avoid_until_.find(i);
    if (avoided != avoid_until_.end() && avoided->second > now) continue;
    if (best < 0 || statuses[i]->committed_lsn > *committed) {
      best = i;
      *committed = statuses[i]->committed_lsn;
    }
  }
  return best;
}

// Follows the best safekeeper until an error (returns false: try again) or until
// the timeline is idle for good (returns true).
bool WalReceiver::FollowOnce(Follower* f) {
  Timeline& t = *f->timeline;
  WalArchive& archive = repo_->archive();
  auto end = archive.End(t);
  if (!end.ok()) return false;
  Lsn best_committed;
  const int best = PickSafekeeper(t, &best_committed);
  RaiseTo(f->known_committed, best_committed);
  const bool writer_active = t.WriterActiveWithin(repo_->options().writer_lease);
  if (best < 0) return !writer_active;  // no safekeeper has it (or none answered)
  if (best_committed <= *end && !writer_active) return true;  // idle for good
  // Follow even when nothing is new: the stream delivers the next commit at once
  // (polling would add its interval to every head resolution's wait).
  auto follower = safekeepers_->client(best).Follow(t.tenant_id(), t.id(), *end);
  {
    std::lock_guard<std::mutex> lock(f->mu);
    f->current = follower.get();
  }
  // A watchdog cancels the stream when the writer is gone and nothing arrives.
  std::atomic<absl::Time> last_data{absl::Now()};
  std::atomic<bool> finished{false};
  std::thread watchdog([&] {
    while (!finished && !stopping_) {
      absl::SleepFor(absl::Milliseconds(200));
      if (absl::Now() - last_data.load() > kIdleCheck &&
          !t.WriterActiveWithin(repo_->options().writer_lease)) {
        follower->Cancel();
        return;
      }
    }
    if (stopping_) follower->Cancel();
  });
  std::string pending;  // bytes from the archive's end not yet archived (a partial record)
  Lsn pending_start = *end;
  bool ok = true;
  for (;;) {
    auto chunk = follower->Next();
    if (!chunk.ok() || !chunk->has_value()) {
      if (!chunk.ok()) {
        ok = false;
        LogWarning("wal_receiver_stream_failed", {{"timeline", t.id()},
                                                  {"safekeeper", safekeepers_->address(best)},
                                                  {"status", chunk.status()}});
        if (absl::IsDataLoss(chunk.status())) {
          std::lock_guard<std::mutex> lock(mu_);
          avoid_until_[best] = absl::Now() + options_.avoid_damaged_for;
        }
      }
      break;
    }
    last_data = absl::Now();
    RaiseTo(f->known_committed, (*chunk)->start + (*chunk)->data.size());
    if ((*chunk)->start != pending_start + pending.size()) {
      // The archive may have moved on by itself (a head resolved from a safekeeper).
      auto archived = archive.End(t);
      if (archived.ok() && *archived > pending_start) break;
      LogWarning("wal_receiver_gap", {{"timeline", t.id()},
                                      {"expected", pending_start + pending.size()},
                                      {"got", (*chunk)->start}});
      ok = false;
      break;
    }
    pending += (*chunk)->data;
    absl::Status s = archive.Append(t, pending_start, pending, /*sync=*/false);
    if (!s.ok()) {
      if (!t.deleted()) LogError("wal_archive_failed", {{"timeline", t.id()}, {"status", s}});
      if (absl::IsDataLoss(s)) {  // the safekeeper served WAL that fails its CRC
        std::lock_guard<std::mutex> lock(mu_);
        avoid_until_[best] = absl::Now() + options_.avoid_damaged_for;
      }
      ok = false;
      break;
    }
    auto archived = archive.End(t);
    if (archived.ok() && *archived > pending_start) {
      PageServerMetrics::Get().wal_received_bytes.Increment(*archived - pending_start);
      const bool skipped = *archived > pending_start + pending.size();  // a WAL switch
      pending.erase(0, std::min<uint64_t>(pending.size(), *archived - pending_start));
      pending_start = *archived;
      if (skipped) break;  // follow again from the next segment
    }
  }
  finished = true;
  watchdog.join();
  {
    std::lock_guard<std::mutex> lock(f->mu);
    f->current = nullptr;
  }
  return ok && !stopping_ && !t.WriterActiveWithin(repo_->options().writer_lease) &&
         pending_start >= best_committed;
}

void WalReceiver::Housekeeping() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.report_interval));
    if (stopping_) break;
    lock.unlock();
    ReportArchived();
    DeleteOnSafekeepers();
    lock.lock();
  }
}

void WalReceiver::ReportArchived() {
  // Ends read before the sync are durable after it: only those are reported.
  std::vector<std::pair<std::shared_ptr<Timeline>, Lsn>> ends;
  for (const auto& t : repo_->AllTimelines()) {
    if (t->deleted() || t->generation() == 0) continue;  // never written through safekeepers
    auto end = repo_->archive().End(*t);
    if (!end.ok()) continue;
    Lsn report = *end;
    if (options_.uploaded_end) report = std::min(report, options_.uploaded_end(t->id()));
    if (report.valid()) ends.emplace_back(t, report);
  }
  bool synced = false;
  for (const auto& [t, end] : ends) {
    for (int i = 0; i < safekeepers_->size(); ++i) {
      Reported& reported = reported_[{t->id(), i}];
      const absl::Time now = absl::Now();
      if (reported.end >= end && now - reported.at < kReportRefresh) continue;
      if (!synced) {
        if (!repo_->store()->Sync().ok()) return;
        synced = true;
      }
      absl::Status s = safekeepers_->client(i).ReportArchived(t->tenant_id(), t->id(), end);
      // A safekeeper that never saw the timeline has nothing to trim.
      if (s.ok() || absl::IsNotFound(s)) reported = {end, now};
    }
  }
  // Forget timelines that are gone.
  std::set<TimelineId> known;
  for (const auto& [t, end] : ends) known.insert(t->id());
  for (auto it = reported_.begin(); it != reported_.end();) {
    it = known.count(it->first.first) ? std::next(it) : reported_.erase(it);
  }
}

void WalReceiver::DeleteOnSafekeepers() {
  const auto pending = repo_->PendingSafekeeperDeletions();
  if (pending.empty()) return;
  if (options_.before_safekeeper_delete) {
    if (absl::Status s = options_.before_safekeeper_delete(); !s.ok()) {
      LogDebug("safekeeper_delete_deferred", {{"status", s}});
      return;
    }
  }
  for (const auto& [tenant, timeline] : pending) {
    bool all = true;
    for (int i = 0; i < safekeepers_->size(); ++i) {
      absl::Status s = safekeepers_->DeleteTimeline(i, tenant, timeline);
      if (!s.ok() && !absl::IsNotFound(s)) {
        all = false;
        LogDebug("safekeeper_delete_deferred", {{"timeline", timeline}, {"status", s}});
      }
    }
    if (all) {
      absl::Status done = repo_->SafekeeperDeletionDone(tenant, timeline);
      if (done.ok()) LogInfo("safekeeper_timeline_deleted", {{"timeline", timeline}});
    }
  }
}

}  // namespace cambium::pageserver
