// FaultVfs: a SQLite VFS for tests that wraps the default ("unix") VFS and
// injects the failures a disk can have: power loss at a chosen call, an I/O
// error at the Nth call, a full disk and a file system that turns read-only.
// A Replica opened with Env{.sqlite_vfs = vfs.name()} goes through it.
//
// All state lives in the FaultVfs object the test owns (SQLite reaches it
// through sqlite3_vfs::pAppData); the only global is SQLite's own list of
// VFSes, which the constructor and destructor register into and out of. The
// object must outlive every connection opened through it. Thread-safe.
//
// Which files it models: SQLite's persistent files (the main database, its
// -wal and a rollback journal). Temporary files and the -shm wal-index pass
// through untouched and uncounted: the -shm is not durable content (SQLite
// rebuilds it from the -wal after a crash).
//
// Power loss model. For each modelled file the VFS keeps its durable image
// (its bytes as of the last successful xSync, or as found at first open) and
// the writes and truncations issued since, in order. CrashAt(n) arms a crash
// at the nth write, truncate or sync call (counted across all files): that
// call and every later call — reads, writes, syncs, opens, deletes — fail
// (SQLITE_IOERR_*, SQLITE_CANTOPEN for an open; locks and the -shm pass), as
// if the machine stopped there, so the
// operation in progress fails. Once every connection is closed,
// SimulatePowerLoss() rewrites each file on disk as the disk could hold it
// after the power came back: its durable image plus some of the unsynced
// writes (see PowerLossMode). The call that crashed counts as unsynced: it
// may have reached the disk too. Simplifications, on purpose: creating and
// deleting a file are durable at once (SQLite syncs the directory where that
// matters), whole images are kept in memory (test databases are small), and
// xSync of a modelled file does not call the real fsync (the model says what
// is durable; real fsyncs would only slow the tests down).
//
// I/O faults (independent of the power loss model; each can be cleared, "the
// fault is gone"):
//   - FailNth: the nth call among chosen operations fails with a given code,
//     once or from then on;
//   - SetQuota: a write that would take the total size of the modelled files
//     past a limit fails with SQLITE_FULL, as on a full disk;
//   - SetReadOnly: the file system behaves as if remounted read-only — opens
//     for writing fall back to read-only (as the unix VFS does on EROFS),
//     creating a file fails with SQLITE_CANTOPEN, and writes, truncations and
//     deletes through handles already open fail with an SQLITE_IOERR code.
// Each injected failure sets errno (EIO, ENOSPC, EROFS) so that the OS error
// SQLite reports (sqlite3_system_errno) says what happened.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/status.h"
#include "tests/test_support.h"

namespace aidsync::testing {

// What SimulatePowerLoss keeps of the writes not yet synced.
enum class PowerLossMode {
  kDropAll,  // none: every file is its durable image
  kKeepAll,  // all, in order (the disk emptied its cache before the power went)
  kReorder,  // a random subset, landing in a random order
  kTear,     // in order, each dropped, kept, or torn (only a prefix of its 512-byte sectors)
};
const char* PowerLossModeName(PowerLossMode mode);

// The VFS calls FailNth counts and can fail; combine with |.
enum VfsOp : unsigned {
  kVfsRead = 1u << 0,
  kVfsWrite = 1u << 1,
  kVfsSync = 1u << 2,
  kVfsOpen = 1u << 3,
  kVfsTruncate = 1u << 4,
  kVfsFileSize = 1u << 5,
  kVfsDelete = 1u << 6,
  kVfsAll = (1u << 7) - 1,
};

// What one SimulatePowerLoss did.
struct PowerLossReport {
  int files = 0;              // files rewritten
  int64_t unsynced = 0;       // writes and truncations not synced at the crash
  int64_t kept = 0;           // landed whole
  int64_t torn = 0;           // landed in part
  int64_t dropped = 0;        // lost
};

class FaultVfs {
 public:
  // Registers the VFS under `name` (not the default). Throws
  // std::logic_error if a VFS of that name is registered already.
  explicit FaultVfs(std::string name);
  // Unregisters it. Every connection opened through it must be closed.
  ~FaultVfs();
  FaultVfs(const FaultVfs&) = delete;
  FaultVfs& operator=(const FaultVfs&) = delete;

  const std::string& name() const;

  // ---- power loss --------------------------------------------------------
  // Resets the write/sync counter; the nth write, truncate or sync call from
  // now (1-based) loses power. 0: never (only count).
  void CrashAt(int64_t n);
  // Write, truncate and sync calls since the last CrashAt.
  int64_t write_sync_calls() const;
  bool crashed() const;
  // Rewrites every modelled file as the disk could hold it after power came
  // back (see PowerLossMode), then forgets the crash: the files' images are
  // durable again and calls pass. InvalidArgument if a modelled file is still
  // open; IOError if a file cannot be rewritten.
  Result<PowerLossReport> SimulatePowerLoss(PowerLossMode mode, SeededRandom& rng);
  // Forgets every file image (after the test changed files behind the VFS's
  // back). Files are read again from disk when next opened.
  void ForgetFiles();

  // ---- I/O faults --------------------------------------------------------
  // Counts calls of `ops` (a VfsOp mask) from now; the nth (1-based) fails
  // with `code` (0: the natural SQLITE_IOERR_* code of the operation,
  // SQLITE_CANTOPEN for an open), and with `persistent` every later one too.
  void FailNth(unsigned ops, int64_t n, int code = 0, bool persistent = false);
  // Calls of the FailNth mask since the last FailNth (all ops if none).
  int64_t counted_calls() const;
  // Writes that would take the modelled files' total size past `bytes` fail
  // with SQLITE_FULL; nullopt: no limit.
  void SetQuota(std::optional<int64_t> bytes);
  // Total size of the modelled files now.
  int64_t total_bytes() const;
  void SetReadOnly(bool read_only);
  // Clears FailNth, the quota and read-only: the fault is gone.
  void ClearFaults();
  // Calls failed on purpose so far (crash, FailNth, quota, read-only).
  int64_t faults_injected() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace aidsync::testing
