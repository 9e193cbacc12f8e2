#include "pageserver/head_resolver.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/status.h"
#include "pageserver/pageserver_metrics.h"
#include "pageserver/wal_receiver.h"

namespace cambium::pageserver {
namespace {

// The k-th highest value (k >= 1); Lsn() if there are fewer than k.
Lsn KthHighest(std::vector<Lsn> values, int k) {
  if (static_cast<int>(values.size()) < k) return Lsn();
  std::sort(values.begin(), values.end(), std::greater<Lsn>());
  return values[k - 1];
}

}  // namespace

absl::StatusOr<QuorumHead> ComputeQuorumHead(
    const std::vector<absl::StatusOr<safekeeper::SafekeeperStatus>>& statuses, int quorum) {
  QuorumHead h;
  int answered = 0, have_wal = 0;
  std::vector<std::string> errors;
  safekeeper::Term newest = 0;
  for (const auto& s : statuses) {
    if (s.ok()) {
      ++answered;
      ++have_wal;
      newest = std::max(newest, s->history.LastTermAt(s->record_end));
    } else if (absl::IsNotFound(s.status())) {
      ++answered;  // it never saw the timeline: it holds none of its WAL
    } else {
      errors.emplace_back(s.status().message());
    }
  }
  if (answered < quorum) {
    return absl::UnavailableError(absl::StrFormat(
        "only %d of %d safekeepers answered, fewer than a quorum (%d), so which commits were "
        "acknowledged cannot be known: %s",
        answered, statuses.size(), quorum, absl::StrJoin(errors, "; ")));
  }
  if (have_wal == 0) {
    h.none = true;
    return h;
  }
  std::vector<Lsn> all_ends, newest_ends;
  for (const auto& s : statuses) {
    if (!s.ok()) continue;
    all_ends.push_back(s->record_end);
    h.announced = std::max(h.announced, s->committed_lsn);
    if (s->history.LastTermAt(s->record_end) == newest) newest_ends.push_back(s->record_end);
  }
  // Every acknowledged commit is on a quorum: with every state known, the quorum-th
  // highest end covers it; with some missing, the highest end among those known does.
  h.target = have_wal == static_cast<int>(statuses.size())
                 ? KthHighest(all_ends, quorum)
                 : *std::max_element(all_ends.begin(), all_ends.end());
  h.safe = std::max(h.announced, KthHighest(newest_ends, quorum));
  for (size_t i = 0; i < statuses.size(); ++i) {
    const auto& s = statuses[i];
    if (s.ok() && s->history.LastTermAt(s->record_end) == newest && s->record_end >= h.safe) {
      h.donors.emplace_back(static_cast<int>(i), s->term);
    }
  }
  return h;
}

HeadResolver::HeadResolver(SafekeeperSet* safekeepers, WalArchive* archive, WalReceiver* receiver,
                           HeadResolverOptions options)
    : safekeepers_(safekeepers), archive_(archive), receiver_(receiver), options_(options) {}

absl::Status HeadResolver::ArchiveFromDonor(Timeline& timeline, const QuorumHead& head) {
  CAMBIUM_ASSIGN_OR_RETURN(Lsn end, archive_->End(timeline));
  if (end >= head.safe) return absl::OkStatus();
  absl::Status last = absl::UnavailableError("no safekeeper of the newest term holds the head");
  for (const auto& [i, term] : head.donors) {
    auto bytes =
        safekeepers_->client(i).ReadWal(timeline.tenant_id(), timeline.id(), end, head.safe, term);
    if (!bytes.ok()) {
      last = bytes.status();
      continue;
    }
    last = archive_->Append(timeline, end, *bytes, /*sync=*/false);
    if (last.ok()) {
      PageServerMetrics::Get().wal_received_bytes.Increment(head.safe - end);
      LogInfo("head_archived_from_safekeeper", {{"timeline", timeline.id()},
                                                {"from", end},
                                                {"to", head.safe},
                                                {"safekeeper", safekeepers_->address(i)}});
      return absl::OkStatus();
    }
  }
  return last;
}

absl::StatusOr<Lsn> HeadResolver::ResolveHead(const std::shared_ptr<Timeline>& timeline) {
  const PageServerMetrics& m = PageServerMetrics::Get();
  absl::StatusOr<Lsn> head;
  {
    metrics::ScopedTimer timer(m.head_wait_seconds);
    head = WaitForHead(timeline);
  }
  if (!head.ok()) m.head_wait_failures.Increment();
  return head;
}

absl::StatusOr<Lsn> HeadResolver::WaitForHead(const std::shared_ptr<Timeline>& timeline) {
  const absl::Time deadline = absl::Now() + options_.timeout;
  Lsn target;  // fixed by the first round: commits acknowledged before the call
  absl::Status why = absl::OkStatus();
  for (int round = 0;; ++round) {
    if (round > 0) {
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(absl::StrFormat(
            "the head of timeline %s could not be established within %s: %s",
            timeline->id().ToString(), absl::FormatDuration(options_.timeout), why.message()));
      }
      absl::SleepFor(options_.poll_interval);
    }
    CAMBIUM_ASSIGN_OR_RETURN(
        QuorumHead h,
        ComputeQuorumHead(safekeepers_->StatusAll(timeline->tenant_id(), timeline->id()),
                          safekeepers_->quorum()));
    if (h.none) return archive_->End(*timeline);  // nothing beyond the import
    if (round == 0) target = h.target;
    if (h.safe < target) {
      why = absl::UnavailableError(absl::StrFormat(
          "WAL up to %s may hold acknowledged commits but is only known committed up to %s "
          "(a safekeeper is unreachable or a writer is being elected)",
          target.ToString(), h.safe.ToString()));
      continue;
    }
    receiver_->Follow(timeline);  // the archive catches up from the safekeepers
    CAMBIUM_ASSIGN_OR_RETURN(Lsn archived, archive_->End(*timeline));
    if (archived < h.safe && h.announced < h.safe) {
      // Nobody will announce it (the writer died after its quorum acknowledged):
      // the archive cannot get it by following; read it from a safekeeper.
      why = ArchiveFromDonor(*timeline, h);
      if (!why.ok()) continue;
    }
    absl::Status archived_in_time =
        archive_->WaitForEnd(*timeline, h.safe, std::min(deadline, absl::Now() + absl::Seconds(1)));
    if (!archived_in_time.ok()) {
      why = archived_in_time;
      continue;
    }
    return h.safe;
  }
}

}  // namespace cambium::pageserver
