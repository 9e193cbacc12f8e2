#include "objstore/sealed_object.h"

#include "absl/strings/str_cat.h"
#include "common/bytes.h"
#include "common/checksum.h"

namespace cambium::objstore {
namespace {

constexpr std::string_view kMagic = "CMBSEAL1";

uint64_t SealChecksum(std::string_view payload, std::string_view fields) {
  return Checksum64Parts({payload, fields});
}

}  // namespace

std::string Seal(std::string_view payload, uint64_t generation) {
  std::string out;
  out.reserve(payload.size() + kSealFooterSize);
  out.append(payload);
  out.append(kMagic.data(), kMagic.size());
  AppendLittleEndian<uint64_t>(&out, generation);
  AppendLittleEndian<uint64_t>(&out, payload.size());
  std::string_view fields(out.data() + payload.size(), kMagic.size() + 16);
  AppendLittleEndian<uint64_t>(&out, SealChecksum(payload, fields));
  return out;
}

absl::StatusOr<Unsealed> Unseal(std::string_view sealed, std::string_view what) {
  auto damaged = [&](std::string_view why) {
    return absl::DataLossError(absl::StrCat(std::string(what), " is damaged: ", std::string(why)));
  };
  if (sealed.size() < kSealFooterSize) return damaged("shorter than its footer");
  size_t payload_size = sealed.size() - kSealFooterSize;
  const char* footer = sealed.data() + payload_size;
  if (std::string_view(footer, kMagic.size()) != kMagic)
    return damaged("no seal (truncated or not Cambium's)");
  uint64_t generation = LoadLittleEndian<uint64_t>(footer + 8);
  uint64_t length = LoadLittleEndian<uint64_t>(footer + 16);
  if (length != payload_size) {
    return damaged(absl::StrCat("sealed with ", length, " payload bytes, has ", payload_size));
  }
  std::string_view payload = sealed.substr(0, payload_size);
  if (LoadLittleEndian<uint64_t>(footer + 24) !=
      SealChecksum(payload, std::string_view(footer, 24))) {
    return damaged("checksum mismatch");
  }
  return Unsealed{payload, generation};
}

}  // namespace cambium::objstore
