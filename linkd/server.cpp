#include "linkd/server.hpp"

#include "core/linkd/app.hpp"
#include "core/log/log.hpp"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>

namespace pli::linkd {

namespace {

using Clock = std::chrono::steady_clock;

struct Server
{
  App* app;
  const config::Config* config;
  std::size_t upload_budget; // bytes of uploads buffered at once, all clients
  std::atomic<std::size_t> upload_buffered{0};
};

// One request's state, from the first access-handler call to MHD's completion callback.
struct Exchange
{
  Server* server = nullptr;
  Clock::time_point start = Clock::now();
  Request req;
  MHD_PostProcessor* pp = nullptr;
  std::size_t limit = 0;
  std::size_t received = 0;
  std::size_t reserved = 0; // bytes counted in server->upload_buffered
  bool too_large = false;
  bool overloaded = false;
  bool answered = false;

  ~Exchange()
  {
    if (pp != nullptr) {
      MHD_destroy_post_processor(pp);
    }
    if (server != nullptr && reserved != 0) {
      server->upload_buffered.fetch_sub(reserved, std::memory_order_relaxed);
    }
  }

  // Counts `n` more buffered bytes against the shared budget; false when exhausted.
  bool reserve(std::size_t n)
  {
    std::size_t now = server->upload_buffered.fetch_add(n, std::memory_order_relaxed) + n;
    reserved += n;
    return now <= server->upload_budget;
  }
};

constexpr std::size_t k_post_buffer = 64 * 1024;

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

MHD_Result queue(MHD_Connection* c, Exchange& x, const Response& r)
{
  x.answered = true;
  const double seconds = std::chrono::duration<double>(Clock::now() - x.start).count();
  x.server->app->metrics().request(r.route, r.status, seconds);
  MHD_Response* resp = MHD_create_response_from_buffer(
      r.body.size(), const_cast<char*>(r.body.data()), MHD_RESPMEM_MUST_COPY);
  if (resp == nullptr) {
    return MHD_NO;
  }
  MHD_add_response_header(resp, "Content-Type", header_safe(r.content_type).c_str());
  for (const auto& [k, v] : r.headers) {
    MHD_add_response_header(resp, k.c_str(), header_safe(v, 4096).c_str());
  }
  MHD_Result ret = MHD_queue_response(c, static_cast<unsigned int>(r.status), resp);
  MHD_destroy_response(resp);
  return ret;
}

MHD_Result on_post_data(void* cls, MHD_ValueKind /*kind*/, const char* key, const char* filename,
                        const char* content_type, const char* /*transfer_encoding*/,
                        const char* data, uint64_t off, size_t size)
{
  auto* x = static_cast<Exchange*>(cls);
  if (x->too_large || x->overloaded) {
    return MHD_YES;
  }
  if (!x->reserve(size)) {
    x->overloaded = true;
    return MHD_YES;
  }
  const std::string k = key == nullptr ? "" : key;
  if (filename != nullptr) {
    auto& files = x->req.files;
    if (off == 0 && (files.empty() || !files.back().data.empty() || files.back().field != k ||
                     files.back().name != filename)) {
      files.push_back(UploadedFile{k, filename, content_type == nullptr ? "" : content_type, ""});
    }
    if (!files.empty()) {
      files.back().data.append(data, size);
    }
  } else {
    auto& v = x->req.form[k];
    if (off == 0) {
      v.clear();
    }
    v.append(data, size);
  }
  return MHD_YES;
}

MHD_Result on_query_arg(void* cls, MHD_ValueKind /*kind*/, const char* key, const char* value)
{
  auto* query = static_cast<std::vector<std::pair<std::string, std::string>>*>(cls);
  if (key != nullptr && query->size() < 100) {
    query->emplace_back(key, value == nullptr ? "" : value);
  }
  return MHD_YES;
}

void on_completed(void* /*cls*/, MHD_Connection* /*c*/, void** con_cls,
                  MHD_RequestTerminationCode /*toe*/)
{
  delete static_cast<Exchange*>(*con_cls);
  *con_cls = nullptr;
}

MHD_Result on_request(void* cls, MHD_Connection* c, const char* url, const char* method,
                      const char* /*version*/, const char* upload_data, size_t* upload_data_size,
                      void** con_cls)
{
  auto* server = static_cast<Server*>(cls);
  auto* x = static_cast<Exchange*>(*con_cls);
  try {
    // First call for a request: check the declared size, prepare the form parser.
    if (x == nullptr) {
      x = new Exchange;
      *con_cls = x;
      x->server = server;
      x->req.method = method;
      x->req.path = url;
      x->limit = server->app->body_limit(x->req.method, x->req.path);
      const char* length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
      if (length != nullptr && std::strtoull(length, nullptr, 10) > x->limit) {
        server->app->metrics().count(Counter::too_large);
        return queue(c, *x, server->app->refuse(x->req, Refusal::too_large));
      }
      if (x->req.method == "POST") {
        x->pp = MHD_create_post_processor(c, k_post_buffer, &on_post_data, x);
      }
      return MHD_YES;
    }
    if (x->answered) {
      *upload_data_size = 0; // a refused request's body: discarded
      return MHD_YES;
    }
    if (*upload_data_size != 0) {
      x->received += *upload_data_size;
      if (x->received > x->limit) {
        x->too_large = true;
        if (x->received > x->limit + 1024 * 1024) {
          return MHD_NO; // a chunked body that does not stop: close the connection
        }
      } else if (x->pp != nullptr && !x->overloaded &&
                 MHD_post_process(x->pp, upload_data, *upload_data_size) != MHD_YES) {
        x->req.form.clear();
        x->req.files.clear();
      }
      *upload_data_size = 0;
      return MHD_YES;
    }
    if (x->too_large) {
      server->app->metrics().count(Counter::too_large);
      return queue(c, *x, server->app->refuse(x->req, Refusal::too_large));
    }
    if (x->overloaded) {
      server->app->metrics().error(ErrorKind::overloaded);
      return queue(c, *x, server->app->refuse(x->req, Refusal::overloaded));
    }
    const char* ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent");
    const char* xff = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For");
    const std::string peer = peer_of(c);
    x->req.user_agent = header_safe(ua == nullptr ? "" : ua, 512);
    x->req.client_ip =
        client_address(peer, xff == nullptr ? "" : xff, server->config->linkd.trusted_proxies);
    x->req.local = xff == nullptr && (peer == "127.0.0.1" || peer == "::1");
    if (x->req.path.rfind("/suivi", 0) == 0) {
      MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, &on_query_arg, &x->req.query);
      const char* cookie = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Cookie");
      x->req.cookie = cookie == nullptr ? "" : cookie;
    }
    return queue(c, *x, server->app->handle(x->req));
  } catch (const std::exception& e) {
    log::line(log::Level::error, "", {{"http", "500"}, {"error", e.what()}});
    server->app->metrics().error(ErrorKind::internal);
    Response r;
    r.status = 500;
    r.content_type = "text/plain; charset=utf-8";
    r.body = "internal error\n";
    add_security_headers(r.headers);
    if (x == nullptr) {
      return MHD_NO;
    }
    return queue(c, *x, r);
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
  Server server{&app, &config,
                static_cast<std::size_t>(config.linkd.reply_max_mb) * 4 * 1024 * 1024};

  MHD_Daemon* daemon = MHD_start_daemon(
      flags, static_cast<uint16_t>(port), nullptr, nullptr, &on_request, &server,
      MHD_OPTION_SOCK_ADDR, reinterpret_cast<sockaddr*>(&addr), MHD_OPTION_THREAD_POOL_SIZE,
      static_cast<unsigned int>(config.linkd.threads), MHD_OPTION_CONNECTION_LIMIT,
      static_cast<unsigned int>(config.linkd.max_connections), MHD_OPTION_CONNECTION_TIMEOUT,
      static_cast<unsigned int>(config.linkd.timeout_seconds), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      static_cast<size_t>(64 * 1024), MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
      MHD_OPTION_NOTIFY_COMPLETED, &on_completed, nullptr, MHD_OPTION_END);
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
