#include "openhab_sim/sim_server.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "common/crypto.h"
#include "common/json_depth.h"
#include "openhab/event.h"

namespace iothub::sim {

namespace {

constexpr std::size_t kMaxCommandLog = 1000;
// One thread per connection: every open event stream holds one.
constexpr std::size_t kServerThreads = 64;
constexpr std::size_t kMaxStreams = 48;
// Request bodies (commands, states, items) are small; anything larger is refused (413).
constexpr std::size_t kMaxBodyBytes = 1 << 20;

void JsonError(httplib::Response& res, int status, const std::string& message) {
  // JSONResponse.createErrorResponse: {"error":{"message":..,"http-code":..}}
  OrderedJson body;
  body["error"]["message"] = message;
  body["error"]["http-code"] = status;
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, OrderedJson::error_handler_t::replace),
                  "application/json");
}

void Reply(httplib::Response& res, const OrderedJson& body) {
  res.status = 200;
  res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

std::vector<std::string> Csv(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string token; std::getline(in, token, ',');) {
    token.erase(0, token.find_first_not_of(' '));
    token.erase(token.find_last_not_of(' ') + 1);
    if (!token.empty()) out.push_back(token);
  }
  return out;
}

// MetadataSelectorMatcher.filterNamespaces: the selector's CSV tokens (or one regular
// expression) as the pattern "(a|b)$", searched in each namespace (so `iothub` selects
// `azureiothub`); ".*" selects all. Run once per request, outside the home's lock.
std::optional<std::set<std::string>> SelectNamespaces(const std::string& selector,
                                                      const std::set<std::string>& namespaces) {
  if (selector == ".*") return std::nullopt;
  std::set<std::string> out;
  std::string alternatives;
  for (const auto& token : Csv(selector)) alternatives += (alternatives.empty() ? "" : "|") + token;
  if (alternatives.empty() || alternatives.size() > 256) return out;
  try {
    const std::regex pattern("(" + alternatives + ")$");
    for (const auto& ns : namespaces) {
      if (std::regex_search(ns, pattern)) out.insert(ns);
    }
  } catch (const std::regex_error&) {
    if (namespaces.contains(selector)) out.insert(selector);
  }
  return out;
}

// A command or state as the request carries it: text/plain, or (openHAB 5.0+) JSON
// {"value":".."}; nullopt for a JSON body that is not such an object.
std::optional<std::string> ValueOf(const httplib::Request& req, const OpenHabVersion& version) {
  if (!version.AtLeast(5, 0) ||
      !req.get_header_value("Content-Type").starts_with("application/json")) {
    return req.body;
  }
  auto body = ParseUntrustedJson(req.body);
  if (!body || !body->is_object() || !body->value("value", Json()).is_string()) {
    return std::nullopt;
  }
  return (*body)["value"].get<std::string>();
}

bool BoolParam(const httplib::Request& req, const char* name, bool fallback) {
  if (!req.has_param(name)) return fallback;
  return req.get_param_value(name) == "true";
}

}  // namespace

SimServer::SimServer(Home home, SimOptions options, NowMs now_ms)
    : options_(std::move(options)),
      now_ms_(std::move(now_ms)),
      alive_interval_s_(options_.alive_interval_s >= 0 ? options_.alive_interval_s
                                                       : options_.version.alive_interval_s()),
      home_(std::move(home)) {
  server_.new_task_queue = [] { return new httplib::ThreadPool(kServerThreads); };
  server_.set_payload_max_length(kMaxBodyBytes);
  Routes();
}

SimServer::~SimServer() { Stop(); }

Result<int> SimServer::Start(int port) {
  const int bound = port == 0 ? server_.bind_to_any_port(options_.bind_host)
                              : (server_.bind_to_port(options_.bind_host, port) ? port : -1);
  if (bound <= 0) {
    return MakeError("listen", fmt::format("cannot listen on {}:{}", options_.bind_host, port));
  }
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  return bound;
}

void SimServer::Stop() {
  streams_.DropAll();
  server_.stop();
  if (thread_.joinable()) thread_.join();
}

void SimServer::Publish(const std::vector<SimEvent>& events) { streams_.Publish(events); }

void SimServer::SendAlive() {
  if (alive_interval_s_ > 0) streams_.PublishAlive(alive_interval_s_);
}

Status SimServer::Update(const std::string& item, const std::string& state) {
  std::lock_guard lock(mutex_);
  auto events = home_.Update(item, state, now_ms_());
  if (!events) return events.error();
  Publish(*events);
  return Ok{};
}

ItemView SimServer::View(const httplib::Request& req, bool recursive_by_default) {
  ItemView view;
  view.base_url = BaseUrl(req);
  std::set<std::string> namespaces;
  {
    std::lock_guard lock(mutex_);
    namespaces = home_.Namespaces();
  }
  // Outside the lock: a hostile pattern slows this request only.
  view.namespaces = SelectNamespaces(
      req.has_param("metadata") ? req.get_param_value("metadata") : ".*", namespaces);
  view.recursive = BoolParam(req, "recursive", recursive_by_default);
  if (req.has_param("fields")) view.fields = Csv(req.get_param_value("fields"));
  return view;
}

std::string SimServer::BaseUrl(const httplib::Request& req) const {
  const std::string host = req.get_header_value("Host");
  return "http://" + (host.empty() ? options_.bind_host : host);
}

bool SimServer::Unavailable(httplib::Response& res) {
  std::lock_guard lock(mutex_);
  if (now_ms_() >= down_until_ms_) return false;
  res.status = 503;
  res.set_content("Service Unavailable: openHAB is starting", "text/plain");
  return true;
}

bool SimServer::Authorize(const httplib::Request& req, httplib::Response& res, Role needed) const {
  // AuthFilter: X-OPENHAB-TOKEN first, then Authorization (Bearer, or Basic whose user name
  // is the token and whose password is empty); a present but unknown credential is a 401
  // "Invalid credentials" even where anonymous access would do.
  const auto role_of = [&](const std::string& token) -> std::optional<Role> {
    if (!options_.admin_token.empty() && token == options_.admin_token) return Role::kAdmin;
    if (!options_.user_token.empty() && token == options_.user_token) return Role::kUser;
    return std::nullopt;
  };
  std::optional<Role> role;
  bool credentials = false;
  if (req.has_header("X-OPENHAB-TOKEN")) {
    credentials = true;
    role = role_of(req.get_header_value("X-OPENHAB-TOKEN"));
  } else if (req.has_header("Authorization")) {
    const std::string header = req.get_header_value("Authorization");
    const auto space = header.find(' ');
    const std::string scheme = header.substr(0, space);
    const std::string value = space == std::string::npos ? "" : header.substr(space + 1);
    if (space != std::string::npos && value.find(' ') == std::string::npos) {
      if (strcasecmp(scheme.c_str(), "Bearer") == 0) {
        credentials = true;
        role = role_of(value);
      } else if (strcasecmp(scheme.c_str(), "Basic") == 0) {
        credentials = true;
        auto decoded = Base64Decode(value);
        std::string user = decoded ? *decoded : std::string();
        // Java's split(":") drops a trailing empty password: "token:" is the token alone.
        while (!user.empty() && user.back() == ':') user.pop_back();
        if (user.find(':') == std::string::npos) role = role_of(user);
      }
    }
  }
  if (credentials && !role) {
    JsonError(res, 401, "Invalid credentials");
    return false;
  }
  if (!credentials && options_.implicit_user_role) role = Role::kUser;
  const bool authenticated = credentials;  // the anonymous user has no principal
  if (needed == Role::kNone) return true;
  if (role && (*role == Role::kAdmin || needed == Role::kUser)) return true;
  if (!authenticated) {
    JsonError(res, 401, "Authentication required");
  } else {
    JsonError(res, 403, "Access denied");
  }
  return false;
}

void SimServer::Routes() {
  server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    ++requests_;
    std::int64_t delay = 0;
    int fail = 0;
    {
      std::lock_guard lock(mutex_);
      if (delay_ms_ > 0 && req.path.starts_with(delay_path_)) delay = delay_ms_;
      if (fail_status_ != 0 && fail_left_ != 0 && req.path.starts_with(fail_path_)) {
        fail = fail_status_;
        if (fail_left_ > 0) --fail_left_;
      }
    }
    // A slow server, on purpose: this thread is the connection's, nothing else waits on it.
    if (delay > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    if (fail != 0) {
      // As openHAB's JAX-RS error mapper answers an internal error. The request's body is
      // not read here: the connection must not carry it into the next request.
      JsonError(res, fail, "simulated failure (POST /sim/fail)");
      res.set_header("Connection", "close");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.path.starts_with("/rest") && Unavailable(res)) {
      res.set_header("Connection", "close");  // the request's body was not read, as above
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  server_.Get("/rest/?", [this](const httplib::Request& req, httplib::Response& res) {
    if (!Authorize(req, res, Role::kNone)) return;
    const std::string base = BaseUrl(req);
    OrderedJson root;
    // RESTConstants.API_VERSION: "4" in the 3.x line, "8" from 4.x.
    root["version"] = options_.version.major >= 4 ? "8" : "4";
    root["locale"] = "en_US";
    root["measurementSystem"] = "SI";
    root["runtimeInfo"] = {{"version", options_.version.ToString()},
                           {"buildString", "Release Build"}};
    root["links"] = OrderedJson::array();
    for (const char* type : {"items", "events", "things", "links"}) {
      root["links"].push_back({{"type", type}, {"url", base + "/rest/" + type}});
    }
    Reply(res, root);
  });

  server_.Get("/rest/items", [this](const httplib::Request& req, httplib::Response& res) {
    if (!Authorize(req, res, Role::kUser)) return;
    const ItemView view = View(req, /*recursive_by_default=*/false);
    const std::vector<std::string> types =
        req.has_param("type") ? Csv(req.get_param_value("type")) : std::vector<std::string>{};
    const std::vector<std::string> tags =
        req.has_param("tags") ? Csv(req.get_param_value("tags")) : std::vector<std::string>{};
    OrderedJson list = OrderedJson::array();
    std::lock_guard lock(mutex_);
    for (const auto& item : home_.items()) {
      if (!types.empty() && std::find(types.begin(), types.end(), item.type) == types.end()) {
        continue;
      }
      if (!tags.empty() && std::none_of(tags.begin(), tags.end(), [&](const auto& tag) {
            return std::find(item.tags.begin(), item.tags.end(), tag) != item.tags.end();
          })) {
        continue;
      }
      list.push_back(home_.ItemJson(item, view));
    }
    Reply(res, list);
  });

  server_.Get(R"(/rest/items/([a-zA-Z_0-9]+))",
              [this](const httplib::Request& req, httplib::Response& res) {
                if (!Authorize(req, res, Role::kUser)) return;
                const ItemView view = View(req, /*recursive_by_default=*/true);
                std::lock_guard lock(mutex_);
                const SimItem* item = home_.Find(req.matches[1].str());
                if (!item)
                  return JsonError(res, 404, "Item " + req.matches[1].str() + " does not exist!");
                Reply(res, home_.ItemJson(*item, view));
              });

  server_.Get(R"(/rest/items/([a-zA-Z_0-9]+)/state)",
              [this](const httplib::Request& req, httplib::Response& res) {
                if (!Authorize(req, res, Role::kUser)) return;
                std::lock_guard lock(mutex_);
                const SimItem* item = home_.Find(req.matches[1].str());
                if (!item)
                  return JsonError(res, 404, "Item " + req.matches[1].str() + " does not exist!");
                res.set_content(item->state, "text/plain");
              });

  server_.Put(R"(/rest/items/([a-zA-Z_0-9]+)/state)",
              [this](const httplib::Request& req, httplib::Response& res) {
                if (!Authorize(req, res, Role::kUser)) return;
                const auto value = ValueOf(req, options_.version);  // JSON from 5.0
                if (!value) return JsonError(res, 400, "State could not be parsed: " + req.body);
                std::lock_guard lock(mutex_);
                auto events = home_.Update(req.matches[1].str(), *value, now_ms_());
                if (!events) {
                  const bool missing = events.error().code == "not_found";
                  return JsonError(res, missing ? 404 : 400, events.error().message);
                }
                Publish(*events);
                res.status = 202;  // Accepted, no body
              });

  server_.Post(R"(/rest/items/([a-zA-Z_0-9]+))",
               [this](const httplib::Request& req, httplib::Response& res) {
                 if (!Authorize(req, res, Role::kUser)) return;
                 const auto value = ValueOf(req, options_.version);  // JSON from 5.0
                 if (!value) {
                   res.status = 400;
                   return;
                 }
                 const std::string& command = *value;
                 std::lock_guard lock(mutex_);
                 auto events = home_.Command(req.matches[1].str(), command, now_ms_());
                 if (!events) {
                   if (events.error().code == "not_found") {
                     return JsonError(res, 404, events.error().message);
                   }
                   res.status = 400;  // sendItemCommandInternal answers a bare 400
                   return;
                 }
                 commands_.push_back({req.matches[1].str(), command, now_ms_()});
                 if (commands_.size() > kMaxCommandLog) commands_.pop_front();
                 Publish(*events);
                 res.status = 200;
                 res.set_content("", "text/plain");
               });

  server_.Get("/rest/things", [this](const httplib::Request& req, httplib::Response& res) {
    if (!Authorize(req, res, Role::kAdmin)) return;
    std::lock_guard lock(mutex_);
    Reply(res, home_.ThingsJson());
  });

  server_.Get(R"(/rest/things/([^/]+))",
              [this](const httplib::Request& req, httplib::Response& res) {
                if (!Authorize(req, res, Role::kAdmin)) return;
                std::lock_guard lock(mutex_);
                for (const auto& thing : home_.ThingsJson()) {
                  if (thing["UID"] == req.matches[1].str()) return Reply(res, thing);
                }
                JsonError(res, 404, "Thing " + req.matches[1].str() + " does not exist!");
              });

  server_.Get("/rest/links", [this](const httplib::Request& req, httplib::Response& res) {
    if (!Authorize(req, res, Role::kAdmin)) return;
    std::lock_guard lock(mutex_);
    OrderedJson list = OrderedJson::array();
    for (const auto& link : home_.links()) {
      OrderedJson entry;
      entry["channelUID"] = link["channelUID"];
      entry["configuration"] =
          OrderedJson::parse(link.value("configuration", Json::object()).dump());
      entry["itemName"] = link["itemName"];
      entry["editable"] = link.value("editable", true);
      list.push_back(std::move(entry));
    }
    Reply(res, list);
  });

  server_.Get("/rest/events", [this](const httplib::Request& req, httplib::Response& res) {
    if (!Authorize(req, res, Role::kUser)) return;
    const std::string topics = req.has_param("topics") ? req.get_param_value("topics") : "";
    auto filter = openhab::TopicFilter::Parse(topics, options_.version.regex_filters()
                                                          ? openhab::FilterSemantics::kRegex
                                                          : openhab::FilterSemantics::kPrefix);
    if (!filter) {
      res.status = 400;  // SseResource.listen: a bare 400
      return;
    }
    if (streams_.stats().open >= kMaxStreams) {
      // Each stream holds a server thread; keep some for everything else.
      return JsonError(res, 503, "too many open event streams");
    }
    auto stream = streams_.Open(std::move(filter).value());
    res.set_header("X-Accel-Buffering", "no");
    res.set_header("Content-Encoding", "identity");
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [stream](std::size_t, httplib::DataSink& sink) {
          const auto chunk = stream->Next(500);
          if (!chunk) {
            sink.done();
            return false;
          }
          return chunk->empty() || sink.write(chunk->data(), chunk->size());
        },
        [stream](bool) { stream->Close(); });
  });

  // Control endpoints (docs/openhab-sim.md#control): no authentication, loopback tooling.
  server_.Post("/sim/streams/drop", [this](const httplib::Request&, httplib::Response& res) {
    streams_.DropAll();
    Reply(res, {{"dropped", true}});
  });
  server_.Post("/sim/streams/stall", [this](const httplib::Request& req, httplib::Response& res) {
    const bool stalled = !req.has_param("stalled") || req.get_param_value("stalled") != "false";
    streams_.SetStalled(stalled);
    Reply(res, {{"stalled", stalled}});
  });
  server_.Post("/sim/restart", [this](const httplib::Request& req, httplib::Response& res) {
    const std::int64_t downtime = std::clamp<std::int64_t>(
        req.has_param("downtime_ms") ? std::atoll(req.get_param_value("downtime_ms").c_str()) : 0,
        0, 3'600'000);
    {
      std::lock_guard lock(mutex_);
      if (!options_.home_path.empty()) {
        auto home = Home::Load(options_.home_path, options_.version);
        if (!home) return JsonError(res, 500, home.error().message);
        home_ = std::move(home).value();
      }
      down_until_ms_ = now_ms_() + downtime;
    }
    streams_.DropAll();
    streams_.SetStalled(false);
    Reply(res, {{"restarted", true}, {"downtime_ms", downtime}});
  });
  server_.Post("/sim/items", [this](const httplib::Request& req, httplib::Response& res) {
    auto body = ParseUntrustedJson(req.body);
    if (!body) return JsonError(res, 400, "the body must be an item as JSON");
    auto item = ParseSimItem(*body, "item");
    if (!item) return JsonError(res, 400, item.error().message);
    std::lock_guard lock(mutex_);
    auto events = home_.Put(std::move(item).value());
    if (!events) return JsonError(res, 400, events.error().message);
    Publish(*events);
    Reply(res, {{"event", events->front().type}});
  });
  server_.Delete(R"(/sim/items/([^/]+))",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   std::lock_guard lock(mutex_);
                   auto events = home_.Remove(req.matches[1].str());
                   if (!events) return JsonError(res, 404, events.error().message);
                   Publish(*events);
                   Reply(res, {{"removed", req.matches[1].str()}});
                 });
  server_.Post(R"(/sim/items/([^/]+)/state)", [this](const httplib::Request& req,
                                                     httplib::Response& res) {
    // A binding's update; `announce=false` changes the state without any event, as a change
    // made while a client's stream is down looks to that client.
    std::lock_guard lock(mutex_);
    auto events = home_.Update(req.matches[1].str(), req.body, now_ms_());
    if (!events) {
      return JsonError(res, events.error().code == "not_found" ? 404 : 400, events.error().message);
    }
    if (!req.has_param("announce") || req.get_param_value("announce") != "false") {
      Publish(*events);
    }
    Reply(res, {{"events", events->size()}});
  });
  server_.Post(R"(/sim/things/([^/]+)/status)", [this](const httplib::Request& req,
                                                       httplib::Response& res) {
    auto body = ParseUntrustedJson(req.body);
    if (!body) return JsonError(res, 400, "the body must be a status as JSON");
    std::lock_guard lock(mutex_);
    auto events = home_.SetThingStatus(req.matches[1].str(), *body);
    if (!events) {
      return JsonError(res, events.error().code == "not_found" ? 404 : 400, events.error().message);
    }
    Publish(*events);
    Reply(res, {{"events", events->size()}});
  });
  server_.Post("/sim/delay", [this](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mutex_);
    delay_ms_ = std::clamp<std::int64_t>(
        req.has_param("ms") ? std::atoll(req.get_param_value("ms").c_str()) : 0, 0, 600'000);
    delay_path_ = req.has_param("path") ? req.get_param_value("path") : "/rest";
    Reply(res, {{"delay_ms", delay_ms_}, {"path", delay_path_}});
  });
  server_.Post("/sim/fail", [this](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mutex_);
    const int status =
        req.has_param("status") ? std::atoi(req.get_param_value("status").c_str()) : 500;
    fail_status_ = status >= 400 && status <= 599 ? status : 0;
    fail_path_ = req.has_param("path") ? req.get_param_value("path") : "/rest";
    fail_left_ = req.has_param("count") ? std::atoll(req.get_param_value("count").c_str()) : -1;
    Reply(res, {{"status", fail_status_}, {"path", fail_path_}, {"count", fail_left_}});
  });
  server_.Get("/sim/commands", [this](const httplib::Request&, httplib::Response& res) {
    OrderedJson list = OrderedJson::array();
    std::lock_guard lock(mutex_);
    for (const auto& command : commands_) {
      list.push_back({{"item", command.item}, {"command", command.command}, {"at", command.at_ms}});
    }
    Reply(res, list);
  });
  server_.Get("/sim/stats", [this](const httplib::Request&, httplib::Response& res) {
    const StreamStats stats = streams_.stats();
    OrderedJson body;
    body["streams"] = stats.open;
    body["streamsOpened"] = stats.opened;
    body["events"] = stats.published;
    body["alive"] = stats.alive;
    body["stalled"] = stats.stalled;
    body["requests"] = requests_.load();
    Reply(res, body);
  });
  server_.Post("/sim/burst", [this](const httplib::Request& req, httplib::Response& res) {
    // The stream benchmark's load: `count` state changes of the home's Number items, as fast
    // as the server can publish them and the clients can take them.
    const long count =
        req.has_param("count") ? std::atol(req.get_param_value("count").c_str()) : 1000;
    std::vector<std::string> numbers;
    {
      std::lock_guard lock(mutex_);
      for (const auto& item : home_.items()) {
        if (item.type.starts_with("Number")) numbers.push_back(item.name);
      }
    }
    if (numbers.empty() || count <= 0 || count > 10'000'000) {
      return JsonError(res, 400, "needs Number items and 0 < count <= 10000000");
    }
    const auto start = std::chrono::steady_clock::now();
    std::uint64_t events = 0;
    for (long i = 0; i < count; ++i) {
      if (i % 64 == 0) streams_.WaitForClients(1 << 20);
      const std::string& name = numbers[static_cast<std::size_t>(i) % numbers.size()];
      std::lock_guard lock(mutex_);
      const SimItem* item = home_.Find(name);
      if (!item) continue;
      const std::string unit = item->unit.empty() ? "" : " " + item->unit;
      auto out = home_.Update(name, fmt::format("{}.{}{}", 10 + i % 50, i % 10, unit), now_ms_());
      if (!out) continue;
      events += out->size();
      Publish(*out);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    Reply(res, {{"updates", count}, {"events", events}, {"seconds", seconds}});
  });
}

}  // namespace iothub::sim
