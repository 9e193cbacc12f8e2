// Helpers for pageserver unit tests: mutation builders and a timeline factory over a
// fresh PageStore in a temporary directory.
#ifndef CAMBIUM_PAGESERVER_TEST_UTIL_H_
#define CAMBIUM_PAGESERVER_TEST_UTIL_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "cambium/v1/page_service.pb.h"
#include "common/ids.h"
#include "common/lsn.h"
#include "common/pg/wal_format.h"
#include "common/pg/wal_records.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "pageserver/page_store.h"
#include "pageserver/timeline.h"

namespace cambium::pageserver::testing {

// Where test timelines' WAL starts: the start of segment 1.
inline constexpr Lsn kSeg1(0x1000000);
// A WAL record that is no commit (a logical message), for WalBuilder::Add.
inline constexpr uint8_t kMessage = static_cast<uint8_t>(pg::RmgrId::kLogicalMessage);
// Test times: `seconds` after a fixed epoch, and the same as a Postgres timestamp.
inline absl::Time T(int seconds) { return absl::FromUnixSeconds(1700000000 + seconds); }
inline int64_t PgT(int seconds) { return pg::TimeToPgTimestamp(T(seconds)); }

inline std::string Fill(char c, size_t n = kBlockSize) { return std::string(n, c); }

// A mutation of `path` at `lsn` with no operation set yet.
inline v1::Mutation MAt(const std::string& path, Lsn lsn) {
  v1::Mutation m;
  m.set_lsn(lsn.value());
  m.set_path(path);
  return m;
}
inline v1::Mutation MCreate(const std::string& path, Lsn lsn, uint32_t mode = 0600) {
  v1::Mutation m = MAt(path, lsn);
  m.mutable_create()->set_mode(mode);
  return m;
}
inline v1::Mutation MMkdir(const std::string& path, Lsn lsn, uint32_t mode = 0700) {
  v1::Mutation m = MAt(path, lsn);
  m.mutable_mkdir()->set_mode(mode);
  return m;
}
inline v1::Mutation MWrite(const std::string& path, Lsn lsn, uint32_t block, std::string data,
                           uint32_t offset = 0) {
  v1::Mutation m = MAt(path, lsn);
  m.mutable_write()->set_block_no(block);
  m.mutable_write()->set_offset(offset);
  m.mutable_write()->set_data(std::move(data));
  return m;
}
inline v1::Mutation MSetSize(const std::string& path, Lsn lsn, uint64_t size) {
  v1::Mutation m = MAt(path, lsn);
  m.mutable_set_size()->set_size(size);
  return m;
}
inline v1::Mutation MUnlink(const std::string& path, Lsn lsn) {
  v1::Mutation m = MAt(path, lsn);
  m.mutable_unlink();
  return m;
}
inline v1::Mutation MRmdir(const std::string& path, Lsn lsn) {
  v1::Mutation m = MAt(path, lsn);
  m.mutable_rmdir();
  return m;
}
inline v1::Mutation MRename(const std::string& from, const std::string& to, Lsn lsn) {
  v1::Mutation m = MAt(from, lsn);
  m.mutable_rename()->set_new_path(to);
  return m;
}
inline v1::Mutation MChmod(const std::string& path, Lsn lsn, uint32_t mode) {
  v1::Mutation m = MAt(path, lsn);
  m.mutable_chmod()->set_mode(mode);
  return m;
}

inline google::protobuf::RepeatedPtrField<v1::Mutation> Batch(
    std::initializer_list<v1::Mutation> ms) {
  google::protobuf::RepeatedPtrField<v1::Mutation> out;
  for (const auto& m : ms) *out.Add() = m;
  return out;
}

// A timeline record (root if ancestor is null).
inline storage::v1::TimelineRecord MakeRecord(const TenantId& tenant, const TimelineId& id,
                                              const Timeline* ancestor = nullptr,
                                              Lsn ancestor_lsn = Lsn()) {
  storage::v1::TimelineRecord r;
  std::string b;
  tenant.AppendBytes(&b);
  r.set_tenant_id(b);
  b.clear();
  id.AppendBytes(&b);
  r.set_timeline_id(b);
  if (ancestor != nullptr) {
    b.clear();
    ancestor->id().AppendBytes(&b);
    r.set_ancestor_id(b);
    r.set_ancestor_lsn(ancestor_lsn.value());
  }
  return r;
}

}  // namespace cambium::pageserver::testing

#endif  // CAMBIUM_PAGESERVER_TEST_UTIL_H_
