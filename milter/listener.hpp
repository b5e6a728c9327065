// pli-milter's listening sockets, created and bound before daemon() (privileged set-up,
// errors on the terminal) and handed over afterwards: libmilter's TCP socket (Debian's
// libmilter takes a bound socket as "fd:N") and the loopback /metrics listener.
#pragma once

#include <string>
#include <utility>

namespace pli::milter {

// Owns a file descriptor: closed at destruction unless released.
class Fd
{
public:
  Fd() = default;
  explicit Fd(int fd) : m_fd(fd) {}
  Fd(Fd&& o) noexcept : m_fd(std::exchange(o.m_fd, -1)) {}
  Fd& operator=(Fd&& o) noexcept
  {
    std::swap(m_fd, o.m_fd);
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return m_fd; }
  // Gives the descriptor to its new owner (libmilter, libmicrohttpd).
  int release() { return std::exchange(m_fd, -1); }
  explicit operator bool() const { return m_fd >= 0; }

private:
  int m_fd = -1;
};

// A listening TCP socket on `host`:`port` (a name or an address literal; `family`
// AF_INET, AF_INET6 or AF_UNSPEC), with
// SO_REUSEADDR and, when `nodelay`, TCP_NODELAY (inherited by the accepted sockets).
// An empty Fd on failure, `error` saying why.
Fd listen_tcp(int family, const std::string& host, const std::string& port, bool nodelay,
              std::string& error);

// The family, host and port of a libmilter spec inet:PORT@HOST (AF_INET) or
// inet6:PORT@HOST (AF_INET6); false for another spec (unix:, local:).
bool inet_spec(const std::string& spec, int& family, std::string& host, std::string& port);

} // namespace pli::milter
