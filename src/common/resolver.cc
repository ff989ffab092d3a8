#include "common/resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <utility>

namespace iothub {
namespace {

Result<std::vector<std::string>> LookUp(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0) {
    return MakeError("resolve", "cannot resolve host name '" + host + "': " + ::gai_strerror(rc));
  }
  std::vector<std::string> out;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* address =
        a->ai_family == AF_INET
            ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr)
            : static_cast<const void*>(
                  &reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr);
    if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) &&
        ::inet_ntop(a->ai_family, address, text, sizeof text) != nullptr) {
      out.emplace_back(text);
    }
  }
  ::freeaddrinfo(found);
  if (out.empty()) return MakeError("resolve", "host name '" + host + "' has no address");
  return out;
}

}  // namespace

bool IsNumericHost(const std::string& host) {
  in6_addr v6{};
  in_addr v4{};
  return ::inet_pton(AF_INET, host.c_str(), &v4) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

ThreadResolver::ThreadResolver(EventLoop& loop) : loop_(loop), worker_([this] { WorkerMain(); }) {}

ThreadResolver::~ThreadResolver() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  wake_.notify_all();
  worker_.join();
}

void ThreadResolver::Resolve(const std::string& host, Done done) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back({host, std::move(done)});
  }
  wake_.notify_one();
}

void ThreadResolver::WorkerMain() {
  for (;;) {
    Lookup lookup;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      lookup = std::move(queue_.front());
      queue_.pop_front();
    }
    auto result = LookUp(lookup.host);
    loop_.Post([watch = watch_, done = std::move(lookup.done), result = std::move(result)] {
      if (watch.alive()) done(result);
    });
  }
}

}  // namespace iothub
