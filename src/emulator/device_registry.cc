#include "emulator/device_registry.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdexcept>

#include "common/crypto.h"
#include "common/json_depth.h"

namespace iothub::emulator {
namespace {

constexpr int kSchemaVersion = 1;

Json SectionToStorage(const TwinSection& s) {
  return {{"values", s.values}, {"version", s.version}, {"updated", s.last_updated_ms}};
}

TwinSection SectionFromStorage(const Json& j) {
  TwinSection s;
  s.values = j.value("values", Json::object());
  s.version = j.value("version", std::int64_t{1});
  s.last_updated_ms = j.value("updated", std::int64_t{0});
  return s;
}

}  // namespace

std::string Device::Etag() const { return Base64Encode(std::to_string(etag_counter)); }

std::string Device::TwinEtag() const {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i)
    bytes[7 - i] = static_cast<char>((twin_etag_counter >> (8 * i)) & 0xFF);
  return Base64Encode(bytes);
}

bool IsValidDeviceId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  static constexpr std::string_view kExtra = "-.%_*?!(),:=@$'";
  for (char c : id) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && kExtra.find(c) == std::string_view::npos) return false;
  }
  return true;
}

Json DeviceToStorage(const Device& d) {
  return {{"id", d.id},
          {"generationId", d.generation_id},
          {"etag", d.etag_counter},
          {"enabled", d.enabled},
          {"statusReason", d.status_reason},
          {"authType", d.auth_type},
          {"primaryKey", d.primary_key},
          {"secondaryKey", d.secondary_key},
          {"primaryThumbprint", d.primary_thumbprint},
          {"secondaryThumbprint", d.secondary_thumbprint},
          {"iotEdge", d.iot_edge},
          {"statusUpdated", d.status_updated_ms},
          {"lastActivity", d.last_activity_ms},
          {"twinEtag", d.twin_etag_counter},
          {"twinVersion", d.twin_version},
          {"modelId", d.model_id},
          {"tags", SectionToStorage(d.tags)},
          {"desired", SectionToStorage(d.desired)},
          {"reported", SectionToStorage(d.reported)},
          {"subscriptions", d.subscriptions}};
}

Device DeviceFromStorage(const Json& j) {
  Device d;
  d.id = j.at("id").get<std::string>();
  d.generation_id = j.value("generationId", "");
  d.etag_counter = j.value("etag", std::int64_t{0});
  d.enabled = j.value("enabled", true);
  d.status_reason = j.value("statusReason", "");
  d.auth_type = j.value("authType", "sas");
  d.primary_key = j.value("primaryKey", "");
  d.secondary_key = j.value("secondaryKey", "");
  d.primary_thumbprint = j.value("primaryThumbprint", "");
  d.secondary_thumbprint = j.value("secondaryThumbprint", "");
  d.iot_edge = j.value("iotEdge", false);
  d.status_updated_ms = j.value("statusUpdated", std::int64_t{0});
  d.last_activity_ms = j.value("lastActivity", std::int64_t{0});
  d.twin_etag_counter = j.value("twinEtag", std::int64_t{1});
  d.twin_version = j.value("twinVersion", std::int64_t{1});
  d.model_id = j.value("modelId", "");
  d.tags = SectionFromStorage(j.value("tags", Json::object()));
  d.desired = SectionFromStorage(j.value("desired", Json::object()));
  d.reported = SectionFromStorage(j.value("reported", Json::object()));
  d.subscriptions = j.value("subscriptions", 0U);
  return d;
}

Result<std::unique_ptr<DeviceRegistry>> DeviceRegistry::Open(const std::string& path) {
  sqlite3* db = nullptr;
  // The database holds every device key: readable by its owner only (SQLite gives the -wal
  // and -shm files the same mode).
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::fchmod(fd, 0600);
    ::close(fd);
  }
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    std::string message = "cannot open registry database " + path + ": " +
                          (db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return MakeError("StateDir", message);
  }
  std::unique_ptr<DeviceRegistry> registry(new DeviceRegistry(db));
  // WAL + NORMAL: a committed change survives a crash of the emulator; a power cut may lose
  // the last transactions, which is acceptable for a test hub.
  const std::string schema =
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
      "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "CREATE TABLE IF NOT EXISTS devices(id TEXT PRIMARY KEY, record TEXT NOT NULL);"
      "INSERT OR IGNORE INTO meta VALUES('schema_version', '" +
      std::to_string(kSchemaVersion) + "');";
  char* err = nullptr;
  if (sqlite3_exec(db, schema.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string message = "cannot initialise registry database " + path + ": " + (err ? err : "");
    sqlite3_free(err);
    return MakeError("StateDir", message);
  }
  Status loaded = registry->Load();
  if (!loaded) return loaded.error();
  return registry;
}

DeviceRegistry::~DeviceRegistry() { sqlite3_close(db_); }

Status DeviceRegistry::Load() {
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db_, "SELECT record FROM devices", -1, &stmt, nullptr);
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    Json j = Json::parse(text ? text : "", nullptr, false);
    Device d;
    try {
      if (j.is_discarded() || !j.contains("id")) throw std::invalid_argument("not a record");
      d = DeviceFromStorage(j);  // throws on a member of the wrong type
    } catch (const std::exception& e) {
      sqlite3_finalize(stmt);
      return MakeError(
          "StateDir",
          std::string("registry database holds a corrupt device record (") + e.what() + ")");
    }
    devices_[d.id] = std::move(d);
  }
  sqlite3_finalize(stmt);
  return Ok{};
}

Device* DeviceRegistry::Find(const std::string& id) {
  auto it = devices_.find(id);
  return it == devices_.end() ? nullptr : &it->second;
}

Status DeviceRegistry::Put(const Device& device) {
  if (Status written = Write(device); !written) return written;
  devices_[device.id] = device;
  return Ok{};
}

Status DeviceRegistry::Write(const Device& d) {
  // DumpJson: a stray invalid UTF-8 byte must not make the record unsavable.
  const std::string record = DumpJson(DeviceToStorage(d));
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, "INSERT OR REPLACE INTO devices(id, record) VALUES(?, ?)", -1, &stmt,
                         nullptr) != SQLITE_OK) {
    return MakeError("StateDir", std::string("cannot save device: ") + sqlite3_errmsg(db_));
  }
  sqlite3_bind_text(stmt, 1, d.id.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt, 2, record.c_str(), -1, SQLITE_TRANSIENT);
  const int rc = sqlite3_step(stmt);
  const std::string why = rc == SQLITE_DONE ? "" : sqlite3_errmsg(db_);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return MakeError("StateDir", "cannot save device: " + why);
  return Ok{};
}

Status DeviceRegistry::Remove(const std::string& id) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, "DELETE FROM devices WHERE id = ?", -1, &stmt, nullptr) !=
      SQLITE_OK) {
    return MakeError("StateDir", std::string("cannot delete device: ") + sqlite3_errmsg(db_));
  }
  sqlite3_bind_text(stmt, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  const int rc = sqlite3_step(stmt);
  const std::string why = rc == SQLITE_DONE ? "" : sqlite3_errmsg(db_);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return MakeError("StateDir", "cannot delete device: " + why);
  devices_.erase(id);
  return Ok{};
}

}  // namespace iothub::emulator
