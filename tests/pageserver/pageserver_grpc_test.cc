// The real cambium-pageserver binary over gRPC on loopback: import of a real initdb
// PGDATA, manifests and pages equal to the files on disk, WAL equal to pg_wal,
// branch management and its errors, the writer protocol, and restarts (clean and
// kill -9).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_format.h"
#include "cambium/v1/management_service.grpc.pb.h"
#include "cambium/v1/page_service.grpc.pb.h"
#include "common/files.h"
#include "common/pg/pg_control.h"
#include "common/pg/pgdata_layout.h"
#include "common/pg/wal_directory.h"
#include "common/proto_convert.h"
#include "common/service.h"
#include "gtest/gtest.h"
#include "tests/harness/net.h"
#include "tests/harness/pg_cluster.h"
#include "tests/harness/service_process.h"
#include "tests/harness/temp_dir.h"

namespace cambium {
namespace {

namespace fs = std::filesystem;
using testing::PgCluster;
using testing::ServiceProcess;
using testing::TempDir;

class PageServerGrpcTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto cluster = PgCluster::Create({.start = false});
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    pg_ = cluster->release();
  }
  static void TearDownTestSuite() { delete pg_; }

  void SetUp() override {
    dir_ = std::make_unique<TempDir>(TempDir::Create("cambium-psg-").value());
    auto port = testing::FreePort();
    ASSERT_TRUE(port.ok());
    auto server = ServiceProcess::Start(
        CAMBIUM_PAGESERVER_BIN,
        {"--data-dir", dir_->Sub("data"), "--writer-lease", "3s", "--gc-interval", "0"}, *port,
        dir_->Sub("pageserver.log"));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    Connect();
    v1::CreateTenantRequest req;
    req.set_name("acme");
    v1::TenantInfo tenant;
    grpc::ClientContext ctx;
    ASSERT_TRUE(mgmt_->CreateTenant(&ctx, req, &tenant).ok());
    v1::ImportPgdataRequest imp;
    imp.set_tenant("acme");
    imp.set_branch("main");
    imp.set_pgdata_path(pg_->pgdata());
    grpc::ClientContext ctx2;
    grpc::Status s = mgmt_->ImportPgdata(&ctx2, imp, &main_);
    ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << server_->LogTail();
  }

  void Connect() {
    auto channel = MakeChannel(server_->address());
    mgmt_ = v1::ManagementService::NewStub(channel);
    pages_ = v1::PageService::NewStub(channel);
  }

  v1::TimelineRef Ref(const v1::BranchInfo& b) {
    v1::TimelineRef ref;
    *ref.mutable_tenant_id() = b.tenant_id();
    *ref.mutable_timeline_id() = b.timeline_id();
    return ref;
  }

  std::vector<v1::FileMeta> Manifest(const v1::BranchInfo& b, Lsn lsn) {
    v1::GetManifestRequest req;
    *req.mutable_timeline() = Ref(b);
    req.set_lsn(lsn.value());
    grpc::ClientContext ctx;
    auto reader = pages_->GetManifest(&ctx, req);
    std::vector<v1::FileMeta> files;
    v1::GetManifestResponse chunk;
    while (reader->Read(&chunk))
      files.insert(files.end(), chunk.files().begin(), chunk.files().end());
    grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message() << "\n"
                             << server_->LogTail();
    return files;
  }

  // Reads whole files through one GetPages stream.
  std::map<std::string, std::string> ReadFiles(const v1::BranchInfo& b, Lsn lsn,
                                               const std::vector<v1::FileMeta>& files) {
    grpc::ClientContext ctx;
    auto stream = pages_->GetPages(&ctx);
    std::map<std::string, std::string> out;
    uint64_t id = 0;
    for (const v1::FileMeta& f : files) {
      if (f.kind() != v1::FILE_KIND_REGULAR) continue;
      v1::GetPagesRequest req;
      *req.mutable_timeline() = Ref(b);
      req.set_lsn(lsn.value());
      req.set_request_id(++id);
      const uint64_t nblocks = (f.size() + kBlockSize - 1) / kBlockSize;
      for (uint64_t blk = 0; blk < nblocks; ++blk) {
        auto* p = req.add_pages();
        p->set_path(f.path());
        p->set_block_no(static_cast<uint32_t>(blk));
      }
      EXPECT_TRUE(stream->Write(req));
      v1::GetPagesResponse resp;
      EXPECT_TRUE(stream->Read(&resp));
      EXPECT_EQ(resp.request_id(), id);
      std::string data;
      for (const v1::Page& p : resp.pages()) {
        EXPECT_EQ(p.status().code(), 0) << f.path() << ": " << p.status().message();
        data += p.data();
      }
      data.resize(f.size());
      out[f.path()] = data;
    }
    stream->WritesDone();
    EXPECT_TRUE(stream->Finish().ok());
    return out;
  }

  static PgCluster* pg_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<ServiceProcess> server_;
  std::unique_ptr<v1::ManagementService::Stub> mgmt_;
  std::unique_ptr<v1::PageService::Stub> pages_;
  v1::BranchInfo main_;
};

PgCluster* PageServerGrpcTest::pg_ = nullptr;

TEST_F(PageServerGrpcTest, ImportedFilesReadBackIdenticalToTheDataDirectory) {
  auto control = pg::ReadPgControl(pg_->pgdata());
  ASSERT_TRUE(control.ok());
  const Lsn head(main_.last_record_lsn());
  EXPECT_GT(head, control->checkpoint);  // the end of the shutdown checkpoint record
  auto files = Manifest(main_, head);
  std::map<std::string, v1::FileMeta> by_path;
  for (const auto& f : files) by_path[f.path()] = f;
  size_t on_disk = 0;
  for (const auto& e : fs::recursive_directory_iterator(pg_->pgdata())) {
    const std::string rel = fs::relative(e.path(), pg_->pgdata()).string();
    if (pg::ClassifyPath(rel) == pg::PathClass::kWal ||
        (e.is_regular_file() && pg::ClassifyPath(rel) != pg::PathClass::kVersioned)) {
      EXPECT_FALSE(by_path.count(rel)) << rel << " is local or WAL and must not be versioned";
      continue;
    }
    ASSERT_TRUE(by_path.count(rel)) << rel << " missing from the manifest";
    if (e.is_regular_file()) {
      ++on_disk;
      EXPECT_EQ(by_path[rel].size(), e.file_size()) << rel;
    } else {
      EXPECT_EQ(by_path[rel].kind(), v1::FILE_KIND_DIRECTORY) << rel;
    }
  }
  EXPECT_GT(on_disk, 900u);  // an initdb'd PGDATA has ~1000 files
  auto contents = ReadFiles(main_, head, files);
  size_t compared = 0;
  for (const auto& [path, data] : contents) {
    ASSERT_TRUE(data == ReadFileToString(pg_->pgdata() + "/" + path).value_or(""))
        << path << " differs";
    ++compared;
  }
  EXPECT_EQ(compared, on_disk);
  // Before the import LSN nothing existed.
  EXPECT_TRUE(Manifest(main_, head - 1).empty());
}

// Issue 10 item 7: with --import-dir, ImportPgdata reads nothing outside it, also
// not through a symbolic link inside it (initdb's output is the postgres user's).
TEST_F(PageServerGrpcTest, ImportReadsOnlyFromTheImportDirectory) {
  auto import_dir = TempDir::Create("cambium-import-");
  ASSERT_TRUE(import_dir.ok()) << import_dir.status();
  ASSERT_EQ(symlink(pg_->pgdata().c_str(), import_dir->Sub("linked").c_str()), 0);
  auto port = testing::FreePort();
  ASSERT_TRUE(port.ok());
  auto confined = ServiceProcess::Start(CAMBIUM_PAGESERVER_BIN,
                                        {"--data-dir", dir_->Sub("confined"), "--gc-interval", "0",
                                         "--import-dir", import_dir->path()},
                                        *port, dir_->Sub("confined.log"));
  ASSERT_TRUE(confined.ok()) << confined.status();
  auto mgmt = v1::ManagementService::NewStub(MakeChannel((*confined)->address()));
  v1::CreateTenantRequest tenant;
  tenant.set_name("acme");
  v1::TenantInfo info;
  grpc::ClientContext ctx;
  ASSERT_TRUE(mgmt->CreateTenant(&ctx, tenant, &info).ok());
  for (const std::string& path : {pg_->pgdata(), import_dir->Sub("linked")}) {
    v1::ImportPgdataRequest imp;
    imp.set_tenant("acme");
    imp.set_branch("main");
    imp.set_pgdata_path(path);
    v1::BranchInfo b;
    grpc::ClientContext c;
    grpc::Status s = mgmt->ImportPgdata(&c, imp, &b);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << path << ": " << s.error_message();
  }
}

TEST_F(PageServerGrpcTest, ArchivedWalEqualsPgWalUpToTheCheckpoint) {
  auto control = pg::ReadPgControl(pg_->pgdata());
  const Lsn from = control->checkpoint.SegmentStart();
  const Lsn to(main_.last_record_lsn());
  v1::GetWalRequest req;
  *req.mutable_timeline() = Ref(main_);
  req.set_start_lsn(from.value());
  grpc::ClientContext ctx;
  auto reader = pages_->GetWal(&ctx, req);
  std::string wal;
  v1::WalChunk chunk;
  while (reader->Read(&chunk)) {
    EXPECT_EQ(Lsn(chunk.start_lsn()), from + wal.size());
    wal += chunk.data();
  }
  ASSERT_TRUE(reader->Finish().ok());
  auto expected = pg::ReadWalRange(pg_->wal_dir(), control->timeline_id(), from, to);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(wal.size(), to - from);
  EXPECT_TRUE(wal == *expected);
}

TEST_F(PageServerGrpcTest, BranchManagementErrorsArePrecise) {
  v1::CreateBranchRequest req;
  req.set_tenant("acme");
  req.set_name("preview-1");
  req.set_parent("main");
  v1::BranchInfo b;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(mgmt_->CreateBranch(&ctx, req, &b).ok());
    EXPECT_EQ(b.ancestor_lsn(), main_.last_record_lsn());
    EXPECT_EQ(b.parent(), "main");
  }
  {
    v1::GetBranchRequest get;
    get.set_tenant("acme");
    get.set_name("preview-42");
    grpc::ClientContext ctx;
    v1::BranchInfo out;
    grpc::Status s = mgmt_->GetBranch(&ctx, get, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(s.error_message(), "branch \"preview-42\" does not exist in tenant \"acme\"");
  }
  {
    req.set_name("beyond");
    req.set_lsn(main_.last_record_lsn() + 100000);
    grpc::ClientContext ctx;
    grpc::Status s = mgmt_->CreateBranch(&ctx, req, &b);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE) << s.error_message();
  }
  {
    v1::SetProtectionRequest prot;
    prot.set_tenant("acme");
    prot.set_name("preview-1");
    prot.set_protected_(true);
    grpc::ClientContext ctx;
    ASSERT_TRUE(mgmt_->SetProtection(&ctx, prot, &b).ok());
    v1::DeleteBranchRequest del;
    del.set_tenant("acme");
    del.set_name("preview-1");
    grpc::ClientContext ctx2;
    v1::DeleteBranchResponse dr;
    grpc::Status s = mgmt_->DeleteBranch(&ctx2, del, &dr);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_NE(s.error_message().find("protected"), std::string::npos);
  }
  v1::ListBranchesRequest list;
  list.set_tenant("acme");
  v1::ListBranchesResponse branches;
  grpc::ClientContext ctx;
  ASSERT_TRUE(mgmt_->ListBranches(&ctx, list, &branches).ok());
  ASSERT_EQ(branches.branches_size(), 2);
  EXPECT_GT(branches.branches(0).logical_size_bytes(), 20u << 20);  // initdb is ~40 MB
}

TEST_F(PageServerGrpcTest, WriterProtocolFencesAndSurvivesRestarts) {
  v1::CreateBranchRequest cr;
  cr.set_tenant("acme");
  cr.set_name("work");
  cr.set_parent("main");
  v1::BranchInfo work;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(mgmt_->CreateBranch(&ctx, cr, &work).ok());
  }
  const Lsn start(work.ancestor_lsn());
  auto attach = [&](const std::string& who, bool takeover, v1::AttachWriterResponse* resp) {
    v1::AttachWriterRequest req;
    *req.mutable_timeline() = Ref(work);
    req.set_endpoint(who);
    req.set_start_lsn(start.value());
    req.set_takeover(takeover);
    grpc::ClientContext ctx;
    return pages_->AttachWriter(&ctx, req, resp);
  };
  v1::AttachWriterResponse first;
  ASSERT_TRUE(attach("endpoint-a", false, &first).ok());
  // Stream a batch, then a barrier.
  grpc::ClientContext sctx;
  auto stream = pages_->PutMutations(&sctx);
  v1::PutMutationsRequest batch;
  *batch.mutable_timeline() = Ref(work);
  batch.set_generation(first.generation());
  batch.set_seq(1);
  auto* m = batch.add_mutations();
  m->set_lsn(start.value() + 8);
  m->set_path("PG_VERSION");
  m->mutable_write()->set_block_no(0);
  m->mutable_write()->set_data("16\n");
  ASSERT_TRUE(stream->Write(batch));
  v1::PutMutationsResponse ack;
  ASSERT_TRUE(stream->Read(&ack));
  EXPECT_EQ(ack.seq(), 1u);
  {
    v1::BarrierRequest br;
    *br.mutable_timeline() = Ref(work);
    br.set_generation(first.generation());
    br.set_up_to_seq(1);
    v1::BarrierResponse bresp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(pages_->Barrier(&ctx, br, &bresp).ok());
    EXPECT_EQ(Lsn(bresp.durable_lsn()), start + 8);
  }
  // A second endpoint is refused while the stream is open.
  v1::AttachWriterResponse second;
  grpc::Status refused = attach("endpoint-b", false, &second);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find("endpoint-a"), std::string::npos)
      << refused.error_message();
  // kill -9 of the pageserver: the acknowledged, barriered batch survives.
  stream->WritesDone();
  (void)stream->Finish();
  ASSERT_TRUE(server_->Kill().ok());
  ASSERT_TRUE(server_->Restart().ok()) << server_->LogTail();
  Connect();
  auto files = Manifest(work, start + 8);
  std::vector<v1::FileMeta> pgv;
  for (const auto& f : files) {
    if (f.path() == "PG_VERSION") pgv.push_back(f);
  }
  ASSERT_EQ(pgv.size(), 1u);
  EXPECT_EQ(ReadFiles(work, start + 8, pgv)["PG_VERSION"], "16\n");
  EXPECT_EQ(ReadFiles(main_, Lsn(main_.last_record_lsn()), pgv)["PG_VERSION"], "15\n");
  // Take over fences the first generation for good.
  ASSERT_TRUE(attach("endpoint-b", true, &second).ok());
  EXPECT_EQ(second.generation(), first.generation() + 1);
  grpc::ClientContext sctx2;
  auto stale = pages_->PutMutations(&sctx2);
  batch.set_seq(2);
  stale->Write(batch);
  stale->WritesDone();
  v1::PutMutationsResponse ignored;
  stale->Read(&ignored);
  grpc::Status fenced = stale->Finish();
  EXPECT_EQ(fenced.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(fenced.error_message().find("fenced"), std::string::npos);
  // A clean SIGTERM shutdown exits 0.
  auto code = server_->Stop();
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << server_->LogTail();
}

// Issue 9, item 3: a writer is live while its mutation stream is open, however idle
// the compute is and across a pageserver restart; one whose shim died is released
// at once by whoever knows it is dead.
TEST_F(PageServerGrpcTest, AnIdleWriterWithAnOpenStreamIsLiveAndADeadOneCanBeReleased) {
  v1::CreateBranchRequest cr;
  cr.set_tenant("acme");
  cr.set_name("idle");
  cr.set_parent("main");
  v1::BranchInfo idle;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(mgmt_->CreateBranch(&ctx, cr, &idle).ok());
  }
  auto attach = [&](const std::string& who, bool takeover, v1::AttachWriterResponse* resp) {
    v1::AttachWriterRequest req;
    *req.mutable_timeline() = Ref(idle);
    req.set_endpoint(who);
    req.set_start_lsn(idle.ancestor_lsn());
    req.set_takeover(takeover);
    grpc::ClientContext ctx;
    return pages_->AttachWriter(&ctx, req, resp);
  };
  auto hello = [&](grpc::ClientContext* ctx, uint64_t generation) {
    auto stream = pages_->PutMutations(ctx);
    v1::PutMutationsRequest h;
    *h.mutable_timeline() = Ref(idle);
    h.set_generation(generation);
    h.set_hello(true);
    EXPECT_TRUE(stream->Write(h));
    v1::PutMutationsResponse ack;
    EXPECT_TRUE(stream->Read(&ack)) << server_->LogTail();
    EXPECT_EQ(ack.seq(), 0u);
    return stream;
  };
  auto writer_active = [&] {
    v1::GetTimelineInfoRequest req;
    *req.mutable_timeline() = Ref(idle);
    v1::TimelineInfo info;
    grpc::ClientContext ctx;
    EXPECT_TRUE(pages_->GetTimelineInfo(&ctx, req, &info).ok());
    return info.writer_active();
  };
  v1::AttachWriterResponse a;
  ASSERT_TRUE(attach("endpoint-a", false, &a).ok());
  {
    grpc::ClientContext sctx;
    auto stream = hello(&sctx, a.generation());
    // Idle for longer than the lease (3 s): still live, a second endpoint is refused.
    absl::SleepFor(absl::Seconds(4));
    EXPECT_TRUE(writer_active());
    v1::AttachWriterResponse b;
    EXPECT_EQ(attach("endpoint-b", false, &b).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    sctx.TryCancel();
    (void)stream->Finish();
  }
  // The pageserver restarts; the writer reconnects with a hello and stays live.
  ASSERT_TRUE(server_->Kill().ok());
  ASSERT_TRUE(server_->Restart().ok()) << server_->LogTail();
  Connect();
  grpc::ClientContext sctx2;
  auto stream = hello(&sctx2, a.generation());
  absl::SleepFor(absl::Seconds(4));
  EXPECT_TRUE(writer_active());
  v1::AttachWriterResponse b;
  EXPECT_EQ(attach("endpoint-b", false, &b).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // Its shim dies: the stream closes, and the operator releases it by name.
  sctx2.TryCancel();
  (void)stream->Finish();
  v1::ReleaseWriterRequest release;
  release.set_tenant("acme");
  release.set_branch("idle");
  release.set_writer("somebody-else");
  v1::ReleaseWriterResponse released;
  {
    grpc::ClientContext ctx;
    EXPECT_EQ(mgmt_->ReleaseWriter(&ctx, release, &released).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }
  release.set_writer("endpoint-a");
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(mgmt_->ReleaseWriter(&ctx, release, &released).ok());
    EXPECT_TRUE(released.released());
  }
  EXPECT_FALSE(writer_active());
  ASSERT_TRUE(attach("endpoint-b", false, &b).ok()) << "a released writer blocks the next one";
  // The released generation's hello is refused: it learns it was fenced.
  grpc::ClientContext sctx3;
  auto late = pages_->PutMutations(&sctx3);
  v1::PutMutationsRequest h;
  *h.mutable_timeline() = Ref(idle);
  h.set_generation(a.generation());
  h.set_hello(true);
  late->Write(h);
  late->WritesDone();
  v1::PutMutationsResponse ignored;
  late->Read(&ignored);
  EXPECT_EQ(late->Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

// Issue 9, item 13: one request cannot ask for unbounded work.
TEST_F(PageServerGrpcTest, OversizedRequestsAreRefused) {
  grpc::ClientContext ctx;
  auto stream = pages_->GetPages(&ctx);
  v1::GetPagesRequest req;
  *req.mutable_timeline() = Ref(main_);
  req.set_lsn(main_.last_record_lsn());
  for (int i = 0; i < 5000; ++i) {
    auto* p = req.add_pages();
    p->set_path("PG_VERSION");
    p->set_block_no(0);
  }
  stream->Write(req);
  stream->WritesDone();
  v1::GetPagesResponse resp;
  EXPECT_FALSE(stream->Read(&resp));
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
}

}  // namespace
}  // namespace cambium
