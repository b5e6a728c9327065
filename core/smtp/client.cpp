#include "core/smtp/client.hpp"

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

namespace pli::smtp {

namespace {

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
    return fmt::format("cannot connect to {}:{}: {}", host, port, err);
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
          return "write timeout";
        }
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
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
          return {0, "reply line too long"};
        }
        pollfd p{m_fd, POLLIN, 0};
        if (::poll(&p, 1, m_timeout_ms) != 1) {
          return {0, "read timeout"};
        }
        char buf[4096];
        ssize_t n = ::recv(m_fd, buf, sizeof buf, 0);
        if (n == 0) {
          return {0, "connection closed by the server"};
        }
        if (n < 0) {
          if (errno == EINTR || errno == EAGAIN) {
            continue;
          }
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
      text += line;
      if (line.size() == 3 || line[3] != '-') {
        int code = std::atoi(line.substr(0, 3).c_str());
        return {code, text};
      }
    }
  }

private:
  int m_fd = -1;
  int m_timeout_ms;
  std::string m_buffer;
};

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

TxnResult failure(int code, const std::string& text)
{
  TxnResult r;
  r.ok = false;
  r.temporary = code == 0 || code / 100 == 4;
  r.reply = text;
  return r;
}

} // namespace

std::vector<TxnResult> send(const Options& options, const std::vector<Envelope>& envelopes)
{
  std::vector<TxnResult> results;
  Connection conn(options.timeout_seconds);
  auto fail_rest = [&](int code, const std::string& why) {
    while (results.size() < envelopes.size()) {
      results.push_back(failure(code, why));
    }
    return results;
  };
  if (auto err = conn.connect(options.host, options.port); !err.empty()) {
    return fail_rest(0, err);
  }
  auto [greet, greet_text] = conn.read_reply();
  if (greet != 220) {
    return fail_rest(greet == 0 ? 0 : greet, "greeting: " + greet_text);
  }
  if (auto err = conn.write("EHLO " + options.helo + "\r\n"); !err.empty()) {
    return fail_rest(0, err);
  }
  auto [ehlo, ehlo_text] = conn.read_reply();
  if (ehlo != 250) {
    return fail_rest(ehlo, "EHLO: " + ehlo_text);
  }
  const bool pipelining = ehlo_text.find("PIPELINING") != std::string::npos;
  const bool dsn = ehlo_text.find("DSN") != std::string::npos;

  for (const auto& env : envelopes) {
    std::string mail = "MAIL FROM:<" + env.mail_from + ">";
    if (dsn && !env.ret.empty()) {
      mail += " RET=" + env.ret;
    }
    if (dsn && !env.envid.empty()) {
      mail += " ENVID=" + env.envid;
    }
    std::string rcpt = "RCPT TO:<" + env.rcpt + ">";
    if (dsn && !env.notify.empty()) {
      rcpt += " NOTIFY=" + env.notify + " ORCPT=rfc822;" + env.rcpt;
    }
    std::string commands = mail + "\r\n" + rcpt + "\r\n" + "DATA\r\n";
    int mail_code = 0, rcpt_code = 0, data_code = 0;
    std::string mail_text, rcpt_text, data_text;
    if (pipelining) {
      if (auto err = conn.write(commands); !err.empty()) {
        return fail_rest(0, err);
      }
      std::tie(mail_code, mail_text) = conn.read_reply();
      std::tie(rcpt_code, rcpt_text) = conn.read_reply();
      std::tie(data_code, data_text) = conn.read_reply();
    } else {
      if (auto err = conn.write(mail + "\r\n"); !err.empty()) {
        return fail_rest(0, err);
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
    if (mail_code == 0 || (pipelining && (rcpt_code == 0 || data_code == 0))) {
      return fail_rest(0, "connection lost: " + mail_text + rcpt_text + data_text);
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
        return fail_rest(0, "connection lost after RSET");
      }
      continue;
    }
    if (auto err = conn.write(dot_stuff(env.data)); !err.empty()) {
      return fail_rest(0, err);
    }
    auto [end_code, end_text] = conn.read_reply();
    if (end_code == 0) {
      return fail_rest(0, end_text);
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
  conn.write("QUIT\r\n");
  conn.read_reply();
  return results;
}

} // namespace pli::smtp
