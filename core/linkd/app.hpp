// pli-linkd's pages, independent of the HTTP library: a request in, a response out.
//
// GET  /m/{token}         landing page; never records a read (at most a technical
//                         `fetched` event, rate-limited per delivery)
// POST /m/{token}         records `read` (time, client IP, user agent), shows the content
//                         once it is durable; the first read is always recorded (it sets
//                         the status); later ones within linkd.repeat_interval_minutes of
//                         the last recorded one are counted, not recorded, and the next
//                         recorded read carries the count in its detail "repeats" (the
//                         chain stays append-only; at most one read event per interval)
// GET  /m/{token}/html    the HTML body, under a sandboxing Content-Security-Policy
// GET  /m/{token}/a/{n}   attachment n, after a read; records `download` (per file, with
//                         "repeats" like a read)
// GET  /m/{token}/reply   the reply form (message.reply_allowed, after a read)
// POST /m/{token}/reply   multipart/form-data: text + files; records the reply and
//                         `reply`, mails the sender a personal link to it; at most
//                         linkd.max_replies_per_delivery replies (then 403) and
//                         linkd.max_reply_mb_per_delivery in all (then 413) per delivery
// GET  /r/{token}         the sender's landing page for a reply (records nothing)
// POST /r/{token}         records `reply_read` (with "repeats" like a read), shows the reply
// GET  /r/{token}/a/{n}   attachment n of the reply, after the reply was opened
// GET  /healthz, /metrics (Prometheus text, loopback only), /static/pli.css
// /suivi/...              the buyers' area (suivi.hpp)
//
// Unknown, malformed and wrong-purpose tokens are rate-limited per client address, IPv6
// per /64 (linkd.unknown_tokens_per_minute, then 429 for unknown links until the minute
// ends); a valid link is always answered. The POST routes with a body (read, reply, reply
// read) are checked (token, status, reply permission, caps) before their body is taken
// (App::precheck). A write that would take the store's reserve (store.linkd_reserve_percent)
// is refused: 507 for a reply, 503 for the rest.
// Pages are French, or English when organisation.locale is en; every value from a
// message goes through the template engine's HTML escaping (core/templates/template.hpp).
#pragma once

#include "core/config/config.hpp"
#include "core/linkd/http.hpp"
#include "core/linkd/metrics.hpp"
#include "core/notify/outbox.hpp"
#include "core/smtp/client.hpp"
#include "core/store/store.hpp"
#include "core/templates/template.hpp"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace pli::linkd {

struct UploadedFile
{
  std::string field;      // form field name
  std::string name;       // file name as the client declared it (untrusted)
  std::string media_type; // as the client declared it (untrusted)
  std::string data;
};

struct Request
{
  std::string method;    // "GET", "POST", "HEAD" ...
  std::string path;      // without the query string
  std::string client_ip; // already resolved through trusted proxies
  std::string user_agent;
  bool local = false; // a direct loopback client without X-Forwarded-For (may read /metrics)
  std::map<std::string, std::string> form;                // decoded form fields of a POST
  std::vector<std::pair<std::string, std::string>> query; // decoded, in order, repeats kept
  std::string cookie;                                     // the Cookie header
  std::vector<UploadedFile> files;                        // files of a multipart/form-data POST
  // false on the server's event threads: a GET that would have to wait for a store write
  // (a landing page's `fetched`) is not handled but answered `deferred`, to be handled
  // again with may_wait on a thread that may wait for the fsync.
  bool may_wait = true;
};

struct Response
{
  int status = 200;
  std::string content_type = "text/html; charset=utf-8";
  std::string body;
  Headers headers;
  Route route = Route::other;
  bool deferred = false; // see Request::may_wait: nothing was done, handle it again
};

// A request whose answer waits for one event to be durable (a read): `event` to append,
// then `finish` with the append's outcome (nullopt: committed) gives the answer.
// App::handle does both in place; pli-linkd's server hands `event` to its EventWriter so
// that every read pending shares one commit, and calls `finish` once it is committed.
struct Pending
{
  store::NewEvent event;
  std::function<Response(const std::optional<util::Error>& error)> finish;
};

using Outcome = std::variant<Response, Pending>;

// Why the server refused a request before handing it to App::handle.
enum class Refusal
{
  too_large,  // body over the route's limit: 413
  overloaded, // upload buffers exhausted: 503
};

class BuyersArea;

class App
{
public:
  App(const config::Config& config, store::Store& store, util::Clock clock = util::now_micros);
  ~App();

  // Never throws for bad input; may throw on a broken template (a bug).
  Response handle(const Request& request);
  // The same, except that a read's event is not appended: the caller appends it and calls
  // Pending::finish (after the commit) for the answer.
  Outcome start(const Request& request);
  // The page for a request refused by the server (already counted in metrics by it).
  Response refuse(const Request& request, Refusal why);
  // Called with the headers only (method, path, client_ip, user_agent set), before a POST's
  // body is taken: the answer when the request cannot succeed whatever its body (unknown
  // token 404, 429, revoked or expired 410, reply not allowed or before a read 403, reply
  // caps 403/413 with `content_length` the declared body size), nullopt to go on.
  std::optional<Response> precheck(const Request& request, std::uint64_t content_length);

  Metrics& metrics() { return m_metrics; }
  // The body size limit for a request (bytes): the reply limit for POST .../reply.
  std::size_t body_limit(const std::string& method, const std::string& path) const;

private:
  friend class BuyersArea; // renders its pages with ours, shares the unknown-token limiter
  // The shared count of a FailureLimiter on a PostgreSQL store; empty on LMDB.
  FailureLimiter::SharedCount shared_failures();
  struct Link
  {
    std::string token;
    store::pb::Token tok;
    store::pb::Delivery delivery;
    store::pb::Message message;
    std::optional<store::pb::Reply> reply; // sender links
    util::Micros now = 0;
  };
  Outcome route(const Request& r);
  // The token of a link, checked (rate limit, syntax, lookup, purpose); nullopt with
  // `refused` set to the page to answer (429, 404, 503).
  std::optional<store::pb::Token> token_for(const Request& r, const std::string& token,
                                            std::uint32_t purpose, util::Micros now,
                                            std::optional<Response>& refused);
  Outcome recipient(const Request& r, const std::string& token, const std::string& rest);
  Response sender(const Request& r, const std::string& token, const std::string& rest);
  Response landing(const Request& r, Link& l);
  Outcome open(const Request& r, Link& l);
  Response opened(const std::shared_ptr<Link>& l);
  Response download(const Request& r, Link& l, const std::string& index);
  Response reply_form(Link& l);
  Response reply(const Request& r, Link& l);
  // The reply caps of a delivery for `incoming` more bytes: nullopt, or the 403/413 page.
  std::optional<Response> reply_caps(const store::pb::Delivery& d, std::uint64_t incoming);
  // The recipient's link checked up to the route (token, revoked, expired): the Link, or
  // the page to answer.
  std::variant<Link, Response> link_for(const Request& r, const std::string& token);
  // The outbox's runner (queue "linkd"): each job rebuilt from its payload, the buyer's read
  // notification ("read_notification": the delivery before the read), the reply notice
  // ("reply_notice": reply and delivery ids), a login link ("login_link": address and IP).
  // True when done.
  bool run_job(const store::ClaimedJob& job);
  // The reply notice's mail, with a sender's link minted now (its token's hash stored).
  // Errors: the store's.
  util::Result<smtp::Envelope> reply_notice(const std::string& reply,
                                            const std::string& message_id);
  // Sends one notice through the re-injection listener; true when Postfix took it (logged).
  bool send_notice(const smtp::Envelope& e, const std::string& reply, const std::string& delivery);
  // An earlier version's outbox file as a job's payload (nullopt: not understood).
  static std::optional<std::string> upgrade_record(const std::string& kind,
                                                   const std::string& payload);

  Response page(int status, std::string_view key, const std::string& detail = "");
  Response html(int status, const std::string& name, const templates::Map& ctx);
  std::string render(const std::string& name, const templates::Map& ctx) const;
  void facts(Link& l, templates::Map& ctx);
  bool record(const std::string& delivery, model::EventKind kind, const Request& r,
              std::map<std::string, std::string> detail = {});
  store::NewEvent event(const std::string& delivery, model::EventKind kind, const Request& r,
                        std::map<std::string, std::string> detail) const;
  // Logs an append's outcome (and counts a store error); true when committed.
  bool recorded(const store::NewEvent& e, const std::string& ip,
                const std::optional<util::Error>& error);

  const config::Config& m_config;
  store::Store& m_store;
  util::Clock m_clock;
  std::string m_lang;
  std::map<std::string, templates::Template>
      m_pages;              // page -> template (partials expanded), parsed
  templates::Map m_globals; // names every page may use (organisation)
  Metrics m_metrics;
  FailureLimiter m_unknown;
  std::mutex m_fetch_mutex;
  std::map<std::string, util::Micros> m_last_fetch; // delivery -> last recorded `fetched`
  RepeatCounter m_repeats;  // reads, downloads and reply reads (keys "read ID", "a ID N"...)
  std::mutex m_reply_mutex; // a delivery's caps are checked and its reply created under it
  std::unique_ptr<BuyersArea> m_suivi;
  // Last, so destroyed first (its thread stops while everything its jobs use exists); made
  // at the end of the constructor.
  std::unique_ptr<notify::Outbox> m_outbox;
};

// A file size for people: "812 o", "12.4 Ko", "3.1 Mo" (B, KB, MB in English).
std::string human_size(std::uint64_t bytes, bool en);

// Picks the client address: the peer, or the last X-Forwarded-For hop when the peer is
// one of `trusted_proxies`.
std::string client_address(const std::string& peer, const std::string& forwarded_for,
                           const std::vector<std::string>& trusted_proxies);

// The route of a request, for metrics (also for requests refused before App::handle).
Route classify(const std::string& method, const std::string& path);

} // namespace pli::linkd
