#include "linkd/server.hpp"

#include "core/linkd/app.hpp"
#include "core/log/log.hpp"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>

namespace pli::linkd {

namespace {

struct Server
{
  App* app;
  const config::Config* config;
};

constexpr std::size_t k_max_body = 64 * 1024; // forms on these pages are tiny

std::string peer_of(MHD_Connection* c)
{
  const auto* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (info == nullptr || info->client_addr == nullptr) {
    return "";
  }
  char buf[INET6_ADDRSTRLEN] = {};
  const sockaddr* sa = info->client_addr;
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

MHD_Result queue(MHD_Connection* c, const Response& r)
{
  MHD_Response* resp = MHD_create_response_from_buffer(
      r.body.size(), const_cast<char*>(r.body.data()), MHD_RESPMEM_MUST_COPY);
  if (resp == nullptr) {
    return MHD_NO;
  }
  MHD_add_response_header(resp, "Content-Type", r.content_type.c_str());
  for (const auto& [k, v] : r.headers) {
    MHD_add_response_header(resp, k.c_str(), v.c_str());
  }
  MHD_Result ret = MHD_queue_response(c, static_cast<unsigned int>(r.status), resp);
  MHD_destroy_response(resp);
  return ret;
}

MHD_Result on_request(void* cls, MHD_Connection* c, const char* url, const char* method,
                      const char* /*version*/, const char* /*upload_data*/,
                      size_t* upload_data_size, void** con_cls)
{
  auto* server = static_cast<Server*>(cls);
  // First call for a request: check the size and wait for the body.
  if (*con_cls == nullptr) {
    static int marker;
    *con_cls = &marker;
    const char* length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (length != nullptr && std::strtoull(length, nullptr, 10) > k_max_body) {
      Response r;
      r.status = 413;
      r.content_type = "text/plain; charset=utf-8";
      r.body = "request too large\n";
      return queue(c, r);
    }
    return MHD_YES;
  }
  if (*upload_data_size != 0) {
    *upload_data_size = 0; // the form carries nothing we need
    return MHD_YES;
  }
  try {
    Request req;
    req.method = method;
    req.path = url;
    const char* ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent");
    const char* xff = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For");
    req.user_agent = ua == nullptr ? "" : std::string(ua).substr(0, 512);
    req.client_ip = client_address(peer_of(c), xff == nullptr ? "" : xff,
                                   server->config->linkd.trusted_proxies);
    return queue(c, server->app->handle(req));
  } catch (const std::exception& e) {
    log::line(log::Level::error, "", {{"http", "500"}, {"error", e.what()}});
    Response r;
    r.status = 500;
    r.content_type = "text/plain; charset=utf-8";
    r.body = "internal error\n";
    return queue(c, r);
  }
}

volatile sig_atomic_t g_stop = 0;
void on_signal(int)
{
  g_stop = 1;
}

} // namespace

int serve(const config::Config& config, bool foreground)
{
  log::open("pli-linkd", foreground);
  auto colon = config.linkd.listen.rfind(':');
  std::string host = config.linkd.listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') {
    host = host.substr(1, host.size() - 2);
  }
  int port = std::atoi(config.linkd.listen.c_str() + colon + 1);
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
  if (host.find(':') != std::string::npos) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) != 1) {
      log::message(log::Level::error, "linkd.listen: bad address " + host);
      return 78;
    }
    addr_len = sizeof *a6;
    flags |= MHD_USE_IPv6;
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host.c_str(), &a4->sin_addr) != 1) {
      log::message(log::Level::error, "linkd.listen: bad address " + host);
      return 78;
    }
    addr_len = sizeof *a4;
  }
  (void)addr_len;

  if (!foreground && daemon(0, 0) != 0) {
    log::message(log::Level::error, "cannot daemonize");
    return 71;
  }
  auto opened = store::open_lmdb({config.store.path, config.store.map_size_mb, false});
  if (!opened) {
    log::message(log::Level::error, "cannot open the store: " + opened.error().message);
    return 75;
  }
  auto store = std::move(opened.value());
  App app(config, *store);
  Server server{&app, &config};

  MHD_Daemon* daemon = MHD_start_daemon(
      flags, static_cast<uint16_t>(port), nullptr, nullptr, &on_request, &server,
      MHD_OPTION_SOCK_ADDR, reinterpret_cast<sockaddr*>(&addr), MHD_OPTION_THREAD_POOL_SIZE,
      static_cast<unsigned int>(config.linkd.threads), MHD_OPTION_CONNECTION_LIMIT,
      static_cast<unsigned int>(config.linkd.max_connections), MHD_OPTION_CONNECTION_TIMEOUT, 15u,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<size_t>(64 * 1024), MHD_OPTION_END);
  if (daemon == nullptr) {
    log::message(log::Level::error, "cannot listen on " + config.linkd.listen);
    return 71;
  }
  log::message(log::Level::info, "pli-linkd listening on " + config.linkd.listen);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  signal(SIGPIPE, SIG_IGN);
  while (g_stop == 0) {
    pause();
  }
  MHD_stop_daemon(daemon);
  log::message(log::Level::info, "pli-linkd stopped");
  return 0;
}

} // namespace pli::linkd
