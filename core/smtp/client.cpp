#include "core/smtp/client.hpp"

#include "core/smtp/xtext.hpp"
#include "core/util/text.hpp"

#include <fmt/format.h>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iterator>
#include <tuple>

namespace pli::smtp {

class Connection
{
public:
  explicit Connection(int timeout_seconds) : m_timeout_ms(timeout_seconds * 1000) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection()
  {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
  }

  std::string connect(const std::string& host, int port)
  {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::string service = std::to_string(port);
    if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
      m_trouble = Failure::io;
      return fmt::format("cannot resolve {}: {}", host, gai_strerror(rc));
    }
    std::string err = "no address";
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      int fd =
          ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
      if (fd < 0) {
        err = std::strerror(errno);
        continue;
      }
      if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        err = std::strerror(errno);
        ::close(fd);
        continue;
      }
      pollfd p{fd, POLLOUT, 0};
      int soerr = 0;
      socklen_t len = sizeof soerr;
      if (::poll(&p, 1, m_timeout_ms) != 1 ||
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
        err = soerr != 0 ? std::strerror(soerr) : "connect timeout";
        ::close(fd);
        continue;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      m_fd = fd;
      freeaddrinfo(res);
      return "";
    }
    freeaddrinfo(res);
    m_trouble = Failure::unreachable;
    return fmt::format("cannot connect to {}:{}: {}", host, port, err);
  }

  // What the last connection trouble was (a code 0 reply, a write or connect error).
  Failure trouble() const { return m_trouble; }

  // Something to read, or the connection closed (an idle session must have neither).
  bool readable() const
  {
    pollfd p{m_fd, POLLIN, 0};
    return m_fd < 0 || ::poll(&p, 1, 0) != 0;
  }

  // Writes all bytes; returns an error text or "".
  std::string write(std::string_view data)
  {
    while (!data.empty()) {
      ssize_t n = ::send(m_fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd p{m_fd, POLLOUT, 0};
        if (::poll(&p, 1, m_timeout_ms) != 1) {
          m_trouble = Failure::io;
          return "write timeout";
        }
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      m_trouble = Failure::io;
      return fmt::format("write failed: {}", std::strerror(errno));
    }
    return "";
  }

  // Reads one (possibly multi-line) reply. code 0 = connection trouble (text says why).
  std::pair<int, std::string> read_reply()
  {
    std::string text;
    for (;;) {
      auto nl = m_buffer.find('\n');
      while (nl == std::string::npos) {
        if (m_buffer.size() > 64 * 1024) {
          m_trouble = Failure::io;
          return {0, "reply line too long"};
        }
        pollfd p{m_fd, POLLIN, 0};
        if (::poll(&p, 1, m_timeout_ms) != 1) {
          m_trouble = Failure::io;
          return {0, "read timeout"};
        }
        char buf[4096];
        ssize_t n = ::recv(m_fd, buf, sizeof buf, 0);
        if (n == 0) {
          m_trouble = Failure::unreachable;
          return {0, "connection closed by the server"};
        }
        if (n < 0) {
          if (errno == EINTR || errno == EAGAIN) {
            continue;
          }
          m_trouble = Failure::io;
          return {0, fmt::format("read failed: {}", std::strerror(errno))};
        }
        m_buffer.append(buf, static_cast<std::size_t>(n));
        nl = m_buffer.find('\n');
      }
      std::string line = m_buffer.substr(0, nl);
      m_buffer.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') {
        line.pop_back();
      }
      if (line.size() < 3) {
        return {0, "malformed reply: " + line};
      }
      if (!text.empty()) {
        text += "\n";
      }
      text += util::clean_line(line); // the server's text, kept as evidence
      if (line.size() == 3 || line[3] != '-') {
        int code = std::atoi(line.substr(0, 3).c_str());
        return {code, text};
      }
    }
  }

private:
  int m_fd = -1;
  int m_timeout_ms;
  Failure m_trouble = Failure::io;
  std::string m_buffer;
};

struct Session
{
  explicit Session(int timeout_seconds) : conn(timeout_seconds) {}
  Connection conn;
  bool pipelining = false;
  bool dsn = false;
  bool smtputf8 = false;
  std::chrono::steady_clock::time_point idle_since;
};

namespace {

std::string dot_stuff(std::string_view data)
{
  std::string out;
  out.reserve(data.size() + data.size() / 50 + 8);
  bool line_start = true;
  for (std::size_t i = 0; i < data.size(); ++i) {
    char c = data[i];
    if (line_start && c == '.') {
      out.push_back('.');
    }
    if (c == '\n') {
      if (out.empty() || out.back() != '\r') {
        out.push_back('\r');
      }
      out.push_back('\n');
      line_start = true;
      continue;
    }
    if (c == '\r' && (i + 1 >= data.size() || data[i + 1] != '\n')) {
      out += "\r\n"; // a bare CR becomes a line break, never a bare CR on the wire
      line_start = true;
      continue;
    }
    out.push_back(c);
    line_start = false;
  }
  if (!out.empty() && out.back() != '\n') {
    out += "\r\n";
  }
  out += ".\r\n";
  return out;
}

std::string queue_id_of(const std::string& reply)
{
  auto pos = reply.find("queued as ");
  if (pos == std::string::npos) {
    return "";
  }
  pos += 10;
  auto end = reply.find_first_of(" \r\n", pos);
  return reply.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
}

} // namespace

bool needs_smtputf8(const Envelope& envelope)
{
  if (has_non_ascii(envelope.mail_from) || has_non_ascii(envelope.rcpt)) {
    return true;
  }
  // RFC 6532 headers (raw UTF-8): the header section ends at the first empty line.
  std::string_view data(envelope.data);
  std::size_t end = data.find("\n\n");
  const std::size_t crlf = data.find("\r\n\r\n");
  if (crlf != std::string_view::npos && (end == std::string_view::npos || crlf < end)) {
    end = crlf;
  }
  return has_non_ascii(data.substr(0, end));
}

namespace {

// `kind` when there is no reply (code 0); a reply's failure otherwise.
TxnResult failure(int code, const std::string& text, Failure kind = Failure::reply)
{
  TxnResult r;
  r.ok = false;
  r.temporary = code == 0 || code / 100 == 4;
  r.failure = code == 0 ? kind : Failure::reply;
  r.reply = text;
  return r;
}

// Connects, reads the greeting and says EHLO. On failure: the reply code (0 for connection
// trouble) and a text.
std::pair<int, std::string> open_session(const Options& options, Session& s)
{
  if (auto err = s.conn.connect(options.host, options.port); !err.empty()) {
    return {0, err};
  }
  auto [greet, greet_text] = s.conn.read_reply();
  if (greet != 220) {
    return {greet, "greeting: " + greet_text};
  }
  if (auto err = s.conn.write("EHLO " + options.helo + "\r\n"); !err.empty()) {
    return {0, err};
  }
  auto [ehlo, ehlo_text] = s.conn.read_reply();
  if (ehlo != 250) {
    return {ehlo, "EHLO: " + ehlo_text};
  }
  s.pipelining = ehlo_text.find("PIPELINING") != std::string::npos;
  s.dsn = ehlo_text.find("DSN") != std::string::npos;
  s.smtputf8 = ehlo_text.find("SMTPUTF8") != std::string::npos;
  return {250, ""};
}

// Runs envelopes[results.size()...] on `s`, one transaction each, appending their results.
// Stops when the connection breaks: `lost` says why and `data_sent` whether the broken
// transaction had sent its message (the server may have queued it).
struct RunEnd
{
  std::string lost; // empty: every envelope has its result and the session is usable
  bool data_sent = false;
  Failure failure = Failure::unreachable; // when lost
};

RunEnd run_transactions(Session& s, const std::vector<Envelope>& envelopes,
                        std::vector<TxnResult>& results)
{
  Connection& conn = s.conn;
  while (results.size() < envelopes.size()) {
    const Envelope& env = envelopes[results.size()];
    const bool utf8 = needs_smtputf8(env);
    if (utf8 && !s.smtputf8) {
      // RFC 6531 §3.2: without the extension the message cannot be sent in any form.
      results.push_back(failure(553, "553 5.6.7 the re-injection listener does not offer "
                                     "SMTPUTF8, needed for this internationalised message"));
      continue;
    }
    std::string mail = "MAIL FROM:<" + env.mail_from + ">";
    if (utf8) {
      mail += " SMTPUTF8";
    }
    if (s.dsn && !env.ret.empty()) {
      mail += " RET=" + env.ret;
    }
    if (s.dsn && !env.envid.empty()) {
      mail += " ENVID=" + xtext_encode(env.envid);
    }
    std::string rcpt = "RCPT TO:<" + env.rcpt + ">";
    if (s.dsn && !env.notify.empty()) {
      rcpt += " NOTIFY=" + env.notify + " ORCPT=" + orcpt_value(env.rcpt);
    }
    std::string commands = mail + "\r\n" + rcpt + "\r\n" + "DATA\r\n";
    int mail_code = 0, rcpt_code = 0, data_code = 0;
    std::string mail_text, rcpt_text, data_text;
    if (s.pipelining) {
      if (auto err = conn.write(commands); !err.empty()) {
        return {err, false, conn.trouble()};
      }
      std::tie(mail_code, mail_text) = conn.read_reply();
      std::tie(rcpt_code, rcpt_text) = conn.read_reply();
      std::tie(data_code, data_text) = conn.read_reply();
    } else {
      if (auto err = conn.write(mail + "\r\n"); !err.empty()) {
        return {err, false, conn.trouble()};
      }
      std::tie(mail_code, mail_text) = conn.read_reply();
      if (mail_code == 250) {
        conn.write(rcpt + "\r\n");
        std::tie(rcpt_code, rcpt_text) = conn.read_reply();
      }
      if (rcpt_code == 250) {
        conn.write("DATA\r\n");
        std::tie(data_code, data_text) = conn.read_reply();
      }
    }
    // 421: the server is closing the connection (e.g. an idle session's timeout).
    if (mail_code == 0 || mail_code == 421 ||
        (s.pipelining && (rcpt_code == 0 || data_code == 0))) {
      return {"connection lost: " + mail_text + rcpt_text + data_text, false};
    }
    if (mail_code != 250 || rcpt_code / 100 != 2 || data_code != 354) {
      if (data_code == 354) {
        conn.write(".\r\n"); // an empty message the server will reject or we abandon
        conn.read_reply();
      }
      int code = mail_code != 250 ? mail_code : rcpt_code / 100 != 2 ? rcpt_code : data_code;
      std::string text = mail_code != 250       ? mail_text
                         : rcpt_code / 100 != 2 ? rcpt_text
                                                : data_text;
      results.push_back(failure(code, text));
      conn.write("RSET\r\n");
      if (conn.read_reply().first == 0) {
        return {"connection lost after RSET", false};
      }
      continue;
    }
    if (auto err = conn.write(dot_stuff(env.data)); !err.empty()) {
      return {err, true, conn.trouble()};
    }
    auto [end_code, end_text] = conn.read_reply();
    if (end_code == 0) {
      return {end_text, true, conn.trouble()};
    }
    if (end_code != 250) {
      results.push_back(failure(end_code, end_text));
      continue;
    }
    TxnResult ok;
    ok.ok = true;
    ok.temporary = false;
    ok.reply = end_text;
    ok.queue_id = queue_id_of(end_text);
    results.push_back(std::move(ok));
  }
  return {};
}

void fail_rest(std::vector<TxnResult>& results, std::size_t n, int code, const std::string& why,
               Failure kind)
{
  while (results.size() < n) {
    results.push_back(failure(code, why, kind));
  }
}

void quit(Session& s)
{
  s.conn.write("QUIT\r\n");
  s.conn.read_reply();
}

} // namespace

std::vector<TxnResult> send(const Options& options, const std::vector<Envelope>& envelopes)
{
  // A pool that keeps no session: one connection, closed with QUIT.
  return Pool(options, Pool::Limits{0, std::chrono::seconds(0)}).send(envelopes);
}

Pool::Pool(Options options, Limits limits) : m_options(std::move(options)), m_limits(limits) {}

Pool::~Pool()
{
  for (auto& s : m_idle) {
    quit(*s);
  }
}

std::unique_ptr<Session> Pool::take()
{
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<Session>> expired;
  std::unique_ptr<Session> found;
  {
    std::lock_guard lock(m_mu);
    // The most recently used session first; every stale one is closed on the way.
    std::vector<std::unique_ptr<Session>> keep;
    for (auto it = m_idle.rbegin(); it != m_idle.rend(); ++it) {
      // Something from the server meanwhile: a closed connection or the 421 of its timeout.
      if ((*it)->conn.readable()) {
        continue;
      }
      if (now - (*it)->idle_since >= m_limits.max_idle_time) {
        expired.push_back(std::move(*it));
      } else if (found == nullptr) {
        found = std::move(*it);
      } else {
        keep.push_back(std::move(*it));
      }
    }
    m_idle.assign(std::make_move_iterator(keep.rbegin()), std::make_move_iterator(keep.rend()));
  }
  for (auto& s : expired) {
    s->conn.write("QUIT\r\n"); // its reply is not awaited: the server logs no lost client
  }
  return found;
}

void Pool::give_back(std::unique_ptr<Session> s)
{
  s->idle_since = std::chrono::steady_clock::now();
  std::unique_lock lock(m_mu);
  if (m_idle.size() < m_limits.max_idle) {
    m_idle.push_back(std::move(s));
    return;
  }
  lock.unlock();
  quit(*s);
}

std::vector<TxnResult> Pool::send(const std::vector<Envelope>& envelopes)
{
  std::vector<TxnResult> results;
  std::unique_ptr<Session> s = take();
  if (s != nullptr) {
    auto end = run_transactions(*s, envelopes, results);
    if (end.lost.empty()) {
      give_back(std::move(s));
      return results;
    }
    if (end.data_sent || results.size() == envelopes.size()) {
      // The server may have queued the message it was sent: not sent again here (the
      // caller records the failure and its client retries).
      fail_rest(results, envelopes.size(), 0, end.lost, end.failure);
      return results;
    }
    // The idle session was closed meanwhile: the rest on a new connection.
  }
  s = std::make_unique<Session>(m_options.timeout_seconds);
  if (auto [code, why] = open_session(m_options, *s); code != 250) {
    fail_rest(results, envelopes.size(), code, why, s->conn.trouble());
    return results;
  }
  if (auto end = run_transactions(*s, envelopes, results); !end.lost.empty()) {
    fail_rest(results, envelopes.size(), 0, end.lost, end.failure);
    return results;
  }
  give_back(std::move(s));
  return results;
}

} // namespace pli::smtp
