// Cli: tenants over several pageservers (`up --pageservers N`, `tenant create`,
// `tenant list`, `tenant move`), with their placement in etcd (docs/scale-out.md).
//
// On a stack with more pageservers the CLI is the placement controller: it runs
// etcd under the supervisor (authentication on, root's password in
// DATA/secrets/etcd.password), records which pageserver serves each tenant, and
// drives a move's three steps (proto ManagementService.ExportTenant, AttachTenant,
// FinishTenantMove), each guarded by a compare-and-put on the tenant's placement:
//   1. placement {pageserver: A, moving_to: B, generation: g+1}
//   2. A exports (the tenant stops taking writes there) under generation g+1
//   3. B attaches from the transfer store
//   4. placement {pageserver: B}
//   5. A deletes its copy and answers with B's address; shims reconnect there.
// A failure in 2 or 3 puts the tenant back on A (A serves it again). A move
// interrupted between the steps (the CLI killed) is resumed by running the same
// `tenant move` again: the placement still names both sides, and each step is
// idempotent. A tenant with no placement (the stack's first tenant, made by `up`)
// is on `pageserver`.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "auth/private_file.h"
#include "common/net.h"
#include "common/proto_convert.h"
#include "common/service.h"
#include "common/status.h"
#include "common/tenant_moves.h"
#include "objstore/object_store.h"
#include "placement/placement.h"
#include "tools/cli.h"
#include "tools/cli_util.h"

namespace cambium::cli {
namespace {

using json = nlohmann::json;
using Stub = v1::ManagementService::Stub;

int64_t MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start)
      .count();
}

}  // namespace

Cli::Cli(DataDir dir) : dir_(std::move(dir)) {}
Cli::~Cli() = default;

std::string SubStoreUrl(const std::string& url, const std::string& sub) {
  const size_t query = url.find('?');
  std::string base = url.substr(0, query);
  while (absl::EndsWith(base, "/")) base.pop_back();
  return base + "/" + sub + (query == std::string::npos ? "" : url.substr(query));
}

absl::Status EnsureLocalStore(const std::string& url) {
  constexpr absl::string_view kFile = "file://";
  if (!absl::StartsWith(url, kFile)) return absl::OkStatus();  // a prefix needs no making
  const std::string path = url.substr(kFile.size());
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrFormat("making the object store directory %s: %s", path, ec.message()));
  }
  return absl::OkStatus();
}

std::string Cli::TransferStoreUrl() const {
  return stack_.object_store.empty() ? "file://" + dir_.Sub("transfers")
                                     : SubStoreUrl(stack_.object_store, "transfers");
}

absl::Status Cli::ConfigurePageservers(int count) {
  const int now = 1 + static_cast<int>(stack_.more_pageservers.size());
  if (count == 0 || count == now) return absl::OkStatus();
  if (count < now) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "this stack runs %d pageservers; removing one is not supported (its tenants would have "
        "to move away first)",
        now));
  }
  if (count > 16) return absl::InvalidArgumentError("--pageservers: at most 16");
  // The supervisor starts from stack.json: it is stopped (the daemons keep running
  // and are adopted) and started again with the new ones.
  CAMBIUM_RETURN_IF_ERROR(StopSupervisor());
  stack_.more_pageservers.resize(count - 1);
  return absl::OkStatus();
}

absl::Status Cli::PrepareEtcd() {
  Daemon& d = stack_.etcd;
  d.name = "etcd";
  d.log = dir_.Sub("logs/etcd.log");
  // A running etcd, or one whose port is still free, keeps its command line (its
  // member's peer address is recorded in its data).
  if (!d.argv.empty() && d.port > 0 && (DaemonUp(d) || !LoopbackPortOpen(d.port))) {
    d.http_port = d.port;
    return absl::OkStatus();
  }
  if (d.pid > 0) d.pid = 0;
  CAMBIUM_ASSIGN_OR_RETURN(d.port, FreeLoopbackPort());
  d.http_port = d.port;  // its /metrics is on the client port
  int peer = 0;
  do {
    CAMBIUM_ASSIGN_OR_RETURN(peer, FreeLoopbackPort());
  } while (peer == d.port);
  const std::string client = absl::StrFormat("http://127.0.0.1:%d", d.port);
  const std::string peers = absl::StrFormat("http://127.0.0.1:%d", peer);
  d.argv = {"/usr/bin/etcd",
            "--name",
            "cambium",
            "--data-dir",
            dir_.Sub("etcd"),
            "--listen-client-urls",
            client,
            "--advertise-client-urls",
            client,
            "--listen-peer-urls",
            peers,
            "--initial-advertise-peer-urls",
            peers,
            "--initial-cluster",
            "cambium=" + peers,
            "--logger",
            "zap",
            "--log-outputs",
            d.log};
  return absl::OkStatus();
}

absl::StatusOr<placement::PlacementStore*> Cli::Placement() {
  if (placement_) return placement_.get();
  if (stack_.more_pageservers.empty() || stack_.etcd.port == 0) {
    return absl::FailedPreconditionError(
        "this stack has one pageserver and keeps no placement: `cambium up --pageservers 2` "
        "adds one (and etcd for the placement)");
  }
  CAMBIUM_ASSIGN_OR_RETURN(const std::string password,
                           auth::EnsureSecretFile(EtcdPasswordFile(), "etcd"));
  // etcd takes a moment after it listens to elect itself; a fresh one gets
  // authentication turned on before anything is stored.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  for (;;) {
    absl::Status enabled =
        placement::EtcdClient::EnableAuth("127.0.0.1", stack_.etcd.port, password);
    absl::StatusOr<std::unique_ptr<placement::EtcdClient>> etcd =
        enabled.ok()
            ? placement::EtcdClient::Connect("127.0.0.1", stack_.etcd.port, "root", password)
            : absl::StatusOr<std::unique_ptr<placement::EtcdClient>>(enabled);
    if (etcd.ok()) {
      placement_ = std::make_unique<placement::PlacementStore>(*std::move(etcd));
      return placement_.get();
    }
    if (absl::Now() > deadline || absl::IsUnauthenticated(etcd.status()) ||
        absl::IsPermissionDenied(etcd.status())) {
      return Annotate(etcd.status(),
                      "the stack's placement store (etcd; its log: " + stack_.etcd.log + ")");
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
}

absl::StatusOr<const Daemon*> Cli::PageserverNamed(const std::string& name) const {
  std::vector<std::string> names;
  for (const Daemon* ps : stack_.Pageservers()) {
    if (ps->name == name) return ps;
    names.push_back(ps->name);
  }
  return absl::NotFoundError(absl::StrFormat("this stack has no pageserver \"%s\" (it has %s)",
                                             name, absl::StrJoin(names, ", ")));
}

absl::StatusOr<const Daemon*> Cli::PageserverOf(const std::string& tenant) {
  if (stack_.more_pageservers.empty()) return &stack_.pageserver;
  CAMBIUM_ASSIGN_OR_RETURN(placement::PlacementStore * store, Placement());
  CAMBIUM_ASSIGN_OR_RETURN(std::optional<placement::TenantPlacement> p, store->Get(tenant));
  if (!p) return &stack_.pageserver;
  return PageserverNamed(p->pageserver);
}

std::unique_ptr<Stub> Cli::StubFor(const Daemon& pageserver) const {
  return v1::ManagementService::NewStub(MakeChannel(Address(pageserver.port)));
}

absl::Status Cli::RegisterPageservers() {
  if (stack_.more_pageservers.empty()) return absl::OkStatus();
  CAMBIUM_ASSIGN_OR_RETURN(placement::PlacementStore * store, Placement());
  for (const Daemon* ps : stack_.Pageservers()) {
    CAMBIUM_RETURN_IF_ERROR(store->RegisterPageserver(ps->name, Address(ps->port)));
  }
  return absl::OkStatus();
}

absl::StatusOr<Output> Cli::TenantCreate(const std::string& name, const std::string& pageserver) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  CAMBIUM_RETURN_IF_ERROR(ValidateName("tenant", name));
  const Daemon* target = &stack_.pageserver;
  if (!stack_.more_pageservers.empty()) {
    CAMBIUM_ASSIGN_OR_RETURN(placement::PlacementStore * store, Placement());
    CAMBIUM_ASSIGN_OR_RETURN(auto all, store->List());
    if (!pageserver.empty()) {
      CAMBIUM_ASSIGN_OR_RETURN(target, PageserverNamed(pageserver));
    } else {
      // The pageserver with the fewest placed tenants (the first also holds the
      // stack's own tenant).
      std::map<std::string, int> load = {{stack_.pageserver.name, 1}};
      for (const auto& [tenant, p] : all) ++load[p.pageserver];
      for (const Daemon* ps : stack_.Pageservers()) {
        if (load[ps->name] < load[target->name]) target = ps;
      }
    }
    CAMBIUM_ASSIGN_OR_RETURN(std::optional<placement::TenantPlacement> existing, store->Get(name));
    if (existing || name == stack_.tenant) {
      return absl::AlreadyExistsError(absl::StrFormat("tenant \"%s\" exists", name));
    }
    // Claims the name (compare-and-put on an absent key) before anything is made.
    placement::TenantPlacement p{.tenant = name, .pageserver = target->name};
    CAMBIUM_RETURN_IF_ERROR(store->Put(&p));
  } else if (!pageserver.empty() && pageserver != stack_.pageserver.name) {
    CAMBIUM_RETURN_IF_ERROR(PageserverNamed(pageserver).status());
  }
  stack_.tenant = name;
  mgmt_.reset();
  CAMBIUM_RETURN_IF_ERROR(EnsureMainBranch());
  Output out;
  out.json = {{"tenant", name}, {"pageserver", target->name}, {"branches", {"main"}}};
  out.text = absl::StrFormat(
      "Tenant %s is on %s with branch main (protected).\nUse it with `cambium --tenant %s ...`.\n",
      name, target->name, name);
  return out;
}

absl::StatusOr<Output> Cli::TenantList() {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  std::map<std::string, placement::TenantPlacement> placed;
  if (!stack_.more_pageservers.empty()) {
    CAMBIUM_ASSIGN_OR_RETURN(placement::PlacementStore * store, Placement());
    CAMBIUM_ASSIGN_OR_RETURN(placed, store->List());
  }
  Output out;
  out.json = json::array();
  for (const Daemon* ps : stack_.Pageservers()) {
    if (!DaemonUp(*ps)) continue;
    CAMBIUM_ASSIGN_OR_RETURN(
        v1::ListTenantsResponse tenants,
        ControlCall(*StubFor(*ps), &Stub::ListTenants, v1::ListTenantsRequest()));
    for (const v1::TenantInfo& t : tenants.tenants()) {
      auto p = placed.find(t.name());
      json row = {{"name", t.name()},
                  {"tenant_id", IdHex(t.tenant_id())},
                  {"pageserver", ps->name},
                  {"generation", p == placed.end() ? 0 : p->second.generation},
                  {"moving_to", p == placed.end() || p->second.moving_to.empty()
                                    ? json(nullptr)
                                    : json(p->second.moving_to)}};
      out.text += absl::StrFormat(
          "%-24s %-14s generation %d%s\n", t.name(), ps->name, row["generation"].get<uint64_t>(),
          row["moving_to"].is_null() ? "" : " (moving to " + p->second.moving_to + ")");
      out.json.push_back(std::move(row));
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> Cli::RetireStaleCopies(const Daemon& ps) {
  CAMBIUM_ASSIGN_OR_RETURN(placement::PlacementStore * store, Placement());
  CAMBIUM_ASSIGN_OR_RETURN(v1::ListTenantsResponse tenants,
                           ControlCall(*StubFor(ps), &Stub::ListTenants, v1::ListTenantsRequest()));
  // One read of every placement, not one per tenant: a pageserver holds hundreds.
  CAMBIUM_ASSIGN_OR_RETURN(auto placed, store->List());
  std::vector<std::string> retired;
  for (const v1::TenantInfo& t : tenants.tenants()) {
    auto found = placed.find(t.name());
    // Unplaced (the stack's first tenant, never moved) or placed here: not stale.
    if (found == placed.end()) continue;
    const placement::TenantPlacement* p = &found->second;
    if (p->pageserver == ps.name || p->moving_to == ps.name) continue;
    CAMBIUM_ASSIGN_OR_RETURN(const Daemon* owner, PageserverNamed(p->pageserver));
    v1::FinishTenantMoveRequest retire;
    *retire.mutable_tenant_id() = t.tenant_id();
    retire.set_moved_to(Address(owner->port));
    retire.set_stale_copy(true);
    ReportProgress("retire", absl::StrFormat("%s holds a stale copy of tenant %s (served by %s): "
                                             "retiring it",
                                             ps.name, t.name(), owner->name));
    CAMBIUM_RETURN_IF_ERROR(
        Annotate(ControlCall(*StubFor(ps), &Stub::FinishTenantMove, retire).status(),
                 absl::StrFormat("retiring %s's stale copy of tenant %s", ps.name, t.name())));
    retired.push_back(t.name());
  }
  return retired;
}

absl::StatusOr<size_t> Cli::DeleteMoveObjects(const TenantId& tenant, uint64_t up_to_generation) {
  CAMBIUM_ASSIGN_OR_RETURN(
      auto objects,
      objstore::OpenObjectStore(TransferStoreUrl(), StackCredentialsFile(dir_.path())));
  const std::string prefix = TenantMovesPrefix(tenant);
  const std::string last = TenantMovePrefix(tenant, up_to_generation);
  // Only moves up to this one's generation: a later one (another CLI's, the lock
  // notwithstanding) is not ours to remove.
  const auto ours = [&]() -> absl::StatusOr<std::vector<objstore::ObjectInfo>> {
    CAMBIUM_ASSIGN_OR_RETURN(std::vector<objstore::ObjectInfo> listed, objects->List(prefix));
    std::erase_if(listed, [&](const objstore::ObjectInfo& o) {
      return o.key.compare(0, last.size(), last) > 0;
    });
    return listed;
  };
  CAMBIUM_ASSIGN_OR_RETURN(std::vector<objstore::ObjectInfo> listed, ours());
  // Manifests first: a move whose manifest is gone is no longer attachable, so an
  // interrupted cleanup never leaves a manifest naming deleted files.
  std::stable_partition(listed.begin(), listed.end(), [](const objstore::ObjectInfo& o) {
    return absl::EndsWith(o.key, "/manifest");
  });
  for (const objstore::ObjectInfo& o : listed) {
    CAMBIUM_RETURN_IF_ERROR(Annotate(objects->Delete(o.key), "deleting move object " + o.key));
  }
  CAMBIUM_ASSIGN_OR_RETURN(listed, ours());
  return listed.size();
}

absl::Status Cli::FinishStaleMoves(const std::string& name, const Daemon& dest) {
  CAMBIUM_ASSIGN_OR_RETURN(
      v1::ListTenantsResponse tenants,
      ControlCall(*StubFor(dest), &Stub::ListTenants, v1::ListTenantsRequest()));
  for (const v1::TenantInfo& t : tenants.tenants()) {
    if (t.name() != name) continue;
    for (const Daemon* ps : stack_.Pageservers()) {
      if (ps == &dest || !DaemonUp(*ps)) continue;
      v1::FinishTenantMoveRequest finish;
      *finish.mutable_tenant_id() = t.tenant_id();
      finish.set_moved_to(Address(dest.port));
      absl::Status s = ControlCall(*StubFor(*ps), &Stub::FinishTenantMove, finish).status();
      // Nothing moving there: nothing to finish.
      if (!s.ok() && !absl::IsFailedPrecondition(s)) return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Output> Cli::TenantMove(const std::string& name, const std::string& to) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  if (stack_.more_pageservers.empty()) {
    return absl::FailedPreconditionError(
        "this stack has one pageserver, so a tenant has nowhere to move: `cambium up "
        "--pageservers 2` adds one");
  }
  CAMBIUM_ASSIGN_OR_RETURN(const Daemon* dest, PageserverNamed(to));
  CAMBIUM_ASSIGN_OR_RETURN(placement::PlacementStore * store, Placement());
  CAMBIUM_ASSIGN_OR_RETURN(std::optional<placement::TenantPlacement> found, store->Get(name));
  placement::TenantPlacement p;
  if (found) {
    p = *found;
  } else {
    // Not placed yet: the stack's first tenant, on the first pageserver (if there).
    CAMBIUM_ASSIGN_OR_RETURN(
        v1::ListTenantsResponse tenants,
        ControlCall(*StubFor(stack_.pageserver), &Stub::ListTenants, v1::ListTenantsRequest()));
    bool there = false;
    for (const auto& t : tenants.tenants()) there |= t.name() == name;
    if (!there) return absl::NotFoundError(absl::StrFormat("tenant \"%s\" does not exist", name));
    p = placement::TenantPlacement{.tenant = name, .pageserver = stack_.pageserver.name};
  }
  const bool resuming = !p.moving_to.empty();
  if (resuming && p.moving_to != to) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "tenant %s is in a move to %s that did not finish: `cambium tenant move %s --to %s` "
        "completes it",
        name, p.moving_to, name, p.moving_to));
  }
  if (!resuming && p.pageserver == to) {
    // A move whose last step failed left the source holding the tenant out of
    // service: finish it there now.
    CAMBIUM_RETURN_IF_ERROR(FinishStaleMoves(name, *dest));
    Output out;
    out.json = {{"tenant", name}, {"pageserver", to}, {"moved", false}};
    out.text = absl::StrFormat("Tenant %s is already on %s.\n", name, to);
    return out;
  }
  CAMBIUM_ASSIGN_OR_RETURN(const Daemon* source, PageserverNamed(p.pageserver));
  if (!resuming) {
    // A copy the destination still holds (restored from before an earlier move away)
    // is not the tenant: it goes, so that the attach takes the tenant as it is now.
    CAMBIUM_RETURN_IF_ERROR(RetireStaleCopies(*dest).status());
    p.moving_to = to;
    p.generation += 1;
    CAMBIUM_RETURN_IF_ERROR(store->Put(&p));
  }
  // Puts the placement back on the source after a failed step.
  const auto back_out = [&](const absl::Status& why) -> absl::Status {
    p.moving_to.clear();
    absl::Status put = store->Put(&p);
    return put.ok() ? why
                    : Annotate(why, "and putting the placement back failed: " + put.ToString());
  };
  ReportProgress("export", absl::StrFormat("exporting tenant %s from %s", name, source->name));
  const auto start = std::chrono::steady_clock::now();
  v1::ExportTenantRequest ex;
  ex.set_tenant(name);
  ex.set_generation(p.generation);
  absl::StatusOr<v1::ExportTenantResponse> exported =
      ControlCall(*StubFor(*source), &Stub::ExportTenant, ex);
  if (!exported.ok()) {
    // The source serves the tenant again by itself after a failed export.
    return back_out(Annotate(exported.status(), "exporting tenant " + name));
  }
  const int64_t export_ms = MillisSince(start);
  ReportProgress("attach", absl::StrFormat("attaching tenant %s on %s", name, dest->name));
  v1::AttachTenantRequest at;
  at.set_manifest_key(exported->manifest_key());
  absl::StatusOr<v1::AttachTenantResponse> attached =
      ControlCall(*StubFor(*dest), &Stub::AttachTenant, at);
  if (!attached.ok() && !absl::IsAlreadyExists(attached.status())) {
    v1::FinishTenantMoveRequest abort;
    *abort.mutable_tenant_id() = exported->tenant_id();
    abort.set_abort(true);
    absl::Status aborted = ControlCall(*StubFor(*source), &Stub::FinishTenantMove, abort).status();
    absl::Status why = Annotate(attached.status(), "attaching tenant " + name + " on " + to);
    if (!aborted.ok())
      why = Annotate(why, "and the source did not take it back: " + aborted.ToString());
    return back_out(why);
  }
  const int64_t attach_ms = MillisSince(start) - export_ms;
  p.pageserver = to;
  p.moving_to.clear();
  // Until this is recorded the source keeps answering "moving": the endpoints wait.
  CAMBIUM_RETURN_IF_ERROR(Annotate(
      store->Put(&p),
      absl::StrFormat("tenant %s is attached on %s, but its placement was not recorded (its "
                      "endpoints wait meanwhile); run `cambium tenant move %s --to %s` again to "
                      "finish",
                      name, to, name, to)));
  v1::FinishTenantMoveRequest finish;
  *finish.mutable_tenant_id() = exported->tenant_id();
  finish.set_moved_to(Address(dest->port));
  CAMBIUM_RETURN_IF_ERROR(Annotate(
      ControlCall(*StubFor(*source), &Stub::FinishTenantMove, finish).status(),
      absl::StrFormat("tenant %s is served by %s now, but %s did not delete its copy; run the "
                      "move again to finish",
                      name, to, source->name)));
  const int64_t pause_ms = MillisSince(start);
  // The move's objects are a whole copy of the tenant, needed by no one now (the
  // destination holds the tenant, and with an object store its own upload does):
  // they go, with those of moves of the tenant that failed before. A failure here
  // leaves objects behind, never the tenant unserved: it is reported, not fatal.
  absl::StatusOr<size_t> left =
      DeleteMoveObjects(FromProto<TenantIdTag>(exported->tenant_id()), p.generation);
  Output out;
  out.json = {{"tenant", name},
              {"from", source->name},
              {"to", to},
              {"moved", true},
              {"generation", p.generation},
              {"bytes", exported->bytes()},
              {"files", exported->files()},
              {"keys", exported->keys()},
              {"timelines", exported->timelines()},
              {"export_ms", export_ms},
              {"attach_ms", attach_ms},
              {"pause_ms", pause_ms},
              {"transfer_objects_left", left.ok() ? json(*left) : json(nullptr)}};
  if (!left.ok()) out.json["transfer_cleanup_error"] = std::string(left.status().message());
  out.text = absl::StrFormat(
      "Tenant %s moved from %s to %s (generation %d): %d timelines, %d bytes in %d files.\n"
      "Writes paused for %d ms (export %d ms, attach %d ms); endpoints follow by themselves.\n",
      name, source->name, to, p.generation, exported->timelines(), exported->bytes(),
      exported->files(), pause_ms, export_ms, attach_ms);
  if (!left.ok()) {
    out.text += absl::StrFormat(
        "The move's objects in %s were not all removed (%s); the next move of %s retries.\n",
        TransferStoreUrl(), left.status().message(), name);
  }
  return out;
}

}  // namespace cambium::cli
