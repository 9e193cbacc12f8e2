// Sync points: named places in the code where a test can run a callback, to reproduce
// a race deterministically (RocksDB's TEST_SYNC_POINT). A test registers a callback
// for a name; the code under test calls CAMBIUM_SYNC_POINT(name) at the place where
// the race window is. With no callback registered anywhere the cost is one relaxed
// atomic load, so the points stay compiled into production builds (what is tested is
// what ships).
//
//   SyncPoints::Set("Repository::GcTimeline:CutoffDecided", [&] { CreateBranch(...); });
//   ... run the code ...
//   SyncPoints::ClearAll();
//
// Thread-safety: thread-safe. A callback runs on the thread that reaches the point,
// with no SyncPoints lock held (it may call Set/Clear).
#ifndef CAMBIUM_COMMON_SYNC_POINT_H_
#define CAMBIUM_COMMON_SYNC_POINT_H_

#include <functional>
#include <string>
#include <string_view>

namespace cambium {

class SyncPoints {
 public:
  static void Set(const std::string& name, std::function<void()> callback);
  static void Clear(const std::string& name);
  static void ClearAll();
  // Runs the callback registered for `name`, if any.
  static void Reached(std::string_view name);
};

}  // namespace cambium

#define CAMBIUM_SYNC_POINT(name) ::cambium::SyncPoints::Reached(name)

#endif  // CAMBIUM_COMMON_SYNC_POINT_H_
