#include "safekeeper/wal_reader.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "common/pg/wal_format.h"
#include "common/status.h"

namespace cambium::safekeeper {
namespace {

constexpr uint64_t kFeedChunk = 1 << 20;
constexpr uint64_t kMaxAlign = 8;

}  // namespace

VerifiedWalReader::VerifiedWalReader(Timeline* timeline, Lsn start, Term term)
    : tl_(timeline), term_(term), pos_(start) {}

absl::Status VerifiedWalReader::Damaged(Lsn at, const absl::Status& cause) const {
  return absl::DataLossError(absl::StrFormat(
      "safekeeper %s: WAL segment %s is damaged: the record at %s does not verify (%s); this "
      "safekeeper will not serve it, read it from another one",
      tl_->name(), tl_->wal()->SegmentPathFor(at), at.ToString(), cause.message()));
}

absl::StatusOr<std::optional<VerifiedWalReader::PageStart>> VerifiedWalReader::ReadPageStart(
    Lsn page) {
  const uint64_t segment_size = tl_->wal()->segment_size();
  const bool long_header = page.SegmentOffset(segment_size) == 0;
  std::string header;
  CAMBIUM_RETURN_IF_ERROR(tl_->Read(
      page, long_header ? pg::kLongPageHeaderSize : pg::kShortPageHeaderSize, 0, &header));
  const auto* p = reinterpret_cast<const uint8_t*>(header.data());
  if (pg::Load<uint16_t>(p) != pg::kXlogPageMagic) return std::optional<PageStart>();
  const uint16_t info = pg::Load<uint16_t>(p + 2);
  const uint32_t rem_len = pg::Load<uint32_t>(p + 16);
  const uint32_t header_size =
      (info & pg::kXlpLongHeader) ? pg::kLongPageHeaderSize : pg::kShortPageHeaderSize;
  PageStart start;
  start.continuation = (info & pg::kXlpFirstIsContRecord) != 0;
  start.first_record = page + header_size;
  if (start.continuation) {
    start.first_record =
        rem_len <= kWalPageSize - header_size
            ? page + header_size + (rem_len + kMaxAlign - 1) / kMaxAlign * kMaxAlign
            : Lsn::Max();
  }
  return std::optional<PageStart>(start);
}

absl::StatusOr<Lsn> VerifiedWalReader::DecodeStart() {
  // A record boundary known here (usually pos_ itself: readers resume at record
  // ends) or the lowest stored LSN.
  const Lsn known = tl_->KnownBoundaryAtOrBelow(pos_);
  if (known == pos_) return known;
  // Otherwise walk back page by page to the page where the record holding pos_
  // begins: a page whose first record (after any continuation of an earlier
  // one) starts at or before the record we need.
  bool first = true;
  for (Lsn page = pos_.PageStart();; page = page - kWalPageSize, first = false) {
    if (page < known) return known;  // `known` is a record boundary in this page
    CAMBIUM_ASSIGN_OR_RETURN(const std::optional<PageStart> start, ReadPageStart(page));
    // Not a page header: the decoder reports the damage from here.
    if (!start.has_value() || !start->continuation) return page;
    if (start->first_record != Lsn::Max() && (!first || pos_ >= start->first_record)) {
      return page;
    }
    // The record began below the lowest stored LSN: its CRC cannot be checked
    // here; its bytes from there on are served as they are.
    if (page == known) return known;
  }
}

absl::Status VerifiedWalReader::FeedMore(Lsn bound) {
  const uint64_t segment_size = tl_->wal()->segment_size();
  // Up to the end of the current segment at most, so that a missing next segment
  // is only noticed when the decoder needs it.
  const uint64_t segment_left = fed_.SegmentStart(segment_size) + segment_size - fed_;
  const uint64_t n = std::min({kFeedChunk, bound - fed_, segment_left});
  std::string chunk;
  CAMBIUM_RETURN_IF_ERROR(tl_->Read(fed_, n, term_, &chunk));
  decoder_->Feed(chunk);
  if (fed_ + n > pos_) {
    const uint64_t skip = pos_ > fed_ ? pos_ - fed_ : 0;
    buf_.append(chunk, skip, std::string::npos);
  }
  fed_ += n;
  return absl::OkStatus();
}

void VerifiedWalReader::SetUnverifiableTail() {
  unverifiable_tail_ = true;
  // The decoder is done; bytes from pos_ on are read as they are.
  if (fed_ < pos_) fed_ = pos_;
}

absl::Status VerifiedWalReader::VerifyTo(Lsn target, const Timeline::ReadWindow& window) {
  while (verified_ < target && !unverifiable_tail_ && damage_.ok()) {
    absl::StatusOr<std::optional<pg::WalRecord>> next = decoder_->Next();
    if (!next.ok()) {
      // Below verify_to every byte is a complete record here: a failure is damage.
      // Above it, this is where the last complete record ends.
      if (decoder_->position() < window.verify_to) {
        damage_ = Damaged(decoder_->position(), next.status());
        return absl::OkStatus();
      }
      SetUnverifiableTail();
    } else if (next->has_value()) {
      verified_ = (*next)->end;
    } else if (fed_ < window.bound) {
      CAMBIUM_RETURN_IF_ERROR(FeedMore(window.bound));
    } else {
      // The record straddling `target` is not complete here (only possible above
      // verify_to: a recovery read of a record still being written).
      if (decoder_->position() < window.verify_to) {
        damage_ = Damaged(decoder_->position(),
                          absl::DataLossError("a complete record decodes as incomplete"));
        return absl::OkStatus();
      }
      SetUnverifiableTail();
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> VerifiedWalReader::Read(const Timeline::ReadWindow& window,
                                                    uint64_t max) {
  if (!decoder_.has_value()) {
    CAMBIUM_ASSIGN_OR_RETURN(const Lsn start, DecodeStart());
    decoder_.emplace(start, pg::WalDecoderOptions{.segment_size = tl_->wal()->segment_size()});
    fed_ = start;
    verified_ = start;
  }
  const Lsn target = std::min(window.limit, pos_ + max);
  if (target <= pos_) return std::string();
  CAMBIUM_RETURN_IF_ERROR(VerifyTo(target, window));
  const Lsn end = unverifiable_tail_ ? target : std::min(target, verified_);
  // What verified before a damaged record is handed out first; then the damage.
  if (end <= pos_ && !damage_.ok()) return damage_;
  while (fed_ < end) {
    // The unverifiable tail: bytes past what the decoder was fed.
    std::string chunk;
    const uint64_t n = std::min<uint64_t>(kFeedChunk, end - fed_);
    CAMBIUM_RETURN_IF_ERROR(tl_->Read(fed_, n, term_, &chunk));
    buf_ += chunk;
    fed_ += n;
  }
  if (end <= pos_) return std::string();
  std::string out = buf_.substr(0, end - pos_);
  buf_.erase(0, end - pos_);
  pos_ = end;
  return out;
}

}  // namespace cambium::safekeeper
