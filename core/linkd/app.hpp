// pli-linkd's pages, independent of the HTTP library: a request in, a response out.
//
// GET /m/{token}        landing page; never records a read (at most a technical
//                       `fetched` event, rate-limited per delivery)
// POST /m/{token}       records `read` (time, client IP, user agent), shows the content
// GET /m/{token}/html   the HTML body, under a sandboxing Content-Security-Policy
// GET /m/{token}/a/{n}  attachment n, after a read; records `download`
// GET /healthz, GET /static/pli.css
#pragma once

#include "core/config/config.hpp"
#include "core/store/store.hpp"

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace pli::linkd {

struct Request
{
  std::string method;    // "GET", "POST" ...
  std::string path;      // without the query string
  std::string client_ip; // already resolved through trusted proxies
  std::string user_agent;
};

struct Response
{
  int status = 200;
  std::string content_type = "text/html; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

class App
{
public:
  App(const config::Config& config, store::Store& store, util::Clock clock = util::now_micros);
  Response handle(const Request& request);

private:
  Response link(const Request& r, const std::string& token, const std::string& rest);
  Response page(int status, const std::string& title, const std::string& text);

  const config::Config& m_config;
  store::Store& m_store;
  util::Clock m_clock;
  std::mutex m_fetch_mutex;
  std::map<std::string, util::Micros> m_last_fetch; // delivery -> last recorded `fetched`
};

// Picks the client address: the peer, or the last X-Forwarded-For hop when the peer is
// one of `trusted_proxies`.
std::string client_address(const std::string& peer, const std::string& forwarded_for,
                           const std::vector<std::string>& trusted_proxies);

} // namespace pli::linkd
