#include "core/linkd/app.hpp"

#include "core/linkd/reply_mail.hpp"
#include "core/linkd/suivi.hpp"
#include "core/log/log.hpp"
#include "core/mime/names.hpp"
#include "core/notify/notify.hpp"
#include "core/smtp/client.hpp"
#include "core/templates/templates.hpp"
#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"
#include "core/util/text.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>

namespace pli::linkd {

namespace {

constexpr util::Micros k_fetch_interval = 600LL * 1000000LL; // one `fetched` per 10 minutes
constexpr std::size_t k_form_limit = 64 * 1024;              // bodies of the other forms
constexpr std::size_t k_max_name_bytes = 200;

enum class Purpose : std::uint32_t
{
  recipient = 1,
  sender_reply = 2,
};

// The pages' fixed texts, by key: status, title and text in French and English.
struct PageText
{
  std::string_view key;
  int status;
  std::string_view title_fr, text_fr, title_en, text_en;
};

constexpr PageText k_pages[] = {
    {"not_found", 404, "Page introuvable", "Cette adresse ne correspond à aucune page.",
     "Page not found", "This address does not match any page."},
    {"unknown", 404, "Lien inconnu",
     "Ce lien ne correspond à aucun courrier. Vérifiez qu'il a été copié en entier.",
     "Unknown link", "This link does not match any mail. Check that it was copied in full."},
    {"revoked", 410, "Lien révoqué",
     "L'expéditeur a révoqué ce lien. Contactez-le si vous avez besoin du courrier.",
     "Link revoked", "The sender revoked this link. Contact them if you need the mail."},
    {"expired", 410, "Lien expiré",
     "Ce lien n'est plus valable. Contactez l'expéditeur pour obtenir le courrier.", "Link expired",
     "This link is no longer valid. Contact the sender to obtain the mail."},
    {"unavailable", 503, "Service indisponible",
     "Le service ne peut pas répondre pour l'instant. Réessayez dans quelques instants.",
     "Service unavailable", "The service cannot answer right now. Try again in a moment."},
    {"read_first", 403, "Accès au contenu",
     "Ouvrez d'abord le courrier depuis le lien reçu : l'accès génère l'accusé de réception.",
     "Access to the content",
     "Open the mail from the link you received first: opening it generates the "
     "acknowledgment of receipt."},
    {"reply_first", 403, "Accès à la réponse",
     "Ouvrez d'abord la réponse depuis le lien reçu : son ouverture est enregistrée.",
     "Access to the reply",
     "Open the reply from the link you received first: opening it is "
     "recorded."},
    {"reply_not_allowed", 403, "Réponse impossible",
     "L'expéditeur n'a pas prévu de réponse à ce courrier par cette page.", "Reply not possible",
     "The sender does not accept replies to this mail through this page."},
    {"reply_empty", 400, "Réponse vide",
     "Votre réponse ne contient pas de texte. Revenez à la page précédente pour l'écrire.",
     "Empty reply", "Your reply has no text. Go back to the previous page to write it."},
    {"too_many_files", 413, "Trop de pièces jointes",
     "Votre réponse contient trop de fichiers. Nombre maximal de fichiers :",
     "Too many attachments", "Your reply has too many files. Maximum number of files:"},
    {"too_large", 413, "Envoi trop volumineux",
     "L'envoi dépasse la taille autorisée. Taille maximale (Mo) :", "Upload too large",
     "The upload is larger than allowed. Maximum size (MB):"},
    {"rate_limited", 429, "Trop de tentatives",
     "Trop de liens inconnus ont été essayés depuis votre adresse.", "Too many attempts",
     "Too many unknown links were tried from your address."},
    {"not_allowed", 405, "Action impossible", "Cette action n'est pas possible sur ce lien.",
     "Action not possible", "This action is not possible on this link."},
    {"no_attachment", 404, "Pièce jointe introuvable", "Cette pièce jointe n'existe pas.",
     "Attachment not found", "This attachment does not exist."},
    {"too_many_replies", 403, "Nombre de réponses atteint",
     "Ce courrier a déjà reçu le nombre maximal de réponses par cette page. Contactez "
     "l'expéditeur par un autre moyen. Nombre maximal de réponses :",
     "Reply limit reached",
     "This mail has already received the largest number of replies this page accepts. "
     "Contact the sender another way. Maximum number of replies:"},
    {"replies_too_large", 413, "Volume de réponses atteint",
     "Vos réponses à ce courrier dépasseraient le volume autorisé. Volume maximal (Mo) :",
     "Reply volume reached",
     "Your replies to this mail would exceed the volume allowed. Maximum volume (MB):"},
    {"store_full", 507, "Enregistrement impossible",
     "Le service ne peut pas enregistrer votre envoi pour l'instant. Contactez l'expéditeur.",
     "Cannot record", "The service cannot record your upload right now. Contact the sender."},
    {"overloaded", 503, "Service surchargé",
     "Trop d'envois sont en cours. Réessayez dans quelques instants.", "Service busy",
     "Too many uploads are in progress. Try again in a moment."},
};

const PageText& page_text(std::string_view key)
{
  for (const auto& p : k_pages) {
    if (p.key == key) {
      return p;
    }
  }
  return k_pages[0];
}

bool valid_token(const std::string& t)
{
  if (t.size() < 16 || t.size() > 64) {
    return false;
  }
  for (char c : t) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_')) {
      return false;
    }
  }
  return true;
}

// "/a/12" -> 12; nullopt unless "/a/" and 1-4 digits.
std::optional<int> attachment_index(const std::string& rest)
{
  if (rest.size() < 4 || rest.size() > 7 || rest.compare(0, 3, "/a/") != 0) {
    return std::nullopt;
  }
  int n = 0;
  for (std::size_t i = 3; i < rest.size(); ++i) {
    if (rest[i] < '0' || rest[i] > '9') {
      return std::nullopt;
    }
    n = n * 10 + (rest[i] - '0');
  }
  return n;
}

std::string normalise_newlines(const std::string& text)
{
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < text.size() && text[i + 1] == '\n') {
        ++i;
      }
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

Response plain(int status, std::string body, Route route)
{
  Response r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  r.route = route;
  add_security_headers(r.headers);
  return r;
}

} // namespace

std::string human_size(std::uint64_t n, bool en)
{
  if (n < 1024) {
    return fmt::format("{} {}", n, en ? "B" : "o");
  }
  if (n < 1024 * 1024) {
    return fmt::format("{:.1f} {}", static_cast<double>(n) / 1024.0, en ? "KB" : "Ko");
  }
  return fmt::format("{:.1f} {}", static_cast<double>(n) / (1024.0 * 1024.0), en ? "MB" : "Mo");
}

std::string client_address(const std::string& peer, const std::string& forwarded_for,
                           const std::vector<std::string>& trusted_proxies)
{
  if (forwarded_for.empty()) {
    return peer;
  }
  bool trusted = false;
  for (const auto& p : trusted_proxies) {
    trusted |= p == peer;
  }
  if (!trusted) {
    return peer;
  }
  auto comma = forwarded_for.rfind(',');
  std::string last(
      util::trim(comma == std::string::npos ? forwarded_for : forwarded_for.substr(comma + 1)));
  if (last.empty() || last.size() > 45 ||
      last.find_first_not_of("0123456789abcdefABCDEF.:") != std::string::npos) {
    return peer; // not an IP address: never trust it as one
  }
  return last;
}

Route classify(const std::string& method, const std::string& path)
{
  const bool post = method == "POST";
  if (path == "/healthz") {
    return Route::healthz;
  }
  if (path == "/metrics") {
    return Route::metrics;
  }
  if (path.rfind("/static/", 0) == 0) {
    return Route::static_file;
  }
  if (path == "/suivi" || path.rfind("/suivi/", 0) == 0) {
    return Route::suivi;
  }
  const bool m = path.rfind("/m/", 0) == 0;
  const bool r = path.rfind("/r/", 0) == 0;
  if (!m && !r) {
    return Route::other;
  }
  auto slash = path.find('/', 3);
  std::string rest = slash == std::string::npos ? "" : path.substr(slash);
  if (rest.empty()) {
    return m ? (post ? Route::open : Route::landing)
             : (post ? Route::reply_open : Route::reply_landing);
  }
  if (rest.rfind("/a/", 0) == 0) {
    return m ? Route::download : Route::reply_download;
  }
  if (m && rest == "/html") {
    return Route::html;
  }
  if (m && rest == "/reply") {
    return post ? Route::reply : Route::reply_form;
  }
  return Route::other;
}

App::App(const config::Config& config, store::Store& store, util::Clock clock)
    : m_config(config), m_store(store), m_clock(std::move(clock)),
      m_lang(config.organisation.locale == model::Locale::en ? "en" : "fr"),
      m_globals{{"organisation", config.organisation.name}},
      m_unknown(config.linkd.unknown_tokens_per_minute),
      m_repeats(static_cast<util::Micros>(config.linkd.repeat_interval_minutes) * 60LL * 1000000LL)
{
  if (auto shared = shared_failures()) {
    m_unknown.share("unknown_token", shared);
  }
  // Partials are expanded once here, then each page is parsed once (templates::Template): mstch
  // tokenized the page, and every partial it was given, on each render.
  std::map<std::string, std::string> partials;
  for (const char* p : {"top", "bottom", "facts", "suivi_top", "suivi_bottom"}) {
    const std::string name = std::string("_") + p + "." + m_lang + ".html";
    std::string_view t = templates::get(name);
    if (t.empty()) {
      throw std::runtime_error("missing template " + name);
    }
    partials[std::string("{{> ") + p + "}}"] = std::string(t);
  }
  for (const char* page :
       {"page", "landing", "content", "reply", "reply_sent", "reply_landing", "reply_content",
        "suivi_login", "suivi_link", "suivi_list", "suivi_detail", "suivi_page"}) {
    const std::string file = std::string(page) + "." + m_lang + ".html";
    std::string t(templates::get(file));
    if (t.empty()) {
      throw std::runtime_error("missing template " + file);
    }
    for (const auto& [tag, text] : partials) {
      for (auto at = t.find(tag); at != std::string::npos; at = t.find(tag, at + text.size())) {
        t.replace(at, tag.size(), text);
      }
    }
    m_pages.emplace(page, templates::Template(t));
  }
  m_suivi = std::make_unique<BuyersArea>(*this);
  auto options = notify::Outbox::options_from(config);
  if (!config.store.path.empty()) {
    options.legacy_dir = std::filesystem::path(config.store.path) / "outbox" / "linkd";
  }
  options.upgrade = &App::upgrade_record;
  m_outbox = std::make_unique<notify::Outbox>(
      store, "linkd", [this](const store::ClaimedJob& j) { return run_job(j); },
      std::move(options));
}

App::~App() = default;

std::size_t App::body_limit(const std::string& method, const std::string& path) const
{
  if (classify(method, path) == Route::reply) {
    return static_cast<std::size_t>(m_config.linkd.reply_max_mb) * 1024 * 1024 + k_form_limit;
  }
  return k_form_limit;
}

std::string App::render(const std::string& name, const templates::Map& ctx) const
{
  auto it = m_pages.find(name);
  if (it == m_pages.end()) {
    throw std::runtime_error("missing page template " + name);
  }
  return it->second.render(ctx, &m_globals);
}

Response App::html(int status, const std::string& name, const templates::Map& ctx)
{
  Response r;
  r.status = status;
  r.body = render(name, ctx);
  add_security_headers(r.headers);
  return r;
}

Response App::page(int status, std::string_view key, const std::string& detail)
{
  const PageText& p = page_text(key);
  const bool en = m_lang == "en";
  std::string text(en ? p.text_en : p.text_fr);
  if (!detail.empty()) {
    text += " " + detail;
  }
  templates::Map ctx{{"page_title", std::string(en ? p.title_en : p.title_fr)}, {"text", text}};
  if (status == 429 || status == 503) {
    ctx["retry"] = true;
  }
  Response r = html(status != 0 ? status : p.status, "page", ctx);
  if (r.status == 429 || r.status == 503) { // too many requests; the store cannot answer now
    r.headers.emplace_back("Retry-After", "60");
  }
  return r;
}

Response App::refuse(const Request& request, Refusal why)
{
  Response r = why == Refusal::too_large
                   ? page(413, "too_large", std::to_string(m_config.linkd.reply_max_mb))
                   : page(503, "overloaded");
  r.route = classify(request.method, request.path);
  return r;
}

Response App::handle(const Request& request)
{
  Outcome o = start(request);
  if (auto* p = std::get_if<Pending>(&o)) {
    auto st = m_store.append_events({p->event});
    return p->finish(st ? std::nullopt : std::optional<util::Error>(st.error()));
  }
  return std::move(std::get<Response>(o));
}

namespace {

// Every text of a request as valid UTF-8 (util/text.hpp): the one-line ones without
// controls, the form fields (a reply's text is multi-line) repaired only. True when
// something had to change.
bool needs_cleaning(const Request& r)
{
  const auto line_ok = [](const std::string& s) { return util::clean_line(s) == s; };
  bool dirty = !line_ok(r.user_agent) || !line_ok(r.client_ip) || !line_ok(r.cookie);
  for (const auto& [k, v] : r.form) {
    dirty = dirty || !line_ok(k) || util::clean_text(v) != v;
  }
  for (const auto& [k, v] : r.query) {
    dirty = dirty || !line_ok(k) || !line_ok(v);
  }
  for (const auto& f : r.files) {
    // A file's name is left to mime::sanitize_file_name (valid UTF-8, controls removed).
    dirty = dirty || !line_ok(f.field) || !line_ok(f.media_type);
  }
  return dirty;
}

Request cleaned(const Request& r)
{
  Request c = r;
  c.user_agent = util::clean_line(r.user_agent);
  c.client_ip = util::clean_line(r.client_ip);
  c.cookie = util::clean_line(r.cookie);
  c.form.clear();
  for (const auto& [k, v] : r.form) {
    c.form[util::clean_line(k)] = util::clean_text(v);
  }
  for (auto& [k, v] : c.query) {
    k = util::clean_line(k);
    v = util::clean_line(v);
  }
  for (auto& f : c.files) {
    f.field = util::clean_line(f.field);
    f.media_type = util::clean_line(f.media_type);
  }
  return c;
}

} // namespace

Outcome App::start(const Request& request)
{
  if (needs_cleaning(request)) {
    return start(cleaned(request)); // copied only when some text was not clean
  }
  if (request.method == "HEAD") {
    Request r = request;
    r.method = "GET"; // MHD sends no body for HEAD; it records nothing more than a GET
    return start(r);
  }
  Outcome o = route(request);
  if (auto* resp = std::get_if<Response>(&o); resp != nullptr && resp->route == Route::other) {
    resp->route = classify(request.method, request.path);
  }
  return o;
}

Outcome App::route(const Request& request)
{
  if (request.path == "/healthz") {
    return plain(200, "ok\n", Route::healthz);
  }
  if (request.path == "/metrics") {
    if (!request.local) {
      return page(404, "not_found");
    }
    Response r = plain(200, m_metrics.render(), Route::metrics);
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  }
  if (request.path == "/static/pli.css" && request.method == "GET") {
    Response r = plain(200, std::string(templates::get("pli.css")), Route::static_file);
    r.content_type = "text/css; charset=utf-8";
    return r;
  }
  if (request.path == "/suivi" || request.path.rfind("/suivi/", 0) == 0) {
    Response r = m_suivi->handle(request);
    r.route = Route::suivi;
    return r;
  }
  const bool m = request.path.rfind("/m/", 0) == 0;
  if (m || request.path.rfind("/r/", 0) == 0) {
    std::string rest = request.path.substr(3);
    auto slash = rest.find('/');
    std::string token = rest.substr(0, slash);
    rest = slash == std::string::npos ? "" : rest.substr(slash);
    if (m) {
      return recipient(request, token, rest);
    }
    return sender(request, token, rest);
  }
  return page(404, "not_found");
}

store::NewEvent App::event(const std::string& delivery, model::EventKind kind, const Request& r,
                           std::map<std::string, std::string> detail) const
{
  detail["ip"] = r.client_ip;
  detail["user_agent"] = r.user_agent;
  store::NewEvent e;
  e.delivery = delivery;
  e.kind = kind;
  e.at = m_clock();
  e.detail = std::move(detail);
  return e;
}

bool App::recorded(const store::NewEvent& e, const std::string& ip,
                   const std::optional<util::Error>& error)
{
  if (error) {
    m_metrics.error(ErrorKind::store);
    log::line(
        log::Level::error, "",
        {{"event", model::code(e.kind)}, {"delivery", e.delivery}, {"store", error->message}});
    return false;
  }
  log::line(log::Level::info, "",
            {{"event", model::code(e.kind)}, {"delivery", e.delivery}, {"ip", ip}});
  return true;
}

bool App::record(const std::string& delivery, model::EventKind kind, const Request& r,
                 std::map<std::string, std::string> detail)
{
  const store::NewEvent e = event(delivery, kind, r, std::move(detail));
  auto st = m_store.append_events({e});
  return recorded(e, r.client_ip, st ? std::nullopt : std::optional<util::Error>(st.error()));
}

void App::facts(Link& l, templates::Map& ctx)
{
  const auto& m = l.message;
  const auto& tz = m_config.organisation.timezone;
  const auto type = static_cast<model::MessageType>(m.type());
  ctx.emplace("sender", m.from_header().empty() ? m.sender() : m.from_header());
  ctx.emplace("recipient", l.delivery.recipient());
  ctx.emplace("type_label", std::string(model::label(type, m_config.organisation.locale)));
  ctx.emplace("subject", m.subject());
  ctx.emplace("sent_at", util::format_human(m.sent_at(), tz));
  ctx.emplace("token", l.token);
  if (!m.consultation().empty()) {
    templates::Map c{{"reference", m.consultation()}};
    if (auto info = m_store.get_consultation(m.consultation())) {
      if (!info->title().empty()) {
        c["title"] = info->title();
      }
      if (!info->object().empty()) {
        c["object"] = info->object();
      }
      if (info->deadline() != 0) {
        c["deadline"] = util::format_human_short(info->deadline(), tz);
      }
    }
    ctx.emplace("consultation", c);
  }
}

FailureLimiter::SharedCount App::shared_failures()
{
  // Several pli-linkd replicas share one PostgreSQL store: their rate limits are counted in
  // it too, so that no client gains by spreading its attempts over the replicas. On LMDB
  // (one host) each process's own count is the whole count.
  if (m_config.store.backend != config::Config::StoreBackend::postgresql) {
    return {};
  }
  return [this](const std::string& key, std::int64_t start,
                std::int64_t end) -> std::optional<std::uint64_t> {
    auto n = m_store.count_failure(key, start, end);
    if (!n) {
      return std::nullopt;
    }
    return n.value();
  };
}

// The token of a link, checked: syntax, lookup, purpose, and for an unknown one the rate
// limit per client address. Returns nullopt with `refused` set to the page to answer (429,
// 404, 503).
std::optional<store::pb::Token> App::token_for(const Request& r, const std::string& token,
                                               std::uint32_t purpose, util::Micros now,
                                               std::optional<Response>& refused)
{
  // A valid link is always answered: only unknown ones are refused once the client's
  // limit is reached (a whole NAT or /64 behind one address keeps its links).
  const auto unknown = [&] {
    if (m_unknown.blocked(r.client_ip, now)) {
      m_metrics.count(Counter::rate_limited);
      refused = page(429, "rate_limited");
      return std::nullopt;
    }
    m_unknown.failure(r.client_ip, now);
    m_metrics.count(Counter::unknown_token);
    log::line(log::Level::notice, "", {{"http", "unknown_token"}, {"ip", r.client_ip}});
    refused = page(404, "unknown");
    return std::nullopt;
  };
  if (!valid_token(token)) {
    return unknown();
  }
  auto tok = m_store.get_token(util::sha256_hex(token));
  if (!tok) {
    if (tok.error().code != store::Errc::not_found) {
      m_metrics.error(ErrorKind::store);
      refused = page(503, "unavailable");
      return std::nullopt;
    }
    return unknown();
  }
  if (tok->purpose() != purpose) {
    return unknown();
  }
  return std::move(tok.value());
}

std::variant<App::Link, Response> App::link_for(const Request& r, const std::string& token)
{
  const util::Micros now = m_clock();
  std::optional<Response> refused;
  auto tok = token_for(r, token, static_cast<std::uint32_t>(Purpose::recipient), now, refused);
  if (!tok) {
    return std::move(*refused);
  }
  auto d = m_store.get_delivery(tok->delivery());
  auto msg = d ? m_store.get_message(d->message()) : util::Result<store::pb::Message>(d.error());
  if (!d || !msg) {
    m_metrics.error(ErrorKind::store);
    return page(503, "unavailable");
  }
  if (d->revoked()) {
    return page(410, "revoked");
  }
  if (tok->expires_at() != 0 && now > tok->expires_at()) {
    return page(410, "expired");
  }
  return Link{token, std::move(tok.value()), std::move(d.value()), std::move(msg.value()), {}, now};
}

std::optional<Response> App::reply_caps(const store::pb::Delivery& d, std::uint64_t incoming)
{
  const auto max_replies = m_config.linkd.max_replies_per_delivery;
  if (static_cast<std::uint64_t>(d.reply_ids_size()) >= max_replies) {
    return page(403, "too_many_replies", std::to_string(max_replies));
  }
  const std::uint64_t max_bytes = m_config.linkd.max_reply_mb_per_delivery * 1024 * 1024;
  std::uint64_t bytes = incoming;
  for (const auto& id : d.reply_ids()) {
    auto rep = m_store.get_reply(id);
    if (!rep) {
      continue; // unreadable: counted by its number only
    }
    bytes += rep->text().size();
    for (const auto& a : rep->attachments()) {
      bytes += a.size();
    }
  }
  if (bytes > max_bytes) {
    return page(413, "replies_too_large", std::to_string(m_config.linkd.max_reply_mb_per_delivery));
  }
  return std::nullopt;
}

std::optional<Response> App::precheck(const Request& r, std::uint64_t content_length)
{
  const Route route = classify(r.method, r.path);
  if (route != Route::open && route != Route::reply && route != Route::reply_open) {
    return std::nullopt;
  }
  std::optional<Response> answer;
  const std::string rest = r.path.substr(3);
  const std::string token = rest.substr(0, rest.find('/'));
  if (route == Route::reply_open) {
    std::optional<Response> refused;
    if (!token_for(r, token, static_cast<std::uint32_t>(Purpose::sender_reply), m_clock(),
                   refused)) {
      answer = std::move(refused);
    }
  } else {
    auto l = link_for(r, token);
    if (auto* resp = std::get_if<Response>(&l)) {
      answer = std::move(*resp);
    } else if (route == Route::reply) {
      const Link& link = std::get<Link>(l);
      if (!link.message.reply_allowed()) {
        answer = page(403, "reply_not_allowed");
      } else if (link.delivery.read_at() == 0) {
        answer = page(403, "read_first");
      } else {
        answer = reply_caps(link.delivery,
                            content_length > k_form_limit ? content_length - k_form_limit : 0);
      }
    }
  }
  if (answer) {
    answer->route = route;
  }
  return answer;
}

Outcome App::recipient(const Request& r, const std::string& token, const std::string& rest)
{
  auto checked = link_for(r, token);
  if (auto* resp = std::get_if<Response>(&checked)) {
    return std::move(*resp);
  }
  Link l = std::move(std::get<Link>(checked));

  if (rest.empty() && r.method == "GET") {
    return landing(r, l);
  }
  if (rest.empty() && r.method == "POST") {
    return open(r, l);
  }
  if (rest == "/reply" && (r.method == "GET" || r.method == "POST")) {
    if (!l.message.reply_allowed()) {
      return page(403, "reply_not_allowed");
    }
  }
  // Everything past the landing page needs a recorded read first.
  if (l.delivery.read_at() == 0) {
    return page(403, "read_first");
  }
  if (rest == "/html" && r.method == "GET") {
    Response resp;
    resp.body = l.message.html_body();
    add_security_headers(resp.headers, Framing::self);
    return resp;
  }
  if (rest.rfind("/a/", 0) == 0 && r.method == "GET") {
    return download(r, l, rest);
  }
  if (rest == "/reply" && r.method == "GET") {
    return reply_form(l);
  }
  if (rest == "/reply" && r.method == "POST") {
    return reply(r, l);
  }
  return page(405, "not_allowed");
}

Response App::landing(const Request& r, Link& l)
{
  bool record_fetch = false;
  {
    std::lock_guard lock(m_fetch_mutex);
    if (m_last_fetch.size() > 100000) {
      for (auto it = m_last_fetch.begin(); it != m_last_fetch.end();) {
        it = l.now - it->second >= k_fetch_interval ? m_last_fetch.erase(it) : std::next(it);
      }
    }
    auto& last = m_last_fetch[l.delivery.id()];
    if (l.now - last >= k_fetch_interval) {
      if (!r.may_wait) {
        Response deferred;
        deferred.deferred = true;
        deferred.route = Route::landing;
        return deferred;
      }
      last = l.now;
      record_fetch = true;
    }
  }
  // A technical trace only: never a read, never a status change. A failure to record it
  // does not stop the page.
  if (record_fetch && record(l.delivery.id(), model::EventKind::fetched, r)) {
    m_metrics.count(Counter::fetched);
  }
  templates::Map ctx{{"page_title", l.message.subject()}};
  facts(l, ctx);
  return html(200, "landing", ctx);
}

Outcome App::open(const Request& r, Link& l)
{
  // The first read is always recorded; then at most one per interval, the next one
  // carrying how many were only counted.
  const std::string key = "read " + l.delivery.id();
  const auto take = m_repeats.take(key, l.now, l.delivery.read_at() == 0);
  if (!take) {
    return opened(std::make_shared<Link>(std::move(l)));
  }
  Pending p;
  p.event =
      event(l.delivery.id(), model::EventKind::read, r,
            *take == 0 ? std::map<std::string, std::string>{}
                       : std::map<std::string, std::string>{{"repeats", std::to_string(*take)}});
  if (m_config.notify.read && l.delivery.read_at() == 0) {
    // The buyer's notification (first read only, with the receipt), queued with the read in
    // its transaction (notify_event decides; not even queued when it could only skip).
    p.event.job = store::Job{"linkd", "read_notification", l.delivery.SerializeAsString()};
  }
  p.finish = [this, link = std::make_shared<Link>(std::move(l)), ip = r.client_ip, e = p.event, key,
              repeats = *take](const std::optional<util::Error>& error) {
    if (!recorded(e, ip, error)) {
      m_repeats.failed(key, repeats);
      return page(503, "unavailable");
    }
    return opened(link);
  };
  return p;
}

// The content page, once the read is committed.
Response App::opened(const std::shared_ptr<Link>& link)
{
  Link& l = *link;
  m_metrics.count(Counter::read);
  // The read is committed, with the buyer's notification when it has one: sent now, from
  // the outbox, tried again while the re-injection listener refuses it.
  if (m_config.notify.read && l.delivery.read_at() == 0) {
    m_outbox->wake();
  }
  const bool en = m_lang == "en";
  const auto& m = l.message;
  templates::Map ctx{{"page_title", m.subject()}};
  facts(l, ctx);
  ctx["read_at"] = util::format_human(l.delivery.read_at() != 0 ? l.delivery.read_at() : l.now,
                                      m_config.organisation.timezone);
  if (!m.text_body().empty()) {
    ctx["text_body"] = m.text_body();
  }
  ctx["has_html"] = !m.html_body().empty();
  templates::List atts;
  for (int i = 0; i < m.attachments_size(); ++i) {
    const auto& a = m.attachments(i);
    atts.push_back(templates::Map{{"index", std::to_string(i)},
                                  {"name", a.name()},
                                  {"size", human_size(a.size(), en)},
                                  {"sha256", a.sha256()},
                                  {"token", l.token}});
  }
  ctx["has_attachments"] = !atts.empty();
  ctx["attachments"] = atts;
  ctx["reply_allowed"] = m.reply_allowed();
  if (l.delivery.reply_ids_size() > 0) {
    ctx["replies"] = std::to_string(l.delivery.reply_ids_size());
  }
  return html(200, "content", ctx);
}

Response App::download(const Request& r, Link& l, const std::string& rest)
{
  const auto& attachments = l.reply ? l.reply->attachments() : l.message.attachments();
  auto index = attachment_index(rest);
  if (!index || *index >= attachments.size()) {
    return page(404, "no_attachment");
  }
  const auto& a = attachments[*index];
  auto blob = m_store.get_blob(a.sha256());
  if (!blob) {
    m_metrics.error(ErrorKind::store);
    return page(503, "unavailable");
  }
  if (!l.reply) {
    const std::string key = "a " + l.delivery.id() + " " + std::to_string(*index);
    if (const auto take = m_repeats.take(key, l.now)) {
      std::map<std::string, std::string> detail{
          {"name", a.name()}, {"sha256", a.sha256()}, {"index", std::to_string(*index)}};
      if (*take != 0) {
        detail["repeats"] = std::to_string(*take);
      }
      if (!record(l.delivery.id(), model::EventKind::download, r, std::move(detail))) {
        m_repeats.failed(key, *take);
        return page(503, "unavailable");
      }
    }
    m_metrics.count(Counter::download);
  }
  Response resp;
  resp.content_type = safe_media_type(a.media_type());
  resp.body = std::move(blob.value());
  add_security_headers(resp.headers);
  resp.headers.emplace_back("Content-Disposition", content_disposition(a.name()));
  return resp;
}

Response App::reply_form(Link& l)
{
  const bool en = m_lang == "en";
  templates::Map ctx{
      {"page_title", std::string(en ? "Reply: " : "Répondre : ") + l.message.subject()},
      {"max_mb", std::to_string(m_config.linkd.reply_max_mb)}};
  if (m_config.linkd.reply_max_attachments > 0) {
    ctx["max_attachments"] = std::to_string(m_config.linkd.reply_max_attachments);
  }
  facts(l, ctx);
  return html(200, "reply", ctx);
}

Response App::reply(const Request& r, Link& l)
{
  auto text_it = r.form.find("text");
  const std::string text = text_it == r.form.end() ? "" : normalise_newlines(text_it->second);
  if (util::trim(text).empty()) {
    return page(400, "reply_empty");
  }
  std::vector<const UploadedFile*> files;
  for (const auto& f : r.files) {
    if (!f.name.empty() || !f.data.empty()) {
      files.push_back(&f);
    }
  }
  if (files.size() > m_config.linkd.reply_max_attachments) {
    return page(413, "too_many_files", std::to_string(m_config.linkd.reply_max_attachments));
  }
  const util::Micros now = m_clock();
  store::NewReply nr;
  auto& rep = nr.reply;
  rep.set_id(util::random_id("r"));
  rep.set_delivery(l.delivery.id());
  rep.set_message(l.message.id());
  rep.set_from(l.delivery.recipient());
  rep.set_at(now);
  rep.set_text(text);
  rep.set_ip(r.client_ip);
  rep.set_user_agent(r.user_agent);
  mime::UniqueNames names(k_max_name_bytes);
  for (std::size_t i = 0; i < files.size(); ++i) {
    const auto& f = *files[i];
    const std::string type = safe_media_type(f.media_type);
    std::string name = mime::sanitize_file_name(f.name);
    if (name.empty()) {
      name = mime::default_file_name(i + 1, type);
    }
    auto* a = rep.add_attachments();
    a->set_name(names.claim(name));
    a->set_media_type(type);
    a->set_size(f.data.size());
    a->set_sha256(util::sha256_hex(f.data));
    nr.blobs[a->sha256()] = f.data;
  }
  // The caps, checked again with the exact size under the lock the creation holds: two
  // replies at once cannot both take the last place.
  std::unique_lock caps_lock(m_reply_mutex);
  auto current = m_store.get_delivery(l.delivery.id());
  if (!current) {
    m_metrics.error(ErrorKind::store);
    return page(503, "unavailable");
  }
  std::uint64_t incoming = text.size();
  for (const auto* f : files) {
    incoming += f->data.size();
  }
  if (auto refused = reply_caps(current.value(), incoming)) {
    log::line(log::Level::notice, "",
              {{"event", "reply_refused"}, {"delivery", l.delivery.id()}, {"ip", r.client_ip}});
    return std::move(*refused);
  }
  // The reply and its event in one transaction: a crash leaves both or neither.
  store::NewEvent ev;
  ev.delivery = l.delivery.id();
  ev.kind = model::EventKind::reply;
  ev.at = now;
  ev.detail = {{"reply", rep.id()},
               {"text_sha256", util::sha256_hex(text)},
               {"attachments", std::to_string(rep.attachments_size())},
               {"ip", r.client_ip},
               {"user_agent", r.user_agent}};
  // The sender's notice, queued in the same transaction (the outbox sends it after the
  // commit, tried again while the listener refuses it). Its job names the reply only: the
  // sender's link is minted when the notice is sent, so that no bearer secret waits.
  ev.job = store::Job{"linkd", "reply_notice",
                      nlohmann::json{{"reply", rep.id()}, {"delivery", l.delivery.id()}}.dump()};
  nr.events.push_back(std::move(ev));
  if (auto st = m_store.create_reply(nr); !st) {
    m_metrics.error(ErrorKind::store);
    log::line(log::Level::error, "", {{"event", "reply"}, {"store", st.error().message}});
    if (st.error().code == store::Errc::full) {
      return page(507, "store_full");
    }
    return page(503, "unavailable");
  }
  caps_lock.unlock();
  log::line(log::Level::info, "",
            {{"event", model::code(model::EventKind::reply)},
             {"delivery", l.delivery.id()},
             {"ip", r.client_ip}});
  m_metrics.count(Counter::reply);

  m_outbox->wake();

  templates::Map ctx{{"page_title", std::string(m_lang == "en" ? "Reply sent" : "Réponse envoyée")},
                     {"replied_at", util::format_human(now, m_config.organisation.timezone)},
                     {"attachment_count", std::to_string(rep.attachments_size())}};
  facts(l, ctx);
  return html(200, "reply_sent", ctx);
}

bool App::run_job(const store::ClaimedJob& job)
{
  const auto& j = job.job;
  const std::string message_id = notify::Outbox::message_id(job, m_config.bounce.domain);
  if (j.kind == "read_notification") {
    store::pb::Delivery before;
    if (!before.ParseFromString(j.payload) || before.id().empty()) {
      log::line(log::Level::error, "", {{"outbox", "job_unusable"}, {"kind", j.kind}});
      return true;
    }
    const auto res =
        notify::notify_event(m_config, m_store, before, model::EventKind::read, message_id);
    return res.outcome != notify::Outcome::reinject_error &&
           res.outcome != notify::Outcome::store_error;
  }
  auto p = nlohmann::json::parse(j.payload, nullptr, false);
  if (p.is_discarded() || !p.is_object()) {
    log::line(log::Level::error, "", {{"outbox", "job_unusable"}, {"kind", j.kind}});
    return true;
  }
  if (j.kind == "reply_notice") {
    const std::string reply = p.value("reply", "");
    const std::string delivery = p.value("delivery", "");
    auto envelope = reply_notice(reply, message_id);
    if (!envelope) {
      m_metrics.error(ErrorKind::notify);
      log::line(log::Level::error, "",
                {{"event", "reply_notice"},
                 {"reply", reply},
                 {"delivery", delivery},
                 {"store", envelope.error().message}});
      // A reply that no longer exists (purged) has nothing to announce: done.
      return envelope.error().code == store::Errc::not_found;
    }
    return send_notice(envelope.value(), reply, delivery);
  }
  if (j.kind == "login_link") {
    return m_suivi->mail_link(p.value("address", ""), p.value("ip", ""));
  }
  log::line(log::Level::error, "", {{"outbox", "job_unknown"}, {"kind", j.kind}});
  return true;
}

std::optional<std::string> App::upgrade_record(const std::string& kind, const std::string& payload)
{
  if (kind == "read_notification") {
    store::pb::Delivery before;
    if (!before.ParseFromString(payload) || before.id().empty()) {
      return std::nullopt;
    }
    return payload;
  }
  if (kind == "reply_notice") {
    // An earlier version's file may hold the composed mail (its link): only the ids are
    // kept, the notice is composed again with a new link when it is sent.
    auto j = nlohmann::json::parse(payload, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("reply", "").empty()) {
      return std::nullopt;
    }
    return nlohmann::json{{"reply", j.value("reply", "")}, {"delivery", j.value("delivery", "")}}
        .dump();
  }
  return std::nullopt;
}

util::Result<smtp::Envelope> App::reply_notice(const std::string& reply,
                                               const std::string& message_id)
{
  auto rep = m_store.get_reply(reply);
  auto d =
      rep ? m_store.get_delivery(rep->delivery()) : util::Result<store::pb::Delivery>(rep.error());
  auto msg = d ? m_store.get_message(d->message()) : util::Result<store::pb::Message>(d.error());
  if (!msg) {
    return msg.error();
  }
  const util::Micros now = m_clock();
  const util::Micros expires =
      rep->at() +
      static_cast<util::Micros>(m_config.linkd.link_validity_days) * 86400LL * 1000000LL;
  const std::string token = util::base64url(util::random_bytes(16));
  if (auto st = m_store.add_reply_token(reply, util::sha256_hex(token), expires); !st) {
    return st.error();
  }
  ReplyNoticeInput in;
  in.locale = m_config.organisation.locale;
  in.timezone = m_config.organisation.timezone;
  in.organisation = m_config.organisation.name;
  in.from_address = m_config.bounce.address;
  in.to = msg->sender();
  in.replier = d->recipient();
  in.subject = msg->subject();
  in.sent_at = msg->sent_at();
  in.link = m_config.linkd.public_url + "/r/" + token;
  in.expires_at = expires;
  in.now = now;
  in.message_id = message_id;
  smtp::Envelope e;
  e.mail_from = m_config.bounce.address;
  e.envid = reply;
  e.ret = "HDRS";
  e.rcpt = msg->sender();
  e.notify = "FAILURE,DELAY";
  e.data = compose_reply_notice(in);
  return e;
}

bool App::send_notice(const smtp::Envelope& e, const std::string& reply,
                      const std::string& delivery)
{
  const smtp::Options so = notify::reinject_options(m_config);
  auto sent = smtp::send(so, {e});
  const bool notified = !sent.empty() && sent.front().ok;
  if (!notified) {
    m_metrics.error(ErrorKind::notify);
  }
  log::line(notified ? log::Level::info : log::Level::error, "",
            {{"event", "reply_notice"},
             {"reply", reply},
             {"delivery", delivery},
             {"smtp", sent.empty() ? std::string("no answer") : sent.front().reply}});
  return notified;
}

Response App::sender(const Request& r, const std::string& token, const std::string& rest)
{
  const util::Micros now = m_clock();
  std::optional<Response> refused;
  auto tok = token_for(r, token, static_cast<std::uint32_t>(Purpose::sender_reply), now, refused);
  if (!tok) {
    return std::move(*refused);
  }
  auto rep = m_store.get_reply(tok->reply());
  auto d = m_store.get_delivery(tok->delivery());
  auto msg = d ? m_store.get_message(d->message()) : util::Result<store::pb::Message>(d.error());
  if (!rep || !d || !msg) {
    m_metrics.error(ErrorKind::store);
    return page(503, "unavailable");
  }
  if (tok->expires_at() != 0 && now > tok->expires_at()) {
    return page(410, "expired");
  }
  Link l{token,
         std::move(tok.value()),
         std::move(d.value()),
         std::move(msg.value()),
         std::move(rep.value()),
         now};
  const auto& tz = m_config.organisation.timezone;
  templates::Map ctx{{"from", l.reply->from()},
                     {"replied_at", util::format_human(l.reply->at(), tz)},
                     {"page_title", std::string(m_lang == "en" ? "Reply from " : "Réponse de ") +
                                        l.reply->from()}};
  facts(l, ctx);
  if (rest.empty() && r.method == "GET") {
    return html(200, "reply_landing", ctx);
  }
  if (rest.empty() && r.method == "POST") {
    const std::string key = "reply_read " + l.reply->id();
    if (const auto take = m_repeats.take(key, now)) {
      std::map<std::string, std::string> detail{{"reply", l.reply->id()}};
      if (*take != 0) {
        detail["repeats"] = std::to_string(*take);
      }
      if (!record(l.delivery.id(), model::EventKind::reply_read, r, std::move(detail))) {
        m_repeats.failed(key, *take);
        return page(503, "unavailable");
      }
    }
    m_metrics.count(Counter::reply_read);
    const bool en = m_lang == "en";
    ctx["read_at"] = util::format_human(now, tz);
    ctx["text"] = l.reply->text();
    templates::List atts;
    for (int i = 0; i < l.reply->attachments_size(); ++i) {
      const auto& a = l.reply->attachments(i);
      atts.push_back(templates::Map{{"index", std::to_string(i)},
                                    {"name", a.name()},
                                    {"size", human_size(a.size(), en)},
                                    {"sha256", a.sha256()},
                                    {"token", l.token}});
    }
    ctx["has_attachments"] = !atts.empty();
    ctx["attachments"] = atts;
    return html(200, "reply_content", ctx);
  }
  if (rest.rfind("/a/", 0) == 0 && r.method == "GET") {
    // Only once this reply was opened (a `reply_read` naming it).
    auto events = m_store.events_of_message(l.message.id());
    if (!events) {
      m_metrics.error(ErrorKind::store);
      return page(503, "unavailable");
    }
    bool opened = false;
    for (const auto& e : events.value()) {
      if (e.kind() == static_cast<std::uint32_t>(model::EventKind::reply_read)) {
        auto it = e.detail().find("reply");
        opened |= it != e.detail().end() && it->second == l.reply->id();
      }
    }
    if (!opened) {
      return page(403, "reply_first");
    }
    return download(r, l, rest);
  }
  return page(405, "not_allowed");
}

} // namespace pli::linkd
