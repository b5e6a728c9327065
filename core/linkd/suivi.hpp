// The buyers' area of pli-linkd, "Suivi des messages" (README.md, buyers' area):
//
// GET  /suivi/                  no session: the login form; else the list ("Suivi des
//                               courriers envoyés") with its filters as query parameters
//                               (status..., q, type, rcpt, consultation, since, until,
//                               per_page 10|25|50, page)
// POST /suivi/                  email + csrf: mails a one-time login link when the address
//                               is a buyer (policy.buyers or buyers_area.admins); the same
//                               page, at once, for any address (the link is stored and mailed
//                               from linkd's outbox thread, so that neither the answer nor its
//                               time tells who is a buyer); rate-limited per address and per
//                               client
// GET  /suivi/login/{token}     the mailed link: a page with one button (records nothing, so
//                               that mail scanners fetching links do not use it up)
// POST /suivi/login             token + csrf: uses the link up (single use, login_link_minutes),
//                               starts a session (cookie HttpOnly, SameSite=Strict, Secure under
//                               https, session_hours), 303 to /suivi/
// POST /suivi/logout            csrf: deletes the session
// GET  /suivi/export.csv?...    the filtered list as CSV (UTF-8 with a BOM)
// GET  /suivi/d/{delivery}      the detail: facts, timeline with the DSN evidence, replies
// GET  /suivi/d/{delivery}/receipt.pdf          the signed receipt (core/receipt)
// POST /suivi/d/{delivery}/reply/{reply}        csrf: records `reply_read`, 303 to the detail
// GET  /suivi/d/{delivery}/reply/{reply}/a/{n}  a reply's file, once the reply was opened
//
// Rights: a buyer sees the messages whose envelope sender is their address or a member's
// of one of their buyers_area.teams; admins see everything; anything else is 404, like an
// unknown id. Filtering is store::Query, the one implementation `pli list` uses.
// Login links and sessions are random (256 bits), stored only as SHA-256 (Store
// credentials, key "L" or "S" + hex hash), their expiry checked here. Every POST form carries a
// CSRF token: before login a double-submit cookie, after it a value derived from the session
// secret.
#pragma once

#include "core/linkd/app.hpp"

#include <optional>
#include <string>
#include <vector>

namespace pli::linkd {

class BuyersArea
{
public:
  explicit BuyersArea(App& app);
  // Never throws for bad input.
  Response handle(const Request& r);

  struct Viewer
  {
    std::string address;
    bool admin = false;
    std::vector<std::string> senders; // whose messages they see (empty only for admins)
    std::string session_key;
    std::string csrf;
  };
  // Whom `address` (lower-case) may see: itself, its teams' members; admins everyone.
  static Viewer rights(const config::Config& config, const std::string& address);
  // A buyer's address: policy.buyers or buyers_area.admins.
  static bool may_log_in(const config::Config& config, const std::string& address);

private:
  friend class App; // its outbox runs the login link jobs (mail_link)
  struct Filters
  {
    store::Query q;
    templates::Map ctx; // the form's values
    std::string query;  // the filters as a query string (without page), "" when none
    std::string error;  // a filter that cannot be applied
  };
  std::optional<Viewer> viewer(const Request& r, util::Micros now);
  bool visible(const Viewer& v, const store::pb::Message& m) const;
  Response login_form(const Request& r, int status, const std::string& sent_to,
                      const std::string& error);
  Response ask_link(const Request& r);
  // Records a login link for `address` and mails it (from the outbox). False when the
  // mail could not leave (tried again later, with a new link).
  bool mail_link(const std::string& address, const std::string& client_ip);
  Response link_page(const Request& r, const std::string& token);
  Response invalid_link(const Request& r, util::Micros now, bool count);
  Response sign_in(const Request& r);
  Response sign_out(const Request& r, const Viewer& v);
  Response list(const Request& r, const Viewer& v);
  Response export_csv(const Request& r, const Viewer& v);
  Response detail(const Request& r, const Viewer& v, const std::string& id,
                  const std::string& rest);
  Response receipt(const store::pb::Delivery& d);
  Response open_reply(const Request& r, const Viewer& v, const store::pb::Delivery& d,
                      const store::pb::Message& m, const std::string& reply);
  Response reply_file(const Request& r, const store::pb::Delivery& d, const store::pb::Message& m,
                      const std::string& reply, const std::string& rest);
  Filters filters(const Request& r, const Viewer& v) const;
  Response html(int status, const std::string& name, templates::Map ctx, const Viewer* v);
  Response message(int status, const std::string& title, const std::string& text, const Viewer* v);
  Response redirect(const std::string& location);
  std::string cookie(const std::string& name, const std::string& value, long max_age) const;
  // The anonymous CSRF token (double-submit cookie), set on `resp` when new.
  std::string anonymous_csrf(const Request& r, Response& resp) const;
  bool anonymous_csrf_ok(const Request& r) const;
  // A page with a form before login: its CSRF token, and the cookie when new.
  Response anonymous_form(const Request& r, int status, const std::string& name,
                          templates::Map ctx);

  App& m_app;
  const config::Config& m_config;
  store::Store& m_store;
  bool m_en;
  FailureLimiter m_per_address;
  FailureLimiter m_per_client;
};

} // namespace pli::linkd
