// Access control against real daemons: a pageserver (with an admin token and its
// token store) and a safekeeper, started as `cambium up` starts them. For every
// method of every Cambium service, found through the protobuf descriptors so that a
// new RPC cannot be forgotten: a client without a token, with a bogus one, or with
// the service token of another stack is refused (UNAUTHENTICATED) before any handler
// runs; an API token, even of scope admin, is refused every data-path method
// (PERMISSION_DENIED); every method is in the authorization table. Expired and
// revoked tokens are refused, refusals appear in the audit log.
#include <condition_variable>
#include <mutex>

#include "absl/strings/str_format.h"
#include "auth/method_policy.h"
#include "auth/private_file.h"
#include "auth/token.h"
#include "cambium/v1/management_service.grpc.pb.h"
#include "cambium/v1/page_service.grpc.pb.h"
#include "cambium/v1/safekeeper_service.grpc.pb.h"
#include "common/service.h"
#include "common/status.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/harness/net.h"
#include "tests/harness/security.h"
#include "tests/harness/service_process.h"
#include "tests/harness/temp_dir.h"

namespace cambium {
namespace {

using ::testing::HasSubstr;

// A client credential: sends `token` (none if empty) on LOCAL_TCP, or plaintext
// without any call credentials if `insecure`.
class TokenPlugin final : public grpc::MetadataCredentialsPlugin {
 public:
  explicit TokenPlugin(std::string token) : token_(std::move(token)) {}
  bool IsBlocking() const override { return false; }
  grpc::Status GetMetadata(grpc::string_ref, grpc::string_ref, const grpc::AuthContext&,
                           std::multimap<grpc::string, grpc::string>* md) override {
    md->insert({"authorization", "Bearer " + token_});
    return grpc::Status::OK;
  }

 private:
  const std::string token_;
};

std::shared_ptr<grpc::Channel> ChannelWith(const std::string& address, const std::string& token,
                                           bool insecure = false) {
  if (insecure) return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::experimental::LocalCredentials(LOCAL_TCP);
  if (!token.empty()) {
    creds = grpc::CompositeChannelCredentials(
        creds, grpc::experimental::MetadataCredentialsFromPlugin(
                   std::make_unique<TokenPlugin>(token), GRPC_SECURITY_NONE));
  }
  return grpc::CreateChannel(address, creds);
}

// One call of `method` ("/pkg.Service/Method") with an empty request; streaming
// methods too (the refusal comes before any message is read).
grpc::Status CallGeneric(grpc::Channel* channel, const std::string& method) {
  grpc::GenericStub stub(channel->shared_from_this());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  grpc::Slice empty("", 0);
  grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
    std::lock_guard<std::mutex> lock(mu);
    status = std::move(s);
    done = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  return status;
}

// Every method of every service declared in the file of `message`.
std::vector<std::string> MethodsInFileOf(const google::protobuf::Descriptor* message) {
  const google::protobuf::FileDescriptor* file = message->file();
  std::vector<std::string> out;
  for (int s = 0; s < file->service_count(); ++s) {
    const google::protobuf::ServiceDescriptor* d = file->service(s);
    for (int i = 0; i < d->method_count(); ++i) {
      out.push_back("/" + d->full_name() + "/" + d->method(i)->name());
    }
  }
  return out;
}

class AccessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir(testing::TempDir::Create("cambium-access-").value());
    admin_token_ =
        new std::string(auth::EnsureSecretFile(dir_->Sub("secrets/admin.token"), "admin").value());
    sk_ = testing::ServiceProcess::Start(CAMBIUM_SAFEKEEPER_BIN,
                                         {"--data-dir", dir_->Sub("sk0"), "--id", "sk0"},
                                         testing::FreePort().value(), dir_->Sub("sk0.log"))
              .value()
              .release();
    ps_ = testing::ServiceProcess::Start(
              CAMBIUM_PAGESERVER_BIN,
              {"--data-dir", dir_->Sub("pageserver"), "--gc-interval", "0", "--cache-mb", "16",
               "--admin-token-file", dir_->Sub("secrets/admin.token"), "--safekeepers",
               sk_->address()},
              testing::FreePort().value(), dir_->Sub("pageserver.log"))
              .value()
              .release();
  }
  static void TearDownTestSuite() {
    delete ps_;
    delete sk_;
    delete admin_token_;
    delete dir_;
  }

  static std::string CreateToken(const std::string& admin, v1::Scope scope, uint64_t ttl = 0) {
    auto stub = v1::ManagementService::NewStub(ChannelWith(ps_->address(), admin));
    v1::CreateTokenRequest req;
    req.set_scope(scope);
    req.set_ttl_seconds(ttl);
    v1::CreateTokenResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub->CreateToken(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.token();
  }

  static std::vector<std::pair<std::string, std::string>> AllMethods() {
    std::vector<std::pair<std::string, std::string>> out;  // (method, address)
    // The services of each proto file (a new service in one is covered too).
    for (const auto& m : MethodsInFileOf(v1::ListTenantsRequest::descriptor())) {
      out.push_back({m, ps_->address()});
    }
    for (const auto& m : MethodsInFileOf(v1::GetPagesRequest::descriptor())) {
      out.push_back({m, ps_->address()});
    }
    for (const auto& m : MethodsInFileOf(v1::AppendRequest::descriptor())) {
      out.push_back({m, sk_->address()});
    }
    return out;
  }

  static testing::TempDir* dir_;
  static std::string* admin_token_;
  static testing::ServiceProcess* sk_;
  static testing::ServiceProcess* ps_;
};

testing::TempDir* AccessTest::dir_ = nullptr;
std::string* AccessTest::admin_token_ = nullptr;
testing::ServiceProcess* AccessTest::sk_ = nullptr;
testing::ServiceProcess* AccessTest::ps_ = nullptr;

TEST_F(AccessTest, EveryMethodIsInTheAuthorizationTable) {
  const auto methods = AllMethods();
  EXPECT_GE(methods.size(), 35u);
  for (const auto& [method, address] : methods) {
    EXPECT_TRUE(auth::RequiredFor(method).has_value()) << method << " is not in method_policy.cc";
  }
}

TEST_F(AccessTest, NoMethodOfAnyServiceAnswersWithoutAValidToken) {
  const std::string other_stack = *auth::MakeToken("service");
  const std::string other_admin = *auth::MakeToken("admin");
  for (const auto& [method, address] : AllMethods()) {
    for (const auto& [what, channel] :
         std::vector<std::pair<std::string, std::shared_ptr<grpc::Channel>>>{
             {"no token", ChannelWith(address, "")},
             {"plaintext without credentials", ChannelWith(address, "", /*insecure=*/true)},
             {"a bogus token", ChannelWith(address, "bogus")},
             {"another stack's service token", ChannelWith(address, other_stack)},
             {"another stack's admin token", ChannelWith(address, other_admin)}}) {
      grpc::Status s = CallGeneric(channel.get(), method);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << method << " with " << what << ": " << s.error_code() << " " << s.error_message();
    }
  }
}

TEST_F(AccessTest, ApiTokensNeverReachTheDataPath) {
  auto admin = ChannelWith(ps_->address(), *admin_token_);
  const std::string admin_scoped = CreateToken(*admin_token_, v1::SCOPE_ADMIN);
  for (const auto& [method, address] : AllMethods()) {
    if (auth::RequiredFor(method) != auth::Need::kService) continue;
    for (const std::string& token : {*admin_token_, admin_scoped}) {
      grpc::Status s = CallGeneric(ChannelWith(address, token).get(), method);
      // The pageserver knows API tokens and says what is missing; a safekeeper
      // knows only the service token.
      if (address == ps_->address()) {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << method << ": " << s.error_code() << " " << s.error_message();
        EXPECT_THAT(s.error_message(), HasSubstr("service credential")) << method;
      } else {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED)
            << method << ": " << s.error_code() << " " << s.error_message();
      }
    }
  }
  // The service token is accepted there (the call itself then fails on its empty
  // request, or succeeds: anything but an authentication error).
  grpc::Status s = CallGeneric(ChannelWith(sk_->address(), testing::TestServiceToken()).get(),
                               "/cambium.v1.SafekeeperService/Status");
  EXPECT_NE(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_NE(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
}

TEST_F(AccessTest, ScopesExpiryRevocationAndTheAuditLog) {
  const std::string read = CreateToken(*admin_token_, v1::SCOPE_READ);
  auto as_read = v1::ManagementService::NewStub(ChannelWith(ps_->address(), read));
  {
    grpc::ClientContext ctx;
    v1::ListTenantsResponse resp;
    EXPECT_TRUE(as_read->ListTenants(&ctx, {}, &resp).ok());
  }
  {
    grpc::ClientContext ctx;
    v1::CreateTenantRequest req;
    req.set_name("t1");
    v1::TenantInfo resp;
    grpc::Status s = as_read->CreateTenant(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(s.error_message(), HasSubstr("needs scope admin"));
  }
  // Revoked: refused at once.
  auto admin = v1::ManagementService::NewStub(ChannelWith(ps_->address(), *admin_token_));
  {
    grpc::ClientContext ctx;
    v1::RevokeTokenRequest req;
    req.set_id(auth::ParseToken(read)->id);
    v1::TokenInfo resp;
    ASSERT_TRUE(admin->RevokeToken(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.revoked());
    grpc::ClientContext ctx2;
    v1::ListTenantsResponse tenants;
    grpc::Status s = as_read->ListTenants(&ctx2, {}, &tenants);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_THAT(s.error_message(), HasSubstr("revoked"));
  }
  // Expired: a 1-second token, checked once it is over (no timing assertion: the
  // wait is for the clock to pass a point).
  const std::string short_lived = CreateToken(*admin_token_, v1::SCOPE_READ, 1);
  absl::SleepFor(absl::Milliseconds(1100));
  {
    auto stub = v1::ManagementService::NewStub(ChannelWith(ps_->address(), short_lived));
    grpc::ClientContext ctx;
    v1::ListTenantsResponse resp;
    grpc::Status s = stub->ListTenants(&ctx, {}, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_THAT(s.error_message(), HasSubstr("expired"));
  }
  // The audit log has the allowed calls and the refusals, and never a secret.
  grpc::ClientContext ctx;
  v1::ReadAuditResponse audit;
  ASSERT_TRUE(admin->ReadAudit(&ctx, {}, &audit).ok());
  bool saw_denied = false, saw_unauthenticated = false, saw_revoke = false;
  for (const std::string& line : audit.records()) {
    auto j = nlohmann::json::parse(line);
    saw_denied |= j["action"] == "CreateTenant" && j["result"] == "PERMISSION_DENIED";
    saw_unauthenticated |= j["result"] == "UNAUTHENTICATED";
    saw_revoke |= j["action"] == "RevokeToken" && j["result"] == "OK" && j["token_id"] == "admin";
    EXPECT_THAT(line, ::testing::Not(HasSubstr(auth::ParseToken(read)->secret)));
  }
  EXPECT_TRUE(saw_denied);
  EXPECT_TRUE(saw_unauthenticated);
  EXPECT_TRUE(saw_revoke);
}

TEST_F(AccessTest, TokensSurviveAPageserverRestart) {
  const std::string develop = CreateToken(*admin_token_, v1::SCOPE_DEVELOP);
  ASSERT_TRUE(ps_->Stop().ok());
  ASSERT_TRUE(ps_->Restart().ok());
  auto stub = v1::ManagementService::NewStub(ChannelWith(ps_->address(), develop));
  grpc::ClientContext ctx;
  PrepareControlCall(ctx, absl::Seconds(30));
  v1::ListTenantsResponse resp;
  grpc::Status s = stub->ListTenants(&ctx, {}, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
}

}  // namespace
}  // namespace cambium
