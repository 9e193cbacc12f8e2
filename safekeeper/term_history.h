// TermHistory: which proposer term wrote which part of a timeline's WAL.
//
// Entry i says: the WAL from entries[i].start up to entries[i+1].start (or the end
// of the log) was written by the proposer elected in entries[i].term. Acceptors
// persist the history of the WAL they hold; a proposer builds its own history from
// its donor's (cut at the start of its term) plus one entry for its term. Two logs
// agree exactly up to CommonPoint(): this is how an acceptor finds where divergent
// WAL of an older term starts, and how an election compares logs (LastTermAt).
//
// Invariant (Validate): terms strictly increase and starts never decrease.
//
// Thread-safety: a value type.
#ifndef CAMBIUM_SAFEKEEPER_TERM_HISTORY_H_
#define CAMBIUM_SAFEKEEPER_TERM_HISTORY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/lsn.h"

namespace cambium::safekeeper {

// A proposer term. 0 means "none": no proposer was ever elected.
using Term = uint64_t;

struct TermSwitch {
  Term term = 0;
  Lsn start;
  bool operator==(const TermSwitch&) const = default;
};

class TermHistory {
 public:
  TermHistory() = default;
  explicit TermHistory(std::vector<TermSwitch> entries) : entries_(std::move(entries)) {}

  // INVALID_ARGUMENT unless terms strictly increase and starts never decrease.
  absl::Status Validate() const;

  const std::vector<TermSwitch>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  const TermSwitch& back() const { return entries_.back(); }
  void Append(TermSwitch entry) { entries_.push_back(entry); }

  // The term of the last entry starting at or below `end`: the term of the newest
  // WAL in a log that ends at `end` (0 if none). Elections compare logs by
  // (LastTermAt(flush), flush).
  Term LastTermAt(Lsn end) const;

  // The history of this log cut at `lsn`: the entries that start below it.
  TermHistory Before(Lsn lsn) const;

  // The highest LSN up to which log A (history a, WAL ending at a_end) and log B
  // hold the same WAL: they agree on every term up to there. Both logs begin at
  // `timeline_start`.
  static Lsn CommonPoint(const TermHistory& a, Lsn a_end, const TermHistory& b, Lsn b_end,
                         Lsn timeline_start);

  // "[1@0/1000028, 3@0/16B3F40]" for logs and errors.
  std::string ToString() const;

  bool operator==(const TermHistory&) const = default;

 private:
  std::vector<TermSwitch> entries_;
};

}  // namespace cambium::safekeeper

#endif  // CAMBIUM_SAFEKEEPER_TERM_HISTORY_H_
