#include "milter/metrics_http.hpp"

#include <microhttpd.h>

#include <cstring>

namespace pli::milter {

namespace {

// The response is queued with its own reference: ours is dropped when the handler returns.
struct ResponseDestroy
{
  void operator()(MHD_Response* r) const noexcept { MHD_destroy_response(r); }
};

MHD_Result on_request(void* cls, MHD_Connection* c, const char* url, const char* method,
                      const char* /*version*/, const char* /*upload_data*/,
                      size_t* /*upload_data_size*/, void** /*con_cls*/)
{
  const auto* counters = static_cast<const Counters*>(cls);
  const bool found = std::strcmp(method, "GET") == 0 && std::strcmp(url, "/metrics") == 0;
  const std::string body = found ? counters->render() : std::string("not found\n");
  const std::unique_ptr<MHD_Response, ResponseDestroy> r(MHD_create_response_from_buffer(
      body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY));
  if (r == nullptr) {
    return MHD_NO;
  }
  MHD_add_response_header(r.get(), "Content-Type",
                          found ? "text/plain; version=0.0.4; charset=utf-8"
                                : "text/plain; charset=utf-8");
  return MHD_queue_response(c, found ? MHD_HTTP_OK : MHD_HTTP_NOT_FOUND, r.get());
}

} // namespace

void MetricsServer::Stop::operator()(MHD_Daemon* d) const
{
  MHD_stop_daemon(d);
}

std::unique_ptr<MetricsServer> MetricsServer::start(Fd listener, const Counters& counters)
{
  std::unique_ptr<MetricsServer> s(new MetricsServer(counters));
  MHD_Daemon* d = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, nullptr, nullptr, &on_request,
      const_cast<Counters*>(&s->m_counters), MHD_OPTION_LISTEN_SOCKET, listener.get(),
      MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
  if (d == nullptr) {
    return nullptr;
  }
  listener.release(); // MHD_stop_daemon closes it
  s->m_daemon.reset(d);
  return s;
}

MetricsServer::~MetricsServer() = default;

} // namespace pli::milter
