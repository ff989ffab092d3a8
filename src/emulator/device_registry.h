// The hub's identity registry: devices, their keys, status and twins, persisted in SQLite in
// the state dir (format: docs/emulator-state.md). Not thread-safe; owned by the Hub, which
// runs on the broker's thread.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "emulator/twin.h"

namespace iothub::emulator {

struct Device {
  std::string id;
  std::string generation_id;
  std::int64_t etag_counter = 0;  // device etag is base64 of this number's decimal text
  bool enabled = true;
  std::string status_reason;
  std::string auth_type = "sas";  // sas | selfSigned | certificateAuthority | none
  std::string primary_key;
  std::string secondary_key;
  std::string primary_thumbprint;
  std::string secondary_thumbprint;
  bool iot_edge = false;
  std::int64_t status_updated_ms = 0;
  std::int64_t last_activity_ms = 0;
  std::int64_t twin_etag_counter = 1;
  std::int64_t twin_version = 1;
  std::string model_id;
  TwinSection tags;
  TwinSection desired;
  TwinSection reported;
  unsigned subscriptions = 0;  // emulator::Subscription bits kept for CleanSession=0 sessions

  std::string Etag() const;
  std::string TwinEtag() const;
};

// Device ids: up to 128 characters from [A-Za-z0-9] and -.%_*?!(),:=@$' (the hub's rule).
bool IsValidDeviceId(const std::string& id);

class DeviceRegistry {
 public:
  // Opens (creating if needed) the database at `path`. Errors name the file.
  static Result<std::unique_ptr<DeviceRegistry>> Open(const std::string& path);
  ~DeviceRegistry();
  DeviceRegistry(const DeviceRegistry&) = delete;
  DeviceRegistry& operator=(const DeviceRegistry&) = delete;

  Device* Find(const std::string& id);
  const std::map<std::string, Device>& All() const { return devices_; }
  std::size_t Count() const { return devices_.size(); }

  // Inserts or replaces the device on disk, then in memory: when the write fails, memory
  // keeps what disk has. (Fields changed in place through Find() are kept in memory only,
  // until the next Put.)
  Status Put(const Device& device);
  // Deletes from disk, then from memory; on failure the device stays in both.
  Status Remove(const std::string& id);

 private:
  explicit DeviceRegistry(sqlite3* db) : db_(db) {}
  Status Load();
  Status Write(const Device& device);

  sqlite3* db_;
  std::map<std::string, Device> devices_;
};

// JSON (de)serialization of the whole record, for the database.
Json DeviceToStorage(const Device& device);
Device DeviceFromStorage(const Json& json);

}  // namespace iothub::emulator
