// pli-milter's loopback /metrics listener (milter.metrics_listen): the decision counters
// (core/milter/metrics.hpp) in Prometheus's text format, served by libmicrohttpd from its
// own thread. Anything but GET /metrics is 404.
#pragma once

#include "core/milter/metrics.hpp"
#include "milter/listener.hpp"

#include <memory>
#include <string>

struct MHD_Daemon;

namespace pli::milter {

class MetricsServer
{
public:
  // Serves `counters` on `listener` (bound before daemon(); started after it, as its
  // thread must be), which libmicrohttpd then owns. nullptr when it cannot start; the
  // listener is then closed.
  static std::unique_ptr<MetricsServer> start(Fd listener, const Counters& counters);
  ~MetricsServer(); // stops the daemon, which closes the listener
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

private:
  explicit MetricsServer(const Counters& counters) : m_counters(counters) {}
  struct Stop
  {
    void operator()(MHD_Daemon* d) const;
  };
  const Counters& m_counters;
  std::unique_ptr<MHD_Daemon, Stop> m_daemon;
};

} // namespace pli::milter
