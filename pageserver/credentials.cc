// Repository: the Postgres passwords of each branch (docs/security.md). They live in
// the branch record, made on first use: a branch made before credentials existed,
// by any path (create, import, restore's backup), gets its own on its first
// GetCredentials. A branch's passwords never change; the CLI writes them into the
// branch's catalog at each read-write start, so a child's passwords (copied from the
// parent's catalog at the branch point) are replaced before anyone can use them.
#include <sys/random.h>

#include <cerrno>

#include "absl/strings/escaping.h"
#include "common/logging.h"
#include "common/status.h"
#include "pageserver/repository.h"

namespace cambium::pageserver {
namespace {

// 128 random bits as 32 hex digits: safe in a URL and a libpq keyword value.
absl::StatusOr<std::string> NewPassword() {
  char buf[16];
  size_t got = 0;
  while (got < sizeof(buf)) {
    const ssize_t n = getrandom(buf + got, sizeof(buf) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, "getrandom");
    got += static_cast<size_t>(n);
  }
  return absl::BytesToHexString(absl::string_view(buf, sizeof(buf)));
}

}  // namespace

absl::StatusOr<BranchCredentials> Repository::GetCredentials(const std::string& tenant,
                                                             const std::string& branch) {
  std::lock_guard<std::mutex> lock(mu_);
  CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
  CAMBIUM_ASSIGN_OR_RETURN(auto* b, FindBranchLocked(*t, branch));
  if (b->owner_password().empty() || b->reader_password().empty()) {
    storage::v1::BranchRecord updated = *b;
    if (updated.owner_password().empty()) {
      CAMBIUM_ASSIGN_OR_RETURN(*updated.mutable_owner_password(), NewPassword());
    }
    if (updated.reader_password().empty()) {
      CAMBIUM_ASSIGN_OR_RETURN(*updated.mutable_reader_password(), NewPassword());
    }
    rocksdb::WriteBatch batch;
    batch.Put(store_->cf(Family::kMeta), BranchKey(t->id, branch), updated.SerializeAsString());
    // Synced: a password handed out (and set in a catalog) is never forgotten.
    CAMBIUM_RETURN_IF_ERROR(store_->Write(&batch, true));
    *b = updated;
    LogInfo("branch_credentials_made", {{"tenant", tenant}, {"branch", branch}});
  }
  return BranchCredentials{.owner_password = b->owner_password(),
                           .reader_password = b->reader_password()};
}

}  // namespace cambium::pageserver
