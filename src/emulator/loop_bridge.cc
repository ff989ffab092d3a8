#include "emulator/loop_bridge.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
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

Status Doorbell::Connect(const std::string& socket_path, const std::string& client_id,
                         const std::string& username, const std::string& password, int timeout_ms) {
  sockaddr_un addr{};
  if (socket_path.size() >= sizeof addr.sun_path) {
    return MakeError("Doorbell", "internal socket path too long: " + socket_path);
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return MakeError("Doorbell", std::string("socket: ") + std::strerror(errno));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    return MakeError("Doorbell", "connect to internal socket " + socket_path + ": " + why);
  }
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
