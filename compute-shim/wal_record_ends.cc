#include "compute-shim/wal_record_ends.h"

#include <algorithm>

#include "common/pg/wal_decoder.h"

namespace cambium::shim {

Lsn WalRecordEnds::Written(Lsn lsn, std::string_view bytes) {
  const Lsn end = lsn + bytes.size();
  const Lsn tracked_end = base_ + pending_.size();
  if (lsn > tracked_end) {
    // A gap: start again at the first page boundary of this write.
    Lsn page = lsn.IsPageBoundary() ? lsn : lsn.PageStart() + kWalPageSize;
    if (page >= end) return end;  // nothing decodable yet
    bytes.remove_prefix(page - lsn);
    lsn = page;
    base_ = page;
    pending_.clear();
    synced_ = false;
  }
  if (end > base_) {
    // Overlay [max(lsn, base_), end) onto pending_.
    const uint64_t skip = lsn < base_ ? base_ - lsn : 0;
    const uint64_t at = lsn < base_ ? 0 : lsn - base_;
    std::string_view piece = bytes.substr(skip);
    if (pending_.size() < at + piece.size()) pending_.resize(at + piece.size());
    pending_.replace(at, piece.size(), piece.data(), piece.size());

    pg::WalDecoder decoder(base_, pg::WalDecoderOptions{.segment_size = segment_size_});
    decoder.Feed(pending_);
    Lsn decoded;
    for (;;) {
      absl::StatusOr<std::optional<pg::WalRecord>> record = decoder.Next();
      if (!record.ok() || !record->has_value()) break;  // incomplete, or the WAL ends here
      decoded = (*record)->end;
    }
    if (decoded.valid()) {
      record_end_ = decoded;
      synced_ = true;
      // Bytes below the record end are final: keep only the record in progress.
      const uint64_t drop = std::min<uint64_t>(decoded - base_, pending_.size());
      pending_.erase(0, drop);
      base_ = decoded;
    }
  }
  return synced_ ? record_end_ : end;
}

}  // namespace cambium::shim
