#include "common/service.h"

#include <signal.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace cambium {
namespace {

constexpr int kMaxMessageBytes = 64 << 20;

}  // namespace

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
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

void PrepareControlCall(grpc::ClientContext& context, absl::Duration timeout) {
  context.set_wait_for_ready(true);
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

absl::Status ConfigureServer(grpc::ServerBuilder& builder, const std::string& address,
                             int* selected_port) {
  absl::Status loopback = CheckLoopbackAddress(address);
  if (!loopback.ok()) return loopback;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), selected_port);
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
