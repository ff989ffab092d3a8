#include "emulator/loop_bridge.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace iothub::emulator {
namespace {

void PutString(std::string& out, const std::string& s) {
  out += static_cast<char>(s.size() >> 8);
  out += static_cast<char>(s.size() & 0xFF);
  out += s;
}

void PutLength(std::string& out, std::size_t n) {
  do {
    unsigned char byte = n % 128;
    n /= 128;
    if (n > 0) byte |= 0x80;
    out += static_cast<char>(byte);
  } while (n > 0);
}

bool WriteAll(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

constexpr char kDoorbellTopic[] = "$emulator/doorbell";

}  // namespace

Doorbell::~Doorbell() {
  if (fd_ >= 0) ::close(fd_);
}

Status Doorbell::Connect(int port, const std::string& client_id, const std::string& username,
                         const std::string& password, int timeout_ms) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return MakeError("Doorbell", std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return MakeError("Doorbell",
                     std::string("connect to internal listener: ") + std::strerror(errno));
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::string body;
  PutString(body, "MQTT");
  body += '\x04';  // protocol level 3.1.1
  body += '\xC2';  // username, password, clean session
  body += '\0';    // keep-alive 0: the broker never times this client out
  body += '\0';
  PutString(body, client_id);
  PutString(body, username);
  PutString(body, password);
  std::string packet = "\x10";
  PutLength(packet, body.size());
  packet += body;
  if (!WriteAll(fd, packet)) {
    ::close(fd);
    return MakeError("Doorbell", "cannot send CONNECT");
  }
  pollfd pfd{fd, POLLIN, 0};
  unsigned char connack[4] = {};
  std::size_t got = 0;
  while (got < sizeof connack) {
    if (::poll(&pfd, 1, timeout_ms) <= 0) {
      ::close(fd);
      return MakeError("Doorbell", "no CONNACK from the broker");
    }
    const ssize_t n = ::recv(fd, connack + got, sizeof connack - got, 0);
    if (n <= 0) {
      ::close(fd);
      return MakeError("Doorbell", "broker closed the internal connection");
    }
    got += static_cast<std::size_t>(n);
  }
  if (connack[0] != 0x20 || connack[3] != 0) {
    ::close(fd);
    return MakeError("Doorbell", "broker refused the internal connection");
  }
  std::lock_guard lock(mutex_);
  fd_ = fd;
  return Ok{};
}

void Doorbell::Ring() {
  static const std::string kPacket = [] {
    std::string body;
    PutString(body, kDoorbellTopic);
    std::string p = "\x30";
    PutLength(p, body.size());
    return p + body;
  }();
  std::lock_guard lock(mutex_);
  if (fd_ >= 0) (void)WriteAll(fd_, kPacket);
}

void LoopBridge::Post(std::function<void()> task) {
  bool was_empty;
  {
    std::lock_guard lock(mutex_);
    was_empty = tasks_.empty();
    tasks_.push_back(std::move(task));
  }
  if (was_empty) wake_();
}

void LoopBridge::RunPending() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(mutex_);
    batch.swap(tasks_);
  }
  for (auto& task : batch) {
    try {
      task();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "iothub-emulator: internal error in a posted task: %s\n", e.what());
    }
  }
}

}  // namespace iothub::emulator
