#include "common/pg/wal_directory.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "common/files.h"
#include "common/status.h"

namespace cambium::pg {

absl::StatusOr<std::vector<WalSegmentName>> ListWalSegments(const std::string& dir,
                                                            uint64_t seg_size) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return ErrnoToStatus(ec.value(), absl::StrFormat("list %s", dir));
  std::vector<WalSegmentName> segments;
  for (const auto& entry : it) {
    if (!entry.is_regular_file()) continue;
    auto name = ParseWalSegmentFileName(entry.path().filename().string(), seg_size);
    if (name.ok()) segments.push_back(*name);
  }
  std::sort(segments.begin(), segments.end(), [](const WalSegmentName& a, const WalSegmentName& b) {
    return std::tie(a.timeline_id, a.segno) < std::tie(b.timeline_id, b.segno);
  });
  return segments;
}

absl::StatusOr<std::string> ReadWalRange(const std::string& dir, uint32_t timeline_id, Lsn from,
                                         Lsn to, uint64_t seg_size) {
  if (to < from) {
    return absl::InvalidArgumentError(
        absl::StrFormat("empty WAL range %s..%s", from.ToString(), to.ToString()));
  }
  std::string out;
  out.reserve(to - from);
  Lsn pos = from;
  while (pos < to) {
    const uint64_t segno = pos.SegmentNo(seg_size);
    const std::string path =
        absl::StrFormat("%s/%s", dir, WalSegmentFileName(timeline_id, segno, seg_size));
    const uint64_t offset = pos.SegmentOffset(seg_size);
    const uint64_t n = std::min<uint64_t>(to - pos, seg_size - offset);
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoToStatus(errno, absl::StrFormat("open WAL segment %s", path));
    const size_t old_size = out.size();
    out.resize(old_size + n);
    absl::StatusOr<size_t> read = PreadFull(fd, out.data() + old_size, n, offset, path);
    close(fd);
    if (!read.ok()) return read.status();
    if (*read < n) {
      return absl::OutOfRangeError(
          absl::StrFormat("WAL segment %s is shorter than %u bytes", path, offset + n));
    }
    pos += n;
  }
  return out;
}

}  // namespace cambium::pg
