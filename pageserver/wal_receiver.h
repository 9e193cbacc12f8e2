// WalReceiver: pulls committed WAL of active timelines from the safekeepers into the
// pageserver's WAL archive (ARCHITECTURE.md section 3, "WAL archive").
//
// One follower thread per timeline that has (or recently had) a writer: it picks the
// safekeeper with the most committed WAL, follows it from the archive's end, appends
// what arrives (the archive keeps complete records; a trailing partial record waits
// for its rest), and every second makes the archive durable and tells the safekeepers
// how far it got so they can remove segments. On an error it switches safekeepers. It
// stops when the writer is gone and nothing more commits.
//
// Thread-safety: thread-safe.
#ifndef CAMBIUM_PAGESERVER_WAL_RECEIVER_H_
#define CAMBIUM_PAGESERVER_WAL_RECEIVER_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pageserver/repository.h"

namespace cambium::pageserver {

class WalReceiver {
 public:
  WalReceiver(Repository* repo, std::vector<std::string> safekeepers);
  ~WalReceiver();

  // Makes sure a follower runs for the timeline (idempotent).
  void Follow(const std::shared_ptr<Timeline>& timeline);
  void Stop();

 private:
  struct Follower;
  void Run(Follower* f);
  bool FollowOnce(Follower* f);

  Repository* const repo_;
  const std::vector<std::string> safekeepers_;
  std::mutex mu_;
  std::map<TimelineId, std::unique_ptr<Follower>> followers_;  // GUARDED_BY(mu_)
  std::atomic<bool> stopping_{false};
};

}  // namespace cambium::pageserver

#endif  // CAMBIUM_PAGESERVER_WAL_RECEIVER_H_
