// An SQLite VFS for the outbox's fault-injection tests: it passes everything to SQLite's
// default VFS, except that while `disk_full` is set every write fails as a full disk would
// (SQLITE_FULL). Registered under its name for as long as it lives; open the outbox with
// OutboxOptions::vfs = name(). Not thread-safe: one test thread.
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <cstdlib>
#include <new>
#include <string>

namespace iothub::testing {

class OutboxFaultVfs {
 public:
  explicit OutboxFaultVfs(std::string name = "outbox-fault") : name_(std::move(name)) {
    real_ = sqlite3_vfs_find(nullptr);
    vfs_ = *real_;
    vfs_.szOsFile = static_cast<int>(sizeof(File)) + real_->szOsFile;
    vfs_.pNext = nullptr;
    vfs_.zName = name_.c_str();
    vfs_.pAppData = this;
    vfs_.xOpen = &Open;
    if (sqlite3_vfs_register(&vfs_, 0) != SQLITE_OK) std::abort();
  }
  ~OutboxFaultVfs() { sqlite3_vfs_unregister(&vfs_); }
  OutboxFaultVfs(const OutboxFaultVfs&) = delete;
  OutboxFaultVfs& operator=(const OutboxFaultVfs&) = delete;

  const std::string& name() const { return name_; }
  bool disk_full = false;
  int failed_writes = 0;

 private:
  // Our file wraps the real one, which lives in the memory right after it.
  struct File {
    sqlite3_file base;
    OutboxFaultVfs* owner;
    sqlite3_file* real;
  };

  static sqlite3_file* Real(sqlite3_file* file) { return reinterpret_cast<File*>(file)->real; }

  static int Open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* file, int flags,
                  int* out_flags) {
    auto* self = static_cast<OutboxFaultVfs*>(vfs->pAppData);
    auto* f = reinterpret_cast<File*>(file);
    f->base.pMethods = nullptr;
    f->owner = self;
    f->real = reinterpret_cast<sqlite3_file*>(f + 1);
    const int rc = self->real_->xOpen(self->real_, name, f->real, flags, out_flags);
    if (f->real->pMethods != nullptr) {
      self->methods_ = *f->real->pMethods;
      self->methods_.xClose = &Close;
      self->methods_.xRead = &Read;
      self->methods_.xWrite = &Write;
      self->methods_.xTruncate = &Truncate;
      self->methods_.xSync = &Sync;
      self->methods_.xFileSize = &FileSize;
      self->methods_.xLock = &Lock;
      self->methods_.xUnlock = &Unlock;
      self->methods_.xCheckReservedLock = &CheckReservedLock;
      self->methods_.xFileControl = &FileControl;
      self->methods_.xSectorSize = &SectorSize;
      self->methods_.xDeviceCharacteristics = &DeviceCharacteristics;
      self->methods_.xShmMap = &ShmMap;
      self->methods_.xShmLock = &ShmLock;
      self->methods_.xShmBarrier = &ShmBarrier;
      self->methods_.xShmUnmap = &ShmUnmap;
      self->methods_.xFetch = &Fetch;
      self->methods_.xUnfetch = &Unfetch;
      f->base.pMethods = &self->methods_;
    }
    return rc;
  }
  static int Close(sqlite3_file* file) {
    sqlite3_file* real = Real(file);
    return real->pMethods->xClose(real);
  }
  static int Read(sqlite3_file* file, void* buffer, int amount, sqlite3_int64 offset) {
    sqlite3_file* real = Real(file);
    return real->pMethods->xRead(real, buffer, amount, offset);
  }
  static int Write(sqlite3_file* file, const void* buffer, int amount, sqlite3_int64 offset) {
    OutboxFaultVfs* owner = reinterpret_cast<File*>(file)->owner;
    if (owner->disk_full) {
      ++owner->failed_writes;
      return SQLITE_FULL;
    }
    sqlite3_file* real = Real(file);
    return real->pMethods->xWrite(real, buffer, amount, offset);
  }
  static int Truncate(sqlite3_file* file, sqlite3_int64 size) {
    sqlite3_file* real = Real(file);
    return real->pMethods->xTruncate(real, size);
  }
  static int Sync(sqlite3_file* file, int flags) {
    sqlite3_file* real = Real(file);
    return real->pMethods->xSync(real, flags);
  }
  static int FileSize(sqlite3_file* file, sqlite3_int64* size) {
    sqlite3_file* real = Real(file);
    return real->pMethods->xFileSize(real, size);
  }
  static int Lock(sqlite3_file* file, int level) {
    sqlite3_file* real = Real(file);
    return real->pMethods->xLock(real, level);
  }
  static int Unlock(sqlite3_file* file, int level) {
    sqlite3_file* real = Real(file);
    return real->pMethods->xUnlock(real, level);
  }
  static int CheckReservedLock(sqlite3_file* file, int* out) {
    sqlite3_file* real = Real(file);
    return real->pMethods->xCheckReservedLock(real, out);
  }
  static int FileControl(sqlite3_file* file, int op, void* arg) {
    sqlite3_file* real = Real(file);
    return real->pMethods->xFileControl(real, op, arg);
  }
  static int SectorSize(sqlite3_file* file) {
    sqlite3_file* real = Real(file);
    return real->pMethods->xSectorSize(real);
  }
  static int DeviceCharacteristics(sqlite3_file* file) {
    sqlite3_file* real = Real(file);
    return real->pMethods->xDeviceCharacteristics(real);
  }
  static int ShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
    sqlite3_file* real = Real(file);
    return real->pMethods->xShmMap(real, region, size, extend, out);
  }
  static int ShmLock(sqlite3_file* file, int offset, int n, int flags) {
    sqlite3_file* real = Real(file);
    return real->pMethods->xShmLock(real, offset, n, flags);
  }
  static void ShmBarrier(sqlite3_file* file) {
    sqlite3_file* real = Real(file);
    real->pMethods->xShmBarrier(real);
  }
  static int ShmUnmap(sqlite3_file* file, int delete_flag) {
    sqlite3_file* real = Real(file);
    return real->pMethods->xShmUnmap(real, delete_flag);
  }
  static int Fetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
    sqlite3_file* real = Real(file);
    return real->pMethods->xFetch(real, offset, amount, out);
  }
  static int Unfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
    sqlite3_file* real = Real(file);
    return real->pMethods->xUnfetch(real, offset, page);
  }

  std::string name_;
  sqlite3_vfs* real_ = nullptr;
  sqlite3_vfs vfs_{};
  sqlite3_io_methods methods_{};
};

}  // namespace iothub::testing
