// AddSystemTrust: the hashed directory is read lazily (no certificate parsed up front), a
// chain to a root in it still verifies, and SSL_CERT_FILE (the user's explicit bundle) is
// honoured by loading it as OpenSSL's defaults do.
#include "common/trust_store.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "common/openssl_ptr.h"
#include "emulator/certs.h"

namespace iothub {
namespace {

namespace fs = std::filesystem;

X509Ptr ReadCert(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return nullptr;
  X509Ptr cert(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  return cert;
}

// Sets an environment variable for the test's duration (nullopt: unset), then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class TrustStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("trust-store-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "certs");
    auto files = emulator::EnsureCertificates((dir_ / "pki").string(), {"hub.example"}, {});
    ASSERT_TRUE(files) << files.error().message;
    files_ = *files;
    X509Ptr ca = ReadCert(files_.ca_file);
    ASSERT_TRUE(ca);
    // The name update-ca-certificates (c_rehash) gives it: the subject hash, ".0".
    char name[32];
    std::snprintf(name, sizeof name, "%08lx.0", X509_subject_name_hash(ca.get()));
    fs::copy_file(files_.ca_file, dir_ / "certs" / name);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Whether the server certificate verifies against `store`.
  bool Verifies(X509_STORE* store) {
    X509Ptr leaf = ReadCert(files_.cert_file);
    StoreCtxPtr ctx(X509_STORE_CTX_new());
    if (!leaf || !ctx || X509_STORE_CTX_init(ctx.get(), store, leaf.get(), nullptr) != 1) {
      return false;
    }
    return X509_verify_cert(ctx.get()) == 1;
  }

  fs::path dir_;
  emulator::CertificateFiles files_;
};

TEST_F(TrustStoreTest, AHashedDirectoryIsReadOnlyWhenAChainNeedsIt) {
  ScopedEnv file("SSL_CERT_FILE", std::nullopt);
  ScopedEnv dir("SSL_CERT_DIR", (dir_ / "certs").string());
  StorePtr store(X509_STORE_new());
  std::string error;
  ASSERT_TRUE(AddSystemTrust(store.get(), &error)) << error;
  EXPECT_EQ(sk_X509_OBJECT_num(X509_STORE_get0_objects(store.get())), 0)
      << "certificates were parsed up front";
  EXPECT_TRUE(Verifies(store.get()));
  // Read on demand: now the root is held.
  EXPECT_EQ(sk_X509_OBJECT_num(X509_STORE_get0_objects(store.get())), 1);
}

TEST_F(TrustStoreTest, SslCertFileIsLoadedAsOpenSslDoes) {
  ScopedEnv file("SSL_CERT_FILE", files_.ca_file);
  ScopedEnv dir("SSL_CERT_DIR", (dir_ / "empty").string());
  StorePtr store(X509_STORE_new());
  std::string error;
  ASSERT_TRUE(AddSystemTrust(store.get(), &error)) << error;
  EXPECT_EQ(sk_X509_OBJECT_num(X509_STORE_get0_objects(store.get())), 1);
  EXPECT_TRUE(Verifies(store.get()));
}

TEST_F(TrustStoreTest, ADirectoryWithoutHashedNamesFallsBackToTheDefaults) {
  // A bundle-only system: the directory has certificates under their own names, which the
  // lazy lookup would never find; the defaults (the bundle file) are loaded instead.
  fs::create_directories(dir_ / "plain");
  fs::copy_file(files_.ca_file, dir_ / "plain" / "my-ca.pem");
  ScopedEnv file("SSL_CERT_FILE", std::nullopt);
  ScopedEnv dir("SSL_CERT_DIR", (dir_ / "plain").string());
  StorePtr store(X509_STORE_new());
  std::string error;
  ASSERT_TRUE(AddSystemTrust(store.get(), &error)) << error;
  EXPECT_FALSE(Verifies(store.get())) << "the private CA is in no default location";
  if (!fs::exists(X509_get_default_cert_file())) GTEST_SKIP() << "no system CA bundle here";
  EXPECT_GT(sk_X509_OBJECT_num(X509_STORE_get0_objects(store.get())), 0)
      << "the system bundle was not loaded";
}

}  // namespace
}  // namespace iothub
