#include "common/sync_point.h"

#include <atomic>
#include <map>
#include <mutex>

namespace cambium {
namespace {

struct Registry {
  std::atomic<int> count{0};
  std::mutex mu;
  std::map<std::string, std::function<void()>, std::less<>> callbacks;  // GUARDED_BY(mu)
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: points may run at exit
  return *r;
}

}  // namespace

void SyncPoints::Set(const std::string& name, std::function<void()> callback) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.callbacks[name] = std::move(callback);
  r.count = static_cast<int>(r.callbacks.size());
}

void SyncPoints::Clear(const std::string& name) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.callbacks.erase(name);
  r.count = static_cast<int>(r.callbacks.size());
}

void SyncPoints::ClearAll() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.callbacks.clear();
  r.count = 0;
}

void SyncPoints::Reached(std::string_view name) {
  Registry& r = registry();
  if (r.count.load(std::memory_order_relaxed) == 0) return;
  std::function<void()> callback;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.callbacks.find(name);
    if (it == r.callbacks.end()) return;
    callback = it->second;
  }
  callback();
}

}  // namespace cambium
