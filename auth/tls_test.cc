// TLS for Cambium's listeners and channels (common/service.h): with a certificate,
// key and CA in the process security, a server speaks TLS and requires client
// certificates (mutual TLS), channels present theirs, and the bearer token still
// authenticates every call; a plaintext client gets nothing. The certificate is made
// by the openssl command line for 127.0.0.1.
#include "absl/strings/str_format.h"
#include "auth/authenticator.h"
#include "auth/token.h"
#include "cambium/v1/management_service.grpc.pb.h"
#include "common/files.h"
#include "common/service.h"
#include "common/subprocess.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "tests/harness/temp_dir.h"

namespace cambium::auth {
namespace {

class Lister final : public v1::ManagementService::Service {
  grpc::Status ListTenants(grpc::ServerContext* ctx, const v1::ListTenantsRequest*,
                           v1::ListTenantsResponse* resp) override {
    std::optional<Principal> p = PrincipalOf(*ctx);
    resp->add_tenants()->set_name(p ? p->id : "none");
    return grpc::Status::OK;
  }
};

TEST(Tls, MutualTlsCarriesTheTokenAndRefusesPlaintext) {
  auto dir = *cambium::testing::TempDir::Create("cambium-tls-");
  auto made =
      RunCommand({.argv = {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                           "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                           "-keyout", dir.Sub("key.pem"), "-out", dir.Sub("cert.pem")}},
                 absl::Minutes(1));
  ASSERT_TRUE(made.ok() && made->exit_code == 0)
      << (made.ok() ? made->err : made.status().ToString());
  const std::string service = *MakeToken("service");
  ProcessSecurity tls;
  tls.client_token = service;
  tls.tls_cert = *ReadFileToString(dir.Sub("cert.pem"));
  tls.tls_key = *ReadFileToString(dir.Sub("key.pem"));
  tls.tls_ca = tls.tls_cert;  // self-signed: its own CA
  tls.processor = *Authenticator::Create({.service_token = service});
  const ProcessSecurity saved = GetProcessSecurity();
  SetProcessSecurity(tls);

  Lister lister;
  grpc::ServerBuilder builder;
  int port = 0;
  ASSERT_TRUE(ConfigureServer(builder, "127.0.0.1:0", &port).ok());
  builder.RegisterService(&lister);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  const std::string address = absl::StrFormat("127.0.0.1:%d", port);

  auto stub = v1::ManagementService::NewStub(MakeChannel(address));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::ListTenantsResponse resp;
  grpc::Status s = stub->ListTenants(&ctx, {}, &resp);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(resp.tenants(0).name(), "service");

  // Plaintext (no TLS) cannot talk to it, with or without the token.
  SetProcessSecurity(ProcessSecurity{.client_token = service});
  auto plain = v1::ManagementService::NewStub(MakeChannel(address));
  grpc::ClientContext ctx2;
  ctx2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  EXPECT_FALSE(plain->ListTenants(&ctx2, {}, &resp).ok());
  // TLS without a client certificate is refused by mutual TLS.
  ProcessSecurity no_cert;
  no_cert.client_token = service;
  no_cert.tls_ca = tls.tls_ca;
  SetProcessSecurity(no_cert);
  auto anonymous = v1::ManagementService::NewStub(MakeChannel(address));
  grpc::ClientContext ctx3;
  ctx3.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  EXPECT_FALSE(anonymous->ListTenants(&ctx3, {}, &resp).ok());
  // TLS with a certificate but a wrong token: UNAUTHENTICATED.
  ProcessSecurity wrong = tls;
  wrong.client_token = *MakeToken("service");
  SetProcessSecurity(wrong);
  auto impostor = v1::ManagementService::NewStub(MakeChannel(address));
  grpc::ClientContext ctx4;
  ctx4.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  EXPECT_EQ(impostor->ListTenants(&ctx4, {}, &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  SetProcessSecurity(saved);
}

TEST(Tls, PlaintextListenersStayOnLoopback) {
  const ProcessSecurity saved = GetProcessSecurity();
  SetProcessSecurity(ProcessSecurity());
  grpc::ServerBuilder builder;
  int port = 0;
  EXPECT_EQ(ConfigureServer(builder, "0.0.0.0:0", &port).code(),
            absl::StatusCode::kInvalidArgument);
  SetProcessSecurity(saved);
}

}  // namespace
}  // namespace cambium::auth
