// The real MqttConnector: libmosquitto connections driven by an EventLoop (no library
// threads), over TLS with one shared OpenSSL context so that hundreds of sessions cost one
// CA store. Loop thread only, like the connections it creates.
#pragma once

#include <memory>
#include <string>

#include "azure/mqtt_connection.h"
#include "common/event_loop.h"
#include "common/openssl_ptr.h"
#include "common/result.h"

namespace iothub::azure {

struct TlsOptions {
  std::string ca_file;      // PEM bundle of trusted CAs; empty: the system's store
  std::string server_name;  // the name the server certificate must carry (the hub host name)
};

class MosquittoConnector final : public MqttConnector {
 public:
  // Loads the CA bundle once. Errors name the file and what was wrong with it.
  static Result<std::unique_ptr<MosquittoConnector>> Create(EventLoop& loop, TlsOptions tls);
  ~MosquittoConnector() override;
  MosquittoConnector(const MosquittoConnector&) = delete;
  MosquittoConnector& operator=(const MosquittoConnector&) = delete;

  std::unique_ptr<MqttConnection> Create(MqttHandler& handler) override;

 private:
  MosquittoConnector(EventLoop& loop, SslCtxPtr ctx);
  EventLoop& loop_;
  SslCtxPtr ctx_;
};

}  // namespace iothub::azure
