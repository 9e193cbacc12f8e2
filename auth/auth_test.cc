// Unit tests of tokens, the token store, the authorization table, the authenticator
// and the audit log.
#include <sys/stat.h>

#include <fstream>

#include "auth/audit_log.h"
#include "auth/authenticator.h"
#include "auth/method_policy.h"
#include "auth/private_file.h"
#include "auth/token.h"
#include "auth/token_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/harness/temp_dir.h"

namespace cambium::auth {
namespace {

using ::testing::HasSubstr;

TEST(Token, ParsesIdAndSecret) {
  auto t = MakeToken("abc123");
  ASSERT_TRUE(t.ok());
  auto parsed = ParseToken(*t);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->id, "abc123");
  EXPECT_EQ(parsed->secret.size(), 64u);
  EXPECT_FALSE(ParseToken("bogus").has_value());
  EXPECT_FALSE(ParseToken("cmb_").has_value());
  EXPECT_FALSE(ParseToken("cmb_abc_").has_value());
}

TEST(Token, TwoTokensDiffer) { EXPECT_NE(*MakeToken("a"), *MakeToken("a")); }

TEST(Token, HashesCompareExactly) {
  const std::string h = HashSecret("s");
  EXPECT_TRUE(HashesEqual(h, HashSecret("s")));
  EXPECT_FALSE(HashesEqual(h, HashSecret("t")));
  EXPECT_FALSE(HashesEqual(h, h.substr(1)));
}

TEST(Principal, BranchPatternsLimitDevelopCalls) {
  Principal p{.id = "x", .scope = Scope::kDevelop, .branches = {"preview-*", "dev"}};
  EXPECT_TRUE(p.MayActOnBranch("preview-42"));
  EXPECT_TRUE(p.MayActOnBranch("dev"));
  EXPECT_FALSE(p.MayActOnBranch("main"));
  EXPECT_FALSE(p.MayActOnBranch("dev2"));
  EXPECT_TRUE(Principal{.scope = Scope::kRead}.MayActOnBranch("main"));
}

TEST(Principal, ScopesAreOrdered) {
  Principal read{.scope = Scope::kRead};
  Principal admin{.scope = Scope::kAdmin};
  EXPECT_TRUE(read.HasScope(Scope::kRead));
  EXPECT_FALSE(read.HasScope(Scope::kDevelop));
  EXPECT_TRUE(admin.HasScope(Scope::kDevelop));
  EXPECT_TRUE(Principal{.service = true}.HasScope(Scope::kAdmin));
}

class TokenStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = cambium::testing::TempDir::Create("auth-test-");
    ASSERT_TRUE(dir.ok());
    dir_ = std::make_unique<cambium::testing::TempDir>(*std::move(dir));
    path_ = dir_->Sub("tokens.json");
  }
  std::unique_ptr<cambium::testing::TempDir> dir_;
  std::string path_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
};

TEST_F(TokenStoreTest, CreatedTokenAuthenticatesAndOnlyItsHashIsStored) {
  auto store = TokenStore::Open(path_);
  ASSERT_TRUE(store.ok());
  auto t = (*store)->Create(Scope::kDevelop, {"preview-*"}, std::nullopt, "ci", now_);
  ASSERT_TRUE(t.ok()) << t.status();
  auto p = (*store)->Authenticate(*ParseToken(t->token), now_);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->id, t->record.id);
  EXPECT_EQ(p->scope, Scope::kDevelop);
  EXPECT_THAT(p->branches, ::testing::ElementsAre("preview-*"));
  std::ifstream in(path_);
  std::string content((std::istreambuf_iterator<char>(in)), {});
  EXPECT_THAT(content, ::testing::Not(HasSubstr(ParseToken(t->token)->secret)));
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(TokenStoreTest, WrongSecretIsRefused) {
  auto store = *TokenStore::Open(path_);
  auto t = *store->Create(Scope::kAdmin, {}, std::nullopt, "", now_);
  ParsedToken wrong = *ParseToken(t.token);
  wrong.secret[0] = wrong.secret[0] == 'a' ? 'b' : 'a';
  auto p = store->Authenticate(wrong, now_);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(store->Authenticate({"nosuch", "x"}, now_).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(TokenStoreTest, ExpiredTokenIsRefused) {
  auto store = *TokenStore::Open(path_);
  auto t = *store->Create(Scope::kRead, {}, absl::Hours(1), "", now_);
  EXPECT_TRUE(store->Authenticate(*ParseToken(t.token), now_ + absl::Minutes(59)).ok());
  auto p = store->Authenticate(*ParseToken(t.token), now_ + absl::Hours(1));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(p.status().message(), HasSubstr("expired"));
}

TEST_F(TokenStoreTest, RevocationTakesEffectAtOnceAndSurvivesReopen) {
  auto t = [&] {
    auto store = *TokenStore::Open(path_);
    auto t = *store->Create(Scope::kDevelop, {}, std::nullopt, "", now_);
    EXPECT_TRUE(store->Revoke(t.record.id).ok());
    EXPECT_THAT(store->Authenticate(*ParseToken(t.token), now_).status().message(),
                HasSubstr("revoked"));
    return t;
  }();
  auto reopened = *TokenStore::Open(path_);
  EXPECT_EQ(reopened->Authenticate(*ParseToken(t.token), now_).status().code(),
            absl::StatusCode::kUnauthenticated);
  ASSERT_EQ(reopened->List().size(), 1u);
  EXPECT_TRUE(reopened->List()[0].revoked);
  EXPECT_EQ(reopened->Revoke("nosuch").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TokenStoreTest, TokensSurviveReopen) {
  std::string token;
  {
    auto store = *TokenStore::Open(path_);
    token = store->Create(Scope::kRead, {}, std::nullopt, "x", now_)->token;
  }
  auto reopened = *TokenStore::Open(path_);
  EXPECT_TRUE(reopened->Authenticate(*ParseToken(token), now_).ok());
}

TEST_F(TokenStoreTest, DamagedFileIsAnErrorNotAnEmptyStore) {
  std::ofstream(path_) << "{\"tokens\": [{\"id\": 1}";
  auto store = TokenStore::Open(path_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(store.status().message(), HasSubstr(path_));
}

TEST_F(TokenStoreTest, BadPatternsAndTtlsAreRefused) {
  auto store = *TokenStore::Open(path_);
  EXPECT_EQ(store->Create(Scope::kRead, {""}, std::nullopt, "", now_).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Create(Scope::kRead, {}, absl::ZeroDuration(), "", now_).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(store->List().empty());
}

TEST_F(TokenStoreTest, SecretFilesReadableByOthersAreRefused) {
  auto token = EnsureSecretFile(dir_->Sub("secrets/service.token"), "service");
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*ReadSecretFile(dir_->Sub("secrets/service.token")), *token);
  EXPECT_EQ(*EnsureSecretFile(dir_->Sub("secrets/service.token"), "service"), *token);
  chmod(dir_->Sub("secrets/service.token").c_str(), 0644);
  EXPECT_EQ(ReadSecretFile(dir_->Sub("secrets/service.token")).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(MethodPolicy, DataPathNeedsServiceAndManagementNamesScopes) {
  EXPECT_EQ(RequiredFor("/cambium.v1.PageService/GetPages"), Need::kService);
  EXPECT_EQ(RequiredFor("/cambium.v1.SafekeeperService/Append"), Need::kService);
  EXPECT_EQ(RequiredFor("/cambium.v1.ManagementService/ListBranches"), Need::kRead);
  // Read-only copies need read; the handler asks develop for other branches.
  EXPECT_EQ(RequiredFor("/cambium.v1.ManagementService/CreateBranch"), Need::kRead);
  EXPECT_EQ(RequiredFor("/cambium.v1.ManagementService/ResetBranch"), Need::kDevelop);
  EXPECT_EQ(RequiredFor("/cambium.v1.ManagementService/CreateToken"), Need::kAdmin);
  EXPECT_EQ(RequiredFor("/cambium.v1.ManagementService/NoSuchMethod"), std::nullopt);
}

TEST(Authenticator, AuthorizeNamesTheScopeNeeded) {
  Principal read{.id = "r1", .scope = Scope::kRead};
  absl::Status s = Authenticator::Authorize(read, "/cambium.v1.ManagementService/ResetBranch");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("needs scope develop"));
  Principal admin{.id = "a", .scope = Scope::kAdmin};
  EXPECT_EQ(Authenticator::Authorize(admin, "/cambium.v1.PageService/GetPages").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Authenticator::Authorize(admin, "/x.Y/Z").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(
      Authenticator::Authorize(Principal{.service = true}, "/cambium.v1.PageService/GetPages")
          .ok());
}

TEST(Authenticator, KnowsServiceAdminAndStoredTokens) {
  auto dir = *cambium::testing::TempDir::Create("auth-test-");
  auto store = *TokenStore::Open(dir.Sub("tokens.json"));
  auto user = *store->Create(Scope::kRead, {}, std::nullopt, "", absl::Now());
  const std::string service = *MakeToken("service");
  const std::string admin = *MakeToken("admin");
  auto a =
      Authenticator::Create({.service_token = service, .admin_token = admin, .store = store.get()});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE((*a)->Authenticate(service)->service);
  EXPECT_EQ((*a)->Authenticate(admin)->scope, Scope::kAdmin);
  EXPECT_FALSE((*a)->Authenticate(admin)->service);
  EXPECT_EQ((*a)->Authenticate(user.token)->scope, Scope::kRead);
  EXPECT_FALSE((*a)->Authenticate(*MakeToken("service")).ok());
  EXPECT_FALSE((*a)->Authenticate("").ok());
  EXPECT_FALSE(Authenticator::Create({.service_token = admin}).ok());
}

TEST(AuditLog, AppendsJsonLinesAndReadsSinceAndLimit) {
  auto dir = *cambium::testing::TempDir::Create("auth-test-");
  auto log = AuditLog::Open(dir.Sub("audit.log"));
  ASSERT_TRUE(log.ok()) << log.status();
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE((*log)
                    ->Append({.time = t0 + absl::Seconds(i),
                              .token_id = "id" + std::to_string(i),
                              .scope = "develop",
                              .action = "CreateBranch",
                              .tenant = "default",
                              .branch = "b",
                              .lsn = "0/16B3748"})
                    .ok());
  }
  auto all = (*log)->Read(absl::InfinitePast(), 0);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 5u);
  auto j = nlohmann::json::parse((*all)[0]);
  EXPECT_EQ(j["token_id"], "id0");
  EXPECT_EQ(j["lsn"], "0/16B3748");
  EXPECT_EQ(j["result"], "OK");
  EXPECT_EQ((*log)->Read(t0 + absl::Seconds(3), 0)->size(), 2u);
  auto last = (*log)->Read(absl::InfinitePast(), 2);
  ASSERT_EQ(last->size(), 2u);
  EXPECT_EQ(nlohmann::json::parse((*last)[1])["token_id"], "id4");
  struct stat st;
  ASSERT_EQ(stat(dir.Sub("audit.log").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// The log is bounded: past max_file_bytes it rotates (audit.log.1 ... .N, the oldest
// dropped), and Read sees the kept files oldest first.
TEST(AuditLog, RotatesAndReadsAcrossTheKeptFiles) {
  auto dir = *cambium::testing::TempDir::Create("auth-test-");
  auto log = AuditLog::Open(dir.Sub("audit.log"), {.max_file_bytes = 2048, .keep_files = 3});
  ASSERT_TRUE(log.ok()) << log.status();
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  constexpr int kRecords = 200;  // about 200 bytes each: far more than 4 files hold
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_TRUE((*log)
                    ->Append({.time = t0 + absl::Seconds(i),
                              .token_id = "id" + std::to_string(i),
                              .action = "ListBranches"})
                    .ok());
  }
  for (const char* f : {"audit.log", "audit.log.1", "audit.log.2", "audit.log.3"}) {
    struct stat st;
    ASSERT_EQ(stat(dir.Sub(f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
    EXPECT_LE(st.st_size, 2048 + 512) << f;
  }
  struct stat gone;
  EXPECT_NE(stat(dir.Sub("audit.log.4").c_str(), &gone), 0);
  auto all = (*log)->Read(absl::InfinitePast(), 0);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_GT(all->size(), 10u);
  ASSERT_LT(all->size(), static_cast<size_t>(kRecords));
  // Oldest first, consecutive, ending with the last record.
  const int first =
      std::stoi(nlohmann::json::parse(all->front())["token_id"].get<std::string>().substr(2));
  for (size_t k = 0; k < all->size(); ++k) {
    EXPECT_EQ(nlohmann::json::parse((*all)[k])["token_id"],
              "id" + std::to_string(first + static_cast<int>(k)));
  }
  EXPECT_EQ(nlohmann::json::parse(all->back())["token_id"], "id" + std::to_string(kRecords - 1));
}

}  // namespace
}  // namespace cambium::auth
