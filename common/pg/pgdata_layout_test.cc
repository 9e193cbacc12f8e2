#include "common/pg/pgdata_layout.h"

#include "gtest/gtest.h"

namespace cambium::pg {
namespace {

TEST(PgdataLayout, ClassifiesVersionedLocalAndWalPaths) {
  for (const char* p :
       {"base/5/16384", "base/5/16384.1", "base/5/16384_fsm", "global/pg_control",
        "global/pg_filenode.map", "pg_xact/0000", "pg_multixact/offsets/0000", "postgresql.conf",
        "PG_VERSION", "pg_wal", "pg_stat_tmp", "base/pgsql_tmp", "pg_logical/replorigin_checkpoint",
        "base/5/t3", "pg_tblspc/16400/PG_15_202209061/16384/16385",
        "pg_tblspc/16400/PG_15_202209061/pgsql_tmp"}) {
    EXPECT_EQ(ClassifyPath(p), PathClass::kVersioned) << p;
  }
  for (const char* p :
       {"postmaster.pid", "postmaster.opts", "pg_stat_tmp/global.stat", "pg_notify/0000",
        "pg_subtrans/0001", "pg_snapshots/x", "pg_dynshmem/mmap.1", "log/postgresql.log",
        "base/pgsql_tmp/pgsql_tmp123.0", "base/5/t3_16384", "base/5/t12_16384_fsm",
        "base/5/t12_16384.2", "base/5/t12_16384_vm.1",
        "pg_tblspc/16400/PG_15_202209061/pgsql_tmp/pgsql_tmp123.0",
        "pg_tblspc/16400/PG_15_202209061/pgsql_tmp/pgsql_tmp123.0.fileset/0.0"}) {
    EXPECT_EQ(ClassifyPath(p), PathClass::kLocal) << p;
  }
  for (const char* p : {"pg_wal/000000010000000000000001", "pg_wal/archive_status/x.ready",
                        "pg_wal/xlogtemp.123"}) {
    EXPECT_EQ(ClassifyPath(p), PathClass::kWal) << p;
  }
}

TEST(PgdataLayout, RecognisesTempRelationNamesOnly) {
  EXPECT_TRUE(IsTempRelationFile("t3_16384"));
  EXPECT_TRUE(IsTempRelationFile("t3_16384_init"));
  EXPECT_FALSE(IsTempRelationFile("t3_16384_foo"));
  EXPECT_FALSE(IsTempRelationFile("16384"));
  EXPECT_FALSE(IsTempRelationFile("t_16384"));
  EXPECT_FALSE(IsTempRelationFile("tx_1"));
  EXPECT_FALSE(IsTempRelationFile("t3_"));
  EXPECT_FALSE(IsTempRelationFile("t3_12.x"));
}

TEST(PgdataLayout, RecognisesRelationFiles) {
  for (const char* p :
       {"base/5/16384", "base/5/16384_fsm", "base/5/16384_vm.1", "base/1/1259.12", "global/1262",
        "global/1262_init", "pg_tblspc/16390/PG_15_202209061/5/16391"}) {
    EXPECT_TRUE(IsRelationFile(p)) << p;
  }
  for (const char* p : {"base/5/pg_filenode.map", "global/pg_control", "global/pg_filenode.map",
                        "base/5/PG_VERSION", "base/5/t3_16384", "base/pgsql_tmp/16384",
                        "pg_xact/0000", "pg_multixact/offsets/0000", "16384", "base/16384",
                        "pg_wal/000000010000000000000001", "base/5/16384_foo"}) {
    EXPECT_FALSE(IsRelationFile(p)) << p;
  }
}

TEST(PgdataLayout, ValidatesRelativePaths) {
  EXPECT_TRUE(ValidateRelativePath("base/5/16384").ok());
  EXPECT_TRUE(ValidateRelativePath("PG_VERSION").ok());
  for (const char* p : {"", "/base", "base/", "base//5", "base/./5", "../etc", "a/..", "."}) {
    EXPECT_FALSE(ValidateRelativePath(p).ok()) << p;
  }
  EXPECT_FALSE(ValidateRelativePath(std::string("a\0b", 3)).ok());
  EXPECT_EQ(ParentPath("base/5/16384"), "base/5");
  EXPECT_EQ(ParentPath("PG_VERSION"), "");
  EXPECT_EQ(BaseName("base/5/16384"), "16384");
}

}  // namespace
}  // namespace cambium::pg
