#include "emulator/plugin_options.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/atomic_file.h"

namespace iothub::emulator {
namespace {

Result<long long> ParseInt(const std::map<std::string, std::string>& raw, const std::string& key,
                           long long fallback, long long min, long long max) {
  auto it = raw.find(key);
  if (it == raw.end()) return fallback;
  long long value = 0;
  const std::string& s = it->second;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || ptr != s.data() + s.size() || value < min || value > max) {
    return MakeError("InvalidOption", "plugin option " + key + " must be an integer in [" +
                                          std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return value;
}

}  // namespace

Result<std::vector<SharedAccessPolicy>> LoadOrCreatePolicies(const std::string& state_dir) {
  const std::string path = state_dir + "/policies.json";
  std::ifstream in(path);
  if (!in) {
    auto policies = DefaultPolicies();
    Json j = Json::array();
    for (const auto& p : policies) {
      j.push_back({{"name", p.name},
                   {"primaryKey", p.primary_key},
                   {"secondaryKey", p.secondary_key},
                   {"rights", p.rights}});
    }
    Status written =
        WriteFileAtomically(path, Json{{"version", 1}, {"policies", j}}.dump(2) + "\n", 0600);
    if (!written) return written.error();
    return policies;
  }
  std::stringstream text;
  text << in.rdbuf();
  const Json j = Json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.contains("policies") || !j["policies"].is_array()) {
    return MakeError("StateDir",
                     path + " is not a valid policies file (delete it to regenerate keys)");
  }
  std::vector<SharedAccessPolicy> out;
  for (const Json& p : j["policies"]) {
    const bool valid = p.is_object() && p.contains("name") && p["name"].is_string() &&
                       p.contains("primaryKey") && p["primaryKey"].is_string() &&
                       p.value("secondaryKey", Json("")).is_string() &&
                       p.value("rights", Json(0)).is_number_unsigned();
    if (!valid) {
      return MakeError("StateDir", path +
                                       " has a malformed policy (name, primaryKey, "
                                       "secondaryKey must be strings, rights a number)");
    }
    out.push_back({p["name"].get<std::string>(), p["primaryKey"].get<std::string>(),
                   p.value("secondaryKey", ""), p.value("rights", 0U)});
  }
  return out;
}

Result<PluginOptions> ParsePluginOptions(const std::map<std::string, std::string>& raw) {
  PluginOptions o;
  auto get = [&](const char* key) -> std::string {
    auto it = raw.find(key);
    return it == raw.end() ? std::string() : it->second;
  };
  o.state_dir = get("state_dir");
  if (o.state_dir.empty()) return MakeError("InvalidOption", "plugin option state_dir is required");
  if (!get("host_name").empty()) o.host_name = get("host_name");
  if (!get("bind_address").empty()) o.bind_address = get("bind_address");
  o.cert_file = get("cert_file");
  o.key_file = get("key_file");
  o.internal_secret = get("internal_secret");
  o.internal_socket = get("internal_socket");
  if (o.cert_file.empty() || o.key_file.empty() || o.internal_secret.empty() ||
      o.internal_socket.empty()) {
    return MakeError("InvalidOption",
                     "plugin options cert_file, key_file, internal_secret and internal_socket are "
                     "required");
  }
  if (!get("tier").empty()) {
    auto tier = ParseTier(get("tier"));
    if (!tier) return tier.error();
    o.tier = *tier;
  }
  if (!get("quota_twin_answer").empty()) {
    auto answer = ParseQuotaTwinAnswer(get("quota_twin_answer"));
    if (!answer) return answer.error();
    o.quota_twin_answer = *answer;
  }
  auto units = ParseInt(raw, "units", 1, 1, 200);
  auto https = ParseInt(raw, "https_port", 0, 0, 65535);
  auto fd = ParseInt(raw, "control_fd", -1, -1, 65535);
  auto capacity = ParseInt(raw, "message_capacity", 100'000, 1, 100'000'000);
  auto offset = ParseInt(raw, "clock_offset_ms", 0, 0, 1LL << 50);
  auto quota_day = ParseInt(raw, "quota_day", -1, -1, 1LL << 40);
  auto quota_used = ParseInt(raw, "quota_used", 0, 0, 1LL << 50);
  for (const auto* r : {&units, &https, &fd, &capacity, &offset, &quota_day, &quota_used}) {
    if (!*r) return r->error();
  }
  o.units = static_cast<int>(*units);
  if (Status units_ok = CheckUnits(o.tier, o.units); !units_ok) return units_ok.error();
  o.https_port = static_cast<int>(*https);
  o.control_fd = static_cast<int>(*fd);
  o.message_capacity = static_cast<std::size_t>(*capacity);
  o.clock_offset_ms = *offset;
  o.quota_day = *quota_day;
  o.quota_used = *quota_used;
  auto policies = LoadOrCreatePolicies(o.state_dir);
  if (!policies) return policies.error();
  o.policies = std::move(policies).value();
  return o;
}

}  // namespace iothub::emulator
