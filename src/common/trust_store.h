// The system's trusted CA certificates, loaded the way that costs least: OpenSSL's default
// (SSL_CTX_set_default_verify_paths) parses the whole bundle, about 140 certificates and a
// megabyte of heap held for the life of the process, although a connection needs one root.
// With the hashed directory (Debian's /etc/ssl/certs, kept by update-ca-certificates) OpenSSL
// reads only the root a chain asks for, when it asks.
#pragma once

#include <openssl/x509.h>

#include <string>

namespace iothub {

// Adds the system's trusted roots to `store`: OpenSSL's defaults when SSL_CERT_FILE is set
// (the user's choice) or the default directory has no hashed certificates, else the directory
// alone, read lazily. False when OpenSSL refused; `error` says why.
bool AddSystemTrust(X509_STORE* store, std::string* error);

}  // namespace iothub
