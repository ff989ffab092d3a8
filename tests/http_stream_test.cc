// HttplibStreamer against real sockets: streams that answer, and servers that never do. The
// loop must never wait for a stream's thread.
#include "common/http_stream.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <thread>
#include <vector>

namespace iothub {
namespace {

using Steady = std::chrono::steady_clock;

// A listener on 127.0.0.1 that never accepts, with its one-connection backlog already full:
// the kernel drops further SYNs, so a connect to it hangs until the client's own timeout.
class BlackHole {
 public:
  BlackHole() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listener_, 0) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen";
    }
    port_ = ntohs(addr.sin_port);
    for (int i = 0; i < 3; ++i) {  // fill the backlog; later ones just stay in SYN-SENT
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), len);
      fillers_.push_back(fd);
    }
  }
  ~BlackHole() {
    for (int fd : fillers_) ::close(fd);
    ::close(listener_);
  }
  int port() const { return port_; }

 private:
  int listener_ = -1;
  int port_ = 0;
  std::vector<int> fillers_;
};

HttpClientConfig Plain(int port, std::int64_t connect_timeout_ms) {
  HttpClientConfig config;
  config.host = "127.0.0.1";
  config.port = port;
  config.tls = false;
  config.connect_timeout_ms = connect_timeout_ms;
  config.read_timeout_ms = 30'000;
  return config;
}

TEST(HttplibStreamerTest, StreamsChunksThenEnds) {
  httplib::Server server;
  server.Get("/events", [](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/event-stream",
                                     [](std::size_t offset, httplib::DataSink& sink) {
                                       if (offset == 0) {
                                         sink.write("data: 1\n\n", 9);
                                         return true;
                                       }
                                       sink.done();
                                       return true;
                                     });
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { server.listen_after_bind(); });
  PollLoop loop;
  std::string data;
  std::optional<int> opened;
  std::optional<Result<HttpResponse>> ended;
  {
    HttplibStreamer streamer(loop, Plain(port, 5'000));
    StreamHandlers handlers;
    handlers.on_open = [&](int status, const HttpHeaders&) { opened = status; };
    handlers.on_data = [&](std::string chunk) { data += chunk; };
    handlers.on_end = [&](Result<HttpResponse> end) { ended = std::move(end); };
    auto stream = streamer.Open({"GET", "/events", {}, {}}, std::move(handlers));
    ASSERT_TRUE(loop.RunUntil([&] { return ended.has_value(); }, 10'000));
    EXPECT_EQ(opened, 200);
    EXPECT_EQ(data, "data: 1\n\n");
    ASSERT_TRUE(ended->ok()) << ended->error().message;
    EXPECT_EQ((*ended)->status, 200);
  }
  server.stop();
  serving.join();
}

TEST(HttplibStreamerTest, ClosingAStreamStuckInConnectDoesNotBlockTheLoop) {
  BlackHole hole;
  PollLoop loop;
  bool heard = false;
  HttplibStreamer streamer(loop, Plain(hole.port(), 3'000));
  StreamHandlers handlers;
  handlers.on_open = [&](int, const HttpHeaders&) { heard = true; };
  handlers.on_end = [&](Result<HttpResponse>) { heard = true; };
  auto stream = streamer.Open({"GET", "/rest/events", {}, {}}, std::move(handlers));
  loop.RunUntil([] { return false; }, 200);  // the thread is in connect() now
  const auto before = Steady::now();
  stream.reset();
  const auto closing = Steady::now() - before;
  // Before: the handle waited for the connect to time out (3 s here, 10 s by default).
  EXPECT_LT(closing, std::chrono::milliseconds(500));
  EXPECT_EQ(streamer.ending(), 1u) << "its thread ends on its own";
  // The loop goes on meanwhile, and nothing of the closed stream reaches it; the streamer
  // joins the thread when its connect times out (at the latest in its destructor).
  int ticks = 0;
  loop.RunAfter(10, [&] { ++ticks; });
  loop.RunUntil([] { return false; }, 100);
  EXPECT_EQ(ticks, 1);
  EXPECT_FALSE(heard);
}

}  // namespace
}  // namespace iothub
