#include "compute-shim/pageserver_client.h"

#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/proto_convert.h"
#include "common/service.h"
#include "common/status.h"
#include "common/tenant_moves.h"
#include "compute-shim/shim_metrics.h"

namespace cambium::shim {

struct PageserverClient::PageStream {
  std::shared_ptr<v1::PageService::Stub> stub;  // keeps the channel alive
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<v1::GetPagesRequest, v1::GetPagesResponse>> rw;
};

PageserverClient::PageserverClient(const std::string& address, TenantId tenant, TimelineId timeline,
                                   absl::Duration retry_for)
    : retry_for_(retry_for), address_(address) {
  ToProto(tenant, timeline, &ref_);
  stub_ = v1::PageService::NewStub(MakeChannel(address_));
}

PageserverClient::~PageserverClient() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& s : idle_streams_) {
    s->rw->WritesDone();
    (void)s->rw->Finish();
  }
}

std::shared_ptr<v1::PageService::Stub> PageserverClient::CurrentStub() {
  std::lock_guard<std::mutex> lock(mu_);
  return stub_;
}

void PageserverClient::Reconnect() {
  std::lock_guard<std::mutex> lock(mu_);
  idle_streams_.clear();
  stub_ = v1::PageService::NewStub(MakeChannel(address_));
}

void PageserverClient::FollowMove(const grpc::Status& status) {
  std::optional<std::string> to = MovedToAddress(status.error_message());
  if (!to) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (*to == address_) return;
  LogInfo("tenant_moved_following", {{"from", address_}, {"to", *to}});
  address_ = *to;
}

std::string PageserverClient::address() const {
  std::lock_guard<std::mutex> lock(mu_);
  return address_;
}

template <typename Fn>
absl::Status PageserverClient::Retry(const char* what, Fn&& fn) {
  const absl::Time deadline = absl::Now() + retry_for_;
  absl::Duration backoff = absl::Milliseconds(50);
  for (;;) {
    grpc::Status s = fn();
    if (s.ok()) return absl::OkStatus();
    const bool transient = s.error_code() == grpc::StatusCode::UNAVAILABLE;
    if (!transient || absl::Now() + backoff > deadline) {
      return Annotate(FromGrpcStatus(s), absl::StrFormat("pageserver %s (%s)", what, address()));
    }
    FollowMove(s);
    LogWarning("pageserver_retry", {{"call", what}, {"status", FromGrpcStatus(s)}});
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(1));
    Reconnect();
  }
}

absl::StatusOr<v1::TimelineInfo> PageserverClient::GetTimelineInfo() {
  v1::GetTimelineInfoRequest req;
  *req.mutable_timeline() = ref_;
  v1::TimelineInfo info;
  CAMBIUM_RETURN_IF_ERROR(Retry("GetTimelineInfo", [&] {
    grpc::ClientContext ctx;
    return CurrentStub()->GetTimelineInfo(&ctx, req, &info);
  }));
  return info;
}

absl::StatusOr<v1::AttachWriterResponse> PageserverClient::AttachWriter(const std::string& endpoint,
                                                                        Lsn start, bool takeover) {
  v1::AttachWriterRequest req;
  *req.mutable_timeline() = ref_;
  req.set_endpoint(endpoint);
  req.set_start_lsn(start.value());
  req.set_takeover(takeover);
  v1::AttachWriterResponse resp;
  CAMBIUM_RETURN_IF_ERROR(Retry("AttachWriter", [&] {
    grpc::ClientContext ctx;
    return CurrentStub()->AttachWriter(&ctx, req, &resp);
  }));
  return resp;
}

absl::Status PageserverClient::DetachWriter(uint64_t generation) {
  v1::DetachWriterRequest req;
  *req.mutable_timeline() = ref_;
  req.set_generation(generation);
  return Retry("DetachWriter", [&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::DetachWriterResponse resp;
    return CurrentStub()->DetachWriter(&ctx, req, &resp);
  });
}

absl::StatusOr<std::vector<v1::FileMeta>> PageserverClient::GetManifest(Lsn lsn) {
  v1::GetManifestRequest req;
  *req.mutable_timeline() = ref_;
  req.set_lsn(lsn.value());
  std::vector<v1::FileMeta> files;
  CAMBIUM_RETURN_IF_ERROR(Retry("GetManifest", [&] {
    files.clear();
    grpc::ClientContext ctx;
    auto reader = CurrentStub()->GetManifest(&ctx, req);
    v1::GetManifestResponse chunk;
    while (reader->Read(&chunk))
      files.insert(files.end(), chunk.files().begin(), chunk.files().end());
    return reader->Finish();
  }));
  return files;
}

std::unique_ptr<PageserverClient::PageStream> PageserverClient::TakeStream() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!idle_streams_.empty()) {
    auto s = std::move(idle_streams_.back());
    idle_streams_.pop_back();
    return s;
  }
  auto s = std::make_unique<PageStream>();
  s->stub = stub_;
  s->rw = s->stub->GetPages(&s->ctx);
  return s;
}

void PageserverClient::ReturnStream(std::unique_ptr<PageStream> stream) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stream->stub == stub_ && idle_streams_.size() < 16)
    idle_streams_.push_back(std::move(stream));
}

std::vector<PageResult> PageserverClient::GetPages(Lsn lsn, const std::vector<PageRequest>& pages) {
  std::vector<PageResult> results(pages.size());
  v1::GetPagesRequest req;
  *req.mutable_timeline() = ref_;
  req.set_lsn(lsn.value());
  for (const PageRequest& p : pages) {
    auto* ref = req.add_pages();
    ref->set_path(p.path);
    ref->set_block_no(p.block);
  }
  v1::GetPagesResponse resp;
  const ShimMetrics& m = ShimMetrics::Get();
  m.getpages_pages.Increment(pages.size());
  metrics::ScopedTimer timer(m.getpages_seconds);
  absl::Status status = Retry("GetPages", [&] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      req.set_request_id(next_request_id_++);
    }
    std::unique_ptr<PageStream> stream = TakeStream();
    if (!stream->rw->Write(req) || !stream->rw->Read(&resp)) {
      grpc::Status s = stream->rw->Finish();
      return s.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "page stream closed") : s;
    }
    ReturnStream(std::move(stream));
    if (resp.request_id() != req.request_id() || resp.pages_size() != req.pages_size()) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "page stream answered the wrong request");
    }
    return grpc::Status::OK;
  });
  for (size_t i = 0; i < pages.size(); ++i) {
    if (!status.ok()) {
      results[i].status = status;
      continue;
    }
    const v1::Page& page = resp.pages(static_cast<int>(i));
    if (page.status().code() != 0) {
      results[i].status = absl::Status(static_cast<absl::StatusCode>(page.status().code()),
                                       page.status().message());
    } else if (page.data().size() != kBlockSize) {
      results[i].status = absl::DataLossError("pageserver returned a short page");
    } else {
      results[i].data = std::move(*resp.mutable_pages(static_cast<int>(i))->mutable_data());
    }
  }
  return results;
}

absl::StatusOr<std::string> PageserverClient::GetWal(Lsn from, Lsn to) {
  std::string wal;
  wal.reserve(to - from);
  CAMBIUM_RETURN_IF_ERROR(GetWal(from, to, [&wal](Lsn, std::string_view bytes) {
    wal.append(bytes);
    return absl::OkStatus();
  }));
  return wal;
}

absl::Status PageserverClient::GetWal(Lsn from, Lsn to, const WalSink& sink) {
  uint64_t received = 0;
  absl::Status sunk;
  absl::Status s = Retry("GetWal", [&] {
    v1::GetWalRequest req;
    *req.mutable_timeline() = ref_;
    req.set_start_lsn((from + received).value());
    req.set_end_lsn(to.value());
    grpc::ClientContext ctx;
    auto reader = CurrentStub()->GetWal(&ctx, req);
    v1::WalChunk chunk;
    while (reader->Read(&chunk)) {
      if (Lsn(chunk.start_lsn()) != from + received) {
        ctx.TryCancel();
        (void)reader->Finish();
        return grpc::Status(grpc::StatusCode::DATA_LOSS, "WAL chunks are not contiguous");
      }
      sunk = sink(from + received, chunk.data());
      if (!sunk.ok()) {
        ctx.TryCancel();
        (void)reader->Finish();
        return grpc::Status(grpc::StatusCode::ABORTED, "the WAL sink failed");
      }
      received += chunk.data().size();
    }
    return reader->Finish();
  });
  if (!sunk.ok()) return sunk;
  CAMBIUM_RETURN_IF_ERROR(s);
  if (received != to - from) {
    return absl::DataLossError(absl::StrFormat("pageserver returned %u bytes of WAL for %s..%s",
                                               received, from.ToString(), to.ToString()));
  }
  return absl::OkStatus();
}

}  // namespace cambium::shim
