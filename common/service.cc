#include "common/service.h"

#include <malloc.h>
#include <signal.h>

#include <sys/stat.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/files.h"
#include "common/status.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace cambium {
namespace {

constexpr int kMaxMessageBytes = 64 << 20;

absl::Mutex security_mu(absl::kConstInit);
ProcessSecurity* security ABSL_GUARDED_BY(security_mu) = nullptr;

// Sends the process's token on every call. Non-blocking: the token is in memory.
class BearerTokenPlugin final : public grpc::MetadataCredentialsPlugin {
 public:
  explicit BearerTokenPlugin(std::string token) : header_("Bearer " + std::move(token)) {}
  bool IsBlocking() const override { return false; }
  const char* GetType() const override { return "cambium-bearer"; }
  grpc::Status GetMetadata(grpc::string_ref, grpc::string_ref, const grpc::AuthContext&,
                           std::multimap<grpc::string, grpc::string>* metadata) override {
    metadata->insert({"authorization", header_});
    return grpc::Status::OK;
  }

 private:
  const std::string header_;
};

absl::StatusOr<std::string> ReadPemFile(const std::string& path) {
  if (path.empty()) return std::string();
  return ReadFileToString(path);
}

}  // namespace

void AddSecurityFlags(CLI::App& app, SecurityOptions* o) {
  app.add_option("--service-token-file", o->service_token_file,
                 "File (0600) with the stack's service token (cambium up writes "
                 "DATA/secrets/service.token)");
  app.add_option("--tls-cert-file", o->tls_cert_file, "PEM certificate: serve and call over TLS");
  app.add_option("--tls-key-file", o->tls_key_file, "PEM private key of --tls-cert-file");
  app.add_option("--tls-ca-file", o->tls_ca_file,
                 "PEM CA that peers' certificates must chain to (mutual TLS for servers)");
}

void SetProcessSecurity(ProcessSecurity s) {
  absl::MutexLock lock(&security_mu);
  delete security;
  security = new ProcessSecurity(std::move(s));
}

ProcessSecurity GetProcessSecurity() {
  absl::MutexLock lock(&security_mu);
  return security ? *security : ProcessSecurity();
}

absl::Status InitProcessSecurity(const SecurityOptions& o, bool require_service_token) {
  ProcessSecurity s = GetProcessSecurity();
  if (o.service_token_file.empty()) {
    if (require_service_token) {
      return absl::FailedPreconditionError(
          "--service-token-file is required: the stack's daemons authenticate each other with "
          "it (cambium up writes DATA/secrets/service.token)");
    }
  } else {
    struct stat st;
    if (stat(o.service_token_file.c_str(), &st) != 0) {
      return ErrnoToStatus(errno, "--service-token-file " + o.service_token_file);
    }
    if ((st.st_mode & 077) != 0) {
      return absl::FailedPreconditionError(
          absl::StrFormat("--service-token-file %s has mode %o: others may read it; chmod 600 it",
                          o.service_token_file, st.st_mode & 0777));
    }
    CAMBIUM_ASSIGN_OR_RETURN(std::string token, ReadFileToString(o.service_token_file));
    s.client_token = std::string(absl::StripAsciiWhitespace(token));
    if (s.client_token.empty()) {
      return absl::FailedPreconditionError("--service-token-file " + o.service_token_file +
                                           " is empty");
    }
  }
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert-file and --tls-key-file go together");
  }
  CAMBIUM_ASSIGN_OR_RETURN(s.tls_cert, ReadPemFile(o.tls_cert_file));
  CAMBIUM_ASSIGN_OR_RETURN(s.tls_key, ReadPemFile(o.tls_key_file));
  CAMBIUM_ASSIGN_OR_RETURN(s.tls_ca, ReadPemFile(o.tls_ca_file));
  SetProcessSecurity(std::move(s));
  return absl::OkStatus();
}

void AddServiceFlags(CLI::App& app, LogOptions* log) {
  app.set_config("--config", "", "Read options from a TOML file (keys are the flag names)");
  app.add_option("--log-file", log->file, "Append logs to this file (default: stderr)");
  app.add_option_function<std::string>(
      "--log-level",
      [log](const std::string& name) {
        auto level = ParseLogLevel(name);
        if (!level.ok())
          throw CLI::ValidationError("--log-level", std::string(level.status().message()));
        log->level = *level;
      },
      "debug, info, warning or error (default: info)");
}

void PrepareDaemonProcess() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // (Both fail only for values out of glibc's range; these are within it.)
  (void)mallopt(M_MMAP_THRESHOLD, 32 << 20);
  (void)mallopt(M_TRIM_THRESHOLD, 128 << 20);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForTerminationSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) continue;
    return sig;
  }
}

absl::Status CheckLoopbackAddress(std::string_view address) {
  size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string_view::npos ||
      !absl::SimpleAtoi(std::string(address.substr(colon + 1)), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrFormat("invalid address \"%s\": expected 127.0.0.1:PORT", address));
  }
  std::string_view host = address.substr(0, colon);
  if (host != "127.0.0.1" && host != "localhost") {
    return absl::InvalidArgumentError(absl::StrFormat(
        "address \"%s\" is not loopback: Cambium services listen on 127.0.0.1 only", address));
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address) {
  return MakeChannel(address, GetProcessSecurity().client_token);
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address, const std::string& token) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Reconnect quickly after a peer restarts (defaults back off to minutes).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // Despite its name, gRPC uses this as the minimum time a connection attempt may
  // take. At 100 ms a peer that was busy for a moment (a loaded machine, a GC
  // pause, SIGSTOP) failed every call queued on the channel with "failed to
  // connect to all addresses" although it was up.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(kMinConnectTimeout)));
  // Each channel owns its connections: a channel made after a peer restarted must not
  // inherit a dead connection from a global subchannel pool.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  const ProcessSecurity security = GetProcessSecurity();
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!security.tls_cert.empty() || !security.tls_ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = security.tls_ca;
    ssl.pem_cert_chain = security.tls_cert;
    ssl.pem_private_key = security.tls_key;
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::experimental::LocalCredentials(LOCAL_TCP);
  }
  if (!token.empty()) {
    // Not AccessTokenCredentials: it declares privacy and integrity as its minimum
    // security level, which LOCAL_TCP does not give (Debian's gRPC 1.51 sends it
    // anyway, newer versions refuse). Loopback plaintext is the default transport.
    creds = grpc::CompositeChannelCredentials(
        creds, grpc::experimental::MetadataCredentialsFromPlugin(
                   std::make_unique<BearerTokenPlugin>(token), GRPC_SECURITY_NONE));
  }
  return grpc::CreateCustomChannel(address, creds, args);
}

void PrepareControlCall(grpc::ClientContext& context, absl::Duration timeout) {
  context.set_wait_for_ready(true);
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

absl::Status ConfigureServer(grpc::ServerBuilder& builder, const std::string& address,
                             int* selected_port,
                             std::shared_ptr<grpc::AuthMetadataProcessor> processor) {
  const ProcessSecurity security = GetProcessSecurity();
  const bool tls = !security.tls_cert.empty() && !security.tls_key.empty();
  // Plaintext listeners stay on loopback; with TLS a service may face other hosts.
  if (!tls) CAMBIUM_RETURN_IF_ERROR(CheckLoopbackAddress(address));
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (tls) {
    grpc::SslServerCredentialsOptions ssl(
        security.tls_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = security.tls_ca;
    ssl.pem_key_cert_pairs.push_back({security.tls_key, security.tls_cert});
    creds = grpc::SslServerCredentials(ssl);
  } else {
    creds = grpc::experimental::LocalServerCredentials(LOCAL_TCP);
  }
  if (!processor) processor = security.processor;
  if (processor) creds->SetAuthMetadataProcessor(processor);
  builder.AddListeningPort(address, creds, selected_port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  return absl::OkStatus();
}

absl::StatusOr<absl::Duration> ParseHumanDuration(std::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("empty duration");
  absl::Duration total;
  size_t i = 0;
  while (i < text.size()) {
    size_t digits = i;
    while (digits < text.size() && (isdigit(text[digits]) || text[digits] == '.')) ++digits;
    size_t unit_end = digits;
    while (unit_end < text.size() && isalpha(text[unit_end])) ++unit_end;
    double value = 0;
    std::string_view unit = text.substr(digits, unit_end - digits);
    if (digits == i || !absl::SimpleAtod(std::string(text.substr(i, digits - i)), &value)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("invalid duration \"%s\": expected e.g. 7d, 36h, 90m, 15s, 1h30m", text));
    }
    absl::Duration unit_d;
    if (unit == "w") {
      unit_d = absl::Hours(24 * 7);
    } else if (unit == "d") {
      unit_d = absl::Hours(24);
    } else if (unit == "h") {
      unit_d = absl::Hours(1);
    } else if (unit == "m") {
      unit_d = absl::Minutes(1);
    } else if (unit == "s") {
      unit_d = absl::Seconds(1);
    } else if (unit == "ms") {
      unit_d = absl::Milliseconds(1);
    } else {
      return absl::InvalidArgumentError(absl::StrFormat(
          "invalid duration \"%s\": unit \"%s\" is not one of w, d, h, m, s, ms", text, unit));
    }
    total += value * unit_d;
    i = unit_end;
  }
  return total;
}

}  // namespace cambium
