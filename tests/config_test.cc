// The configuration contract (docs/configuration.md): defaults, every key read, and a clear
// error for each kind of bad value, naming the file and line (or flag), the key and what was
// expected, without ever quoting a secret.
#include "connector/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

namespace iothub::connector {
namespace {

constexpr char kServiceCs[] =
    "HostName=myhub.azure-devices.net;SharedAccessKeyName=iothubowner;"
    "SharedAccessKey=c2VjcmV0LWtleS1zZWNyZXQta2V5LXNlY3JldA==";
constexpr char kDeviceCs[] =
    "HostName=myhub.azure-devices.net;DeviceId=openhab;"
    "SharedAccessKey=ZGV2aWNlLWtleS1kZXZpY2Uta2V5LWRldmljZQ==";

std::string WithHub(const std::string& rest = "") {
  return std::string("[iothub]\nconnection_string = \"") + kServiceCs + "\"\n" + rest;
}

// The error text of parsing `toml` (empty when it parses).
std::string ErrorOf(const std::string& toml,
                    const std::vector<std::pair<std::string, std::string>>& flags = {}) {
  auto parsed = ParseConfig(toml, "home.toml", flags);
  return parsed ? "" : parsed.error().message;
}

TEST(ConfigTest, DefaultsNeedOnlyAConnectionString) {
  auto parsed = ParseConfig(WithHub(), "home.toml");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const Config& c = *parsed;
  EXPECT_EQ(c.openhab.url, "http://127.0.0.1:8080");
  EXPECT_EQ(c.openhab.items, std::vector<std::string>{"*"});
  EXPECT_TRUE(c.openhab.exclude.empty());
  EXPECT_EQ(c.iothub.mode, Mode::kPublish);
  EXPECT_EQ(c.iothub.layout, Layout::kGateway);
  EXPECT_EQ(c.iothub.gateway_device_id, "openhab");
  EXPECT_EQ(c.quota.tier, azure::Tier::kFree);
  EXPECT_EQ(c.quota.units, 1);
  EXPECT_EQ(c.DailyBudget(), 8000);
  EXPECT_DOUBLE_EQ(c.quota.reserve, 0.1);
  EXPECT_EQ(c.quota.window_seconds, 86400);
  EXPECT_EQ(c.store.dir, "/var/lib/iothub-connector");
  EXPECT_EQ(c.store.max_bytes, 64LL << 20);
  EXPECT_EQ(c.metrics.listen, "127.0.0.1:9464");
  EXPECT_TRUE(c.commands.allow.empty()) << "replicated items that are not read-only";
  EXPECT_TRUE(c.commands.deny.empty());
  EXPECT_DOUBLE_EQ(c.commands.item_rate, 1.0);
  EXPECT_EQ(c.commands.item_burst, 5);
  EXPECT_DOUBLE_EQ(c.commands.rate, 10.0);
  EXPECT_EQ(c.commands.burst, 20);
  EXPECT_EQ(c.commands.timeout_ms, 5'000);
  EXPECT_EQ(c.commands.max_wait_ms, 60'000);
  EXPECT_TRUE(c.items.empty());
}

TEST(ConfigTest, ReadsEveryKeyOfTheContract) {
  const std::string toml = R"(
[openhab]
url = "https://openhab.local:8443"
token = "oh.connector.abc"
items = ["@gLights", "Sensor_*", "#Temperature"]
exclude = ["Sensor_Debug"]

[iothub]
connection_string = ")" + std::string(kDeviceCs) +
                           R"("
mode = "publishcommand"
layout = "gateway"
gateway_device_id = "home-1"
mqtt_endpoint = "localhost:8883"
https_endpoint = "[::1]:8443"
ca_file = "/etc/ssl/hub-ca.pem"
properties = { Table = "Telemetry", Format = "json" }

[quota]
tier = "S1"
units = 2
daily_messages = 100000
reserve = 0.2
window_seconds = 3600

[store]
dir = "/tmp/outbox"
max_bytes = "16MiB"

[metrics]
listen = ""

[commands]
allow = ["@gLights", "Heating_Setpoint"]
deny = ["FrontDoor_Lock"]
item_rate = 0.5
item_burst = 3
rate = 4
burst = 8
timeout = "3s"
max_wait = 120

[[item]]
match = "*_Power"
priority = "low"
deadband = "5 %"
min_interval = "10s"
heartbeat = "1h"
send = "telemetry"

[[item]]
match = "Living_Temperature"
deadband = "0.2 °C"
send = "both"
)";
  auto parsed = ParseConfig(toml, "home.toml");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const Config& c = *parsed;
  EXPECT_EQ(c.openhab.url, "https://openhab.local:8443");
  EXPECT_EQ(c.openhab.token, "oh.connector.abc");
  EXPECT_EQ(c.openhab.items, (std::vector<std::string>{"@gLights", "Sensor_*", "#Temperature"}));
  EXPECT_EQ(c.openhab.exclude, std::vector<std::string>{"Sensor_Debug"});
  EXPECT_EQ(c.iothub.connection_string, kDeviceCs);
  EXPECT_EQ(c.iothub.mode, Mode::kPublishCommand) << "the old add-on's spelling";
  EXPECT_EQ(c.iothub.gateway_device_id, "home-1");
  EXPECT_EQ(c.iothub.mqtt_endpoint, "localhost:8883");
  EXPECT_EQ(c.iothub.https_endpoint, "[::1]:8443");
  EXPECT_EQ(c.iothub.ca_file, "/etc/ssl/hub-ca.pem");
  EXPECT_EQ(c.iothub.properties,
            (std::map<std::string, std::string>{{"Format", "json"}, {"Table", "Telemetry"}}));
  EXPECT_EQ(c.quota.tier, azure::Tier::kS1);
  EXPECT_EQ(c.quota.units, 2);
  EXPECT_EQ(c.DailyBudget(), 100000);
  EXPECT_DOUBLE_EQ(c.quota.reserve, 0.2);
  EXPECT_EQ(c.quota.window_seconds, 3600);
  EXPECT_EQ(c.store.dir, "/tmp/outbox");
  EXPECT_EQ(c.store.max_bytes, 16LL << 20);
  EXPECT_EQ(c.metrics.listen, "");
  EXPECT_EQ(c.commands.allow, (std::vector<std::string>{"@gLights", "Heating_Setpoint"}));
  EXPECT_EQ(c.commands.deny, std::vector<std::string>{"FrontDoor_Lock"});
  EXPECT_DOUBLE_EQ(c.commands.item_rate, 0.5);
  EXPECT_EQ(c.commands.item_burst, 3);
  EXPECT_DOUBLE_EQ(c.commands.rate, 4.0);
  EXPECT_EQ(c.commands.burst, 8);
  EXPECT_EQ(c.commands.timeout_ms, 3'000);
  EXPECT_EQ(c.commands.max_wait_ms, 120'000) << "a plain number is seconds";
  ASSERT_EQ(c.items.size(), 2u);
  EXPECT_EQ(c.items[0].match, "*_Power");
  EXPECT_EQ(c.items[0].priority, Priority::kLow);
  ASSERT_TRUE(c.items[0].deadband.has_value());
  EXPECT_TRUE(c.items[0].deadband->percent);
  EXPECT_DOUBLE_EQ(c.items[0].deadband->amount, 5);
  EXPECT_EQ(c.items[0].min_interval_ms, 10'000);
  EXPECT_EQ(c.items[0].heartbeat_ms, 3'600'000);
  EXPECT_EQ(c.items[0].send, SendAs::kTelemetry);
  EXPECT_FALSE(c.items[1].priority.has_value()) << "unset: left to earlier rules";
  EXPECT_EQ(c.items[1].deadband->unit, "°C");
  EXPECT_DOUBLE_EQ(c.items[1].deadband->amount, 0.2);
  EXPECT_EQ(c.items[1].send, SendAs::kBoth);
}

TEST(ConfigTest, UnknownKeysAndTablesAreErrorsWithASuggestion) {
  const std::string error =
      ErrorOf(WithHub("mdoe = \"publish\"\n[openhab]\ntokn = \"x\"\n"
                      "[quotas]\ntier = \"S1\"\n"));
  EXPECT_NE(error.find("home.toml:3: [iothub] mdoe: unknown key (did you mean 'mode'?)"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("home.toml:5: [openhab] tokn: unknown key (did you mean 'token'?)"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("[quotas]: unknown table (did you mean 'quota'?)"), std::string::npos)
      << error;
  EXPECT_NE(ErrorOf(WithHub("[[item]]\nmatch = \"x\"\nheartbeats = \"1h\"\n"))
                .find("[item] heartbeats: unknown key (did you mean 'heartbeat'?)"),
            std::string::npos);
}

TEST(ConfigTest, EachKindOfBadValueGetsAClearError) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[openhab]\nurl = \"ftp://x\"\n", "[openhab] url: the openHAB URL must look like"},
      {"[openhab]\nurl = 8080\n", "[openhab] url: expected a string"},
      {"[openhab]\nitems = \"*\"\n", "[openhab] items: expected an array of strings"},
      {"[openhab]\nitems = [\"Bad Name\"]\n", "'Bad Name' is not an item pattern"},
      {"[openhab]\nexclude = [\"@\"]\n", "[openhab] exclude: '@' is not an item pattern"},
      {"mode = \"command\"\n",
       "[iothub] mode: expected one of \"publish\", \"publish-command\", \"publishcommand\", got "
       "\"command\""},
      {"layout = \"per-item\"\n", "only \"gateway\" is supported yet"},
      {"gateway_device_id = \"has space\"\n", "[iothub] gateway_device_id: expected a device id"},
      {"mqtt_endpoint = \"localhost\"\n", "[iothub] mqtt_endpoint: expected host:port"},
      {"https_endpoint = \"h:99999\"\n", "[iothub] https_endpoint: expected host:port"},
      {"properties = { \"$.mid\" = \"x\" }\n", "[iothub] properties.$.mid"},
      {"properties = { Table = 1 }\n", "[iothub] properties.Table: expected a string value"},
      {"[quota]\ntier = \"P1\"\n", "[quota] tier: unknown tier 'P1'"},
      {"[quota]\nunits = 2\n", "[quota] units: tier free allows exactly 1 unit, not 2"},
      {"[quota]\ntier = \"S3\"\nunits = 11\n", "tier S3 allows 1 to 10 units, not 11"},
      {"[quota]\nunits = \"1\"\n", "[quota] units: expected an integer from 1 to 200"},
      {"[quota]\ndaily_messages = 9000\n",
       "[quota] daily_messages: expected 0 (the whole quota) or a share of the tier's 8000"},
      {"[quota]\nreserve = 1.0\n", "[quota] reserve: expected a number from 0 up to"},
      {"[quota]\nwindow_seconds = 7\n", "[quota] window_seconds: expected an integer from 10"},
      {"[quota]\nwindow_seconds = 7000\n", "must divide a day (86400)"},
      {"[store]\ndir = \"\"\n", "[store] dir: must not be empty"},
      {"[store]\nmax_bytes = \"lots\"\n", "[store] max_bytes: expected a size of at least 1MiB"},
      {"[store]\nmax_bytes = \"10KiB\"\n", "[store] max_bytes: expected a size of at least 1MiB"},
      {"[metrics]\nlisten = \"9464\"\n", "[metrics] listen: expected host:port"},
      {"[[item]]\npriority = \"high\"\n", "[[item]] match: every [[item]] needs a match"},
      {"[[item]]\nmatch = \"x\"\npriority = \"urgent\"\n", "[item] priority: expected one of"},
      {"[[item]]\nmatch = \"x\"\nsend = \"email\"\n", "[item] send: expected one of"},
      {"[[item]]\nmatch = \"x\"\ndeadband = \"a lot\"\n", "[[item]] deadband: expected a"},
      {"[[item]]\nmatch = \"x\"\nmin_interval = \"soon\"\n", "[[item]] min_interval: expected a"},
      {"[[item]]\nmatch = \"x\"\nheartbeat = \"5 parsecs\"\n", "[[item]] heartbeat: expected"},
      {"[item]\nmatch = \"x\"\n", "item: expected [[item]] tables"},
      {"[commands]\nallow = [\"Front Door\"]\n", "[commands] allow: 'Front Door' is not an"},
      {"[commands]\ndeny = \"FrontDoor_Lock\"\n", "[commands] deny: expected an array"},
      {"[commands]\nitem_rate = 0\n", "[commands] item_rate: expected a number from 0.001"},
      {"[commands]\nitem_burst = 0\n", "[commands] item_burst: expected an integer from 1"},
      {"[commands]\nrate = \"fast\"\n", "[commands] rate: expected a number"},
      {"[commands]\nburst = 100000\n", "[commands] burst: expected an integer from 1 to 10000"},
      {"[commands]\ntimeout = \"10ms\"\n", "[commands] timeout: expected a duration of at"},
      {"[commands]\nmax_wait = \"10m\"\n", "[commands] max_wait: at most 300s"},
      {"[commands]\nallowed = []\n", "[commands] allowed: unknown key (did you mean 'allow'?)"},
  };
  for (const auto& [toml, expected] : cases) {
    // Sections other than [iothub] come after it; [iothub] keys go into it.
    const std::string text = toml.starts_with("[") ? WithHub() + toml : WithHub(toml);
    const std::string error = ErrorOf(text);
    EXPECT_NE(error.find(expected), std::string::npos)
        << "for:\n"
        << toml << "got: " << (error.empty() ? "(no error)" : error);
    EXPECT_EQ(error.rfind("home.toml", 0), 0u) << "names the file: " << error;
  }
}

TEST(ConfigTest, ErrorsNameTheLineAndListEveryProblem) {
  const std::string error = ErrorOf(WithHub("mode = \"x\"\n[quota]\ntier = 5\nunits = 0\n"));
  EXPECT_NE(error.find("home.toml:3: [iothub] mode"), std::string::npos) << error;
  EXPECT_NE(error.find("home.toml:5: [quota] tier"), std::string::npos) << error;
  EXPECT_NE(error.find("home.toml:6: [quota] units"), std::string::npos) << error;
  EXPECT_EQ(std::count(error.begin(), error.end(), '\n'), 2) << "three problems, one a line";
  const std::string syntax = ErrorOf("[openhab\nurl = 1\n");
  EXPECT_NE(syntax.find("home.toml:1:"), std::string::npos) << syntax;
  EXPECT_NE(syntax.find("not valid TOML"), std::string::npos) << syntax;
}

TEST(ConfigTest, ConnectionStringsAreCheckedButNeverQuoted) {
  EXPECT_NE(ErrorOf("").find("[iothub] connection_string: required"), std::string::npos);
  const std::string device_ok =
      ErrorOf(std::string("[iothub]\nconnection_string = \"") + kDeviceCs + "\"\n");
  EXPECT_EQ(device_ok, "");
  const std::string secret = "SharedAccessKey=bm90LWEtcmVhbC1rZXk=";
  const std::string bad_device =
      ErrorOf("[iothub]\nconnection_string = \"HostName=h;DeviceId=d\"\n");
  EXPECT_NE(bad_device.find("not a valid device connection string"), std::string::npos)
      << bad_device;
  const std::string no_host =
      ErrorOf("[iothub]\nconnection_string = \"SharedAccessKeyName=x;" + secret + "\"\n");
  EXPECT_NE(no_host.find("not a valid connection string"), std::string::npos) << no_host;
  EXPECT_EQ(no_host.find("bm90LWEtcmVhbC1rZXk"), std::string::npos)
      << "the key leaked: " << no_host;
}

TEST(ConfigTest, FlagsOverrideTheFileAndNameThemselvesInErrors) {
  auto parsed = ParseConfig(WithHub("[quota]\ntier = \"S1\"\n"), "home.toml",
                            {{"openhab.url", "http://10.0.0.5:8080"},
                             {"quota.units", "3"},
                             {"iothub.mode", "publish-command"},
                             {"openhab.items", R"(["@gLights"])"}});
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->openhab.url, "http://10.0.0.5:8080") << "a bare word is a string";
  EXPECT_EQ(parsed->quota.units, 3);
  EXPECT_EQ(parsed->iothub.mode, Mode::kPublishCommand);
  EXPECT_EQ(parsed->openhab.items, std::vector<std::string>{"@gLights"});
  // A quick start with no file at all.
  auto bare = ParseConfig(
      "", "(no config file)",
      {{"openhab.url", "http://127.0.0.1:8080"}, {"iothub.connection_string", kServiceCs}});
  ASSERT_TRUE(bare.ok()) << bare.error().message;
  const std::string error = ErrorOf(WithHub(), {{"quota.units", "many"}});
  EXPECT_NE(error.find("--quota.units: [quota] units: expected an integer"), std::string::npos)
      << error;
  EXPECT_NE(ErrorOf(WithHub(), {{"quotas.units", "1"}})
                .find("unknown section 'quotas' (did you mean 'quota'?)"),
            std::string::npos);
  EXPECT_NE(ErrorOf(WithHub(), {{"quota.unit", "1"}}).find("unknown key (did you mean 'units'?)"),
            std::string::npos);
}

class TempFile {
 public:
  TempFile(const std::string& content, mode_t mode) {
    path_ = (std::filesystem::temp_directory_path() /
             ("config_test_" + std::to_string(::getpid()) + ".toml"))
                .string();
    std::ofstream(path_) << content;
    ::chmod(path_.c_str(), mode);
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ConfigTest, SecretsFromTheEnvironmentAndAWarningForAReadableFile) {
  TempFile file("[openhab]\ntoken = \"from-file\"\n", 0644);
  std::map<std::string, std::string> env = {{"IOTHUB_CONNECTION_STRING", kDeviceCs},
                                            {"OPENHAB_TOKEN", "oh.from.env"}};
  ConfigSources sources;
  sources.file = file.path();
  sources.getenv = [&](const char* name) -> std::optional<std::string> {
    const auto it = env.find(name);
    return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  auto loaded = LoadConfig(sources);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->config.iothub.connection_string, kDeviceCs);
  EXPECT_EQ(loaded->config.openhab.token, "oh.from.env") << "the environment wins over the file";
  ASSERT_EQ(loaded->warnings.size(), 1u);
  EXPECT_NE(loaded->warnings[0].find("readable by other users (mode 0644)"), std::string::npos)
      << loaded->warnings[0];
  // A flag wins over the environment.
  sources.flags = {{"openhab.token", "oh.from.flag"}};
  EXPECT_EQ(LoadConfig(sources)->config.openhab.token, "oh.from.flag");
  ::chmod(file.path().c_str(), 0600);
  EXPECT_TRUE(LoadConfig(sources)->warnings.empty());
  sources.file = file.path() + ".missing";
  auto missing = LoadConfig(sources);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("cannot read the config file"), std::string::npos);
}

TEST(ConfigTest, DurationsSizesAndDeadbands) {
  EXPECT_EQ(ParseDurationMs("500ms"), 500);
  EXPECT_EQ(ParseDurationMs("10s"), 10'000);
  EXPECT_EQ(ParseDurationMs("1.5s"), 1'500);
  EXPECT_EQ(ParseDurationMs("2m"), 120'000);
  EXPECT_EQ(ParseDurationMs("1h"), 3'600'000);
  EXPECT_EQ(ParseDurationMs("1d"), 86'400'000);
  EXPECT_EQ(ParseDurationMs("30"), 30'000) << "a plain number is seconds";
  EXPECT_FALSE(ParseDurationMs("").has_value());
  EXPECT_FALSE(ParseDurationMs("-1s").has_value());
  EXPECT_FALSE(ParseDurationMs("1 fortnight").has_value());
  EXPECT_EQ(ParseByteSize("64MiB"), 64LL << 20);
  EXPECT_EQ(ParseByteSize("1GiB"), 1LL << 30);
  EXPECT_EQ(ParseByteSize("512 KiB"), 512LL << 10);
  EXPECT_EQ(ParseByteSize("10MB"), 10'000'000);
  EXPECT_EQ(ParseByteSize("4096"), 4096);
  EXPECT_FALSE(ParseByteSize("big").has_value());
  auto percent = ParseDeadband("5%");
  ASSERT_TRUE(percent.has_value());
  EXPECT_TRUE(percent->percent);
  auto quantity = ParseDeadband("10 W");
  ASSERT_TRUE(quantity.has_value());
  EXPECT_FALSE(quantity->percent);
  EXPECT_EQ(quantity->unit, "W");
  EXPECT_EQ(ParseDeadband("0.5")->unit, "");
  EXPECT_FALSE(ParseDeadband("lots").has_value());
  EXPECT_FALSE(ParseDeadband("1 m s").has_value());
}

}  // namespace
}  // namespace iothub::connector
