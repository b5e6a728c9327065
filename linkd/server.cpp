#include "linkd/server.hpp"

#include "core/linkd/app.hpp"
#include "core/linkd/event_writer.hpp"
#include "core/log/log.hpp"
#include "core/store/configured.hpp"
#include "core/templates/templates.hpp"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sysexits.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace pli::linkd {

namespace {

using Clock = std::chrono::steady_clock;

struct Exchange;

// The threads that run the requests which may wait for the store (the buyers' area, replies,
// downloads, a landing page's first `fetched`): MHD's event threads suspend such a
// connection, queue it here and go on serving the others; a job ends by resuming it. A read
// does not wait here: its event goes to the EventWriter, which commits every read pending at
// once and hands each back (`post`) for its page.
class Workers
{
public:
  using Job = std::function<void()>;

  void start(std::size_t n)
  {
    for (std::size_t i = 0; i < n; ++i) {
      m_threads.emplace_back([this] { loop(); });
    }
  }
  // Queues `job`; false (nothing done) once stopping: run it in place.
  bool post(Job job)
  {
    {
      std::lock_guard lock(m_mutex);
      if (m_stopping || m_threads.empty()) {
        return false;
      }
      m_jobs.push_back(std::move(job));
    }
    m_cv.notify_one();
    return true;
  }
  // Suspends `c` and queues `job` (which resumes it); false (nothing done) once stopping.
  bool submit(MHD_Connection* c, Job job)
  {
    {
      std::lock_guard lock(m_mutex);
      if (m_stopping || m_threads.empty()) {
        return false;
      }
      MHD_suspend_connection(c); // before a worker can resume it
      m_jobs.push_back(std::move(job));
    }
    m_cv.notify_one();
    return true;
  }
  // Runs the jobs queued so far, then joins the threads.
  void stop()
  {
    {
      std::lock_guard lock(m_mutex);
      m_stopping = true;
    }
    m_cv.notify_all();
    for (auto& t : m_threads) {
      t.join();
    }
    m_threads.clear();
  }

private:
  void loop()
  {
    std::unique_lock lock(m_mutex);
    for (;;) {
      m_cv.wait(lock, [this] { return m_stopping || !m_jobs.empty(); });
      if (m_jobs.empty()) {
        return; // stopping, nothing left
      }
      Job job = std::move(m_jobs.front());
      m_jobs.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<Job> m_jobs;
  bool m_stopping = false;
  std::vector<std::thread> m_threads;
};

// libmicrohttpd handles, each destroyed by its owner.
struct ResponseDestroy
{
  void operator()(MHD_Response* r) const noexcept { MHD_destroy_response(r); }
};
using ResponsePtr = std::unique_ptr<MHD_Response, ResponseDestroy>;
struct DaemonStop
{
  void operator()(MHD_Daemon* d) const noexcept { MHD_stop_daemon(d); }
};
using DaemonPtr = std::unique_ptr<MHD_Daemon, DaemonStop>;
struct PostProcessorDestroy
{
  void operator()(MHD_PostProcessor* pp) const noexcept { MHD_destroy_post_processor(pp); }
};
using PostProcessorPtr = std::unique_ptr<MHD_PostProcessor, PostProcessorDestroy>;

struct Server
{
  App* app;
  const config::Config* config;
  std::size_t upload_budget; // bytes of uploads buffered at once, all clients
  std::atomic<std::size_t> upload_buffered{0};
  Workers workers{};
  std::unique_ptr<EventWriter> writer{};
  store::Store* app_store = nullptr;
  ResponsePtr stylesheet{}; // built once, queued for every GET /static/pli.css
};

// One request's state, from the first access-handler call to MHD's completion callback.
struct Exchange
{
  Server* server = nullptr;
  Clock::time_point start = Clock::now();
  Request req;
  PostProcessorPtr pp;
  std::size_t limit = 0;
  std::size_t received = 0;
  std::size_t reserved = 0; // bytes counted in server->upload_buffered
  bool too_large = false;
  bool overloaded = false;
  bool answered = false;
  bool queued = false;                   // suspended: with a worker or the event writer
  std::optional<Response> done;          // set by the worker before it resumes the connection
  std::optional<Pending> read;           // a read whose event is with the writer
  std::optional<util::Error> read_error; // the writer's outcome, set before it resumes

  ~Exchange()
  {
    pp.reset(); // first: libmicrohttpd may hand it a last value (on_post_data reads *this)
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
// Each connection's buffer (request headers, read and write buffers; bodies are streamed
// through it). MHD zeroes it between two requests of a keep-alive connection: 64 KiB cost
// 5 % of a landing page's CPU. 32 KiB (MHD's default) holds any sane request's headers.
constexpr std::size_t k_connection_memory = 32 * 1024;

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

void free_body(void* body)
{
  delete static_cast<std::string*>(body);
}

// Adds a header, its value made header-safe only when it needs it (most are constants).
void add_header(MHD_Response* resp, const std::string& key, const std::string& value,
                std::size_t max)
{
  const bool safe = value.size() <= max && std::none_of(value.begin(), value.end(), [](char ch) {
                      const auto u = static_cast<unsigned char>(ch);
                      return u < 0x20 || u == 0x7f;
                    });
  MHD_add_response_header(resp, key.c_str(),
                          safe ? value.c_str() : header_safe(value, max).c_str());
}

// Queues `r` (its body moved into the MHD response, not copied).
MHD_Result queue(MHD_Connection* c, Exchange& x, Response&& r)
{
  x.answered = true;
  const double seconds = std::chrono::duration<double>(Clock::now() - x.start).count();
  x.server->app->metrics().request(r.route, r.status, seconds);
  auto* body = new std::string(std::move(r.body));
  const ResponsePtr resp(MHD_create_response_from_buffer_with_free_callback_cls(
      body->size(), body->data(), &free_body, body));
  if (resp == nullptr) {
    delete body;
    return MHD_NO;
  }
  add_header(resp.get(), "Content-Type", r.content_type, 512);
  for (const auto& [k, v] : r.headers) {
    add_header(resp.get(), k, v, 4096);
  }
  return MHD_queue_response(c, static_cast<unsigned int>(r.status), resp.get());
}

Response internal_error()
{
  Response r;
  r.status = 500;
  r.content_type = "text/plain; charset=utf-8";
  r.body = "internal error\n";
  add_security_headers(r.headers);
  return r;
}

// The 500 for a request whose handling threw (a bug: a broken template ...).
Response failed(Server* server, const std::exception& e)
{
  log::line(log::Level::error, "", {{"http", "500"}, {"error", e.what()}});
  server->app->metrics().error(ErrorKind::internal);
  return internal_error();
}

// Sets the response of a suspended request, `f()` (a 500 if it throws), and resumes the
// connection: on_request answers with it.
template <typename F> void finish(MHD_Connection* c, Exchange* x, F&& f)
{
  try {
    x->done = f();
  } catch (const std::exception& e) {
    x->done = failed(x->server, e);
  }
  MHD_resume_connection(c);
}

// A suspended request, on a worker thread: it may wait for the store.
void run_job(MHD_Connection* c, Exchange* x)
{
  finish(c, x, [x] {
    x->req.may_wait = true;
    return x->server->app->handle(x->req);
  });
}

// Requests the event threads answer themselves: they read the store, never wait for a write
// (a landing page that must record its `fetched` comes back `deferred`).
bool inline_route(const Request& req)
{
  if (req.method != "GET" && req.method != "HEAD") {
    return false;
  }
  switch (classify("GET", req.path)) {
  case Route::landing:
  case Route::reply_landing:
  case Route::html:
  case Route::healthz:
  case Route::metrics:
  case Route::static_file:
  case Route::other:
    return true;
  default:
    return false;
  }
}

// The client of a request, from its headers: user agent, address (through the trusted
// proxies), whether it is a direct loopback client.
void identify(MHD_Connection* c, Request& req, const config::Config& config)
{
  const char* ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent");
  const char* xff = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For");
  const std::string peer = peer_of(c);
  req.user_agent = header_safe(ua == nullptr ? "" : ua, 512);
  req.client_ip = client_address(peer, xff == nullptr ? "" : xff, config.linkd.trusted_proxies);
  req.local = xff == nullptr && (peer == "127.0.0.1" || peer == "::1");
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
  if (x != nullptr && x->queued) {
    x->queued = false; // resumed
    if (x->read) {     // the writer is done with the read's event: its page
      Response r;
      try {
        r = x->read->finish(x->read_error);
      } catch (const std::exception& e) {
        r = failed(server, e);
      }
      x->read.reset();
      return queue(c, *x, std::move(r));
    }
    Response r = x->done ? std::move(*x->done) : internal_error();
    x->done.reset();
    return queue(c, *x, std::move(r));
  }
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
      const std::uint64_t declared = length == nullptr ? 0 : std::strtoull(length, nullptr, 10);
      if (declared > x->limit) {
        server->app->metrics().count(Counter::too_large);
        return queue(c, *x, server->app->refuse(x->req, Refusal::too_large));
      }
      identify(c, x->req, *server->config);
      if (x->req.method == "POST") {
        // Token, status and reply permission before the body is taken: a request that cannot
        // succeed holds no upload buffer.
        if (auto refused = server->app->precheck(x->req, declared)) {
          return queue(c, *x, std::move(*refused));
        }
        x->pp.reset(MHD_create_post_processor(c, k_post_buffer, &on_post_data, x));
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
                 MHD_post_process(x->pp.get(), upload_data, *upload_data_size) != MHD_YES) {
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
    if (x->req.path.rfind("/suivi", 0) == 0) {
      MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, &on_query_arg, &x->req.query);
      const char* cookie = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Cookie");
      x->req.cookie = cookie == nullptr ? "" : cookie;
    }
    if (x->req.method == "GET" && x->req.path == "/static/pli.css" &&
        server->stylesheet != nullptr) {
      x->answered = true;
      const double seconds = std::chrono::duration<double>(Clock::now() - x->start).count();
      server->app->metrics().request(Route::static_file, 200, seconds);
      return MHD_queue_response(c, 200, server->stylesheet.get());
    }
    if (inline_route(x->req)) {
      x->req.may_wait = false;
      Response r = server->app->handle(x->req);
      if (!r.deferred) {
        return queue(c, *x, std::move(r));
      }
    } else if (classify(x->req.method, x->req.path) == Route::open) {
      // A read: checked here, its event to the writer, which commits it with every read
      // pending; the connection waits suspended, and its page is made once it is resumed.
      x->req.may_wait = false;
      Outcome o = server->app->start(x->req);
      if (auto* r = std::get_if<Response>(&o)) {
        return queue(c, *x, std::move(*r));
      }
      x->read = std::move(std::get<Pending>(o));
      x->queued = true;
      MHD_suspend_connection(c); // before the writer can resume it
      const bool queued =
          server->writer->submit(x->read->event, [c, x](const std::optional<util::Error>& error) {
            x->read_error = error;
            MHD_resume_connection(c);
          });
      if (!queued) { // stopping: appended here; on_request answers once resumed
        auto st = server->app_store->append_events({x->read->event});
        x->read_error = st ? std::nullopt : std::optional<util::Error>(st.error());
        MHD_resume_connection(c);
      }
      return MHD_YES;
    }
    x->queued = true;
    if (server->workers.submit(c, [c, x] { run_job(c, x); })) {
      return MHD_YES; // answered when the connection is resumed
    }
    x->queued = false;
    x->req.may_wait = true; // stopping: no workers left, handle it here
    return queue(c, *x, server->app->handle(x->req));
  } catch (const std::exception& e) {
    Response r = failed(server, e);
    if (x == nullptr) {
      return MHD_NO;
    }
    return queue(c, *x, std::move(r));
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
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
  if (host.find(':') != std::string::npos) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) != 1) {
      log::message(log::Level::error, "linkd.listen: bad address " + host);
      return EX_CONFIG;
    }
    addr_len = sizeof *a6;
    flags |= MHD_USE_IPv6;
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host.c_str(), &a4->sin_addr) != 1) {
      log::message(log::Level::error, "linkd.listen: bad address " + host);
      return EX_CONFIG;
    }
    addr_len = sizeof *a4;
  }
  (void)addr_len;

  if (!foreground && daemon(0, 0) != 0) {
    log::message(log::Level::error, "cannot daemonize");
    return EX_OSERR;
  }
  const auto spec = store::spec_for(config, store::Program::linkd);
  auto opened = store::open(spec);
  if (!opened) {
    log::message(log::Level::error, store::open_failure(spec, opened.error()));
    return store::daemon_exit_status(spec, opened.error());
  }
  auto store = std::move(opened.value());
  App app(config, *store);
  Server server{&app, &config,
                static_cast<std::size_t>(config.linkd.reply_max_mb) * 4 * 1024 * 1024};

  // The event threads only parse, render and send (what may wait goes to the workers): one
  // per core, as more only adds context switches.
  const unsigned int event_threads = std::clamp(std::thread::hardware_concurrency(), 1u, 16u);
  const std::string css(templates::get("pli.css"));
  server.stylesheet.reset(MHD_create_response_from_buffer(css.size(), const_cast<char*>(css.data()),
                                                          MHD_RESPMEM_MUST_COPY));
  if (server.stylesheet != nullptr) {
    MHD_add_response_header(server.stylesheet.get(), "Content-Type", "text/css; charset=utf-8");
    Headers h;
    add_security_headers(h);
    for (const auto& [k, v] : h) {
      MHD_add_response_header(server.stylesheet.get(), k.c_str(), v.c_str());
    }
  }
  server.writer = std::make_unique<EventWriter>(*store);
  server.app_store = store.get();
  server.workers.start(config.linkd.threads);

  DaemonPtr daemon(MHD_start_daemon(
      flags, static_cast<uint16_t>(port), nullptr, nullptr, &on_request, &server,
      MHD_OPTION_SOCK_ADDR, reinterpret_cast<sockaddr*>(&addr), MHD_OPTION_THREAD_POOL_SIZE,
      event_threads, MHD_OPTION_CONNECTION_LIMIT,
      static_cast<unsigned int>(config.linkd.max_connections), MHD_OPTION_CONNECTION_TIMEOUT,
      static_cast<unsigned int>(config.linkd.timeout_seconds), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      k_connection_memory, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_NOTIFY_COMPLETED,
      &on_completed, nullptr, MHD_OPTION_END));
  if (daemon == nullptr) {
    log::message(log::Level::error, "cannot listen on " + config.linkd.listen);
    server.workers.stop();
    server.writer.reset();
    return EX_OSERR;
  }
  log::message(log::Level::info, "pli-linkd listening on " + config.linkd.listen);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  signal(SIGPIPE, SIG_IGN);
  while (g_stop == 0) {
    pause();
  }
  // No new connection; the queued requests are answered (their connections resumed) before
  // the daemon stops. Requests still arriving on open connections are handled in place.
  if (const MHD_socket listener = MHD_quiesce_daemon(daemon.get());
      listener != MHD_INVALID_SOCKET) {
    close(listener);
  }
  server.workers.stop();
  server.writer->stop(); // the reads queued are committed, their connections resumed
  daemon.reset();        // MHD_stop_daemon: every connection done
  server.writer.reset();
  server.stylesheet.reset();
  log::message(log::Level::info, "pli-linkd stopped");
  return 0;
}

} // namespace pli::linkd
