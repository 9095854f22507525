// FaultVfs (see fault_vfs.h): a shim over the unix VFS. Each sqlite3_file it
// hands SQLite is a FaultFile, followed in the same allocation by the real
// unix file it forwards to; a modelled file's FaultFile points at the file's
// image (durable bytes + unsynced writes), shared by every handle on that path.
#include "tests/fault_vfs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

namespace aidsync::testing {

const char* PowerLossModeName(PowerLossMode mode) {
  switch (mode) {
    case PowerLossMode::kDropAll: return "drop-all";
    case PowerLossMode::kKeepAll: return "keep-all";
    case PowerLossMode::kReorder: return "reorder";
    case PowerLossMode::kTear: return "tear";
  }
  return "?";
}

namespace {

constexpr int64_t kSector = 512;

// A write (or truncation) issued since the file's last sync.
struct UnsyncedOp {
  bool truncate = false;
  int64_t offset = 0;  // where the bytes go; for a truncation, the new size
  std::string bytes;
};

// What the VFS knows of one persistent file, shared by its open handles.
struct FileImage {
  std::string path;
  std::string durable;               // the bytes as of the last sync
  std::vector<UnsyncedOp> unsynced;  // issued since, in order
  int64_t size = 0;                  // the size now, unsynced writes included
  int open_handles = 0;
};

// Applies the first `keep` bytes of a write (all of a truncation) to an image.
void ApplyOp(std::string& image, const UnsyncedOp& op, size_t keep) {
  if (op.truncate) {
    image.resize(static_cast<size_t>(op.offset));
    return;
  }
  const size_t end = static_cast<size_t>(op.offset) + keep;
  if (image.size() < end) image.resize(end, '\0');  // a hole where earlier writes were lost reads as zeros
  std::copy_n(op.bytes.data(), keep, image.begin() + op.offset);
}

// How many bytes of `op` land when it is torn: up to a random 512-byte sector
// boundary inside it (0 when it lies within one sector).
size_t TornLength(const UnsyncedOp& op, SeededRandom& rng) {
  const int64_t end = op.offset + static_cast<int64_t>(op.bytes.size());
  const int64_t first = (op.offset / kSector + 1) * kSector;
  if (first >= end) return 0;
  const int64_t boundaries = (end - 1 - first) / kSector + 1;
  const int64_t cut = first + kSector * static_cast<int64_t>(rng.Uniform(static_cast<uint64_t>(boundaries)));
  return static_cast<size_t>(cut - op.offset);
}

std::optional<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Status WriteWholeFile(const std::string& path, const std::string& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError("cannot rewrite " + path + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status st = Status::IOError("cannot rewrite " + path + ": " + std::strerror(errno));
      ::close(fd);
      return st;
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return Status::OK();
}

// The code a failed call of `op` returns when no other is asked for.
int NaturalCode(VfsOp op) {
  switch (op) {
    case kVfsRead: return SQLITE_IOERR_READ;
    case kVfsWrite: return SQLITE_IOERR_WRITE;
    case kVfsSync: return SQLITE_IOERR_FSYNC;
    case kVfsOpen: return SQLITE_CANTOPEN;
    case kVfsTruncate: return SQLITE_IOERR_TRUNCATE;
    case kVfsFileSize: return SQLITE_IOERR_FSTAT;
    case kVfsDelete: return SQLITE_IOERR_DELETE;
    default: return SQLITE_IOERR;
  }
}

bool Modelled(const char* name, int flags) {
  constexpr int kPersistent = SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_WAL |
                              SQLITE_OPEN_SUPER_JOURNAL;
  return name != nullptr && (flags & kPersistent) != 0 && (flags & SQLITE_OPEN_DELETEONCLOSE) == 0;
}

}  // namespace

struct FaultVfs::Impl {
  std::string name;
  sqlite3_vfs vfs{};
  sqlite3_vfs* real = nullptr;
  sqlite3_io_methods methods{};
  size_t real_offset = 0;  // where the real file starts in a FaultFile allocation

  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<FileImage>> files;
  // Power loss.
  int64_t crash_at = 0;
  int64_t write_sync_calls = 0;
  bool crashed = false;
  // FailNth.
  unsigned fail_ops = kVfsAll;
  int64_t fail_nth = 0;
  int fail_code = 0;
  bool fail_persistent = false;
  bool failing = false;  // a persistent FailNth has struck
  int64_t counted = 0;
  // Quota and read-only.
  std::optional<int64_t> quota;
  bool read_only = false;
  int64_t injected = 0;

  // Called with mu held at the start of each call on a modelled file: the
  // code to fail it with, or SQLITE_OK to go on. Counts the call.
  int Gate(VfsOp op) {
    if (crashed) return Inject(EIO, NaturalCode(op));
    if (op == kVfsWrite || op == kVfsSync || op == kVfsTruncate) {
      ++write_sync_calls;
      if (crash_at > 0 && write_sync_calls == crash_at) {
        crashed = true;
        return Inject(EIO, NaturalCode(op));
      }
    }
    if ((op & fail_ops) != 0) {
      ++counted;
      if (failing || (fail_nth > 0 && counted == fail_nth)) {
        failing = fail_persistent;
        return Inject(EIO, fail_code != 0 ? fail_code : NaturalCode(op));
      }
    }
    return SQLITE_OK;
  }

  int Inject(int err, int code) {
    ++injected;
    errno = err;
    return code;
  }

  int64_t TotalBytes() const {
    int64_t total = 0;
    for (const auto& [path, image] : files) total += image->size;
    return total;
  }

  // The image of `path`, read from disk the first time it is seen.
  std::shared_ptr<FileImage> ImageOf(const std::string& path) {
    auto it = files.find(path);
    if (it != files.end()) return it->second;
    auto image = std::make_shared<FileImage>();
    image->path = path;
    image->durable = ReadWholeFile(path).value_or("");
    image->size = static_cast<int64_t>(image->durable.size());
    files.emplace(path, image);
    return image;
  }
};

namespace {

using Impl = FaultVfs::Impl;

// The sqlite3_file SQLite holds. Plain data: SQLite allocates it; the real
// file follows at Impl::real_offset.
struct FaultFile {
  sqlite3_file base;  // first, so a sqlite3_file* is a FaultFile*
  Impl* vfs;
  std::shared_ptr<FileImage>* image;  // null for a file that is not modelled
};

FaultFile* Self(sqlite3_file* f) { return reinterpret_cast<FaultFile*>(f); }
sqlite3_file* Real(sqlite3_file* f) {
  return reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + Self(f)->vfs->real_offset);
}
Impl* VfsImpl(sqlite3_vfs* vfs) { return static_cast<Impl*>(vfs->pAppData); }
FileImage* ImageOf(sqlite3_file* f) { return Self(f)->image ? Self(f)->image->get() : nullptr; }

// ---- file methods --------------------------------------------------------

int Close(sqlite3_file* f) {
  sqlite3_file* real = Real(f);
  int rc = real->pMethods ? real->pMethods->xClose(real) : SQLITE_OK;
  FaultFile* self = Self(f);
  if (self->image) {
    std::lock_guard lock(self->vfs->mu);
    --(*self->image)->open_handles;
    delete self->image;
    self->image = nullptr;
  }
  return rc;
}

int Read(sqlite3_file* f, void* buf, int amt, sqlite3_int64 offset) {
  sqlite3_file* real = Real(f);
  if (ImageOf(f) == nullptr) return real->pMethods->xRead(real, buf, amt, offset);
  std::lock_guard lock(Self(f)->vfs->mu);
  if (int rc = Self(f)->vfs->Gate(kVfsRead); rc != SQLITE_OK) {
    std::memset(buf, 0, static_cast<size_t>(amt));
    return rc;
  }
  return real->pMethods->xRead(real, buf, amt, offset);
}

int Write(sqlite3_file* f, const void* buf, int amt, sqlite3_int64 offset) {
  sqlite3_file* real = Real(f);
  FileImage* image = ImageOf(f);
  if (image == nullptr) return real->pMethods->xWrite(real, buf, amt, offset);
  Impl& vfs = *Self(f)->vfs;
  std::lock_guard lock(vfs.mu);
  UnsyncedOp op{false, offset, std::string(static_cast<const char*>(buf), static_cast<size_t>(amt))};
  const bool was_crashed = vfs.crashed;
  if (int rc = vfs.Gate(kVfsWrite); rc != SQLITE_OK) {
    // The write the power failed in may have reached the disk, whole or torn.
    if (!was_crashed && vfs.crashed) image->unsynced.push_back(std::move(op));
    return rc;
  }
  if (vfs.read_only) return vfs.Inject(EROFS, SQLITE_IOERR_WRITE);
  const int64_t growth = std::max<int64_t>(0, offset + amt - image->size);
  if (vfs.quota && vfs.TotalBytes() + growth > *vfs.quota) return vfs.Inject(ENOSPC, SQLITE_FULL);
  int rc = real->pMethods->xWrite(real, buf, amt, offset);
  if (rc == SQLITE_OK) {
    image->unsynced.push_back(std::move(op));
    image->size += growth;
  }
  return rc;
}

int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  sqlite3_file* real = Real(f);
  FileImage* image = ImageOf(f);
  if (image == nullptr) return real->pMethods->xTruncate(real, size);
  Impl& vfs = *Self(f)->vfs;
  std::lock_guard lock(vfs.mu);
  if (int rc = vfs.Gate(kVfsTruncate); rc != SQLITE_OK) return rc;
  if (vfs.read_only) return vfs.Inject(EROFS, SQLITE_IOERR_TRUNCATE);
  int rc = real->pMethods->xTruncate(real, size);
  if (rc == SQLITE_OK) {
    image->unsynced.push_back(UnsyncedOp{true, size, {}});
    image->size = size;
  }
  return rc;
}

int Sync(sqlite3_file* f, int flags) {
  FileImage* image = ImageOf(f);
  if (image == nullptr) return Real(f)->pMethods->xSync(Real(f), flags);
  Impl& vfs = *Self(f)->vfs;
  std::lock_guard lock(vfs.mu);
  if (int rc = vfs.Gate(kVfsSync); rc != SQLITE_OK) return rc;
  // The real fsync is skipped: what is durable is what the model says, and
  // fsyncs would only make the tests slow. Like fsync, this makes every write
  // to the file durable, whichever handle made it.
  (void)flags;
  for (const auto& op : image->unsynced) ApplyOp(image->durable, op, op.bytes.size());
  image->unsynced.clear();
  return SQLITE_OK;
}

int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  sqlite3_file* real = Real(f);
  if (ImageOf(f) == nullptr) return real->pMethods->xFileSize(real, size);
  std::lock_guard lock(Self(f)->vfs->mu);
  if (int rc = Self(f)->vfs->Gate(kVfsFileSize); rc != SQLITE_OK) return rc;
  return real->pMethods->xFileSize(real, size);
}

// Locks, file controls and the -shm are process state, not disk content:
// they pass through, also after a crash.
int Lock(sqlite3_file* f, int level) { return Real(f)->pMethods->xLock(Real(f), level); }
int Unlock(sqlite3_file* f, int level) { return Real(f)->pMethods->xUnlock(Real(f), level); }
int CheckReservedLock(sqlite3_file* f, int* out) { return Real(f)->pMethods->xCheckReservedLock(Real(f), out); }
int FileControl(sqlite3_file* f, int op, void* arg) { return Real(f)->pMethods->xFileControl(Real(f), op, arg); }
int SectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
int DeviceCharacteristics(sqlite3_file* f) { return Real(f)->pMethods->xDeviceCharacteristics(Real(f)); }
int ShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
int ShmUnmap(sqlite3_file* f, int delete_flag) { return Real(f)->pMethods->xShmUnmap(Real(f), delete_flag); }
// No memory-mapped reads: every read goes through Read, so faults reach it.
int Fetch(sqlite3_file*, sqlite3_int64, int, void** out) {
  *out = nullptr;
  return SQLITE_OK;
}
int Unfetch(sqlite3_file*, sqlite3_int64, void*) { return SQLITE_OK; }

// ---- VFS methods ---------------------------------------------------------

int Open(sqlite3_vfs* vfs_base, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  Impl& vfs = *VfsImpl(vfs_base);
  FaultFile* self = Self(f);
  self->base.pMethods = nullptr;
  self->vfs = &vfs;
  self->image = nullptr;
  sqlite3_file* real = Real(f);
  real->pMethods = nullptr;
  if (!Modelled(name, flags)) {
    int rc = vfs.real->xOpen(vfs.real, name, real, flags, out_flags);
    if (real->pMethods != nullptr) self->base.pMethods = &vfs.methods;
    return rc;
  }
  std::lock_guard lock(vfs.mu);
  if (int rc = vfs.Gate(kVfsOpen); rc != SQLITE_OK) return rc;
  if (vfs.read_only && (flags & SQLITE_OPEN_READWRITE) != 0) {
    // As the unix VFS does on EROFS: a file that is there opens read-only;
    // one that would have to be created cannot be opened.
    if (::access(name, F_OK) != 0) return vfs.Inject(EROFS, SQLITE_CANTOPEN);
    flags = (flags & ~(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) | SQLITE_OPEN_READONLY;
    ++vfs.injected;
  }
  std::shared_ptr<FileImage> image = vfs.ImageOf(name);
  int rc = vfs.real->xOpen(vfs.real, name, real, flags, out_flags);
  if (real->pMethods != nullptr) self->base.pMethods = &vfs.methods;
  if (rc == SQLITE_OK) {
    ++image->open_handles;
    self->image = new std::shared_ptr<FileImage>(std::move(image));
  }
  return rc;
}

int Delete(sqlite3_vfs* vfs_base, const char* name, int sync_dir) {
  Impl& vfs = *VfsImpl(vfs_base);
  {
    std::lock_guard lock(vfs.mu);
    if (vfs.files.count(name) != 0) {
      if (int rc = vfs.Gate(kVfsDelete); rc != SQLITE_OK) return rc;
      if (vfs.read_only) return vfs.Inject(EROFS, SQLITE_IOERR_DELETE);
    }
  }
  int rc = vfs.real->xDelete(vfs.real, name, sync_dir);
  if (rc == SQLITE_OK) {
    std::lock_guard lock(vfs.mu);
    vfs.files.erase(name);  // deleting is durable at once (fault_vfs.h)
  }
  return rc;
}

int Access(sqlite3_vfs* v, const char* name, int flags, int* out) {
  return VfsImpl(v)->real->xAccess(VfsImpl(v)->real, name, flags, out);
}
int FullPathname(sqlite3_vfs* v, const char* name, int n, char* out) {
  return VfsImpl(v)->real->xFullPathname(VfsImpl(v)->real, name, n, out);
}
void* DlOpen(sqlite3_vfs* v, const char* name) { return VfsImpl(v)->real->xDlOpen(VfsImpl(v)->real, name); }
void DlError(sqlite3_vfs* v, int n, char* out) { VfsImpl(v)->real->xDlError(VfsImpl(v)->real, n, out); }
void (*DlSym(sqlite3_vfs* v, void* handle, const char* symbol))(void) {
  return VfsImpl(v)->real->xDlSym(VfsImpl(v)->real, handle, symbol);
}
void DlClose(sqlite3_vfs* v, void* handle) { VfsImpl(v)->real->xDlClose(VfsImpl(v)->real, handle); }
int Randomness(sqlite3_vfs* v, int n, char* out) { return VfsImpl(v)->real->xRandomness(VfsImpl(v)->real, n, out); }
int Sleep(sqlite3_vfs* v, int us) { return VfsImpl(v)->real->xSleep(VfsImpl(v)->real, us); }
int CurrentTime(sqlite3_vfs* v, double* out) { return VfsImpl(v)->real->xCurrentTime(VfsImpl(v)->real, out); }
int GetLastError(sqlite3_vfs* v, int n, char* out) {
  return VfsImpl(v)->real->xGetLastError(VfsImpl(v)->real, n, out);
}
int CurrentTimeInt64(sqlite3_vfs* v, sqlite3_int64* out) {
  return VfsImpl(v)->real->xCurrentTimeInt64(VfsImpl(v)->real, out);
}

}  // namespace

FaultVfs::FaultVfs(std::string name) : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  d.name = std::move(name);
  if (sqlite3_initialize() != SQLITE_OK) throw std::runtime_error("sqlite3_initialize failed");
  if (sqlite3_vfs_find(d.name.c_str()) != nullptr)
    throw std::logic_error("a SQLite VFS named " + d.name + " is registered already");
  d.real = sqlite3_vfs_find(nullptr);
  if (d.real == nullptr || d.real->iVersion < 2) throw std::runtime_error("no default SQLite VFS of version 2+");
  constexpr size_t kAlign = 16;
  d.real_offset = (sizeof(FaultFile) + kAlign - 1) / kAlign * kAlign;

  sqlite3_io_methods& m = d.methods;
  m.iVersion = 3;
  m.xClose = Close;
  m.xRead = Read;
  m.xWrite = Write;
  m.xTruncate = Truncate;
  m.xSync = Sync;
  m.xFileSize = FileSize;
  m.xLock = Lock;
  m.xUnlock = Unlock;
  m.xCheckReservedLock = CheckReservedLock;
  m.xFileControl = FileControl;
  m.xSectorSize = SectorSize;
  m.xDeviceCharacteristics = DeviceCharacteristics;
  m.xShmMap = ShmMap;
  m.xShmLock = ShmLock;
  m.xShmBarrier = ShmBarrier;
  m.xShmUnmap = ShmUnmap;
  m.xFetch = Fetch;
  m.xUnfetch = Unfetch;

  sqlite3_vfs& v = d.vfs;
  v.iVersion = 2;  // no system-call overrides (version 3): those would reach the real VFS
  v.szOsFile = static_cast<int>(d.real_offset) + d.real->szOsFile;
  v.mxPathname = d.real->mxPathname;
  v.zName = d.name.c_str();
  v.pAppData = &d;
  v.xOpen = Open;
  v.xDelete = Delete;
  v.xAccess = Access;
  v.xFullPathname = FullPathname;
  v.xDlOpen = DlOpen;
  v.xDlError = DlError;
  v.xDlSym = DlSym;
  v.xDlClose = DlClose;
  v.xRandomness = Randomness;
  v.xSleep = Sleep;
  v.xCurrentTime = CurrentTime;
  v.xGetLastError = GetLastError;
  v.xCurrentTimeInt64 = CurrentTimeInt64;
  if (sqlite3_vfs_register(&v, 0) != SQLITE_OK) throw std::runtime_error("cannot register VFS " + d.name);
}

FaultVfs::~FaultVfs() { sqlite3_vfs_unregister(&impl_->vfs); }

const std::string& FaultVfs::name() const { return impl_->name; }

void FaultVfs::CrashAt(int64_t n) {
  std::lock_guard lock(impl_->mu);
  impl_->crash_at = n;
  impl_->write_sync_calls = 0;
  impl_->crashed = false;
}

int64_t FaultVfs::write_sync_calls() const {
  std::lock_guard lock(impl_->mu);
  return impl_->write_sync_calls;
}

bool FaultVfs::crashed() const {
  std::lock_guard lock(impl_->mu);
  return impl_->crashed;
}

Result<PowerLossReport> FaultVfs::SimulatePowerLoss(PowerLossMode mode, SeededRandom& rng) {
  std::lock_guard lock(impl_->mu);
  for (const auto& [path, image] : impl_->files)
    if (image->open_handles > 0) return Status::InvalidArgument(path + " is still open: close every connection first");
  PowerLossReport report;
  for (auto& [path, image] : impl_->files) {
    std::string content = image->durable;
    const auto& ops = image->unsynced;
    report.unsynced += static_cast<int64_t>(ops.size());
    if (!ops.empty()) ++report.files;
    auto keep_whole = [&](const UnsyncedOp& op) {
      ApplyOp(content, op, op.bytes.size());
      ++report.kept;
    };
    switch (mode) {
      case PowerLossMode::kDropAll:
        report.dropped += static_cast<int64_t>(ops.size());
        break;
      case PowerLossMode::kKeepAll:
        for (const auto& op : ops) keep_whole(op);
        break;
      case PowerLossMode::kReorder: {
        std::vector<size_t> order(ops.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.Uniform(i)]);
        for (size_t i : order) {
          if (rng.Chance(0.5)) {
            keep_whole(ops[i]);
          } else {
            ++report.dropped;
          }
        }
        break;
      }
      case PowerLossMode::kTear:
        for (const auto& op : ops) {
          const uint64_t fate = rng.Uniform(3);
          size_t torn = op.truncate ? 0 : TornLength(op, rng);
          if (fate == 0 || (fate == 2 && torn == 0)) {
            ++report.dropped;
          } else if (fate == 1) {
            keep_whole(op);
          } else {
            ApplyOp(content, op, torn);
            ++report.torn;
          }
        }
        break;
    }
    RETURN_IF_ERROR(WriteWholeFile(path, content));
    image->durable = content;
    image->unsynced.clear();
    image->size = static_cast<int64_t>(content.size());
  }
  impl_->crash_at = 0;
  impl_->write_sync_calls = 0;
  impl_->crashed = false;
  return report;
}

void FaultVfs::ForgetFiles() {
  std::lock_guard lock(impl_->mu);
  for (auto it = impl_->files.begin(); it != impl_->files.end();) {
    if (it->second->open_handles == 0) {
      it = impl_->files.erase(it);
    } else {
      ++it;
    }
  }
}

void FaultVfs::FailNth(unsigned ops, int64_t n, int code, bool persistent) {
  std::lock_guard lock(impl_->mu);
  impl_->fail_ops = ops;
  impl_->fail_nth = n;
  impl_->fail_code = code;
  impl_->fail_persistent = persistent;
  impl_->failing = false;
  impl_->counted = 0;
}

int64_t FaultVfs::counted_calls() const {
  std::lock_guard lock(impl_->mu);
  return impl_->counted;
}

void FaultVfs::SetQuota(std::optional<int64_t> bytes) {
  std::lock_guard lock(impl_->mu);
  impl_->quota = bytes;
}

int64_t FaultVfs::total_bytes() const {
  std::lock_guard lock(impl_->mu);
  return impl_->TotalBytes();
}

void FaultVfs::SetReadOnly(bool read_only) {
  std::lock_guard lock(impl_->mu);
  impl_->read_only = read_only;
}

void FaultVfs::ClearFaults() {
  std::lock_guard lock(impl_->mu);
  impl_->fail_nth = 0;
  impl_->failing = false;
  impl_->quota.reset();
  impl_->read_only = false;
}

int64_t FaultVfs::faults_injected() const {
  std::lock_guard lock(impl_->mu);
  return impl_->injected;
}

}  // namespace aidsync::testing
