// The one place a cpp-httplib client is configured, shared by HttplibClient and
// HttplibStreamer so that both verify servers the same way. Internal to iothub_http.
#pragma once

#include <memory>

#include "common/http_client.h"

namespace httplib {
class ClientImpl;
}

namespace iothub {

// A client for `config`: with TLS, the server certificate is verified against `config.ca_file`
// (or the system's CAs) and must name `config.host`, TLS 1.2 at least; the connect, read and
// write timeouts applied; TCP_NODELAY; paths sent exactly as given (they arrive encoded).
std::unique_ptr<httplib::ClientImpl> MakeHttplibClient(const HttpClientConfig& config);

}  // namespace iothub
