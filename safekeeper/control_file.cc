#include "safekeeper/control_file.h"

#include <cstring>

#include "absl/strings/str_format.h"
#include "common/bytes.h"
#include "common/checksum.h"
#include "common/status.h"

namespace cambium::safekeeper {
namespace {

constexpr char kMagic[8] = {'C', 'M', 'B', 'S', 'K', 'C', 'T', 'L'};
constexpr size_t kHeaderSize = 16;  // magic, version, payload length
// More entries than any timeline can have: one per election.
constexpr uint32_t kMaxHistory = 1 << 20;

// Reads fixed-size fields from a byte range; once a read runs past the end every
// later read fails too.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  T Get() {
    if (bytes_.size() - pos_ < sizeof(T) || !ok_) {
      ok_ = false;
      return T{};
    }
    const T v = LoadLittleEndian<T>(bytes_.data() + pos_);
    pos_ += sizeof(T);
    return v;
  }
  bool ok() const { return ok_; }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
  bool ok_ = true;
};

absl::Status Corrupt(const std::string& path, const std::string& what) {
  return absl::DataLossError(absl::StrFormat(
      "control file %s is corrupt (%s); the safekeeper will not serve this timeline until the "
      "file is repaired: see docs/safekeeper.md, \"A damaged timeline\"",
      path, what));
}

}  // namespace

std::string EncodeControlFile(const ControlFileData& data) {
  std::string payload;
  data.tenant.AppendBytes(&payload);
  data.timeline.AppendBytes(&payload);
  const AcceptorState& a = data.acceptor;
  AppendLittleEndian<uint64_t>(&payload, a.term);
  AppendLittleEndian<uint64_t>(&payload, a.timeline_start.value());
  AppendLittleEndian<uint64_t>(&payload, a.commit_lsn.value());
  AppendLittleEndian<uint64_t>(&payload, a.archived_lsn.value());
  AppendLittleEndian<uint64_t>(&payload, data.wal_start.value());
  AppendLittleEndian<uint64_t>(&payload, data.flush_lsn.value());
  AppendLittleEndian<uint32_t>(&payload, static_cast<uint32_t>(a.history.size()));
  for (const TermSwitch& e : a.history.entries()) {
    AppendLittleEndian<uint64_t>(&payload, e.term);
    AppendLittleEndian<uint64_t>(&payload, e.start.value());
  }
  std::string out(kMagic, sizeof(kMagic));
  AppendLittleEndian<uint32_t>(&out, data.format_version);
  AppendLittleEndian<uint32_t>(&out, static_cast<uint32_t>(payload.size()));
  out += payload;
  AppendLittleEndian<uint64_t>(&out, Checksum64(out));
  return out;
}

absl::StatusOr<ControlFileData> DecodeControlFile(std::string_view bytes, const std::string& path) {
  if (bytes.size() < kHeaderSize + 8 || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return Corrupt(path, absl::StrFormat("%u bytes without the control file header", bytes.size()));
  }
  const uint64_t stored = LoadLittleEndian<uint64_t>(bytes.data() + bytes.size() - 8);
  const uint64_t computed = Checksum64(bytes.substr(0, bytes.size() - 8));
  if (stored != computed) {
    return Corrupt(path, absl::StrFormat("checksum %016x, computed %016x", stored, computed));
  }
  Reader header(bytes.substr(sizeof(kMagic), 8));
  ControlFileData data;
  data.format_version = header.Get<uint32_t>();
  const uint32_t payload_len = header.Get<uint32_t>();
  if (data.format_version != kControlFileVersion) {
    return absl::FailedPreconditionError(
        absl::StrFormat("control file %s has format version %u; this safekeeper reads version %u",
                        path, data.format_version, kControlFileVersion));
  }
  if (payload_len != bytes.size() - kHeaderSize - 8) {
    return Corrupt(
        path, absl::StrFormat("payload length %u in a %u-byte file", payload_len, bytes.size()));
  }
  std::string_view payload = bytes.substr(kHeaderSize, payload_len);
  if (payload.size() < 32) return Corrupt(path, "truncated ids");
  data.tenant = TenantId::FromBytes(payload.data());
  data.timeline = TimelineId::FromBytes(payload.data() + 16);
  Reader r(payload.substr(32));
  AcceptorState& a = data.acceptor;
  a.term = r.Get<uint64_t>();
  a.timeline_start = Lsn(r.Get<uint64_t>());
  a.commit_lsn = Lsn(r.Get<uint64_t>());
  a.archived_lsn = Lsn(r.Get<uint64_t>());
  data.wal_start = Lsn(r.Get<uint64_t>());
  data.flush_lsn = Lsn(r.Get<uint64_t>());
  const uint32_t n = r.Get<uint32_t>();
  if (!r.ok() || n > kMaxHistory) return Corrupt(path, "truncated fields");
  std::vector<TermSwitch> entries(n);
  for (TermSwitch& e : entries) {
    e.term = r.Get<uint64_t>();
    e.start = Lsn(r.Get<uint64_t>());
  }
  if (!r.ok() || !r.done()) return Corrupt(path, "term history does not match its length");
  a.history = TermHistory(std::move(entries));
  absl::Status valid = a.history.Validate();
  if (!valid.ok()) return Corrupt(path, std::string(valid.message()));
  return data;
}

absl::Status WriteControlFile(FileSystem* fs, const std::string& path,
                              const ControlFileData& data) {
  return WriteFileAtomically(fs, path, EncodeControlFile(data));
}

absl::StatusOr<ControlFileData> ReadControlFile(FileSystem* fs, const std::string& path) {
  CAMBIUM_ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(fs, path));
  return DecodeControlFile(bytes, path);
}

}  // namespace cambium::safekeeper
