#include "pageserver/wal_receiver.h"

#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "safekeeper/safekeeper_client.h"

namespace cambium::pageserver {
namespace {

// How long a follower waits for WAL before it checks whether the writer is gone.
constexpr absl::Duration kIdleCheck = absl::Seconds(2);
// How often the archive is synced and reported.
constexpr absl::Duration kReportInterval = absl::Seconds(1);

}  // namespace

struct WalReceiver::Follower {
  std::shared_ptr<Timeline> timeline;
  std::thread thread;
  std::atomic<bool> done{false};
  std::mutex mu;
  safekeeper::WalFollower* current = nullptr;  // GUARDED_BY(mu): to cancel on stop
};

WalReceiver::WalReceiver(Repository* repo, std::vector<std::string> safekeepers)
    : repo_(repo), safekeepers_(std::move(safekeepers)) {}

WalReceiver::~WalReceiver() { Stop(); }

void WalReceiver::Stop() {
  if (stopping_.exchange(true)) return;
  std::map<TimelineId, std::unique_ptr<Follower>> followers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    followers.swap(followers_);
  }
  for (auto& [id, f] : followers) {
    {
      std::lock_guard<std::mutex> lock(f->mu);
      if (f->current) f->current->Cancel();
    }
    if (f->thread.joinable()) f->thread.join();
  }
}

void WalReceiver::Follow(const std::shared_ptr<Timeline>& timeline) {
  if (safekeepers_.empty() || stopping_) return;
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
    if (FollowOnce(f)) break;  // the writer is gone and everything committed is archived
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(2));
  }
  LogInfo("wal_receiver_stopped", {{"timeline", f->timeline->id()}});
  f->done = true;
}

// Follows the best safekeeper until an error (returns false: try again) or until
// the timeline is idle for good (returns true).
bool WalReceiver::FollowOnce(Follower* f) {
  Timeline& t = *f->timeline;
  WalArchive& archive = repo_->archive();
  auto end = archive.End(t);
  if (!end.ok()) return false;
  // The safekeeper that has committed the most.
  std::unique_ptr<safekeeper::SafekeeperClient> best;
  Lsn best_committed;
  for (const std::string& address : safekeepers_) {
    auto client = std::make_unique<safekeeper::SafekeeperClient>(address, absl::Seconds(2));
    auto status = client->Status(t.tenant_id(), t.id());
    if (status.ok() && status->committed_lsn > best_committed) {
      best_committed = status->committed_lsn;
      best = std::move(client);
    }
  }
  const bool writer_active = t.WriterActiveWithin(repo_->options().writer_lease);
  if (best == nullptr || best_committed <= *end) return !writer_active;
  auto follower = best->Follow(t.tenant_id(), t.id(), *end);
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
  absl::Time last_report = absl::Now();
  bool ok = true;
  for (;;) {
    auto chunk = follower->Next();
    if (!chunk.ok() || !chunk->has_value()) {
      if (!chunk.ok()) ok = false;
      break;
    }
    last_data = absl::Now();
    if ((*chunk)->start != pending_start + pending.size()) {
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
      ok = false;
      break;
    }
    auto archived = archive.End(t);
    if (archived.ok() && *archived > pending_start) {
      const bool skipped = *archived > pending_start + pending.size();  // a WAL switch
      pending.erase(0, *archived - pending_start);
      pending_start = *archived;
      if (skipped) break;  // follow again from the next segment
    }
    if (absl::Now() - last_report > kReportInterval) {
      if (repo_->store()->Sync().ok())
        (void)best->ReportArchived(t.tenant_id(), t.id(), pending_start);
      last_report = absl::Now();
    }
  }
  finished = true;
  watchdog.join();
  {
    std::lock_guard<std::mutex> lock(f->mu);
    f->current = nullptr;
  }
  if (repo_->store()->Sync().ok()) {
    for (const std::string& address : safekeepers_) {
      (void)safekeeper::SafekeeperClient(address, absl::Seconds(2))
          .ReportArchived(t.tenant_id(), t.id(), pending_start);
    }
  }
  return ok && !stopping_ && !t.WriterActiveWithin(repo_->options().writer_lease) &&
         pending_start >= best_committed;
}

}  // namespace cambium::pageserver
