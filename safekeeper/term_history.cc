#include "safekeeper/term_history.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace cambium::safekeeper {

absl::Status TermHistory::Validate() const {
  for (size_t i = 1; i < entries_.size(); ++i) {
    if (entries_[i].term <= entries_[i - 1].term || entries_[i].start < entries_[i - 1].start) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "invalid term history %s: terms must increase and starts must not decrease", ToString()));
    }
  }
  return absl::OkStatus();
}

Term TermHistory::LastTermAt(Lsn end) const {
  Term term = 0;
  for (const TermSwitch& e : entries_) {
    if (e.start > end) break;
    term = e.term;
  }
  return term;
}

TermHistory TermHistory::Before(Lsn lsn) const {
  std::vector<TermSwitch> out;
  for (const TermSwitch& e : entries_) {
    if (e.start >= lsn) break;
    out.push_back(e);
  }
  return TermHistory(std::move(out));
}

Lsn TermHistory::CommonPoint(const TermHistory& a, Lsn a_end, const TermHistory& b, Lsn b_end,
                             Lsn timeline_start) {
  const auto& ae = a.entries_;
  const auto& be = b.entries_;
  size_t i = 0;
  while (i < ae.size() && i < be.size() && ae[i] == be[i]) ++i;
  Lsn common = std::min(a_end, b_end);
  if (i == 0) {
    // No term in common: only an empty log agrees with anything, up to its end.
    if (!ae.empty() && !be.empty()) common = std::min(common, timeline_start);
    return common;
  }
  if (i < ae.size()) common = std::min(common, ae[i].start);
  if (i < be.size()) common = std::min(common, be[i].start);
  return common;
}

std::string TermHistory::ToString() const {
  std::string out = "[";
  for (size_t i = 0; i < entries_.size(); ++i) {
    absl::StrAppendFormat(&out, "%s%u@%s", i ? ", " : "", entries_[i].term,
                          entries_[i].start.ToString());
  }
  return out + "]";
}

}  // namespace cambium::safekeeper
