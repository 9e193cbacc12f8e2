// Round: flipped bytes. The expectation for both is "detected, never served":
// after the flip, every answer is either an error or exactly right, and once the
// byte is restored and the component restarted, everything works and is exact.
//
// RocksDB: the pageserver is SIGSTOPped, one bit of its newest table file (of at
// least 256 KiB) is flipped at a seeded offset, the pageserver is killed and restarted (so no cache
// holds the good bytes), and a branch taken at an exact LSN before the flip is
// started and compared with its sample and pg_amcheck'd: every page it reads comes
// from the pageserver. Then the byte is restored (if RocksDB has not rewritten the
// file meanwhile) and the pageserver restarted again.
//
// Safekeeper: the safekeeper is SIGSTOPped, one bit of main's WAL in one of its
// segments, below what the pageserver has archived (so below its commit LSN), is
// flipped, and it is killed. It must refuse to start naming the file (or, if the
// damage lies after its persisted commit LSN, cut it like a torn tail and fetch the
// WAL again from its peers); writes go on with the other two; then the byte is
// restored and it must start and catch up.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "common/files.h"
#include "common/lsn.h"
#include "tests/chaos/chaos_round.h"

namespace cambium::chaos {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kSegmentBytes = 16ull << 20;

absl::StatusOr<char> ReadByteAt(const std::string& path, uint64_t offset) {
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return absl::NotFoundError("open " + path);
  char c;
  const bool ok = pread(fd, &c, 1, offset) == 1;
  close(fd);
  if (!ok) return absl::OutOfRangeError("pread " + path);
  return c;
}

absl::Status WriteByteAt(const std::string& path, uint64_t offset, char c) {
  const int fd = open(path.c_str(), O_RDWR);
  if (fd < 0) return absl::NotFoundError("open " + path + " (gone)");
  const bool ok = pwrite(fd, &c, 1, offset) == 1;
  fsync(fd);
  close(fd);
  return ok ? absl::OkStatus() : absl::InternalError("pwrite " + path);
}

// The newest RocksDB table file of at least `min_size` bytes (file numbers grow):
// recent page versions, the ones a branch at a recent LSN reads. Falls back to the
// largest file if none is that big.
std::string PickTableFile(const std::string& dir, uint64_t min_size, uint64_t* size) {
  std::string newest, largest;
  uint64_t newest_number = 0, newest_size = 0, largest_size = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string ext = it->path().extension().string();
    if (ext != ".sst" && ext != ".blob") continue;
    const uint64_t n = it->file_size(ec);
    if (ec) continue;
    if (n > largest_size) {
      largest_size = n;
      largest = it->path().string();
    }
    uint64_t number = 0;
    if (n >= min_size && absl::SimpleAtoi(it->path().stem().string(), &number) &&
        number > newest_number) {
      newest_number = number;
      newest_size = n;
      newest = it->path().string();
    }
  }
  *size = newest.empty() ? largest_size : newest_size;
  return newest.empty() ? largest : newest;
}

absl::StatusOr<uint64_t> SegmentStartLsn(const std::string& name) {
  uint64_t log = 0, seg = 0;
  if (name.size() < 24 || !absl::SimpleHexAtoi(name.substr(8, 8), &log) ||
      !absl::SimpleHexAtoi(name.substr(16, 8), &seg)) {
    return absl::InvalidArgumentError("not a segment: " + name);
  }
  return (log << 32) + seg * kSegmentBytes;
}

struct WalByte {
  std::string path;     // a segment file
  uint64_t start = 0;   // its first LSN
  uint64_t offset = 0;  // in the file
};

// A seeded byte of main's WAL on a safekeeper, in a whole segment, below `archived`.
absl::StatusOr<WalByte> PickWalByte(const std::string& sk_dir, const std::string& timeline,
                                    uint64_t archived, uint64_t salt) {
  SegmentCount c = CountSegments(sk_dir, timeline);
  std::vector<std::pair<std::string, uint64_t>> candidates;  // path, first LSN
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(c.dir, ec)) {
    auto start = SegmentStartLsn(e.path().filename().string());
    if (start.ok() && *start < archived && e.path().extension() != ".partial") {
      candidates.push_back({e.path().string(), *start});
    }
  }
  if (candidates.empty()) {
    return absl::NotFoundError("no segment below the archived LSN " + Lsn(archived).ToString());
  }
  std::sort(candidates.begin(), candidates.end());
  const auto& [path, start] = candidates[salt % candidates.size()];
  const uint64_t end = std::min(start + kSegmentBytes, archived);
  return WalByte{path, start, (salt >> 8) % std::max<uint64_t>(1, end - start)};
}

}  // namespace

bool Round::ReadThroughDamage(const BranchPlan& plan) {
  bool detected = false;
  // When a background compaction found the damage first, the store refuses every
  // write (DATA_LOSS) and the shim waits for its repair (mutation_sender.cc): the
  // end-of-recovery checkpoint's fsync, and so the start, waits with it. A normal
  // start takes seconds; CI's seed 1 once waited out the harness's 4 minutes here
  // (2026-12-02), which showed nothing more than 90 s would.
  auto conn = stack_.StartEndpoint(plan.name, absl::Seconds(90));
  if (!conn.ok()) {
    Log("endpoint on the damaged pageserver did not start: " + conn.status().ToString());
    (void)stack_.Cambium({"endpoint", "stop", plan.name});
    return true;
  }
  auto c = PgClient::Connect(*conn, absl::Seconds(10));
  auto sample = c.ok() ? TakeSample(**c) : absl::StatusOr<Sample>(c.status());
  if (!sample.ok()) {
    detected = true;
    Log("sample on the damaged pageserver failed: " + sample.status().ToString());
  } else if (std::string diff = DiffSamples(plan.expected, *sample); !diff.empty()) {
    AddDefect("corruption-served",
              "a flipped byte in a RocksDB file is detected: an error, never a wrong answer",
              "branch " + plan.name + " answered without an error but differs: " + diff,
              StackErrorLines(plan.name));
  }
  AmcheckResult am = RunAmcheck(*conn);
  if (!am.clean && am.read_error) detected = true;
  if (!am.clean && !am.read_error) {
    AddDefect("corruption-served",
              "a flipped byte in a RocksDB file is detected as a read error, never served",
              "pg_amcheck found corruption in what it read: " + am.output,
              StackErrorLines(plan.name));
  }
  (void)stack_.Cambium({"endpoint", "stop", plan.name});
  return detected;
}

std::string Round::ChooseTableFile(uint64_t* size) {
  constexpr uint64_t kMinTableFile = 256u << 10;
  std::string sst = PickTableFile(stack_.pageserver_dir(), kMinTableFile, size);
  if (*size < kMinTableFile) {
    // Little in table files yet: a restart flushes what RocksDB's log holds.
    if (auto pid = DaemonPid("pageserver"); pid.ok()) {
      SignalProcess(*pid, SIGKILL);
      AwaitRestart("pageserver", *pid);
    }
    sst = PickTableFile(stack_.pageserver_dir(), kMinTableFile, size);
  }
  return sst;
}

void Round::FlipRocksDb(const FaultSpec& f) {
  load_.Pause();
  // The exact state before the flip, on a branch nobody writes.
  BranchPlan plan;
  plan.name = NextBranchName("flip");
  plan.kind = BranchPlan::Kind::kAtLsn;
  auto client = PgClient::Connect(main_.Get(), absl::Seconds(10));
  if (!client.ok() || !BranchAtLsn(plan, client->get())) {
    AddDefect("branch-create-healthy", "a branch at an exact LSN on a healthy, idle stack",
              client.ok() ? plan.error : client.status().ToString(), StackErrorLines());
    load_.Resume();
    return;
  }
  client->reset();
  uint64_t size = 0;
  const std::string sst = ChooseTableFile(&size);
  auto pid = DaemonPid("pageserver");
  if (sst.empty() || !pid.ok()) {
    Log("flip-byte-rocksdb skipped: no table file or no pageserver");
    load_.Resume();
    return;
  }
  // Data blocks come first in a table file; index, filter and footer at the end.
  const uint64_t offset = f.salt % std::max<uint64_t>(1, size * 9 / 10);
  const int bit = static_cast<int>((f.salt >> 32) % 8);
  kill(*pid, SIGSTOP);
  auto original = ReadByteAt(sst, offset);
  absl::Status flipped = original.ok()
                             ? WriteByteAt(sst, offset, static_cast<char>(*original ^ (1 << bit)))
                             : original.status();
  SignalProcess(*pid, SIGKILL);
  Log(absl::StrFormat("flipped bit %d at offset %d of %s (%d bytes): %s", bit, offset,
                      fs::path(sst).filename().string(), size, flipped.ToString()));
  const bool up = AwaitRestart("pageserver", *pid, /*may_refuse=*/true);
  if (!up) Log("pageserver does not start on the damaged file: detected");
  const bool detected = !up || ReadThroughDamage(plan);
  Log(detected ? "the flipped byte was detected" : "no error seen (the byte was not read)");
  // Repair: the good byte back, a restart, and everything must work and be exact.
  if (auto p = DaemonPid("pageserver"); p.ok()) kill(*p, SIGSTOP);
  absl::Status restored = original.ok() ? WriteByteAt(sst, offset, *original) : original.status();
  Log("restore the byte: " + restored.ToString());
  if (auto p = DaemonPid("pageserver"); p.ok()) {
    SignalProcess(*p, SIGKILL);
    AwaitRestart("pageserver", *p, /*may_refuse=*/true);
  } else {
    (void)stack_.Up();
  }
  if (!DaemonPid("pageserver").ok()) {
    AddDefect("corruption-recovery", "the pageserver starts once the damaged byte is restored",
              "it does not start", ErrorLines(stack_.data_dir() + "/logs/pageserver.log", 12));
  }
  (void)EnsureHealthy();
  AddPlan(plan);  // verified (sample, amcheck) with the round's branches
  load_.Resume();
  ExpectWritesResume();
}

void Round::FlipSafekeeper(const FaultSpec& f) {
  const std::string sk = absl::StrFormat("sk%d", f.a);
  auto main_branch = stack_.Branch("main");
  CliResult lsn = stack_.Cambium({"lsn", "main"}, absl::Seconds(30));
  auto pid = DaemonPid(sk);
  if (!main_branch.ok() || !lsn.ok() || !pid.ok()) {
    Log("flip-byte-safekeeper skipped: stack not ready");
    return;
  }
  const std::string timeline = main_branch->value("timeline_id", "");
  const uint64_t archived = Lsn::Parse(lsn.out.value("lsn", "")).value_or(Lsn(0)).value();
  kill(*pid, SIGSTOP);
  auto target = PickWalByte(stack_.safekeeper_dir(sk), timeline, archived, f.salt);
  if (!target.ok()) {
    kill(*pid, SIGCONT);
    Log("flip-byte-safekeeper skipped: " + target.status().ToString());
    return;
  }
  const auto& [path, start, offset] = *target;
  const int bit = static_cast<int>((f.salt >> 40) % 8);
  auto original = ReadByteAt(path, offset);
  if (original.ok()) (void)WriteByteAt(path, offset, static_cast<char>(*original ^ (1 << bit)));
  SignalProcess(*pid, SIGKILL);
  const std::string file = fs::path(path).filename().string();
  Log(absl::StrFormat("flipped bit %d at LSN %s in %s of %s (archived up to %s)", bit,
                      Lsn(start + offset).ToString(), file, sk, lsn.out.value("lsn", "")));
  const bool started = AwaitRestart(sk, *pid, /*may_refuse=*/true);
  const std::string log = ErrorLines(stack_.data_dir() + "/logs/" + sk + ".log", 6) +
                          FileTail(stack_.data_dir() + "/logs/" + sk + ".log.out", 600);
  if (started) {
    Log(sk +
        " started on the damaged segment (damage above its persisted commit LSN is cut "
        "like a torn tail)");
  } else if (!absl::StrContains(log, file)) {
    AddDefect(
        "sk-corruption-message",
        "a safekeeper that refuses to start on damaged WAL names the file (docs/safekeeper.md)",
        sk + " does not start and its log does not name " + file, log);
  } else {
    Log(sk + " refuses to start naming " + file + ": detected");
  }
  // Writes go on with two safekeepers.
  ExpectWritesResume();
  // Repair and restart.
  if (auto p = DaemonPid(sk); p.ok()) kill(*p, SIGSTOP);
  if (original.ok()) (void)WriteByteAt(path, offset, *original);
  if (auto p = DaemonPid(sk); p.ok()) {
    SignalProcess(*p, SIGKILL);
    AwaitRestart(sk, *p, /*may_refuse=*/true);
  } else {
    (void)stack_.Up();
  }
  if (!DaemonPid(sk).ok()) {
    AddDefect("sk-corruption-recovery", sk + " starts once the damaged byte is restored",
              "it does not start", ErrorLines(stack_.data_dir() + "/logs/" + sk + ".log", 8));
    (void)stack_.Up();
  }
  ExpectWritesResume();
}

}  // namespace cambium::chaos
