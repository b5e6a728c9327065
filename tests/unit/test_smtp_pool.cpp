// smtp::Pool against a scripted SMTP peer on a real loopback socket. The peer does what
// Postfix does only at unpredictable moments: it closes an idle session just as the client
// reuses it (between the client's check and its first command), or after it has received
// a message but before its final reply. The integration tests (faults_reinject_linkd)
// cover reuse and a timed-out idle session with Postfix's own listener.
#include "core/smtp/client.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace {

// What the peer does on the second transaction of its first connection.
enum class Second
{
  serve,
  close_before_reply,
  close_after_data
};

class Peer
{
public:
  explicit Peer(Second second) : m_second(second)
  {
    m_listen = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(m_listen, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(m_listen, 8) == 0);
    socklen_t len = sizeof a;
    ::getsockname(m_listen, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    m_thread = std::thread([this] { run(); });
  }
  ~Peer()
  {
    ::shutdown(m_listen, SHUT_RDWR);
    ::close(m_listen);
    m_thread.join();
  }
  int port = 0;
  std::atomic<int> connections{0};
  std::atomic<int> messages{0}; // message data fully received

private:
  void run()
  {
    for (;;) {
      int fd = ::accept4(m_listen, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        return;
      }
      const int n = ++connections;
      serve(fd, n == 1 ? m_second : Second::serve);
      ::close(fd);
    }
  }
  // Reads up to and including `end` (into `got`); false when the client closed.
  bool read_until(int fd, const std::string& end, std::string* got = nullptr)
  {
    while (m_buf.find(end) == std::string::npos) {
      char b[4096];
      ssize_t n = ::read(fd, b, sizeof b);
      if (n <= 0) {
        return false;
      }
      m_buf.append(b, static_cast<std::size_t>(n));
    }
    const std::size_t n = m_buf.find(end) + end.size();
    if (got != nullptr) {
      *got = m_buf.substr(0, n);
    }
    m_buf.erase(0, n);
    return true;
  }
  void say(int fd, const std::string& s) { (void)!::write(fd, s.data(), s.size()); }
  void serve(int fd, Second second)
  {
    m_buf.clear();
    say(fd, "220 peer ESMTP\r\n");
    if (!read_until(fd, "\r\n")) {
      return;
    }
    say(fd, "250-peer\r\n250-PIPELINING\r\n250 DSN\r\n");
    for (int txn = 1;; ++txn) {
      std::string line;
      if (!read_until(fd, "\r\n", &line)) { // MAIL or QUIT
        return;
      }
      if (line.rfind("QUIT", 0) == 0) {
        say(fd, "221 2.0.0 Bye\r\n");
        return;
      }
      if (txn == 2 && second == Second::close_before_reply) {
        return; // as if the idle session's timeout had just struck
      }
      if (!read_until(fd, "DATA\r\n")) {
        return;
      }
      say(fd, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
      if (!read_until(fd, "\r\n.\r\n")) {
        return;
      }
      ++messages;
      if (txn == 2 && second == Second::close_after_data) {
        return;
      }
      say(fd, "250 2.0.0 Ok: queued as Q" + std::to_string(messages.load()) + "\r\n");
    }
  }
  Second m_second;
  int m_listen = -1;
  std::string m_buf;
  std::thread m_thread;
};

std::vector<pli::smtp::Envelope> one(const std::string& rcpt)
{
  pli::smtp::Envelope e;
  e.mail_from = "pli-bounce+d1@buyer.example";
  e.rcpt = rcpt;
  e.notify = "SUCCESS,FAILURE,DELAY";
  e.data = "Subject: x\r\n\r\nbody\r\n";
  return {e};
}

pli::smtp::Options options(int port)
{
  pli::smtp::Options o;
  o.port = port;
  o.timeout_seconds = 5;
  return o;
}

// A pool whose first message went through a session to `peer`, now idle.
struct Reused
{
  explicit Reused(Second second) : peer(second), pool(options(peer.port))
  {
    REQUIRE(pool.send(one("a@remote.example")).at(0).ok);
  }
  pli::smtp::TxnResult send(const std::string& rcpt)
  {
    auto r = pool.send(one(rcpt));
    REQUIRE(r.size() == 1);
    return r[0];
  }
  Peer peer;
  pli::smtp::Pool pool;
};

} // namespace

TEST_CASE("smtp pool: later sends reuse the open session", "[smtp]")
{
  Peer peer(Second::serve);
  pli::smtp::Pool pool(options(peer.port));
  for (int i = 1; i <= 3; ++i) {
    auto r = pool.send(one("r@remote.example"));
    REQUIRE(r.size() == 1);
    CHECK(r[0].ok);
    CHECK(r[0].queue_id == "Q" + std::to_string(i));
  }
  CHECK(peer.connections == 1);
  CHECK(peer.messages == 3);
}

TEST_CASE("smtp pool: a reused session the server closes: before the message is sent, it "
          "goes on a new connection; after, a temporary failure, never sent twice",
          "[smtp]")
{
  const auto [second, sent, connections] = GENERATE(table<Second, bool, int>(
      {{Second::close_before_reply, true, 2}, {Second::close_after_data, false, 1}}));
  CAPTURE(sent);
  Reused f(second);
  const auto r = f.send("b@remote.example");
  CHECK(r.ok == sent);
  CHECK(r.temporary == !sent);
  CHECK(f.peer.messages == 2); // the peer received the second message once
  CHECK(f.peer.connections == connections);
  // A broken session is not kept: the next send goes on the new one, or connects again.
  CHECK(f.send("c@remote.example").ok);
  CHECK(f.peer.connections == 2);
}

TEST_CASE("smtp pool: a session idle for longer than max_idle_time is closed, not reused", "[smtp]")
{
  Peer peer(Second::serve);
  pli::smtp::Pool pool(options(peer.port), pli::smtp::Pool::Limits{8, std::chrono::seconds(0)});
  REQUIRE(pool.send(one("a@remote.example")).at(0).ok);
  REQUIRE(pool.send(one("b@remote.example")).at(0).ok);
  CHECK(peer.connections == 2);
  CHECK(peer.messages == 2);
}
