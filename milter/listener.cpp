#include "milter/listener.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace pli::milter {

Fd::~Fd()
{
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

Fd listen_tcp(int family, const std::string& host, const std::string& port, bool nodelay,
              std::string& error)
{
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
      rc != 0) {
    error = "cannot resolve " + host + ": " + ::gai_strerror(rc);
    return Fd();
  }
  const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(res, &::freeaddrinfo);
  error = "no address for " + host;
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd) {
      error = std::strerror(errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (nodelay) {
      ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd.get(), 128) != 0) {
      error = std::strerror(errno);
      continue;
    }
    error.clear();
    return fd;
  }
  return Fd();
}

bool inet_spec(const std::string& spec, int& family, std::string& host, std::string& port)
{
  std::string rest;
  if (spec.rfind("inet:", 0) == 0) {
    family = AF_INET;
    rest = spec.substr(5);
  } else if (spec.rfind("inet6:", 0) == 0) {
    family = AF_INET6;
    rest = spec.substr(6);
  }
  if (rest.empty()) {
    return false;
  }
  const auto at = rest.find('@');
  port = rest.substr(0, at);
  host = at == std::string::npos ? "" : rest.substr(at + 1);
  return true;
}

} // namespace pli::milter
