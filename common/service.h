// Process plumbing shared by the Cambium daemons (pageserver, safekeeper, shim) and
// the CLI: configuration from a file overridable by flags, logging flags, clean
// shutdown on SIGTERM/SIGINT, loopback-only gRPC endpoints, human durations.
//
// Configuration convention (STYLE.md habit 7): a component's config is a plain struct
// with a default on every field. Its flags are registered on a CLI11 app with the same
// names as the struct fields (`--listen`, `--data-dir`, ...), and `--config FILE`
// reads a TOML file whose keys are those names (`listen = "127.0.0.1:6400"`); flags
// given on the command line override the file.
//
// Security (docs/security.md): every channel and server of a process shares one
// process-wide security configuration, set once at startup (SetProcessSecurity, or
// InitProcessSecurity from the flags of AddSecurityFlags) before any channel or
// server is made. Servers listen with LocalServerCredentials(LOCAL_TCP), or TLS when
// a certificate and key are configured, and authenticate every call with the
// configured AuthMetadataProcessor; channels use LocalCredentials(LOCAL_TCP) or TLS,
// composed with a metadata plugin that sends "authorization: Bearer <token>". A
// process that never sets a token or processor (a library's own tests in one
// process) calls and serves without authentication; every daemon requires its
// --service-token-file, so the binaries never do.
//
// Thread-safety: PrepareDaemonProcess and SetProcessSecurity must run in main()
// before any thread starts; the rest is thread-safe.
#ifndef CAMBIUM_COMMON_SERVICE_H_
#define CAMBIUM_COMMON_SERVICE_H_

#include <memory>
#include <string>
#include <string_view>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/security/auth_metadata_processor.h"
#include "grpcpp/server_builder.h"

namespace cambium {

// Adds --config (TOML file), --log-file and --log-level to `app`, writing the logging
// choices into *log.
void AddServiceFlags(CLI::App& app, LogOptions* log);

// First thing in a daemon's main():
//  - blocks SIGTERM, SIGINT and SIGHUP in the calling thread; threads started later
//    inherit the mask, so WaitForTerminationSignal is the only place they are seen;
//  - turns off absl::Mutex deadlock detection, which Debian's Abseil build leaves on:
//    it takes a global lock and walks a lock graph on every Mutex::Lock (measured
//    on the commit path). Tests keep it on;
//  - keeps freed memory in malloc's heap for reuse. glibc gives memory back to the
//    kernel eagerly (blocks above a sliding mmap threshold are mapped and unmapped
//    on each use; a heap's free top is trimmed past twice that threshold). The
//    daemons move WAL and pages through buffers of up to a few MiB (gRPC slices,
//    protobuf strings), so every pass faulted fresh pages in again and flushed TLBs
//    on the way out: a third of the shim's CPU while a new branch replayed its WAL
//    (perf, issue 11). Allocations up to 32 MiB come from the heap and up to
//    128 MiB of free heap top is kept: memory held is at most the peak use plus that.
void PrepareDaemonProcess();
// Waits for SIGTERM or SIGINT (SIGHUP is ignored) and returns the signal number.
int WaitForTerminationSignal();

// Flags shared by every daemon: where the stack's service credential and the TLS
// files are. Paths, never the secrets themselves: `ps` shows a command line.
struct SecurityOptions {
  // File holding the stack's service token (0600). Default: none.
  std::string service_token_file;
  // PEM certificate and key of this process's listener (and client certificate for
  // mutual TLS); TLS is on when both are set. Default: none (loopback, LOCAL_TCP).
  std::string tls_cert_file;
  std::string tls_key_file;
  // PEM CA that peers' certificates are checked against; with TLS, servers then also
  // require client certificates. Default: none (the system roots for clients).
  std::string tls_ca_file;
};
void AddSecurityFlags(CLI::App& app, SecurityOptions* options);

struct ProcessSecurity {
  // Bearer token sent on every call this process makes; "" = none. Default: "".
  std::string client_token;
  // PEM contents (not paths). TLS when cert and key are set. Default: none.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
  // Authenticates every call to this process's servers; null = none. Default: null.
  std::shared_ptr<grpc::AuthMetadataProcessor> processor;
};
// REQUIRES: called before channels or servers are made (main, or a test's setup).
void SetProcessSecurity(ProcessSecurity security);
ProcessSecurity GetProcessSecurity();
// Reads the service token (ReadSecretFile rules: 0600) and the TLS files into the
// process security, with the service token as the client token. Without a service
// token file: FAILED_PRECONDITION if `require_service_token`.
absl::Status InitProcessSecurity(const SecurityOptions& options, bool require_service_token);

// Checks that `address` is "127.0.0.1:PORT" (or "localhost:PORT"): Cambium services
// bind to loopback only.
absl::Status CheckLoopbackAddress(std::string_view address);

// A channel to a Cambium service with Cambium's limits (64 MiB messages, keepalive).
// A connection attempt gets kMinConnectTimeout to complete (TCP and the HTTP/2
// handshake) before the channel counts as unreachable: a loaded or briefly stalled
// peer is not. After a failure it retries 100 ms later, backing off to 1 s, so a
// restarted peer is found again at once.
inline constexpr absl::Duration kMinConnectTimeout = absl::Seconds(2);
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address);
// The same with `token` as the bearer credential instead of the process's client
// token (the CLI's calls to safekeepers, which take the service token only).
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address, const std::string& token);

// Prepares `context` for a control-plane call (the CLI's and other management
// calls): the call waits for the channel to connect (through a peer's restart or
// stall) instead of failing at once with UNAVAILABLE, and gives up with
// DEADLINE_EXCEEDED after `timeout` in all. Data-path calls, which have their own
// retries, do not use it.
void PrepareControlCall(grpc::ClientContext& context, absl::Duration timeout);

// Applies Cambium's server limits to a builder and listens on `address` (loopback,
// unless TLS is configured). *selected_port receives the bound port (useful with port
// 0). Calls are authenticated by `processor`, or by the process-wide one when null.
absl::Status ConfigureServer(grpc::ServerBuilder& builder, const std::string& address,
                             int* selected_port,
                             std::shared_ptr<grpc::AuthMetadataProcessor> processor = nullptr);

// Parses durations such as "7d", "36h", "90m", "15s", "1h30m", "250ms", "2w".
absl::StatusOr<absl::Duration> ParseHumanDuration(std::string_view text);

}  // namespace cambium

#endif  // CAMBIUM_COMMON_SERVICE_H_
