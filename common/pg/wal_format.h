// The on-disk format of PostgreSQL 15 WAL: page headers, record headers, block
// references and the record types Cambium interprets (commit/abort, checkpoint,
// WAL switch).
//
// Values are read from little-endian byte buffers with the Load helpers, never by
// casting into packed structs, so a truncated or misaligned buffer cannot cause
// undefined behaviour. Offsets and sizes are those of PostgreSQL 15 on 64-bit
// platforms (MAXALIGN 8); the tests check them against real WAL and pg_waldump.
//
// Thread-safety: constants and pure functions.
#ifndef CAMBIUM_COMMON_PG_WAL_FORMAT_H_
#define CAMBIUM_COMMON_PG_WAL_FORMAT_H_

#include <cstdint>
#include <cstring>

#include "common/bytes.h"

namespace cambium::pg {

inline constexpr uint16_t kXlogPageMagic = 0xD110;  // XLOG_PAGE_MAGIC of PostgreSQL 15

// XLogPageHeaderData: magic u16 @0, info u16 @2, tli u32 @4, pageaddr u64 @8,
// rem_len u32 @16, padding to 24.
inline constexpr uint32_t kShortPageHeaderSize = 24;
// XLogLongPageHeaderData adds: sysid u64 @24, seg_size u32 @32, xlog_blcksz u32 @36.
inline constexpr uint32_t kLongPageHeaderSize = 40;

inline constexpr uint16_t kXlpFirstIsContRecord = 0x0001;
inline constexpr uint16_t kXlpLongHeader = 0x0002;
inline constexpr uint16_t kXlpBkpRemovable = 0x0004;
inline constexpr uint16_t kXlpFirstIsOverwriteContRecord = 0x0008;
inline constexpr uint16_t kXlpAllFlags = 0x000F;

// XLogRecord: tot_len u32 @0, xid u32 @4, prev u64 @8, info u8 @16, rmid u8 @17,
// 2 bytes padding, crc u32 @20.
inline constexpr uint32_t kRecordHeaderSize = 24;
inline constexpr uint32_t kRecordCrcOffset = 20;
// Postgres refuses to allocate more than MaxAllocSize (1 GiB - 1) for a record.
inline constexpr uint32_t kMaxRecordSize = 0x3fffffff;

// xl_info: low 4 bits are XLOG's own flags, high 4 bits belong to the rmgr.
inline constexpr uint8_t kXlrInfoMask = 0x0F;

// Resource managers (rmgrlist.h of PostgreSQL 15). Ids 128..255 are custom rmgrs.
enum class RmgrId : uint8_t {
  kXlog = 0,
  kTransaction = 1,
  kStorage = 2,
  kClog = 3,
  kDatabase = 4,
  kTablespace = 5,
  kMultiXact = 6,
  kRelMap = 7,
  kStandby = 8,
  kHeap2 = 9,
  kHeap = 10,
  kBtree = 11,
  kHash = 12,
  kGin = 13,
  kGist = 14,
  kSequence = 15,
  kSpGist = 16,
  kBrin = 17,
  kCommitTs = 18,
  kReplicationOrigin = 19,
  kGeneric = 20,
  kLogicalMessage = 21,
};
inline constexpr uint8_t kMaxBuiltinRmgrId = 21;
inline constexpr uint8_t kMinCustomRmgrId = 128;
inline constexpr bool IsValidRmgrId(uint8_t id) {
  return id <= kMaxBuiltinRmgrId || id >= kMinCustomRmgrId;
}
// The name pg_waldump prints for a built-in rmgr ("Heap", "Transaction", ...);
// "custom" for ids >= 128, "invalid" otherwise.
const char* RmgrName(uint8_t id);

// XLOG rmgr record types (xl_info & ~kXlrInfoMask).
inline constexpr uint8_t kXlogCheckpointShutdown = 0x00;
inline constexpr uint8_t kXlogCheckpointOnline = 0x10;
inline constexpr uint8_t kXlogSwitch = 0x40;
inline constexpr uint8_t kXlogOverwriteContRecord = 0xD0;

// Transaction rmgr record types (xl_info & kXlogXactOpMask).
inline constexpr uint8_t kXlogXactOpMask = 0x70;
inline constexpr uint8_t kXlogXactCommit = 0x00;
inline constexpr uint8_t kXlogXactPrepare = 0x10;
inline constexpr uint8_t kXlogXactAbort = 0x20;
inline constexpr uint8_t kXlogXactCommitPrepared = 0x30;
inline constexpr uint8_t kXlogXactAbortPrepared = 0x40;
inline constexpr uint8_t kXlogXactHasInfo = 0x80;
// xl_xact_xinfo.xinfo bits (access/xact.h).
inline constexpr uint32_t kXactXinfoHasDbInfo = 1u << 0;
inline constexpr uint32_t kXactXinfoHasSubxacts = 1u << 1;
inline constexpr uint32_t kXactXinfoHasRelfilenodes = 1u << 2;

// Storage rmgr record types (catalog/storage_xlog.h).
inline constexpr uint8_t kXlogSmgrCreate = 0x10;
inline constexpr uint8_t kXlogSmgrTruncate = 0x20;
// Heap2 record types that only maintain pages (pruning, vacuum, freezing, the
// visibility map), and the XLOG full-page image written for a hint-bit change.
inline constexpr uint8_t kXlogHeap2Prune = 0x10;
inline constexpr uint8_t kXlogHeap2Vacuum = 0x20;
inline constexpr uint8_t kXlogHeap2FreezePage = 0x30;
inline constexpr uint8_t kXlogHeap2Visible = 0x40;
inline constexpr uint8_t kXlogFpiForHint = 0xC0;

// Block reference headers inside a record (xlogrecord.h).
inline constexpr uint8_t kXlrMaxBlockId = 32;
inline constexpr uint8_t kXlrBlockIdDataShort = 255;
inline constexpr uint8_t kXlrBlockIdDataLong = 254;
inline constexpr uint8_t kXlrBlockIdOrigin = 253;
inline constexpr uint8_t kXlrBlockIdToplevelXid = 252;

inline constexpr uint8_t kBkpBlockForkMask = 0x0F;
inline constexpr uint8_t kBkpBlockHasImage = 0x10;
inline constexpr uint8_t kBkpBlockHasData = 0x20;
inline constexpr uint8_t kBkpBlockWillInit = 0x40;
inline constexpr uint8_t kBkpBlockSameRel = 0x80;

inline constexpr uint8_t kBkpImageHasHole = 0x01;
inline constexpr uint8_t kBkpImageApply = 0x02;
inline constexpr uint8_t kBkpImageCompressPglz = 0x04;
inline constexpr uint8_t kBkpImageCompressLz4 = 0x08;
inline constexpr uint8_t kBkpImageCompressZstd = 0x10;
inline constexpr uint8_t kBkpImageCompressedMask = 0x1C;

// Postgres timestamps (TimestampTz) count microseconds since 2000-01-01 UTC.
inline constexpr int64_t kPostgresEpochUnixMicros = 946684800LL * 1000000;

// WAL is little-endian, as is every host we build on.
template <typename T>
inline T Load(const uint8_t* p) {
  return LoadLittleEndian<T>(reinterpret_cast<const char*>(p));
}

}  // namespace cambium::pg

#endif  // CAMBIUM_COMMON_PG_WAL_FORMAT_H_
