// pli-linkd's HTTP server: libmicrohttpd with a thread pool and epoll, connection and
// memory limits, timeouts; hands each request to pli::linkd::App.
#pragma once

#include "core/config/config.hpp"

namespace pli::linkd {

// Serves until SIGTERM/SIGINT. Returns the process exit status.
int serve(const config::Config& config, bool foreground);

} // namespace pli::linkd
