// The real MqttConnector: libmosquitto connections driven by an EventLoop (no library
// threads), over TLS with one shared OpenSSL context so that hundreds of sessions cost one
// CA store. Loop thread only, like the connections it creates.
#pragma once

#include <memory>
#include <string>

#include "azure/mqtt_connection.h"
#include "common/event_loop.h"
#include "common/openssl_ptr.h"
#include "common/resolver.h"
#include "common/result.h"

namespace iothub::azure {

struct TlsOptions {
  std::string ca_file;      // PEM bundle of CAs trusted besides the system's store
  std::string server_name;  // the name the server certificate must carry (the hub host name)
};

class MosquittoConnector final : public MqttConnector {
 public:
  // Loads the CA bundle once. Errors name the file and what was wrong with it. Host names
  // are resolved by `resolver` (none: a ThreadResolver of the connector's own), never on the
  // loop; the connector must be destroyed on the loop thread, before the loop.
  static Result<std::unique_ptr<MosquittoConnector>> Create(EventLoop& loop, TlsOptions tls,
                                                            Resolver* resolver = nullptr);
  ~MosquittoConnector() override;
  MosquittoConnector(const MosquittoConnector&) = delete;
  MosquittoConnector& operator=(const MosquittoConnector&) = delete;

  std::unique_ptr<MqttConnection> Create(MqttHandler& handler) override;

 private:
  MosquittoConnector(EventLoop& loop, SslCtxPtr ctx, Resolver* resolver);
  EventLoop& loop_;
  SslCtxPtr ctx_;
  std::unique_ptr<ThreadResolver> own_resolver_;
  Resolver& resolver_;
};

}  // namespace iothub::azure
