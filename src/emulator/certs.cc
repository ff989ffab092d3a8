#include "emulator/certs.h"

#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "common/atomic_file.h"
#include "common/openssl_ptr.h"

namespace iothub::emulator {
namespace {

namespace fs = std::filesystem;

constexpr char kCaCommonName[] = "iothub-emulator CA";
constexpr long kCaValidityDays = 3653;  // 10 years, leap days included
// Apple (and thus Chrome on macOS) rejects TLS server certificates valid for longer.
constexpr long kServerValidityDays = 825;
// Certificates closer than this to expiry are replaced, so that a running emulator started
// from them does not hit the expiry during a long test campaign.
constexpr long kRenewBeforeSeconds = 30L * 24 * 3600;
// notBefore is backdated so that a peer whose clock lags a little still accepts a fresh cert.
constexpr long kBackdateSeconds = 3600;
// The X.520 upper bound for a commonName; a longer name only appears in the SAN.
constexpr std::size_t kMaxCommonNameLength = 64;
constexpr std::size_t kMaxDnsNameLength = 253;

// Owns a file descriptor; closing it also drops any flock held through it.
class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd& operator=(UniqueFd&&) = delete;
  ~UniqueFd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Failed reads of missing or damaged files leave entries in OpenSSL's per-thread error queue;
// a stale entry there makes a later SSL_get_error on the caller's thread report a bogus
// failure, so everything this file queues is dropped again on return.
class ErrorQueueMark {
 public:
  ErrorQueueMark() { ERR_set_mark(); }
  ErrorQueueMark(const ErrorQueueMark&) = delete;
  ErrorQueueMark& operator=(const ErrorQueueMark&) = delete;
  ~ErrorQueueMark() { ERR_pop_to_mark(); }
};

// Building certificates in memory fails only on allocation failure or a bug in this file; both
// are broken invariants, not environment problems, so they abort with OpenSSL's reason.
void Require(bool ok, const char* what) {
  if (ok) {
    return;
  }
  char reason[256] = "no OpenSSL error queued";
  if (const unsigned long code = ERR_peek_last_error(); code != 0) {
    ERR_error_string_n(code, reason, sizeof reason);
  }
  std::fprintf(stderr, "iothub::emulator certificates: %s failed: %s\n", what, reason);
  std::abort();
}

Error IoError(std::string_view action, const fs::path& path, int err) {
  return MakeError("IoError", std::string(action) + " " + path.string() + ": " +
                                  std::system_category().message(err));
}

Status ValidateNames(const std::vector<std::string>& dns_names,
                     const std::vector<std::string>& ip_addresses) {
  if (dns_names.empty() && ip_addresses.empty()) {
    return MakeError("InvalidArgument", "a server certificate needs at least one name or address");
  }
  for (const std::string& name : dns_names) {
    bool printable = !name.empty() && name.size() <= kMaxDnsNameLength;
    for (const char c : name) {
      printable = printable && c > ' ' && c < 0x7f;  // IA5String without spaces or controls
    }
    if (!printable) {
      return MakeError("InvalidArgument",
                       "not a usable DNS name for a certificate: '" + name + "'");
    }
  }
  for (const std::string& address : ip_addresses) {
    if (!OctetStringPtr(a2i_IPADDRESS(address.c_str()))) {
      return MakeError("InvalidArgument", "not an IPv4 or IPv6 address: '" + address + "'");
    }
  }
  return Ok{};
}

std::string ServerCommonName(const std::vector<std::string>& dns_names,
                             const std::vector<std::string>& ip_addresses) {
  if (!dns_names.empty()) {
    return dns_names.front().size() <= kMaxCommonNameLength ? dns_names.front() : "iothub-emulator";
  }
  return ip_addresses.front();
}

// Takes an flock on the directory itself, which needs no extra file in it and works on a
// read-only directory whose certificates are already fine.
Result<UniqueFd> LockDirectory(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    return IoError("cannot open directory", dir, errno);
  }
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) {
      return IoError("cannot lock directory", dir, errno);
    }
  }
  return fd;
}

// Returns null when the file is missing or holds no parsable certificate.
X509Ptr ReadCertificate(const fs::path& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  return X509Ptr(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
}

// Without it OpenSSL would prompt on the terminal for the passphrase of an encrypted key.
int RefusePassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*user*/) { return -1; }

// Returns null when the file is missing, damaged or encrypted.
PkeyPtr ReadPrivateKey(const fs::path& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  return PkeyPtr(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, RefusePassphrase, nullptr)
                     : nullptr);
}

std::string ToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  Require(bio && PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

std::string ToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  // Unencrypted PKCS#8, which mosquitto, Node.js and cpp-httplib all load without a prompt.
  Require(
      bio && PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
      "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

// True when `cert` stays valid for at least the renewal margin.
bool LastsLongEnough(const X509* cert) {
  std::time_t limit = std::time(nullptr) + kRenewBeforeSeconds;
  return X509_cmp_time(X509_get0_notAfter(cert), &limit) > 0;
}

struct CertificateAuthority {
  X509Ptr cert;
  PkeyPtr key;
};

// Returns the CA in ca.pem/ca.key if both parse, belong together and make a usable CA.
std::optional<CertificateAuthority> LoadCa(const fs::path& cert_path, const fs::path& key_path) {
  CertificateAuthority ca{ReadCertificate(cert_path), ReadPrivateKey(key_path)};
  if (!ca.cert || !ca.key || X509_check_private_key(ca.cert.get(), ca.key.get()) != 1 ||
      X509_check_ca(ca.cert.get()) != 1 || X509_self_signed(ca.cert.get(), 1) != 1 ||
      !LastsLongEnough(ca.cert.get())) {
    return std::nullopt;
  }
  return ca;
}

bool ServerCertificateUsable(const CertificateAuthority& ca, X509* cert, EVP_PKEY* key,
                             const std::vector<std::string>& dns_names,
                             const std::vector<std::string>& ip_addresses) {
  if (X509_check_private_key(cert, key) != 1 || !LastsLongEnough(cert)) {
    return false;
  }
  StorePtr store(X509_STORE_new());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  Require(store && ctx && X509_STORE_add_cert(store.get(), ca.cert.get()) == 1 &&
              X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr) == 1 &&
              X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER) == 1,
          "X509_STORE setup");
  if (X509_verify_cert(ctx.get()) != 1) {
    return false;
  }
  // The names must be in the SAN literally: clients ignore the CN when a SAN is present, and a
  // wildcard left over from an older request should not stand in for a new exact name.
  constexpr unsigned kFlags = X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_WILDCARDS;
  for (const std::string& name : dns_names) {
    if (X509_check_host(cert, name.data(), name.size(), kFlags, nullptr) != 1) {
      return false;
    }
  }
  for (const std::string& address : ip_addresses) {
    if (X509_check_ip_asc(cert, address.c_str(), 0) != 1) {
      return false;
    }
  }
  return true;
}

PkeyPtr NewKey() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  Require(key != nullptr, "EC P-256 key generation");
  return key;
}

// A v3 certificate for `key` with subject CN `common_name`, a random serial and the given
// lifetime; issuer name and extensions are left to the caller.
X509Ptr NewCertificate(EVP_PKEY* key, const std::string& common_name, long validity_days) {
  X509Ptr cert(X509_new());
  Require(cert && X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_new");
  // 128 random bits keep serials unique across regenerated CAs; an odd number is never zero.
  BignumPtr serial(BN_new());
  Require(serial && BN_rand(serial.get(), 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ODD) == 1 &&
              BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) != nullptr,
          "random serial");
  // notAfter counts from the backdated notBefore so the total lifetime stays within the limit.
  std::time_t not_before = std::time(nullptr) - kBackdateSeconds;
  Require(X509_time_adj_ex(X509_getm_notBefore(cert.get()), 0, 0, &not_before) != nullptr &&
              X509_time_adj_ex(X509_getm_notAfter(cert.get()), static_cast<int>(validity_days), 0,
                               &not_before) != nullptr,
          "certificate validity");
  X509_NAME* subject = X509_get_subject_name(cert.get());
  Require(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(common_name.c_str()),
                                     -1, -1, 0) == 1 &&
              X509_set_pubkey(cert.get(), key) == 1,
          "certificate subject");
  return cert;
}

// Adds an extension given in openssl.cnf syntax; `issuer` supplies the authority key id.
void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  Require(extension && X509_add_ext(cert, extension.get(), -1) == 1, value);
}

// Built as GENERAL_NAMEs rather than an openssl.cnf string so that no name can inject syntax.
void AddSubjectAltName(X509* cert, const std::vector<std::string>& dns_names,
                       const std::vector<std::string>& ip_addresses) {
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  Require(names != nullptr, "sk_GENERAL_NAME_new_null");
  const auto push = [&](int type, ASN1_STRING* value) {
    GeneralNamePtr name(GENERAL_NAME_new());
    Require(value != nullptr && name != nullptr, "GENERAL_NAME_new");
    GENERAL_NAME_set0_value(name.get(), type, value);
    // `names` owns the entry from here on; a failed push aborts, so nothing leaks.
    Require(sk_GENERAL_NAME_push(names.get(), name.release()) > 0, "sk_GENERAL_NAME_push");
  };
  for (const std::string& dns : dns_names) {
    Ia5StringPtr value(ASN1_IA5STRING_new());
    Require(value && ASN1_STRING_set(value.get(), dns.data(), static_cast<int>(dns.size())) == 1,
            "ASN1_STRING_set");
    push(GEN_DNS, value.release());
  }
  for (const std::string& address : ip_addresses) {
    push(GEN_IPADD, a2i_IPADDRESS(address.c_str()));  // validated by ValidateNames
  }
  Require(X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) == 1,
          "subjectAltName");
}

CertificateAuthority NewCa() {
  CertificateAuthority ca{nullptr, NewKey()};
  ca.cert = NewCertificate(ca.key.get(), kCaCommonName, kCaValidityDays);
  X509* cert = ca.cert.get();
  Require(X509_set_issuer_name(cert, X509_get_subject_name(cert)) == 1, "X509_set_issuer_name");
  // pathlen:0: this CA signs only leaf certificates, never another CA.
  AddExtension(cert, cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  AddExtension(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExtension(cert, cert, NID_subject_key_identifier, "hash");
  Require(X509_sign(cert, ca.key.get(), EVP_sha256()) > 0, "X509_sign (CA)");
  return ca;
}

struct ServerCertificate {
  X509Ptr cert;
  PkeyPtr key;
};

ServerCertificate NewServerCertificate(const CertificateAuthority& ca,
                                       const std::vector<std::string>& dns_names,
                                       const std::vector<std::string>& ip_addresses) {
  ServerCertificate server{nullptr, NewKey()};
  server.cert = NewCertificate(server.key.get(), ServerCommonName(dns_names, ip_addresses),
                               kServerValidityDays);
  X509* cert = server.cert.get();
  X509* issuer = ca.cert.get();
  Require(X509_set_issuer_name(cert, X509_get_subject_name(issuer)) == 1, "X509_set_issuer_name");
  AddExtension(cert, issuer, NID_basic_constraints, "critical,CA:FALSE");
  AddExtension(cert, issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
  AddExtension(cert, issuer, NID_ext_key_usage, "serverAuth");
  AddExtension(cert, issuer, NID_subject_key_identifier, "hash");
  // "issuer" is only a fallback: a reused CA from elsewhere may lack a subjectKeyIdentifier.
  AddExtension(cert, issuer, NID_authority_key_identifier, "keyid,issuer");
  AddSubjectAltName(cert, dns_names, ip_addresses);
  Require(X509_sign(cert, ca.key.get(), EVP_sha256()) > 0, "X509_sign (server)");
  return server;
}

}  // namespace

Result<CertificateFiles> EnsureCertificates(const std::string& dir,
                                            const std::vector<std::string>& dns_names,
                                            const std::vector<std::string>& ip_addresses) {
  if (Status valid = ValidateNames(dns_names, ip_addresses); !valid) {
    return valid.error();
  }
  const fs::path base(dir);
  std::error_code ec;
  fs::create_directories(base, ec);
  if (ec) {
    return MakeError("IoError", "cannot create directory " + dir + ": " + ec.message());
  }
  Result<UniqueFd> lock = LockDirectory(base);
  if (!lock) {
    return lock.error();
  }
  const ErrorQueueMark mark;
  const fs::path ca_key_path = base / "ca.key";
  CertificateFiles files{(base / "ca.pem").string(), (base / "server.pem").string(),
                         (base / "server.key").string()};

  std::optional<CertificateAuthority> ca = LoadCa(files.ca_file, ca_key_path);
  if (ca) {
    X509Ptr cert = ReadCertificate(files.cert_file);
    PkeyPtr key = ReadPrivateKey(files.key_file);
    if (cert && key &&
        ServerCertificateUsable(*ca, cert.get(), key.get(), dns_names, ip_addresses)) {
      return files;
    }
  } else {
    ca = NewCa();
    // Each key is written before its certificate. Interrupted in between, the pair on disk does
    // not match, which the next call detects and repairs by generating again.
    if (Status s = WriteFileAtomically(ca_key_path, ToPem(ca->key.get()), 0600); !s) {
      return s.error();
    }
    if (Status s = WriteFileAtomically(files.ca_file, ToPem(ca->cert.get()), 0644); !s) {
      return s.error();
    }
  }
  const ServerCertificate server = NewServerCertificate(*ca, dns_names, ip_addresses);
  if (Status s = WriteFileAtomically(files.key_file, ToPem(server.key.get()), 0600); !s) {
    return s.error();
  }
  if (Status s = WriteFileAtomically(files.cert_file, ToPem(server.cert.get()), 0644); !s) {
    return s.error();
  }
  return files;
}

}  // namespace iothub::emulator
