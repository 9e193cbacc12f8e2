#include "pageserver/page_service.h"

#include <map>

#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "pageserver/pageserver_metrics.h"

namespace cambium::pageserver {
namespace {

constexpr int kManifestChunk = 1000;
constexpr size_t kWalChunk = 1024 * 1024;

v1::FileKind ToProto(FileKind kind) {
  return kind == FileKind::kDirectory ? v1::FILE_KIND_DIRECTORY : v1::FILE_KIND_REGULAR;
}

}  // namespace

absl::StatusOr<std::shared_ptr<Timeline>> PageServiceImpl::Find(const v1::TimelineRef& ref) const {
  CAMBIUM_ASSIGN_OR_RETURN(TimelineKey key, FromProto(ref));
  return repo_->GetTimeline(key.tenant, key.timeline);
}

grpc::Status PageServiceImpl::Refusal(const Timeline& timeline, const absl::Status& status) const {
  if (timeline.deleted()) {
    absl::Status moved = repo_->MoveStatus(timeline.tenant_id());
    if (!moved.ok()) return ToGrpcStatus(moved);
    // The tenant moved away and back: the caller holds the timeline of before.
    auto now = repo_->GetTimeline(timeline.tenant_id(), timeline.id());
    if (now.ok() && now->get() != &timeline) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          absl::StrFormat("timeline %s was reloaded (its tenant moved back to "
                                          "this pageserver); reconnect",
                                          timeline.id().ToString()));
    }
  }
  return ToGrpcStatus(status);
}

grpc::Status PageServiceImpl::GetTimelineInfo(grpc::ServerContext*,
                                              const v1::GetTimelineInfoRequest* req,
                                              v1::TimelineInfo* resp) {
  auto timeline = Find(req->timeline());
  if (!timeline.ok()) return ToGrpcStatus(timeline.status());
  const Timeline& t = **timeline;
  resp->set_has_ancestor(t.ancestor() != nullptr);
  resp->set_ancestor_lsn(t.ancestor_lsn().value());
  resp->set_last_record_lsn(t.last_record_lsn().value());
  auto end = repo_->archive().End(t);
  if (!end.ok()) return ToGrpcStatus(end.status());
  resp->set_wal_archive_end(end->value());
  auto start = repo_->archive().Start(t);
  if (!start.ok()) return ToGrpcStatus(start.status());
  resp->set_wal_start_lsn(start->value());
  auto first = repo_->archive().FirstBoundary(t);
  if (!first.ok()) return ToGrpcStatus(first.status());
  resp->set_start_lsn(first->value());
  const storage::v1::TimelineRecord record = t.record();
  resp->set_generation(record.generation());
  resp->set_writer(record.writer());
  resp->set_writer_active(t.WriterActiveWithin(repo_->options().writer_lease));
  return Refusal(t, absl::OkStatus());
}

grpc::Status PageServiceImpl::AttachWriter(grpc::ServerContext*, const v1::AttachWriterRequest* req,
                                           v1::AttachWriterResponse* resp) {
  auto timeline = Find(req->timeline());
  if (!timeline.ok()) return ToGrpcStatus(timeline.status());
  auto generation = (*timeline)->Attach(req->endpoint(), Lsn(req->start_lsn()), req->takeover(),
                                        repo_->options().writer_lease);
  if (!generation.ok()) return Refusal(**timeline, generation.status());
  resp->set_generation(*generation);
  resp->set_last_record_lsn((*timeline)->last_record_lsn().value());
  if (on_writer_) on_writer_(*timeline);
  LogInfo("writer_attached", {{"timeline", (*timeline)->id()},
                              {"writer", req->endpoint()},
                              {"generation", *generation},
                              {"start_lsn", Lsn(req->start_lsn())},
                              {"takeover", req->takeover() ? "yes" : "no"}});
  return grpc::Status::OK;
}

grpc::Status PageServiceImpl::DetachWriter(grpc::ServerContext*, const v1::DetachWriterRequest* req,
                                           v1::DetachWriterResponse*) {
  auto timeline = Find(req->timeline());
  if (!timeline.ok()) return ToGrpcStatus(timeline.status());
  return ToGrpcStatus((*timeline)->Detach(req->generation()));
}

grpc::Status PageServiceImpl::GetManifest(grpc::ServerContext*, const v1::GetManifestRequest* req,
                                          grpc::ServerWriter<v1::GetManifestResponse>* writer) {
  auto timeline = Find(req->timeline());
  if (!timeline.ok()) return ToGrpcStatus(timeline.status());
  auto files = (*timeline)->ListFiles(Lsn(req->lsn()));
  if (!files.ok()) return ToGrpcStatus(files.status());
  // Read while its data was being deleted (the tenant moved away): not an answer.
  if (grpc::Status moved = Refusal(**timeline, absl::OkStatus()); !moved.ok()) return moved;
  v1::GetManifestResponse chunk;
  for (const ManifestEntry& e : *files) {
    v1::FileMeta* meta = chunk.add_files();
    meta->set_path(e.path);
    meta->set_kind(ToProto(e.state.kind));
    meta->set_size(e.state.size);
    meta->set_mode(e.state.mode);
    meta->set_changed_lsn(e.changed_lsn.value());
    if (chunk.files_size() >= kManifestChunk) {
      if (!writer->Write(chunk))
        return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      chunk.Clear();
    }
  }
  if (chunk.files_size() > 0 && !writer->Write(chunk)) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
  }
  return grpc::Status::OK;
}

void PageServiceImpl::ReadPages(const Timeline& timeline, const v1::GetPagesRequest& req,
                                v1::GetPagesResponse* resp) const {
  const Lsn lsn(req.lsn());
  uint64_t errors = 0;
  // One file-state lookup per file of the batch.
  std::map<std::string, absl::StatusOr<std::optional<FileVersion>>> files;
  for (const v1::PageRef& ref : req.pages()) {
    v1::Page* page = resp->add_pages();
    auto it = files.find(ref.path());
    if (it == files.end())
      it = files.emplace(ref.path(), timeline.GetFileState(ref.path(), lsn)).first;
    absl::Status status;
    if (!it->second.ok()) {
      status = it->second.status();
    } else if (!it->second->has_value() || !(*it->second)->state.exists) {
      status = absl::NotFoundError(
          absl::StrFormat("file %s does not exist at %s", ref.path(), lsn.ToString()));
    } else if ((*it->second)->state.kind != FileKind::kRegular) {
      status = absl::FailedPreconditionError(absl::StrFormat("%s is a directory", ref.path()));
    } else {
      auto p = timeline.GetPageOfFile(ref.path(), ref.block_no(), lsn, (*it->second)->state);
      if (p.ok()) {
        page->set_data(std::move(p->data));
        page->set_version_lsn(p->version_lsn.value());
      } else {
        status = p.status();
      }
    }
    if (!status.ok()) {
      ++errors;
      page->mutable_status()->set_code(static_cast<int>(status.code()));
      page->mutable_status()->set_message(std::string(status.message()));
      if (status.code() == absl::StatusCode::kDataLoss) {
        LogError("page_checksum_failed", {{"timeline", timeline.id()},
                                          {"path", ref.path()},
                                          {"block", ref.block_no()},
                                          {"status", status}});
      }
    }
  }
  const PageServerMetrics& m = PageServerMetrics::Get();
  m.pages_served.Increment(req.pages_size() - errors);
  if (errors > 0) m.page_errors.Increment(errors);
}

grpc::Status PageServiceImpl::GetPages(
    grpc::ServerContext*,
    grpc::ServerReaderWriter<v1::GetPagesResponse, v1::GetPagesRequest>* stream) {
  v1::GetPagesRequest req;
  std::shared_ptr<Timeline> timeline;
  TimelineKey cached;  // the ids `timeline` was looked up by
  while (stream->Read(&req)) {
    if (req.pages_size() > options_.max_pages_per_request) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrFormat("a GetPages request may ask for at most %d pages, not %d",
                                          options_.max_pages_per_request, req.pages_size()));
    }
    auto key = FromProto(req.timeline());
    if (!key.ok()) return ToGrpcStatus(key.status());
    if (!timeline || *key != cached) {
      auto t = repo_->GetTimeline(key->tenant, key->timeline);
      if (!t.ok()) return ToGrpcStatus(t.status());
      timeline = *std::move(t);
      cached = *key;
    }
    v1::GetPagesResponse resp;
    resp.set_request_id(req.request_id());
    {
      metrics::ScopedTimer timer(PageServerMetrics::Get().getpages_seconds);
      ReadPages(*timeline, req, &resp);
    }
    // Pages read while the tenant's data was being deleted (it moved away) may be
    // missing versions: the client asks its new pageserver instead.
    if (grpc::Status moved = Refusal(*timeline, absl::OkStatus()); !moved.ok()) return moved;
    if (!stream->Write(resp)) break;
  }
  return grpc::Status::OK;
}

grpc::Status PageServiceImpl::PutMutations(
    grpc::ServerContext*,
    grpc::ServerReaderWriter<v1::PutMutationsResponse, v1::PutMutationsRequest>* stream) {
  v1::PutMutationsRequest req;
  std::shared_ptr<Timeline> timeline;
  uint64_t generation = 0;
  grpc::Status result = grpc::Status::OK;
  while (stream->Read(&req)) {
    if (!timeline) {
      auto t = Find(req.timeline());
      if (!t.ok()) return ToGrpcStatus(t.status());
      timeline = *t;
      generation = req.generation();
      absl::Status opened = timeline->StreamOpened(generation);
      if (!opened.ok()) return Refusal(*timeline, opened);  // fenced, detached or moved
      if (on_writer_) on_writer_(timeline);
    } else if (req.generation() != generation) {
      result =
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "generation changed within a stream");
      break;
    }
    if (req.hello()) {
      if (req.seq() != 0 || req.mutations_size() != 0) {
        result = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              "a hello carries no mutations and has seq 0");
        break;
      }
      v1::PutMutationsResponse hello;
      hello.set_seq(0);
      if (!stream->Write(hello)) break;
      continue;
    }
    if (req.mutations_size() > options_.max_mutations_per_batch) {
      result =
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                       absl::StrFormat("a batch may carry at most %d mutations, not %d",
                                       options_.max_mutations_per_batch, req.mutations_size()));
      break;
    }
    const auto started = std::chrono::steady_clock::now();
    auto applied = timeline->ApplyBatch(generation, req.seq(), req.mutations(), req.sync());
    if (applied.ok()) {
      const PageServerMetrics& m = PageServerMetrics::Get();
      (req.sync() ? m.synced_mutation_batch_seconds : m.mutation_batch_seconds)
          .Observe(
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      m.mutations.Increment(req.mutations_size());
      m.mutation_bytes.Increment(req.ByteSizeLong());
    }
    if (!applied.ok()) {
      LogWarning("mutations_refused", {{"timeline", timeline->id()},
                                       {"generation", generation},
                                       {"seq", req.seq()},
                                       {"status", applied.status()}});
      result = Refusal(*timeline, applied.status());
      break;
    }
    v1::PutMutationsResponse resp;
    resp.set_seq(req.seq());
    resp.set_synced(applied->synced);
    if (!stream->Write(resp)) break;
  }
  if (timeline) timeline->StreamClosed(generation);
  return result;
}

grpc::Status PageServiceImpl::Barrier(grpc::ServerContext*, const v1::BarrierRequest* req,
                                      v1::BarrierResponse* resp) {
  auto timeline = Find(req->timeline());
  if (!timeline.ok()) return ToGrpcStatus(timeline.status());
  metrics::ScopedTimer timer(PageServerMetrics::Get().barrier_seconds);
  auto durable = (*timeline)->Barrier(req->generation(), req->up_to_seq(), absl::Minutes(1));
  if (!durable.ok()) return Refusal(**timeline, durable.status());
  resp->set_durable_lsn(durable->value());
  return grpc::Status::OK;
}

grpc::Status PageServiceImpl::GetWal(grpc::ServerContext*, const v1::GetWalRequest* req,
                                     grpc::ServerWriter<v1::WalChunk>* writer) {
  auto timeline = Find(req->timeline());
  if (!timeline.ok()) return ToGrpcStatus(timeline.status());
  Lsn end(req->end_lsn());
  if (!end.valid()) {
    auto archived = repo_->archive().End(**timeline);
    if (!archived.ok()) return ToGrpcStatus(archived.status());
    end = *archived;
  }
  for (Lsn at(req->start_lsn()); at < end;) {
    const Lsn to = std::min(end, at + kWalChunk);
    auto bytes = repo_->archive().Read(**timeline, at, to);
    if (!bytes.ok()) return ToGrpcStatus(bytes.status());
    if (grpc::Status moved = Refusal(**timeline, absl::OkStatus()); !moved.ok()) return moved;
    v1::WalChunk chunk;
    chunk.set_start_lsn(at.value());
    chunk.set_data(std::move(*bytes));
    if (!writer->Write(chunk)) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
    at = to;
  }
  return grpc::Status::OK;
}

}  // namespace cambium::pageserver
