#include "safekeeper/acceptor.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "absl/strings/str_format.h"
#include "common/status.h"

namespace cambium::safekeeper {

Acceptor::Acceptor(AcceptorStorage* storage, AcceptorState state, std::string name)
    : storage_(storage), name_(std::move(name)), state_(state), persisted_(std::move(state)) {}

absl::Status Acceptor::CheckUsable() const {
  if (broken_.ok()) return absl::OkStatus();
  return absl::UnavailableError(absl::StrFormat(
      "%s stopped accepting WAL for this timeline after a storage failure (%s); restart it to "
      "recover the timeline from disk",
      name_, broken_.message()));
}

absl::Status Acceptor::Break(absl::Status status) {
  if (!absl::IsResourceExhausted(status)) broken_ = status;
  return status;
}

absl::Status Acceptor::CheckTimelineStart(Lsn timeline_start) const {
  if (timeline_start == state_.timeline_start) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrFormat("the timeline starts at %s on %s but the proposer says %s",
                      state_.timeline_start.ToString(), name_, timeline_start.ToString()));
}

absl::StatusOr<AcceptorState> Acceptor::ForDisk(const AcceptorState& state) {
  AcceptorState out = state;
  if (out.commit_lsn > out.timeline_start) {
    CAMBIUM_ASSIGN_OR_RETURN(out.commit_lsn, storage_->LastRecordEnd(out.commit_lsn));
    out.commit_lsn = std::max(out.commit_lsn, out.timeline_start);
  }
  return out;
}

absl::Status Acceptor::Persist(const AcceptorState& next, AcceptorState on_disk) {
  absl::Status status = storage_->PersistState(on_disk);
  if (!status.ok()) return Break(status);
  state_ = next;
  persisted_ = std::move(on_disk);
  return absl::OkStatus();
}

absl::Status Acceptor::StaleTerm(Term term) const {
  return absl::FailedPreconditionError(
      absl::StrFormat("term %u is stale: %s has term %u (a newer proposer was elected; this one "
                      "is fenced)",
                      term, name_, state_.term));
}

absl::StatusOr<Lsn> Acceptor::RecordEnd() {
  const Lsn flush = storage_->flush_lsn();
  CAMBIUM_ASSIGN_OR_RETURN(const Lsn record_end, storage_->LastRecordEnd(Lsn::Max()));
  if (record_end > flush) {
    return absl::InternalError(absl::StrFormat("%s: last record end %s above the flush LSN %s",
                                               name_, record_end.ToString(), flush.ToString()));
  }
  return record_end;
}

absl::StatusOr<VoteResponse> Acceptor::HandleVote(const VoteRequest& request) {
  CAMBIUM_RETURN_IF_ERROR(CheckUsable());
  CAMBIUM_RETURN_IF_ERROR(CheckTimelineStart(request.timeline_start));
  VoteResponse response;
  response.flush_lsn = storage_->flush_lsn();
  CAMBIUM_ASSIGN_OR_RETURN(response.record_end, RecordEnd());
  // Only complete records below the commit LSN are committed: the bytes after
  // them may be an older version of what the proposer committed.
  CAMBIUM_ASSIGN_OR_RETURN(AcceptorState on_disk, ForDisk(state_));
  response.commit_lsn = on_disk.commit_lsn;
  if (request.term > state_.term) {
    AcceptorState next = state_;
    next.term = request.term;
    on_disk.term = request.term;  // ForDisk changes only the commit LSN
    CAMBIUM_RETURN_IF_ERROR(Persist(next, std::move(on_disk)));
    response.granted = true;
  }
  response.term = state_.term;
  response.history = state_.history;
  return response;
}

absl::StatusOr<AppendAck> Acceptor::HandleAppendStart(const AppendStartRequest& request) {
  CAMBIUM_RETURN_IF_ERROR(CheckUsable());
  CAMBIUM_RETURN_IF_ERROR(CheckTimelineStart(request.timeline_start));
  CAMBIUM_RETURN_IF_ERROR(request.history.Validate());
  if (request.history.empty() || request.history.back().term != request.term ||
      request.history.back().start != request.start_lsn ||
      request.start_lsn < state_.timeline_start) {
    return absl::InvalidArgumentError(
        absl::StrFormat("AppendStart for term %u at %s has an inconsistent term history %s",
                        request.term, request.start_lsn.ToString(), request.history.ToString()));
  }
  if (request.term < state_.term) return StaleTerm(request.term);
  AcceptorState next = state_;
  next.term = request.term;
  const Lsn flush = storage_->flush_lsn();
  const Lsn common = TermHistory::CommonPoint(state_.history, flush, request.history, Lsn::Max(),
                                              state_.timeline_start);
  std::optional<AcceptorState> on_disk;  // ForDisk(next), once computed
  // Bytes a refused write left above the flush LSN were written in an older
  // term; under the new history a restart would find them labelled with the new
  // term. Cut them too before the history changes.
  const bool stale_tail = storage_->written_end() > flush && request.history != state_.history;
  if (common < flush || stale_tail) {
    // WAL above `common` was written in a term the proposer's history does not
    // contain: it was never committed. Cut it before adopting the new history.
    next.commit_lsn = std::min(next.commit_lsn, common);
    CAMBIUM_ASSIGN_OR_RETURN(on_disk, ForDisk(next));
    absl::Status truncated = storage_->Truncate(common, *on_disk);
    if (!truncated.ok()) return Break(truncated);
    state_ = next;
    persisted_ = *on_disk;
  }
  next.history = request.history;
  if (next != state_) {
    if (on_disk.has_value()) {
      // Still ForDisk(next): it changes only the commit LSN, and the truncation
      // kept every byte below that.
      on_disk->history = next.history;
    } else {
      CAMBIUM_ASSIGN_OR_RETURN(on_disk, ForDisk(next));
    }
    CAMBIUM_RETURN_IF_ERROR(Persist(next, *std::move(on_disk)));
  }
  CAMBIUM_ASSIGN_OR_RETURN(const Lsn record_end, RecordEnd());
  return AppendAck{state_.term, storage_->flush_lsn(), state_.commit_lsn, ++stream_, record_end};
}

absl::Status Acceptor::CheckOverlap(Lsn lsn, std::string_view data, Lsn* fill_at) {
  *fill_at = Lsn::Max();
  const Lsn flush = storage_->flush_lsn();
  if (lsn >= flush) return absl::OkStatus();
  const uint64_t n = std::min<uint64_t>(flush - lsn, data.size());
  CAMBIUM_ASSIGN_OR_RETURN(std::string stored, storage_->Read(lsn, n));
  if (std::memcmp(stored.data(), data.data(), n) == 0) return absl::OkStatus();
  for (uint64_t i = 0; i < n; ++i) {
    if (stored[i] == data[i]) continue;
    if (stored[i] != 0) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "divergent WAL at %s: %s already holds different bytes there in term %u (only the "
          "zero padding of a rewritten last page may change)",
          (lsn + i).ToString(), name_, state_.term));
    }
    if (*fill_at == Lsn::Max()) *fill_at = lsn + i;
  }
  return absl::OkStatus();
}

absl::StatusOr<AppendAck> Acceptor::HandleAppendData(const AppendDataRequest& request) {
  CAMBIUM_RETURN_IF_ERROR(CheckUsable());
  if (request.term < state_.term) return StaleTerm(request.term);
  if (request.term > state_.term || state_.history.empty() ||
      state_.history.back().term != request.term) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "term %u has not started on %s (term %u, history %s): AppendStart must come first",
        request.term, name_, state_.term, state_.history.ToString()));
  }
  if (request.stream != stream_) {
    return absl::AbortedError(
        absl::StrFormat("append stream %u of term %u on %s was superseded by a newer stream",
                        request.stream, request.term, name_));
  }
  if (request.skip_to_start) CAMBIUM_RETURN_IF_ERROR(SkipTo(request));
  Lsn lsn = request.start_lsn;
  std::string_view data = request.data;
  if (lsn < state_.timeline_start) {
    // The first page of a branch holds its parent's WAL below the branch point.
    const uint64_t skip = std::min<uint64_t>(state_.timeline_start - lsn, data.size());
    data.remove_prefix(skip);
    lsn = data.empty() ? state_.timeline_start : lsn + skip;
  }
  const Lsn flush = storage_->flush_lsn();
  if (lsn > flush) {
    return absl::OutOfRangeError(
        absl::StrFormat("gap: append at %s but the WAL on %s ends at %s; resend from there",
                        lsn.ToString(), name_, flush.ToString()));
  }
  if (!data.empty()) {
    Lsn fill_at;
    CAMBIUM_RETURN_IF_ERROR(CheckOverlap(lsn, data, &fill_at));
    // The commit LSN known so far covered the zeros, not what now fills them
    // (lowered before writing: a failed write may still leave the new bytes).
    if (fill_at < state_.commit_lsn) state_.commit_lsn = fill_at;
    if (fill_at != Lsn::Max() || lsn + data.size() > flush) {
      absl::Status written = storage_->WriteDurable(lsn, data);
      if (!written.ok()) return Break(written);
    }
  }
  const Lsn commit = std::min(request.commit_lsn, storage_->flush_lsn());
  if (commit > state_.commit_lsn) state_.commit_lsn = commit;
  return AppendAck{state_.term, storage_->flush_lsn(), state_.commit_lsn};
}

absl::Status Acceptor::SkipTo(const AppendDataRequest& request) {
  const Lsn lsn = request.start_lsn;
  // Already there (a resend): an ordinary append.
  if (lsn <= storage_->flush_lsn()) return absl::OkStatus();
  if (lsn > request.commit_lsn || lsn < state_.timeline_start) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s cannot skip its WAL to %s: not between the timeline start %s and the commit LSN %s",
        name_, lsn.ToString(), state_.timeline_start.ToString(), request.commit_lsn.ToString()));
  }
  // The WAL below is committed: the commit LSN is at least here, and it is a
  // record boundary, so it can be persisted as it is.
  AcceptorState next = state_;
  next.commit_lsn = std::max(next.commit_lsn, lsn);
  AcceptorState on_disk = next;
  on_disk.commit_lsn = lsn;
  absl::Status skipped = storage_->StartWalAt(lsn, on_disk);
  if (!skipped.ok()) return Break(skipped);
  state_ = next;
  persisted_ = std::move(on_disk);
  return absl::OkStatus();
}

void Acceptor::HandleArchived(Lsn lsn) {
  if (lsn > state_.archived_lsn) state_.archived_lsn = lsn;
}

absl::Status Acceptor::Checkpoint() {
  CAMBIUM_RETURN_IF_ERROR(CheckUsable());
  CAMBIUM_ASSIGN_OR_RETURN(AcceptorState on_disk, ForDisk(state_));
  if (on_disk == persisted_) return absl::OkStatus();
  return Persist(state_, std::move(on_disk));
}

}  // namespace cambium::safekeeper
