// openHAB's REST API as the connector uses it (shared/reference/openhab.md §1, §2, §4): server
// facts, the item list with the connector's metadata, commands and state updates, things and
// links (ADMIN role), with the server's error answers mapped to meaningful codes. Requests go
// through the HttpClient seam; callbacks run on its event loop. Not thread-safe: loop thread only.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "common/event_loop.h"
#include "common/http_client.h"
#include "common/http_stream.h"
#include "common/result.h"
#include "openhab/item.h"
#include "openhab/thing.h"

namespace iothub::openhab {

// How the token travels (§4). With an empty token every mode is anonymous.
enum class AuthMode {
  kBearer,  // Authorization: Bearer <token>
  kBasic,   // Authorization: Basic base64(<token>:), the token as user name, empty password
  kHeader,  // X-OPENHAB-TOKEN: <token>, for proxies that strip or replace Authorization
};

struct RestClientConfig {
  std::string token;  // an API token (oh.<name>.<random>); empty: anonymous (USER role)
  AuthMode auth = AuthMode::kBearer;
};

// Error codes: "bad_argument" (checked before sending: item name, empty text), "rejected"
// (400: the text does not parse for the item's type), "unauthorized" (401), "forbidden"
// (403), "not_found" (404), "server_error" (5xx), "http_status" (anything else unexpected),
// "bad_response" (a body that cannot be understood), and the transport's "http_transport".
// Messages carry openHAB's own explanation and never the token (a server echoing it back has
// it redacted).
class RestClient {
 public:
  // Callbacks run on `loop`, never inside the call (argument errors included).
  RestClient(EventLoop& loop, HttpClient& http, RestClientConfig config);

  void GetServerInfo(std::function<void(Result<ServerInfo>)> done);
  // GET /rest/items with the azureiothub metadata namespace.
  void GetItems(std::function<void(Result<ItemList>)> done);
  // POST /rest/items/{name}, text/plain: what a user's command does.
  void SendCommand(std::string_view item, std::string_view command,
                   std::function<void(Status)> done);
  // PUT /rest/items/{name}/state: a state update without a command (e.g. for Contacts).
  void UpdateState(std::string_view item, std::string_view state, std::function<void(Status)> done);
  // GET /rest/things and GET /rest/links: ADMIN role only. A token without it, or none, gets
  // "unauthorized" or "forbidden" with a message saying an administrator's token is needed.
  void GetThings(std::function<void(Result<ThingList>)> done);
  void GetLinks(std::function<void(Result<LinkList>)> done);

  // Opens GET /rest/events?topics=`topics` on `streamer` (whose HTTP settings should be
  // EventStreamConfig's) with this client's authentication. Handlers as HttpStreamer's.
  std::unique_ptr<HttpStreamHandle> OpenEvents(HttpStreamer& streamer, std::string_view topics,
                                               StreamHandlers handlers) const;

  // The authentication header for this configuration as {name, value}, for every request
  // including the event stream's: {"Authorization", "Bearer <token>"}, {"Authorization",
  // "Basic ..."} or {"X-OPENHAB-TOKEN", "<token>"}; both empty when anonymous.
  std::pair<std::string, std::string> AuthHeader() const;

 private:
  HttpRequest Request(std::string method, std::string path, std::string body = {}) const;
  template <typename List>
  void GetAdminList(const char* path, Result<List> (*parse)(std::string_view),
                    std::function<void(Result<List>)> done);
  void SendText(std::string method, std::string_view item, const std::string& path_suffix,
                std::string_view text, std::function<void(Status)> done);

  EventLoop& loop_;
  HttpClient& http_;
  RestClientConfig config_;
};

// The HTTP settings for openHAB at `url`, the server root: `http://HOST[:PORT]` (default port
// 8080) or `https://HOST[:PORT]` (443), IPv6 hosts in brackets. REST requests time out after
// 30 s. Errors ("bad_url") quote what was given and say what is expected.
Result<HttpClientConfig> ParseServerUrl(std::string_view url);
// The same server for the event stream, which may be silent for long (the mirror watches its
// keep-alives): reads time out after 5 minutes instead.
HttpClientConfig EventStreamConfig(HttpClientConfig rest);

// The error for a non-2xx answer: openHAB's `{"error":{"message":..,"http-code":..}}` message
// when present. Exposed for the event stream, which gets the same bodies.
Error ErrorForStatus(const HttpResponse& response, std::string_view what);

}  // namespace iothub::openhab
