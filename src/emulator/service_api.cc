#include "emulator/service_api.h"

#include <httplib.h>

#include <atomic>

#include "azure/sas_token.h"
#include "common/json_depth.h"
#include "common/strings.h"
#include "common/url.h"

namespace iothub::emulator {
namespace {

using httplib::Request;
using httplib::Response;

constexpr auto kBrokerTimeout = std::chrono::seconds(10);
constexpr int kWorkers = 96;
constexpr int kMaxStreams = 16;
constexpr int kMaxInvocations = 48;

// Counts one long-running request against `counter` while it lives; `admitted` is false
// (and nothing is counted) when the cap was already reached.
class Slot {
 public:
  Slot(std::atomic<int>& counter, int cap) : counter_(counter) {
    admitted_ = ++counter_ <= cap;
    if (!admitted_) --counter_;
  }
  ~Slot() {
    if (admitted_) --counter_;
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  bool admitted() const { return admitted_; }

 private:
  std::atomic<int>& counter_;
  bool admitted_ = false;
};

void Send(Response& res, const ServiceReply& reply) {
  res.status = reply.status;
  for (const auto& [k, v] : reply.headers) res.set_header(k, v);
  if (reply.status == 204 || reply.body.is_null()) return;
  res.set_content(DumpJson(reply.body), "application/json; charset=utf-8");
}

void SendError(Response& res, int status, int code, const std::string& name,
               const std::string& text, const Clock& wall) {
  Send(res, ErrorReply(status, code, name, text, wall.NowMs()));
}

std::string Header(const Request& req, const char* name) {
  return req.has_header(name) ? req.get_header_value(name) : std::string();
}

}  // namespace

ServiceApi::ServiceApi(ServiceApiOptions options, Hub& hub, LoopBridge& bridge,
                       MessageStore& messages, const Clock& wall)
    : options_(std::move(options)), hub_(hub), bridge_(bridge), messages_(messages), wall_(wall) {}

ServiceApi::~ServiceApi() { Stop(); }

void ServiceApi::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

Result<int> ServiceApi::Start() {
  server_ =
      std::make_unique<httplib::SSLServer>(options_.cert_file.c_str(), options_.key_file.c_str());
  if (!server_->is_valid()) {
    return MakeError("Https", "cannot load TLS certificate " + options_.cert_file + " / key " +
                                  options_.key_file);
  }
  // Method invocations hold a worker for up to 5 minutes; keep plenty.
  server_->new_task_queue = [] { return new httplib::ThreadPool(kWorkers); };
  // Idle keep-alive connections hold a worker until this timeout, and stopping the server
  // waits for them: keep it short (httplib's default) so shutdown and broker-down are prompt.
  server_->set_keep_alive_timeout(5);
  server_->set_tcp_nodelay(true);  // small JSON answers must not wait for delayed ACKs
  Routes();
  int port = options_.port;
  if (port == 0) {
    port = server_->bind_to_any_port(options_.bind_address.c_str());
    if (port < 0) return MakeError("Https", "cannot bind an HTTPS port");
  } else if (!server_->bind_to_port(options_.bind_address.c_str(), port)) {
    return MakeError("Https", "cannot bind HTTPS port " + std::to_string(port) + " (in use?)");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return port;
}

void ServiceApi::Routes() {
  auto& s = *server_;

  // Authorises a request for any of `rights`; answers 401 and returns false otherwise.
  auto authorize = [this](const Request& req, Response& res, unsigned rights) {
    const std::string header = Header(req, "Authorization");
    auto token = azure::ParseSasToken(header);
    if (!token) {
      SendError(res, 401, 401002, "IotHubUnauthorizedAccess",
                "Unauthorized: " + (header.empty() ? std::string("no Authorization header")
                                                   : token.error().message),
                wall_);
      return false;
    }
    std::string resource = token->resource;
    while (!resource.empty() && resource.back() == '/') resource.pop_back();
    const SharedAccessPolicy* policy = nullptr;
    for (const auto& p : options_.policies) {
      if (p.name == token->policy) policy = &p;
    }
    std::string why;
    if (policy == nullptr) {
      why = "unknown shared access policy '" + token->policy + "'";
    } else if (!EqualsIgnoreCase(resource, options_.host_name)) {
      why = "token resource does not match the hub host name";
    } else if (token->expiry <= real_clock_.NowSeconds()) {
      // Service tokens are checked against real time, not the emulator's (advanceable) clock:
      // the SDKs mint them from the real clock, and must keep working after a test moves the
      // hub's clock forward. Device tokens are checked against the hub's clock (hub.cc).
      why = "token expired";
    } else if (!azure::VerifySasSignature(*token, policy->primary_key) &&
               !azure::VerifySasSignature(*token, policy->secondary_key)) {
      why = "signature does not match";
    } else if ((policy->rights & rights) == 0) {
      why = "policy '" + policy->name + "' lacks the permission for this operation";
    }
    if (why.empty()) return true;
    SendError(res, 401, 401002, "IotHubUnauthorizedAccess", "Unauthorized: " + why, wall_);
    return false;
  };

  // Parses the JSON body (empty means `empty_default`); answers 400 on malformed JSON.
  auto body_json = [this](const Request& req, Response& res, Json* out) {
    if (req.body.empty()) {
      *out = Json::object();
      return true;
    }
    *out = JsonDepthWithin(req.body, kMaxJsonDepth) ? Json::parse(req.body, nullptr, false)
                                                    : Json(Json::value_t::discarded);
    if (out->is_discarded()) {
      SendError(res, 400, 400004, "ArgumentInvalid",
                "request body is not valid JSON (or nested deeper than 64 levels)", wall_);
      return false;
    }
    return true;
  };

  // Runs `fn` on the broker thread and sends its reply.
  auto on_broker = [this](Response& res, std::function<ServiceReply()> fn) {
    auto reply = bridge_.Call<ServiceReply>(std::move(fn), kBrokerTimeout);
    if (!reply) {
      SendError(res, 503, 503001, "ServiceUnavailable", "the hub did not answer in time", wall_);
      return;
    }
    Send(res, *reply);
  };

  // `devices`: a bulk request counts once per device in it.
  auto registry_throttled = [this](Response& res, std::size_t devices = 1) {
    auto allowed = bridge_.Call<bool>(
        [this, devices] { return hub_.AllowRegistryOperation(devices); }, kBrokerTimeout);
    if (allowed.value_or(false)) return false;
    SendError(res, 429, 429001, "ThrottlingException", "Registry operations are throttled.", wall_);
    return true;
  };

  const std::string kId = R"(([^/]+))";

  s.Get(R"(/devices/?)", [=, this](const Request& req, Response& res) {
    if (!authorize(req, res, kRegistryRead) || registry_throttled(res)) return;
    std::size_t top = 1000;
    if (req.has_param("top"))
      top = std::min<std::size_t>(1000,
                                  std::strtoul(req.get_param_value("top").c_str(), nullptr, 10));
    on_broker(res, [this, top] { return hub_.ListDevices(top); });
  });
  s.Post(R"(/devices/?)", [=, this](const Request& req, Response& res) {
    Json body;
    if (!authorize(req, res, kRegistryWrite) || !body_json(req, res, &body) ||
        registry_throttled(res, body.is_array() ? body.size() : 1))
      return;
    on_broker(res, [this, body] { return hub_.BulkDevices(body); });
  });
  s.Get("/devices/" + kId, [=, this](const Request& req, Response& res) {
    if (!authorize(req, res, kRegistryRead) || registry_throttled(res)) return;
    on_broker(res, [this, id = std::string(req.matches[1])] { return hub_.GetDevice(id); });
  });
  s.Put("/devices/" + kId, [=, this](const Request& req, Response& res) {
    Json body;
    if (!authorize(req, res, kRegistryWrite) || !body_json(req, res, &body) ||
        registry_throttled(res))
      return;
    on_broker(res, [this, id = std::string(req.matches[1]), body, m = Header(req, "If-Match")] {
      return hub_.PutDevice(id, body, m);
    });
  });
  s.Delete("/devices/" + kId, [=, this](const Request& req, Response& res) {
    if (!authorize(req, res, kRegistryWrite) || registry_throttled(res)) return;
    on_broker(res, [this, id = std::string(req.matches[1]), m = Header(req, "If-Match")] {
      return hub_.DeleteDevice(id, m.empty() ? "*" : m);
    });
  });
  s.Get("/twins/" + kId, [=, this](const Request& req, Response& res) {
    if (!authorize(req, res, kRegistryRead | kServiceConnect)) return;
    on_broker(res, [this, id = std::string(req.matches[1])] { return hub_.GetTwin(id); });
  });
  auto twin_update = [=, this](bool replace) {
    return [=, this](const Request& req, Response& res) {
      Json body;
      if (!authorize(req, res, kRegistryWrite | kServiceConnect) || !body_json(req, res, &body))
        return;
      on_broker(res, [this, id = std::string(req.matches[1]), body, m = Header(req, "If-Match"),
                      replace] { return hub_.UpdateTwin(id, body, m, replace); });
    };
  };
  s.Patch("/twins/" + kId, twin_update(false));
  s.Put("/twins/" + kId, twin_update(true));
  s.Post("/twins/" + kId + "/methods", [=, this](const Request& req, Response& res) {
    Json body;
    if (!authorize(req, res, kServiceConnect) || !body_json(req, res, &body)) return;
    Slot slot(invocations_, kMaxInvocations);
    if (!slot.admitted()) {
      SendError(res, 503, 503001, "ServiceUnavailable", "too many method invocations in flight",
                wall_);
      return;
    }
    auto promise = std::make_shared<std::promise<ServiceReply>>();
    auto future = promise->get_future();
    bridge_.Post([this, promise, id = std::string(req.matches[1]), body] {
      hub_.InvokeMethod(id, body, [promise](ServiceReply r) { promise->set_value(std::move(r)); });
    });
    // The hub answers within the request's own timeouts (at most 600 s); this is a backstop.
    if (future.wait_for(std::chrono::seconds(620)) != std::future_status::ready) {
      SendError(res, 504, 504101, "GatewayTimeout", "no answer from the hub", wall_);
      return;
    }
    Send(res, future.get());
  });

  // Emulator-only endpoints (docs/emulator-api.md).
  s.Get("/emulator/messages", [=, this](const Request& req, Response& res) {
    if (!authorize(req, res, kServiceConnect)) return;
    const std::string device = req.get_param_value("deviceId");
    const std::uint64_t since = std::strtoull(req.get_param_value("since").c_str(), nullptr, 10);
    std::size_t limit = 1000;
    if (req.has_param("limit"))
      limit = std::clamp<std::size_t>(
          std::strtoul(req.get_param_value("limit").c_str(), nullptr, 10), 1, 10000);
    Json list = Json::array();
    std::uint64_t next = since;
    // Read the newest seq first: a message appended meanwhile then lands after `next`,
    // never before it (which would hide it from the next poll).
    const std::uint64_t newest = messages_.LastSeq();
    for (const auto& m : messages_.Read(device, since, limit)) {
      list.push_back(MessageToJson(m));
      next = m.seq;
    }
    if (list.size() < limit) next = std::max(next, newest);
    Send(res, ServiceReply{200, {{"messages", std::move(list)}, {"next", next}}, {}});
  });
  s.Get("/emulator/messages/stream", [=, this](const Request& req, Response& res) {
    if (!authorize(req, res, kServiceConnect)) return;
    auto slot = std::make_shared<Slot>(streams_, kMaxStreams);  // shared: lives with the stream
    if (!slot->admitted()) {
      SendError(res, 503, 503001, "ServiceUnavailable",
                "too many live message streams (at most 16)", wall_);
      return;
    }
    const std::string device = req.get_param_value("deviceId");
    auto cursor = std::make_shared<std::uint64_t>(
        req.has_param("since") ? std::strtoull(req.get_param_value("since").c_str(), nullptr, 10)
                               : messages_.LastSeq());
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, device, cursor](std::size_t, httplib::DataSink& sink) {
          const auto batch = messages_.Read(device, *cursor, 500);
          std::string out;
          for (const auto& m : batch) {
            out +=
                "id: " + std::to_string(m.seq) + "\ndata: " + DumpJson(MessageToJson(m)) + "\n\n";
            *cursor = m.seq;
          }
          if (batch.empty()) {
            const std::uint64_t last = messages_.WaitNewer(*cursor, 15000);
            if (last == *cursor) out = ": keep-alive\n\n";
            if (!device.empty() && last > *cursor && out.empty()) {
              // Newer messages exist but none of them is this device's: skip past them.
              if (messages_.Read(device, *cursor, 1).empty()) *cursor = last;
            }
          }
          if (!out.empty() && !sink.write(out.data(), out.size())) return false;
          return sink.is_writable() && !messages_.closed();
        },
        [slot](bool) {});  // releases the stream slot when the stream ends
  });
  s.Post("/emulator/devices/" + kId + "/messages", [=, this](const Request& req, Response& res) {
    Json body;
    if (!authorize(req, res, kServiceConnect) || !body_json(req, res, &body)) return;
    on_broker(res, [this, id = std::string(req.matches[1]), body] {
      return hub_.SendCloudToDevice(id, body);
    });
  });
  s.Get("/emulator/stats", [=, this](const Request& req, Response& res) {
    if (!authorize(req, res, kServiceConnect | kRegistryRead)) return;
    on_broker(res, [this] { return hub_.Stats(); });
  });
  s.Get("/emulator/clock", [=, this](const Request& req, Response& res) {
    if (!authorize(req, res, kServiceConnect)) return;
    Send(res, ServiceReply{
                  200, {{"now", FormatIsoTime(wall_.NowMs())}, {"epochMs", wall_.NowMs()}}, {}});
  });
  s.Post("/emulator/clock/advance", [=, this](const Request& req, Response& res) {
    Json body;
    if (!authorize(req, res, kServiceConnect) || !body_json(req, res, &body)) return;
    on_broker(res, [this, body] { return hub_.AdvanceClock(body); });
  });
  s.Post(R"(/emulator/faults/([a-z-]+))", [=, this](const Request& req, Response& res) {
    Json body;
    if (!authorize(req, res, kServiceConnect) || !body_json(req, res, &body)) return;
    on_broker(res,
              [this, kind = std::string(req.matches[1]), body] { return hub_.Fault(kind, body); });
  });

  s.set_error_handler([this](const Request& req, Response& res) {
    if (res.status == 404 && res.body.empty()) {
      SendError(res, 404, 404000, "NotFound", "no such endpoint: " + req.method + " " + req.path,
                wall_);
    }
  });
}

}  // namespace iothub::emulator
