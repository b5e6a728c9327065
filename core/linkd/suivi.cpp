#include "core/linkd/suivi.hpp"

#include "core/linkd/reply_mail.hpp"
#include "core/log/log.hpp"
#include "core/notify/notify.hpp"
#include "core/policy/policy.hpp"
#include "core/smtp/client.hpp"
#include "core/templates/template.hpp"
#include "core/templates/templates.hpp"
#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"
#include "core/util/text.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

namespace pli::linkd {

namespace {

constexpr std::int64_t k_hour = 3600LL * 1000000LL;
constexpr const char* k_session_cookie = "pli_session";
constexpr const char* k_csrf_cookie = "pli_csrf";

enum class Kind : std::uint32_t
{
  login_link = 1,
  session = 2,
};

std::string key_of(Kind k, const std::string& secret)
{
  return (k == Kind::login_link ? "L" : "S") + util::sha256_hex(secret);
}

std::string new_secret()
{
  return util::base64url(util::random_bytes(32));
}

bool valid_secret(const std::string& t)
{
  if (t.size() < 16 || t.size() > 64) {
    return false;
  }
  return std::all_of(t.begin(), t.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

// A plausible mail address, lower-cased; "" when it is not one.
std::string normalise_address(const std::string& text)
{
  std::string a = util::ascii_lower(util::trim(text));
  auto at = a.find('@');
  if (a.size() > 254 || at == std::string::npos || at == 0 || at + 1 == a.size() ||
      a.find('@', at + 1) != std::string::npos) {
    return "";
  }
  for (unsigned char c : a) {
    if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == '"' || c == ',' || c == ';') {
      return "";
    }
  }
  return a;
}

std::string form_value(const Request& r, const char* name)
{
  auto it = r.form.find(name);
  return it == r.form.end() ? std::string() : it->second;
}

bool contains(const std::vector<std::string>& v, const std::string& s)
{
  return std::find(v.begin(), v.end(), s) != v.end();
}

} // namespace

BuyersArea::BuyersArea(App& app)
    : m_app(app), m_config(app.m_config), m_store(app.m_store),
      m_en(app.m_config.organisation.locale == model::Locale::en),
      m_per_address(app.m_config.buyers_area.logins_per_hour, 100000, k_hour),
      m_per_client(app.m_config.buyers_area.logins_per_hour_per_client, 100000, k_hour)
{
  if (auto shared = app.shared_failures()) {
    m_per_address.share("login_address", shared);
    m_per_client.share("login_client", shared);
  }
}

BuyersArea::Viewer BuyersArea::rights(const config::Config& config, const std::string& address)
{
  Viewer v;
  v.address = address;
  v.admin = contains(config.buyers_area.admins, address);
  if (v.admin) {
    return v; // no restriction: store::Query::senders stays empty
  }
  std::set<std::string> senders{address};
  for (const auto& [name, members] : config.buyers_area.teams) {
    if (contains(members, address)) {
      senders.insert(members.begin(), members.end());
    }
  }
  v.senders.assign(senders.begin(), senders.end());
  return v;
}

bool BuyersArea::may_log_in(const config::Config& config, const std::string& address)
{
  return policy::may_log_in(config, address);
}

bool BuyersArea::visible(const Viewer& v, const store::pb::Message& m) const
{
  if (v.admin) {
    return true;
  }
  return contains(v.senders, util::ascii_lower(m.sender()));
}

std::string BuyersArea::cookie(const std::string& name, const std::string& value,
                               long max_age) const
{
  std::string c = name + "=" + value + "; Path=/suivi/; HttpOnly; SameSite=Strict";
  if (max_age >= 0) {
    c += "; Max-Age=" + std::to_string(max_age);
  }
  if (m_config.linkd.public_url.rfind("https://", 0) == 0) {
    c += "; Secure";
  }
  return c;
}

std::string BuyersArea::anonymous_csrf(const Request& r, Response& resp) const
{
  std::string t = cookie_value(r.cookie, k_csrf_cookie);
  if (!valid_secret(t)) {
    t = new_secret();
    resp.headers.emplace_back("Set-Cookie", cookie(k_csrf_cookie, t, -1));
  }
  return t;
}

Response BuyersArea::anonymous_form(const Request& r, int status, const std::string& name,
                                    templates::Map ctx)
{
  Response cookie_holder;
  ctx["csrf"] = anonymous_csrf(r, cookie_holder);
  Response page = html(status, name, std::move(ctx), nullptr);
  for (auto& h : cookie_holder.headers) {
    page.headers.push_back(std::move(h));
  }
  return page;
}

bool BuyersArea::anonymous_csrf_ok(const Request& r) const
{
  const std::string c = cookie_value(r.cookie, k_csrf_cookie);
  return valid_secret(c) && equal_secret(c, form_value(r, "csrf"));
}

std::optional<BuyersArea::Viewer> BuyersArea::viewer(const Request& r, util::Micros now)
{
  const std::string secret = cookie_value(r.cookie, k_session_cookie);
  if (!valid_secret(secret)) {
    return std::nullopt;
  }
  const std::string key = key_of(Kind::session, secret);
  auto c = m_store.get_credential(key);
  if (!c) {
    return std::nullopt;
  }
  if (c->kind() != static_cast<std::uint32_t>(Kind::session) || now >= c->expires_at() ||
      !may_log_in(m_config, c->address())) {
    (void)m_store.take_credential(key);
    return std::nullopt;
  }
  Viewer v = rights(m_config, c->address());
  v.session_key = key;
  v.csrf = util::sha256_hex("pli-suivi-csrf\n" + secret);
  return v;
}

Response BuyersArea::html(int status, const std::string& name, templates::Map ctx, const Viewer* v)
{
  if (v != nullptr) {
    ctx["viewer"] = templates::Map{{"address", v->address}, {"csrf", v->csrf}, {"admin", v->admin}};
  }
  return m_app.html(status, name, ctx);
}

Response BuyersArea::message(int status, const std::string& title, const std::string& text,
                             const Viewer* v)
{
  return html(status, "suivi_page", templates::Map{{"page_title", title}, {"text", text}}, v);
}

Response BuyersArea::redirect(const std::string& location)
{
  Response r;
  r.status = 303;
  r.content_type = "text/plain; charset=utf-8";
  r.body = location + "\n";
  add_security_headers(r.headers);
  r.headers.emplace_back("Location", location);
  return r;
}

Response BuyersArea::handle(const Request& r)
{
  const util::Micros now = m_app.m_clock();
  if (r.path == "/suivi") {
    return redirect("/suivi/");
  }
  const std::string rest = r.path.substr(std::string("/suivi").size()); // starts with '/'
  if (rest == "/login" && r.method == "POST") {
    return sign_in(r);
  }
  if (rest.rfind("/login/", 0) == 0 && r.method == "GET") {
    return link_page(r, rest.substr(7));
  }
  auto v = viewer(r, now);
  if (rest == "/") {
    if (r.method == "POST") {
      return ask_link(r);
    }
    if (r.method != "GET") {
      return m_app.page(405, "not_allowed");
    }
    if (!v) {
      return login_form(r, 200, "", "");
    }
    return list(r, *v);
  }
  if (!v) {
    // Not (or no longer) signed in: the login form, which says nothing of what was asked.
    return r.method == "GET" ? redirect("/suivi/")
                             : message(403, m_en ? "Session ended" : "Session terminée",
                                       m_en ? "Sign in again to continue."
                                            : "Connectez-vous de nouveau pour continuer.",
                                       nullptr);
  }
  if (rest == "/logout" && r.method == "POST") {
    return sign_out(r, *v);
  }
  if (rest == "/export.csv" && r.method == "GET") {
    return export_csv(r, *v);
  }
  if (rest.rfind("/d/", 0) == 0) {
    std::string id = rest.substr(3);
    std::string tail;
    if (auto slash = id.find('/'); slash != std::string::npos) {
      tail = id.substr(slash);
      id = id.substr(0, slash);
    }
    return detail(r, *v, id, tail);
  }
  return m_app.page(404, "not_found");
}

// ---- login --------------------------------------------------------------------------

Response BuyersArea::login_form(const Request& r, int status, const std::string& sent_to,
                                const std::string& error)
{
  templates::Map ctx{{"page_title", std::string(m_en ? "Mail tracking: sign in"
                                                     : "Suivi des courriers : connexion")},
                     {"minutes", std::to_string(m_config.buyers_area.login_link_minutes)}};
  if (!sent_to.empty()) {
    ctx["sent_to"] = sent_to;
  }
  if (!error.empty()) {
    ctx["error"] = error;
  }
  return anonymous_form(r, status, "suivi_login", std::move(ctx));
}

Response BuyersArea::ask_link(const Request& r)
{
  const util::Micros now = m_app.m_clock();
  if (!anonymous_csrf_ok(r)) {
    return message(403, m_en ? "Form expired" : "Formulaire expiré",
                   m_en ? "This form is no longer valid. Reload the page and try again."
                        : "Ce formulaire n'est plus valable. Rechargez la page et recommencez.",
                   nullptr);
  }
  const auto limited = [&] {
    m_app.m_metrics.count(Counter::rate_limited);
    Response resp = message(429, m_en ? "Too many requests" : "Trop de demandes",
                            m_en ? "Too many login links were asked for. Try again in an hour."
                                 : "Trop de liens de connexion ont été demandés. Réessayez "
                                   "dans une heure.",
                            nullptr);
    resp.headers.emplace_back("Retry-After", "3600");
    return resp;
  };
  if (m_per_client.blocked(r.client_ip, now)) {
    return limited();
  }
  m_per_client.failure(r.client_ip, now);
  const std::string address = normalise_address(form_value(r, "email"));
  if (address.empty()) {
    return login_form(r, 400, "",
                      m_en ? "Enter an e-mail address such as name@example.org."
                           : "Saisissez une adresse électronique de la forme nom@exemple.fr.");
  }
  // Counted for every address alike, so that the limit says nothing of who is a buyer.
  if (m_per_address.blocked(address, now)) {
    return limited();
  }
  m_per_address.failure(address, now);
  if (may_log_in(m_config, address)) {
    // Queued with the address and IP only: the link is minted when the mail leaves.
    m_app.m_outbox->enqueue("login_link",
                            nlohmann::json{{"address", address}, {"ip", r.client_ip}}.dump());
  } else {
    log::line(log::Level::notice, "",
              {{"suivi", "login_refused"}, {"to", address}, {"ip", r.client_ip}});
  }
  return login_form(r, 200, address, "");
}

bool BuyersArea::mail_link(const std::string& address, const std::string& client_ip)
{
  const util::Micros now = m_app.m_clock();
  const std::string token = new_secret();
  const util::Micros expires =
      now + static_cast<util::Micros>(m_config.buyers_area.login_link_minutes) * 60000000LL;
  store::pb::Credential c;
  c.set_kind(static_cast<std::uint32_t>(Kind::login_link));
  c.set_address(address);
  c.set_created_at(now);
  c.set_expires_at(expires);
  c.set_client_ip(client_ip);
  if (auto st = m_store.put_credential(key_of(Kind::login_link, token), c, now); !st) {
    m_app.m_metrics.error(ErrorKind::store);
    log::line(log::Level::error, "",
              {{"suivi", "login_link"}, {"to", address}, {"store", st.error().message}});
    return false;
  }
  const std::string name = m_en ? "suivi_login_mail.en.txt" : "suivi_login_mail.fr.txt";
  templates::Map mctx{{"link", m_config.linkd.public_url + "/suivi/login/" + token},
                      {"minutes", std::to_string(m_config.buyers_area.login_link_minutes)},
                      {"expires", util::format_human(expires, m_config.organisation.timezone)},
                      {"organisation", m_config.organisation.name},
                      {"ip", client_ip}};
  PlainMail mail;
  mail.locale = m_config.organisation.locale;
  mail.organisation = m_config.organisation.name;
  mail.from_address = m_config.bounce.address;
  mail.to = address;
  mail.subject = m_en ? "Your sign-in link to mail tracking"
                      : "Votre lien de connexion au suivi des courriers";
  mail.text = templates::render_file(name, mctx);
  mail.now = now;
  mail.message_id = util::random_id("l") + "." + std::to_string(now) + "@" + m_config.bounce.domain;
  smtp::Envelope e;
  e.mail_from = ""; // a null return path: an automatic mail never bounces back at pli
  e.rcpt = address;
  e.data = compose_plain_mail(mail);
  const smtp::Options so = notify::reinject_options(m_config);
  auto sent = smtp::send(so, {e});
  const bool ok = !sent.empty() && sent.front().ok;
  log::line(ok ? log::Level::info : log::Level::error, "",
            {{"suivi", "login_link"},
             {"to", address},
             {"ip", client_ip},
             {"smtp", sent.empty() ? std::string("no answer") : sent.front().reply}});
  if (!ok) {
    m_app.m_metrics.error(ErrorKind::notify); // tried again later with a new link
  }
  return ok;
}

// A login link that is used up, expired or unknown (counted against the client, like
// unknown recipient links, when `count`).
Response BuyersArea::invalid_link(const Request& r, util::Micros now, bool count)
{
  if (count) {
    m_app.m_unknown.failure(r.client_ip, now);
    m_app.m_metrics.count(Counter::unknown_token);
  }
  return message(410, m_en ? "Sign-in link not valid" : "Lien de connexion non valable",
                 m_en ? "This sign-in link was already used, has expired or is incomplete. "
                        "Ask for a new one from the sign-in page."
                      : "Ce lien de connexion a déjà servi, a expiré ou est incomplet. "
                        "Demandez-en un nouveau depuis la page de connexion.",
                 nullptr);
}

Response BuyersArea::link_page(const Request& r, const std::string& token)
{
  const util::Micros now = m_app.m_clock();
  if (m_app.m_unknown.blocked(r.client_ip, now)) {
    m_app.m_metrics.count(Counter::rate_limited);
    return m_app.page(429, "rate_limited");
  }
  if (!valid_secret(token)) {
    return invalid_link(r, now, true);
  }
  auto c = m_store.get_credential(key_of(Kind::login_link, token));
  if (!c) {
    if (c.error().code != store::Errc::not_found) {
      m_app.m_metrics.error(ErrorKind::store);
      return m_app.page(503, "unavailable");
    }
    return invalid_link(r, now, true);
  }
  if (now >= c->expires_at()) {
    return invalid_link(r, now, false);
  }
  templates::Map ctx{{"page_title", std::string(m_en ? "Mail tracking: sign in"
                                                     : "Suivi des courriers : connexion")},
                     {"address", c->address()},
                     {"token", token}};
  return anonymous_form(r, 200, "suivi_link", std::move(ctx));
}

Response BuyersArea::sign_in(const Request& r)
{
  const util::Micros now = m_app.m_clock();
  if (!anonymous_csrf_ok(r)) {
    return message(403, m_en ? "Form expired" : "Formulaire expiré",
                   m_en ? "This form is no longer valid. Open the link from your mail again."
                        : "Ce formulaire n'est plus valable. Ouvrez de nouveau le lien reçu "
                          "par courriel.",
                   nullptr);
  }
  if (m_app.m_unknown.blocked(r.client_ip, now)) {
    m_app.m_metrics.count(Counter::rate_limited);
    return m_app.page(429, "rate_limited");
  }
  const std::string token = form_value(r, "token");
  if (!valid_secret(token)) {
    return invalid_link(r, now, true);
  }
  // Used up here, whatever follows: a link opens at most one session.
  auto c = m_store.take_credential(key_of(Kind::login_link, token));
  if (!c) {
    if (c.error().code != store::Errc::not_found) {
      m_app.m_metrics.error(ErrorKind::store);
      return m_app.page(503, "unavailable");
    }
    return invalid_link(r, now, true);
  }
  if (now >= c->expires_at() || !may_log_in(m_config, c->address())) {
    return invalid_link(r, now, true);
  }
  const std::string secret = new_secret();
  store::pb::Credential s;
  s.set_kind(static_cast<std::uint32_t>(Kind::session));
  s.set_address(c->address());
  s.set_created_at(now);
  const long seconds = static_cast<long>(m_config.buyers_area.session_hours) * 3600;
  s.set_expires_at(now + seconds * 1000000LL);
  s.set_client_ip(r.client_ip);
  if (auto st = m_store.put_credential(key_of(Kind::session, secret), s, now); !st) {
    m_app.m_metrics.error(ErrorKind::store);
    log::line(log::Level::error, "", {{"suivi", "session"}, {"store", st.error().message}});
    return m_app.page(503, "unavailable");
  }
  log::line(log::Level::info, "",
            {{"suivi", "login"}, {"address", c->address()}, {"ip", r.client_ip}});
  Response resp = redirect("/suivi/");
  resp.headers.emplace_back("Set-Cookie", cookie(k_session_cookie, secret, seconds));
  return resp;
}

Response BuyersArea::sign_out(const Request& r, const Viewer& v)
{
  if (!equal_secret(form_value(r, "csrf"), v.csrf)) {
    return message(403, m_en ? "Form expired" : "Formulaire expiré",
                   m_en ? "This form is no longer valid. Reload the page and try again."
                        : "Ce formulaire n'est plus valable. Rechargez la page et recommencez.",
                   &v);
  }
  auto gone = m_store.take_credential(v.session_key);
  if (!gone && gone.error().code != store::Errc::not_found) {
    m_app.m_metrics.error(ErrorKind::store);
    return m_app.page(503, "unavailable");
  }
  log::line(log::Level::info, "", {{"suivi", "logout"}, {"address", v.address}});
  Response resp = html(
      200, "suivi_page",
      templates::Map{{"page_title", std::string(m_en ? "Signed out" : "Déconnexion")},
                     {"text", std::string(m_en ? "You are signed out." : "Vous êtes déconnecté.")},
                     {"again", true}},
      nullptr);
  resp.headers.emplace_back("Set-Cookie", cookie(k_session_cookie, "", 0));
  return resp;
}

} // namespace pli::linkd
