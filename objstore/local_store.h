// LocalObjectStore: an ObjectStore in a directory of the local file system
// (`file:///PATH`), the embedded default on one machine and the store unit tests use.
//
// An object is the file PATH/KEY. Put writes KEY.tmp-<random> beside it, fsyncs it,
// renames it over KEY and fsyncs the directory, so an object is whole or absent,
// also across a crash (the ObjectStore contract); leftover temporary files of a crash
// are never listed. Durability is the local disk's: it protects against losing a
// pageserver's data directory, not the machine — use S3 for that.
//
// Thread-safety: thread-safe (each call works on its own files).
#ifndef CAMBIUM_OBJSTORE_LOCAL_STORE_H_
#define CAMBIUM_OBJSTORE_LOCAL_STORE_H_

#include <memory>
#include <string>

#include "objstore/object_store.h"

namespace cambium::objstore {

class LocalObjectStore final : public ObjectStore {
 public:
  // `root` must be an existing directory (absolute path).
  static absl::StatusOr<std::unique_ptr<LocalObjectStore>> Open(const std::string& root);

  absl::Status Put(std::string_view key, std::string_view bytes) override;
  absl::StatusOr<std::string> Get(std::string_view key) override;
  absl::StatusOr<std::vector<ObjectInfo>> List(std::string_view prefix) override;
  absl::Status Delete(std::string_view key) override;
  std::string Describe() const override { return "file://" + root_; }

 private:
  explicit LocalObjectStore(std::string root) : root_(std::move(root)) {}

  std::string root_;
};

}  // namespace cambium::objstore

#endif  // CAMBIUM_OBJSTORE_LOCAL_STORE_H_
