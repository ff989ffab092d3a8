#include "common/trust_store.h"

#include <dirent.h>
#include <openssl/err.h>

#include <cctype>
#include <cstdlib>
#include <memory>
#include <string_view>

namespace iothub {
namespace {

// A name c_rehash and update-ca-certificates give a certificate: 8 hex digits, '.', a digit.
bool IsHashName(std::string_view name) {
  if (name.size() < 10 || name[8] != '.') return false;
  for (std::size_t i = 0; i < 8; ++i) {
    if (std::isxdigit(static_cast<unsigned char>(name[i])) == 0) return false;
  }
  return std::isdigit(static_cast<unsigned char>(name[9])) != 0;
}

bool HasHashedCertificates(const char* dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir), &closedir);
  if (!d) return false;
  while (const dirent* entry = readdir(d.get())) {
    if (IsHashName(entry->d_name)) return true;
  }
  return false;
}

std::string LastOpenSslError() {
  char text[256] = "unknown error";
  if (const unsigned long code = ERR_get_error(); code != 0) {
    ERR_error_string_n(code, text, sizeof text);
  }
  ERR_clear_error();
  return text;
}

}  // namespace

bool AddSystemTrust(X509_STORE* store, std::string* error) {
  const char* dir_env = std::getenv(X509_get_default_cert_dir_env());
  const char* dir = dir_env != nullptr ? dir_env : X509_get_default_cert_dir();
  const bool lazy =
      std::getenv(X509_get_default_cert_file_env()) == nullptr && HasHashedCertificates(dir);
  const int ok = lazy ? X509_STORE_load_path(store, dir) : X509_STORE_set_default_paths(store);
  if (ok == 1) return true;
  if (error != nullptr) *error = LastOpenSslError();
  return false;
}

}  // namespace iothub
