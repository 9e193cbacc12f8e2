#include "tests/safekeeper/sim_storage.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "common/bytes.h"
#include "common/checksum.h"

namespace cambium::safekeeper::sim {
namespace {

constexpr uint32_t kToyHeader = 8;

uint32_t ToyCheck(Lsn at, std::string_view payload) {
  const uint64_t h = Checksum64(payload) ^ (at.value() * 0x9E3779B97F4A7C15ull);
  return static_cast<uint32_t>(h ^ (h >> 32)) | 1;
}

}  // namespace

std::string ToyRecord(Lsn at, std::string_view payload) {
  std::string out;
  out.reserve(kToyHeader + payload.size());
  AppendLittleEndian<uint32_t>(&out, static_cast<uint32_t>(kToyHeader + payload.size()));
  AppendLittleEndian<uint32_t>(&out, ToyCheck(at, payload));
  out.append(payload);
  return out;
}

Lsn ToyLastRecordEnd(Lsn start, std::string_view bytes) {
  size_t pos = 0;
  while (bytes.size() - pos >= kToyHeader) {
    const uint32_t len = LoadLittleEndian<uint32_t>(bytes.data() + pos);
    if (len <= kToyHeader || len > bytes.size() - pos) break;
    std::string_view payload = bytes.substr(pos + kToyHeader, len - kToyHeader);
    if (LoadLittleEndian<uint32_t>(bytes.data() + pos + 4) != ToyCheck(start + pos, payload)) break;
    pos += len;
  }
  return start + pos;
}

SimStorage::SimStorage(Lsn timeline_start) : start_(timeline_start), flush_(timeline_start) {
  persisted_.timeline_start = timeline_start;
}

absl::Status SimStorage::PersistState(const AcceptorState& state) {
  if (full_) {
    ++no_space_refusals_;
    return absl::ResourceExhaustedError("sim: no space for the control file");
  }
  if (fail_next_sync_) {
    fail_next_sync_ = false;
    return absl::InternalError("sim: fsync of the control file failed");
  }
  persisted_ = state;
  return absl::OkStatus();
}

absl::Status SimStorage::WriteDurable(Lsn lsn, std::string_view bytes) {
  const uint64_t offset = lsn - start_;
  auto write = [&](std::string_view b) {
    if (wal_.size() < offset + b.size()) wal_.resize(offset + b.size(), '\0');
    std::memcpy(wal_.data() + offset, b.data(), b.size());
    allocated_ = std::max<uint64_t>(allocated_, offset + b.size());
  };
  if (full_ && offset + bytes.size() > allocated_) {
    // What fits in allocated space may land; nothing is acknowledged.
    const uint64_t fits = allocated_ > offset ? allocated_ - offset : 0;
    if (full_rng_ != nullptr && fits > 0) write(bytes.substr(0, (*full_rng_)() % (fits + 1)));
    ++no_space_refusals_;
    return absl::ResourceExhaustedError("sim: no space for a new WAL segment");
  }
  if (crash_rng_ != nullptr) {
    write(bytes.substr(0, (*crash_rng_)() % (bytes.size() + 1)));
    crash_rng_ = nullptr;
    crashed_ = true;
    return absl::UnavailableError("sim: crashed during a write");
  }
  if (fail_next_sync_) {
    // The bytes may or may not have reached the disk; the caller must not count them.
    write(bytes);
    fail_next_sync_ = false;
    return absl::InternalError("sim: fdatasync failed (EIO)");
  }
  write(bytes);
  flush_ = std::max(flush_, lsn + bytes.size());
  return absl::OkStatus();
}

absl::StatusOr<std::string> SimStorage::Read(Lsn lsn, uint64_t size) {
  if (lsn < start_ || lsn + size > flush_) {
    return absl::OutOfRangeError(absl::StrFormat("sim: read [%s, +%u) outside [%s, %s)",
                                                 lsn.ToString(), size, start_.ToString(),
                                                 flush_.ToString()));
  }
  return wal_.substr(lsn - start_, size);
}

absl::Status SimStorage::Truncate(Lsn lsn, const AcceptorState& state) {
  if (full_) {
    ++no_space_refusals_;
    return absl::ResourceExhaustedError("sim: no space for the control file");
  }
  persisted_ = state;
  wal_.resize(lsn - start_);
  flush_ = lsn;
  return absl::OkStatus();
}

absl::StatusOr<Lsn> SimStorage::LastRecordEnd(Lsn limit) {
  const Lsn end = std::max(start_, std::min(limit, flush_));
  return ToyLastRecordEnd(start_, std::string_view(wal_).substr(0, end - start_));
}

AcceptorState SimStorage::Recover() {
  crashed_ = false;
  fail_next_sync_ = false;
  crash_rng_ = nullptr;
  flush_ = ToyLastRecordEnd(start_, wal_);
  wal_.resize(flush_ - start_);
  AcceptorState state = persisted_;
  state.commit_lsn = std::min(state.commit_lsn, flush_);
  return state;
}

}  // namespace cambium::safekeeper::sim
