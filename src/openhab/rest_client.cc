#include "openhab/rest_client.h"

#include <fmt/format.h>

#include <utility>

#include "common/crypto.h"
#include "common/json_depth.h"
#include "openhab/event.h"

namespace iothub::openhab {
namespace {

constexpr std::string_view kTokenHeader = "X-OPENHAB-TOKEN";

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

std::string BasicCredentials(const std::string& token) { return Base64Encode(token + ":"); }

void ReplaceAll(std::string& text, std::string_view secret) {
  constexpr std::string_view kRedacted = "<redacted>";
  if (secret.empty()) return;
  for (std::size_t at = text.find(secret); at != std::string::npos;
       at = text.find(secret, at + kRedacted.size())) {
    text.replace(at, secret.size(), kRedacted);
  }
}

// ErrorForStatus for a request that carried `token`: the server's message is quoted, and a
// server (or proxy) that echoes the credentials must not put them into a log line.
Error FailureFor(const HttpResponse& response, std::string_view what, const std::string& token) {
  Error error = ErrorForStatus(response, what);
  ReplaceAll(error.message, token);
  if (!token.empty()) ReplaceAll(error.message, BasicCredentials(token));
  return error;
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

std::pair<std::string, std::string> RestClient::AuthHeader() const {
  if (config_.token.empty()) return {};
  switch (config_.auth) {
    case AuthMode::kBearer:
      return {"Authorization", "Bearer " + config_.token};
    case AuthMode::kBasic:
      return {"Authorization", "Basic " + BasicCredentials(config_.token)};
    case AuthMode::kHeader:
      return {std::string(kTokenHeader), config_.token};
  }
  return {};
}

std::unique_ptr<HttpStreamHandle> RestClient::OpenEvents(HttpStreamer& streamer,
                                                         std::string_view topics,
                                                         StreamHandlers handlers) const {
  HttpRequest request{"GET", "/rest/events?topics=" + std::string(topics), {}, {}};
  request.headers.emplace_back("Accept", "text/event-stream");
  if (auto auth = AuthHeader(); !auth.first.empty()) request.headers.push_back(std::move(auth));
  return streamer.Open(std::move(request), std::move(handlers));
}

Result<HttpClientConfig> ParseServerUrl(std::string_view url) {
  auto config = ParseRootUrl(url, 8080);
  if (!config) {
    return MakeError("bad_url",
                     "the openHAB URL must look like http://HOST[:PORT] or https://HOST[:PORT] "
                     "(the server root, without /rest, the port 1-65535), got '" +
                         std::string(url) + "'");
  }
  config->read_timeout_ms = 30'000;
  return *config;
}

HttpClientConfig EventStreamConfig(HttpClientConfig rest) {
  rest.read_timeout_ms = 300'000;
  return rest;
}

HttpRequest RestClient::Request(std::string method, std::string path, std::string body) const {
  HttpRequest request{std::move(method), std::move(path), {}, std::move(body)};
  request.headers.emplace_back("Accept", "application/json");
  if (auto auth = AuthHeader(); !auth.first.empty()) request.headers.push_back(std::move(auth));
  return request;
}

void RestClient::GetServerInfo(std::function<void(Result<ServerInfo>)> done) {
  http_.Send(Request("GET", "/rest/"),
             [done = std::move(done), token = config_.token](Result<HttpResponse> r) {
               if (!r) return done(r.error());
               if (r->status != 200) return done(FailureFor(*r, "GET /rest/", token));
               done(ParseServerInfo(r->body));
             });
}

void RestClient::GetItems(std::function<void(Result<ItemList>)> done) {
  http_.Send(Request("GET", fmt::format("/rest/items?metadata={}", kMetadataNamespace)),
             [done = std::move(done), token = config_.token](Result<HttpResponse> r) {
               if (!r) return done(r.error());
               if (r->status != 200) return done(FailureFor(*r, "GET /rest/items", token));
               done(ParseItems(r->body));
             });
}

void RestClient::GetThings(std::function<void(Result<ThingList>)> done) {
  GetAdminList("/rest/things", &ParseThings, std::move(done));
}

void RestClient::GetLinks(std::function<void(Result<LinkList>)> done) {
  GetAdminList("/rest/links", &ParseLinks, std::move(done));
}

template <typename List>
void RestClient::GetAdminList(const char* path, Result<List> (*parse)(std::string_view),
                              std::function<void(Result<List>)> done) {
  const bool anonymous = config_.token.empty();
  http_.Send(Request("GET", path), [done = std::move(done), token = config_.token, path, parse,
                                    anonymous](Result<HttpResponse> r) {
    if (!r) return done(r.error());
    if (r->status == 200) return done(parse(r->body));
    Error error = FailureFor(*r, fmt::format("GET {}", path), token);
    if (r->status == 401 || r->status == 403) {
      error.message += anonymous ? " (things and links need an administrator's API token; "
                                   "none was given)"
                                 : " (things and links need an administrator's API token; "
                                   "this one is invalid or belongs to a user without the "
                                   "ADMIN role)";
    }
    done(std::move(error));
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
  http_.Send(std::move(request),
             [done = std::move(done), what, token = config_.token](Result<HttpResponse> r) {
               if (!r) return done(r.error());
               if (r->status < 200 || r->status >= 300) return done(FailureFor(*r, what, token));
               done(Ok{});
             });
}

}  // namespace iothub::openhab
