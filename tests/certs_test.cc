#include "emulator/certs.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/openssl_ptr.h"

namespace iothub::emulator {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kNames = {"localhost", "iothub.local"};
const std::vector<std::string> kAddresses = {"127.0.0.1", "::1"};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

X509Ptr LoadCertificate(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  return X509Ptr(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
}

std::string CommonName(X509* cert) {
  char buffer[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buffer, sizeof buffer);
  return buffer;
}

int ValidityDays(X509* cert) {
  int days = -1;
  int seconds = -1;
  if (ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(cert), X509_get0_notAfter(cert)) != 1 ||
      seconds != 0) {
    return -1;
  }
  return days;
}

mode_t Mode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

// Verifies `cert_file` as a TLS server certificate against `ca_file` alone, in OpenSSL's strict
// X.509 mode, which also insists on the key identifier extensions.
testing::AssertionResult ChainsTo(const std::string& cert_file, const std::string& ca_file) {
  X509Ptr ca = LoadCertificate(ca_file);
  X509Ptr cert = LoadCertificate(cert_file);
  if (!ca || !cert) {
    return testing::AssertionFailure() << "cannot parse " << ca_file << " or " << cert_file;
  }
  StorePtr store(X509_STORE_new());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (X509_STORE_add_cert(store.get(), ca.get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1 ||
      X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER) != 1) {
    return testing::AssertionFailure() << "X509_STORE setup failed";
  }
  X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_X509_STRICT);
  if (X509_verify_cert(ctx.get()) != 1) {
    return testing::AssertionFailure()
           << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
  }
  return testing::AssertionSuccess();
}

// Runs a TLS handshake in memory between a server that loads the generated files the way
// cpp-httplib and mosquitto do and a client that trusts only ca.pem and checks `host`.
testing::AssertionResult Handshake(const CertificateFiles& files, const std::string& host,
                                   bool host_is_address) {
  SslCtxPtr server_ctx(SSL_CTX_new(TLS_server_method()));
  SslCtxPtr client_ctx(SSL_CTX_new(TLS_client_method()));
  if (SSL_CTX_use_certificate_chain_file(server_ctx.get(), files.cert_file.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(server_ctx.get(), files.key_file.c_str(), SSL_FILETYPE_PEM) !=
          1 ||
      SSL_CTX_load_verify_locations(client_ctx.get(), files.ca_file.c_str(), nullptr) != 1) {
    return testing::AssertionFailure() << "cannot load the files into SSL_CTX";
  }
  SSL_CTX_set_verify(client_ctx.get(), SSL_VERIFY_PEER, nullptr);
  SslPtr server(SSL_new(server_ctx.get()));
  SslPtr client(SSL_new(client_ctx.get()));
  X509_VERIFY_PARAM* param = SSL_get0_param(client.get());
  if (host_is_address ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1
                      : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) != 1) {
    return testing::AssertionFailure() << "cannot set the expected host " << host;
  }
  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  if (BIO_new_bio_pair(&client_bio, 0, &server_bio, 0) != 1) {
    return testing::AssertionFailure() << "BIO_new_bio_pair failed";
  }
  SSL_set_bio(client.get(), client_bio, client_bio);
  SSL_set_bio(server.get(), server_bio, server_bio);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());
  for (int round = 0; round < 10; ++round) {
    const int c = SSL_do_handshake(client.get());
    const int s = SSL_do_handshake(server.get());
    if (c == 1 && s == 1) {
      return testing::AssertionSuccess();
    }
    for (auto [ssl, rc] : {std::pair{client.get(), c}, std::pair{server.get(), s}}) {
      const int error = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl, rc);
      if (error != SSL_ERROR_NONE && error != SSL_ERROR_WANT_READ &&
          error != SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return testing::AssertionFailure()
               << "handshake failed; client verify result: "
               << X509_verify_cert_error_string(SSL_get_verify_result(client.get()));
      }
    }
  }
  return testing::AssertionFailure() << "handshake did not finish";
}

class CertsTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string root = (fs::path(testing::TempDir()) / "certs_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(root.data()), nullptr);
    root_ = root;
    dir_ = (root_ / "tls").string();  // not created yet: EnsureCertificates must create it
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string Path(const char* name) const { return (fs::path(dir_) / name).string(); }

  CertificateFiles Ensure(const std::vector<std::string>& names = kNames,
                          const std::vector<std::string>& addresses = kAddresses) {
    auto files = EnsureCertificates(dir_, names, addresses);
    EXPECT_TRUE(files.ok()) << files.error().message;
    return files.ok() ? *files : CertificateFiles{};
  }

  fs::path root_;
  std::string dir_;
};

TEST_F(CertsTest, CreatesCaAndServerFilesWithPrivateKeys) {
  const CertificateFiles files = Ensure();
  EXPECT_EQ(files.ca_file, Path("ca.pem"));
  EXPECT_EQ(files.cert_file, Path("server.pem"));
  EXPECT_EQ(files.key_file, Path("server.key"));
  for (const char* name : {"ca.pem", "ca.key", "server.pem", "server.key"}) {
    EXPECT_TRUE(fs::is_regular_file(Path(name))) << name;
    EXPECT_NE(ReadFile(Path(name)).find("-----BEGIN "), std::string::npos) << name;
  }
  EXPECT_EQ(Mode(Path("ca.key")), 0600u);
  EXPECT_EQ(Mode(Path("server.key")), 0600u);
  EXPECT_EQ(Mode(Path("ca.pem")), 0644u);
  EXPECT_EQ(Mode(Path("server.pem")), 0644u);
  // No temp file is left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator{}), 4);
}

TEST_F(CertsTest, ServerCertificateChainsToCaAndNamesEveryHost) {
  const CertificateFiles files = Ensure();
  EXPECT_TRUE(ChainsTo(files.cert_file, files.ca_file));
  EXPECT_FALSE(ChainsTo(files.ca_file, files.cert_file));

  X509Ptr cert = LoadCertificate(files.cert_file);
  ASSERT_TRUE(cert);
  constexpr unsigned kSanOnly = X509_CHECK_FLAG_NEVER_CHECK_SUBJECT;
  EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, kSanOnly, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "iothub.local", 0, kSanOnly, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "example.com", 0, kSanOnly, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "10.0.0.1", 0), 0);

  EXPECT_EQ(CommonName(cert.get()), "localhost");
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_TRUE(X509_get_extended_key_usage(cert.get()) & XKU_SSL_SERVER);
  EXPECT_TRUE(X509_get_key_usage(cert.get()) & KU_DIGITAL_SIGNATURE);
  EXPECT_NE(X509_get0_authority_key_id(cert.get()), nullptr);
  EXPECT_EQ(ValidityDays(cert.get()), 825);
  EXPECT_EQ(X509_cmp_current_time(X509_get0_notBefore(cert.get())), -1);

  BioPtr key_bio(BIO_new_file(files.key_file.c_str(), "r"));
  PkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  ASSERT_TRUE(key);
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
  EXPECT_TRUE(EVP_PKEY_is_a(key.get(), "EC"));

  X509Ptr ca = LoadCertificate(files.ca_file);
  ASSERT_TRUE(ca);
  EXPECT_EQ(CommonName(ca.get()), "iothub-emulator CA");
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_TRUE(X509_get_key_usage(ca.get()) & KU_KEY_CERT_SIGN);
  EXPECT_NE(X509_get0_subject_key_id(ca.get()), nullptr);
  EXPECT_GE(ValidityDays(ca.get()), 3650);
  BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(ca.get()), nullptr));
  EXPECT_GT(BN_num_bits(serial.get()), 64);
  EXPECT_LE(BN_num_bits(serial.get()), 128);
}

TEST_F(CertsTest, TlsHandshakeAcceptsRequestedHostsOnly) {
  const CertificateFiles files = Ensure();
  EXPECT_TRUE(Handshake(files, "localhost", false));
  EXPECT_TRUE(Handshake(files, "iothub.local", false));
  EXPECT_TRUE(Handshake(files, "127.0.0.1", true));
  EXPECT_TRUE(Handshake(files, "::1", true));
  EXPECT_FALSE(Handshake(files, "example.com", false));
  EXPECT_FALSE(Handshake(files, "10.0.0.1", true));
}

TEST_F(CertsTest, SecondCallReusesTheFiles) {
  Ensure();
  std::vector<std::string> before;
  for (const char* name : {"ca.pem", "ca.key", "server.pem", "server.key"}) {
    before.push_back(ReadFile(Path(name)));
  }
  Ensure();
  Ensure({"localhost"}, {});  // a subset of what the certificate already covers
  std::vector<std::string> after;
  for (const char* name : {"ca.pem", "ca.key", "server.pem", "server.key"}) {
    after.push_back(ReadFile(Path(name)));
  }
  EXPECT_EQ(before, after);
}

TEST_F(CertsTest, ExtraNameRegeneratesServerCertificateButKeepsCa) {
  const CertificateFiles files = Ensure();
  const std::string ca = ReadFile(files.ca_file);
  const std::string ca_key = ReadFile(Path("ca.key"));
  const std::string server = ReadFile(files.cert_file);
  const std::string server_key = ReadFile(files.key_file);

  std::vector<std::string> names = kNames;
  names.push_back("hub.example.test");
  Ensure(names, kAddresses);
  EXPECT_EQ(ReadFile(files.ca_file), ca);
  EXPECT_EQ(ReadFile(Path("ca.key")), ca_key);
  EXPECT_NE(ReadFile(files.cert_file), server);
  EXPECT_NE(ReadFile(files.key_file), server_key);
  EXPECT_TRUE(ChainsTo(files.cert_file, files.ca_file));
  X509Ptr cert = LoadCertificate(files.cert_file);
  ASSERT_TRUE(cert);
  EXPECT_EQ(X509_check_host(cert.get(), "hub.example.test", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "localhost", 0, 0, nullptr), 1);
}

TEST_F(CertsTest, ExtraAddressRegeneratesServerCertificate) {
  const CertificateFiles files = Ensure();
  const std::string server = ReadFile(files.cert_file);
  Ensure(kNames, {"127.0.0.1", "::1", "192.0.2.7"});
  EXPECT_NE(ReadFile(files.cert_file), server);
  X509Ptr cert = LoadCertificate(files.cert_file);
  ASSERT_TRUE(cert);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "192.0.2.7", 0), 1);
}

TEST_F(CertsTest, UncreatableDirectoryIsAnErrorNamingIt) {
  // Tests run as root, which ignores permissions: a path through a regular file cannot exist.
  const std::string file = (root_ / "plain-file").string();
  WriteFile(file, "not a directory");
  const std::string dir = file + "/tls";
  auto result = EnsureCertificates(dir, kNames, kAddresses);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, "IoError");
  EXPECT_NE(result.error().message.find(dir), std::string::npos) << result.error().message;
}

TEST_F(CertsTest, CorruptedServerCertificateIsReplaced) {
  const CertificateFiles files = Ensure();
  const std::string ca = ReadFile(files.ca_file);
  WriteFile(files.cert_file, "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n");
  ASSERT_FALSE(LoadCertificate(files.cert_file));
  Ensure();
  EXPECT_TRUE(ChainsTo(files.cert_file, files.ca_file));
  EXPECT_EQ(ReadFile(files.ca_file), ca);
  EXPECT_TRUE(Handshake(files, "localhost", false));
}

TEST_F(CertsTest, ServerKeyNotMatchingTheCertificateIsReplaced) {
  const CertificateFiles files = Ensure();
  const std::string server = ReadFile(files.cert_file);
  WriteFile(files.key_file, ReadFile(Path("ca.key")));
  Ensure();
  EXPECT_NE(ReadFile(files.cert_file), server);
  EXPECT_TRUE(Handshake(files, "localhost", false));
}

TEST_F(CertsTest, MissingCaKeyRegeneratesCaAndServerCertificate) {
  const CertificateFiles files = Ensure();
  const std::string ca = ReadFile(files.ca_file);
  const std::string server = ReadFile(files.cert_file);
  fs::remove(Path("ca.key"));
  Ensure();
  EXPECT_TRUE(fs::exists(Path("ca.key")));
  EXPECT_NE(ReadFile(files.ca_file), ca);
  EXPECT_NE(ReadFile(files.cert_file), server);
  EXPECT_TRUE(ChainsTo(files.cert_file, files.ca_file));
}

TEST_F(CertsTest, RejectsUnusableNames) {
  auto none = EnsureCertificates(dir_, {}, {});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "InvalidArgument");
  auto bad_address = EnsureCertificates(dir_, kNames, {"300.1.2.3"});
  ASSERT_FALSE(bad_address.ok());
  EXPECT_NE(bad_address.error().message.find("300.1.2.3"), std::string::npos);
  auto bad_name = EnsureCertificates(dir_, {"two words"}, {});
  ASSERT_FALSE(bad_name.ok());
  EXPECT_NE(bad_name.error().message.find("two words"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_));
}

TEST_F(CertsTest, AddressOnlyRequestUsesTheAddressAsCommonName) {
  const CertificateFiles files = Ensure({}, {"127.0.0.1"});
  X509Ptr cert = LoadCertificate(files.cert_file);
  ASSERT_TRUE(cert);
  EXPECT_EQ(CommonName(cert.get()), "127.0.0.1");
  EXPECT_TRUE(Handshake(files, "127.0.0.1", true));
}

TEST_F(CertsTest, ConcurrentCallsLeaveOneConsistentSet) {
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (std::size_t i = 0; i < ok.size(); ++i) {
    threads.emplace_back([this, &ok, i] {
      // Different requests, so several callers have to regenerate the server certificate.
      std::vector<std::string> names = kNames;
      names.push_back("host" + std::to_string(i) + ".test");
      ok[i] = EnsureCertificates(dir_, names, kAddresses).ok() ? 1 : 0;
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(ok, std::vector<int>(4, 1));
  // Checked before any further call could repair a mixed-up set.
  const CertificateFiles files{Path("ca.pem"), Path("server.pem"), Path("server.key")};
  EXPECT_TRUE(ChainsTo(files.cert_file, files.ca_file));
  EXPECT_TRUE(Handshake(files, "localhost", false));
  X509Ptr ca = LoadCertificate(files.ca_file);
  BioPtr ca_key_bio(BIO_new_file(Path("ca.key").c_str(), "r"));
  PkeyPtr ca_key(PEM_read_bio_PrivateKey(ca_key_bio.get(), nullptr, nullptr, nullptr));
  ASSERT_TRUE(ca && ca_key);
  EXPECT_EQ(X509_check_private_key(ca.get(), ca_key.get()), 1);
}

}  // namespace
}  // namespace iothub::emulator
