#include "openhab/rest_client.h"

#include <fmt/format.h>

#include <utility>

#include "common/crypto.h"
#include "common/json_depth.h"
#include "openhab/event.h"

namespace iothub::openhab {
namespace {

// openHAB's explanation from an error body, if it has one.
std::string ServerMessage(std::string_view body) {
  const auto parsed = ParseUntrustedJson(body);
  if (!parsed || !parsed->is_object()) return {};
  const Json& doc = *parsed;
  const auto error = doc.find("error");
  if (error == doc.end() || !error->is_object()) return {};
  const auto message = error->find("message");
  return message != error->end() && message->is_string() ? message->get<std::string>() : "";
}

}  // namespace

Error ErrorForStatus(const HttpResponse& response, std::string_view what) {
  const std::string message = ServerMessage(response.body);
  const std::string detail = fmt::format("{}: openHAB answered {}{}{}", what, response.status,
                                         message.empty() ? "" : ": ", message);
  const int s = response.status;
  const char* code = s == 400   ? "rejected"
                     : s == 401 ? "unauthorized"
                     : s == 403 ? "forbidden"
                     : s == 404 ? "not_found"
                     : s >= 500 ? "server_error"
                                : "http_status";
  return MakeError(code, detail);
}

RestClient::RestClient(EventLoop& loop, HttpClient& http, RestClientConfig config)
    : loop_(loop), http_(http), config_(std::move(config)) {}

std::string RestClient::AuthorizationHeader() const {
  if (config_.token.empty()) return {};
  if (config_.basic_auth) return "Basic " + Base64Encode(config_.token + ":");
  return "Bearer " + config_.token;
}

HttpRequest RestClient::Request(std::string method, std::string path, std::string body) const {
  HttpRequest request{std::move(method), std::move(path), {}, std::move(body)};
  request.headers.emplace_back("Accept", "application/json");
  if (const std::string auth = AuthorizationHeader(); !auth.empty()) {
    request.headers.emplace_back("Authorization", auth);
  }
  return request;
}

void RestClient::GetServerInfo(std::function<void(Result<ServerInfo>)> done) {
  http_.Send(Request("GET", "/rest/"), [done = std::move(done)](Result<HttpResponse> r) {
    if (!r) return done(r.error());
    if (r->status != 200) return done(ErrorForStatus(*r, "GET /rest/"));
    done(ParseServerInfo(r->body));
  });
}

void RestClient::GetItems(std::function<void(Result<ItemList>)> done) {
  http_.Send(Request("GET", fmt::format("/rest/items?metadata={}", kMetadataNamespace)),
             [done = std::move(done)](Result<HttpResponse> r) {
               if (!r) return done(r.error());
               if (r->status != 200) return done(ErrorForStatus(*r, "GET /rest/items"));
               done(ParseItems(r->body));
             });
}

void RestClient::SendCommand(std::string_view item, std::string_view command,
                             std::function<void(Status)> done) {
  SendText("POST", item, "", command, std::move(done));
}

void RestClient::UpdateState(std::string_view item, std::string_view state,
                             std::function<void(Status)> done) {
  SendText("PUT", item, "/state", state, std::move(done));
}

void RestClient::SendText(std::string method, std::string_view item, const std::string& path_suffix,
                          std::string_view text, std::function<void(Status)> done) {
  const std::string what = fmt::format("{} {} to {}", method == "POST" ? "command" : "state update",
                                       text.substr(0, 64), item);
  // Checked here so that a bad name cannot turn into another path, and so the caller learns
  // at once rather than from a 404.
  if (!IsItemName(item)) {
    loop_.Post([done = std::move(done), name = std::string(item)] {
      done(MakeError("bad_argument", fmt::format("'{}' is not an openHAB item name", name)));
    });
    return;
  }
  if (text.empty()) {
    loop_.Post(
        [done = std::move(done)] { done(MakeError("bad_argument", "an empty command or state")); });
    return;
  }
  HttpRequest request = Request(std::move(method), "/rest/items/" + std::string(item) + path_suffix,
                                std::string(text));
  request.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  http_.Send(std::move(request), [done = std::move(done), what](Result<HttpResponse> r) {
    if (!r) return done(r.error());
    if (r->status < 200 || r->status >= 300) return done(ErrorForStatus(*r, what));
    done(Ok{});
  });
}

}  // namespace iothub::openhab
