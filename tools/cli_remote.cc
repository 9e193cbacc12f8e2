// Cli: the object store of the stack (`up --object-store`) and `pageserver rebuild`
// (docs/pageserver.md "Remote history", docs/operations.md).
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/status.h"
#include "objstore/object_store.h"
#include "tools/cli.h"
#include "tools/cli_util.h"

namespace cambium::cli {
namespace {

namespace fs = std::filesystem;

// Where RemoteHistory puts its indexes (pageserver/remote_history.h).
constexpr char kIndexPrefix[] = "index/";
constexpr char kCredentialsFile[] = "secrets/object-store.credentials";

}  // namespace

absl::StatusOr<StackUploads> ListStackUploads(const std::string& url,
                                              const std::string& credentials_file) {
  CAMBIUM_ASSIGN_OR_RETURN(auto store, objstore::OpenObjectStore(url, credentials_file));
  StackUploads out{.store = store->Describe()};
  CAMBIUM_ASSIGN_OR_RETURN(out.indexes, store->List(kIndexPrefix));
  return out;
}

std::string StackCredentialsFile(const std::string& data_dir) {
  const std::string path = data_dir + "/" + kCredentialsFile;
  std::error_code ec;
  return fs::exists(path, ec) ? path : "";
}

absl::Status Cli::ConfigureObjectStore(const UpArgs& args) {
  if (args.object_store.empty()) {
    if (!args.object_store_credentials.empty()) {
      return absl::InvalidArgumentError("--object-store-credentials needs --object-store");
    }
    return absl::OkStatus();
  }
  if (args.object_store == stack_.object_store && args.object_store_credentials.empty()) {
    return absl::OkStatus();
  }
  if (!stack_.object_store.empty() && stack_.object_store != args.object_store) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "this stack keeps its pageserver's history in %s; it cannot move to %s (start a new "
        "stack in another data directory for that)",
        stack_.object_store, args.object_store));
  }
  if (SupervisorRunning() || StackUp()) {
    return absl::FailedPreconditionError(
        "the stack is running: `cambium down` first, then `cambium up --object-store URL`");
  }
  std::string credentials_file;
  if (absl::StartsWith(args.object_store, "s3://")) {
    // The pageserver reads them from a 0600 file of the stack: never from a command
    // line, and still there when `up` runs again from a shell without them.
    CAMBIUM_ASSIGN_OR_RETURN(objstore::S3Credentials creds,
                             objstore::LoadS3Credentials(args.object_store_credentials));
    CAMBIUM_RETURN_IF_ERROR(WriteFileAtomically(
        dir_.Sub(kCredentialsFile),
        absl::StrCat("AWS_ACCESS_KEY_ID=", creds.access_key_id,
                     "\nAWS_SECRET_ACCESS_KEY=", creds.secret_access_key, "\n")));
    credentials_file = dir_.Sub(kCredentialsFile);
  }
  // A wrong URL, bucket or key fails here, before any daemon starts.
  ReportProgress("object-store", "checking the object store " + args.object_store);
  CAMBIUM_ASSIGN_OR_RETURN(StackUploads uploads,
                           ListStackUploads(args.object_store, credentials_file));
  // A pageserver with an empty disk restores what the store holds: a new stack (or
  // one that never had a store) must not adopt another stack's history, nor mix its
  // own into it.
  if (!uploads.indexes.empty()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s already holds a pageserver's history (newest upload %s), not this stack's: give "
        "this stack a prefix of its own (s3://BUCKET/ANOTHER-PREFIX?...), or empty that one",
        uploads.store, uploads.indexes.back().key));
  }
  stack_.object_store = args.object_store;
  return dir_.SaveStack(stack_);
}

std::string Cli::HistoryStoreUrl(const Daemon& pageserver) const {
  if (stack_.object_store.empty()) return "";
  // Each pageserver's history under its own prefix; the first keeps the stack's.
  return &pageserver == &stack_.pageserver ? stack_.object_store
                                           : SubStoreUrl(stack_.object_store, pageserver.name);
}

absl::StatusOr<Output> Cli::PageserverRebuild(const std::string& name) {
  if (stack_.object_store.empty()) {
    return absl::FailedPreconditionError(
        "this stack has no object store, so the pageserver's disk holds the only copy of its "
        "history and there is nothing to rebuild from; `cambium down` and `cambium up "
        "--object-store URL` keep it in one");
  }
  CAMBIUM_ASSIGN_OR_RETURN(const Daemon* ps, PageserverNamed(name));
  const std::string url = HistoryStoreUrl(*ps);
  const absl::Time start = absl::Now();
  // Nothing is stopped or deleted unless the store answers and holds an upload.
  CAMBIUM_ASSIGN_OR_RETURN(StackUploads uploads,
                           ListStackUploads(url, StackCredentialsFile(dir_.path())));
  if (uploads.indexes.empty()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s holds no upload of %s yet; its data is left as it is", uploads.store, name));
  }
  ReportProgress("rebuild", "stopping endpoints and daemons");
  CAMBIUM_RETURN_IF_ERROR(Annotate(Down().status(), "stopping the stack"));
  // The old data is moved aside, not deleted, until the restored pageserver runs: a
  // store that turns out damaged must not cost a disk that was still readable.
  const std::string data = dir_.Sub(name);
  const std::string aside = dir_.Sub(name + ".before-rebuild");
  std::error_code ec;
  fs::remove_all(aside, ec);
  ReportProgress("rebuild", absl::StrCat("moving ", name, "'s data aside to ", aside));
  fs::rename(data, aside, ec);
  if (ec && fs::exists(data)) {
    // An unreadable disk may refuse even that: then the data goes.
    ReportProgress("rebuild", "cannot move it (" + ec.message() + "); deleting " + data);
    ec.clear();
    fs::remove_all(data, ec);
    if (ec) return absl::InternalError(absl::StrCat("deleting ", data, ": ", ec.message()));
  }
  ReportProgress("rebuild", absl::StrCat("starting ", name, " restored from ", uploads.store));
  absl::StatusOr<Output> up = Up();
  if (!up.ok()) {
    // Not left restarting a pageserver that cannot restore.
    (void)Down();
    return Annotate(
        up.status(),
        absl::StrFormat("restoring %s from %s (the stack is down; the replaced data is in %s: "
                        "`mv %s %s` and `cambium up` return to it)",
                        name, uploads.store, aside, aside, data));
  }
  fs::remove_all(aside, ec);
  // What it restored may predate a move of a tenant away from it: that copy must not
  // be served (nor taken for the tenant by a later move back).
  std::vector<std::string> retired;
  if (!stack_.more_pageservers.empty()) {
    CAMBIUM_ASSIGN_OR_RETURN(ps, PageserverNamed(name));
    CAMBIUM_ASSIGN_OR_RETURN(retired, RetireStaleCopies(*ps));
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  Output out;
  out.json = up->json;
  out.json["rebuilt"] = true;
  out.json["pageserver_rebuilt"] = name;
  out.json["object_store"] = uploads.store;
  out.json["restored_index"] = uploads.indexes.back().key;
  out.json["seconds"] = seconds;
  out.json["retired_stale_copies"] = retired;
  out.text = absl::StrFormat(
      "%s was rebuilt from %s (%s) in %.1f s; endpoints were restarted on their ports.\n%s%s", name,
      uploads.store, uploads.indexes.back().key, seconds,
      retired.empty()
          ? ""
          : absl::StrFormat("Stale copies of tenants served elsewhere were retired: %s.\n",
                            absl::StrJoin(retired, ", ")),
      up->text);
  return out;
}

}  // namespace cambium::cli
