// The emulator's TLS material: a private CA and a server certificate signed by it, kept in one
// directory so that clients (Node.js, mosquitto, the connector) can trust the CA file.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace iothub::emulator {

// Paths of the PEM files EnsureCertificates leaves in its directory.
struct CertificateFiles {
  std::string ca_file;    // ca.pem: the CA certificate clients add to their trust store
  std::string cert_file;  // server.pem: the server certificate (leaf only)
  std::string key_file;   // server.key: the server's private key, unencrypted, mode 0600
};

// Ensures `dir` holds a private CA (ca.pem, ca.key, mode 0600 for keys) and a server certificate
// signed by it (server.pem, server.key) whose SubjectAltName has every name in `dns_names` and
// every address in `ip_addresses`. Reuses existing files when they are present, parse, chain to
// the CA and cover all requested names; otherwise (re)generates the server cert (and the CA only
// if the CA itself is missing or unreadable). Files are written atomically (temp file, fsync,
// rename). Expected failures (unwritable dir, ...) are returned as errors naming the file.
//
// Keys are EC P-256; the server certificate lives 825 days and is renewed when it has less than
// 30 days left; the CA lives 10 years and, that close to expiry, counts as unreadable. At least one
// name or address is required; the first DNS name (else the first address) becomes the subject CN.
// Thread-safe; concurrent calls on the same `dir`, also from other processes, are serialized by
// an advisory lock (flock) on `dir` itself.
Result<CertificateFiles> EnsureCertificates(const std::string& dir,
                                            const std::vector<std::string>& dns_names,
                                            const std::vector<std::string>& ip_addresses);

}  // namespace iothub::emulator
