#include "core/linkd/app.hpp"

#include "core/log/log.hpp"
#include "core/templates/templates.hpp"
#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"

#include <fmt/format.h>
#include <mstch/mstch.hpp>

namespace pli::linkd {

namespace {

constexpr util::Micros k_fetch_interval = 600LL * 1000000LL; // one `fetched` per 10 minutes

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

std::string human_size(std::uint64_t n)
{
  if (n < 1024) {
    return fmt::format("{} o", n);
  }
  if (n < 1024 * 1024) {
    return fmt::format("{:.1f} Ko", static_cast<double>(n) / 1024.0);
  }
  return fmt::format("{:.1f} Mo", static_cast<double>(n) / (1024.0 * 1024.0));
}

void security_headers(Response& r)
{
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; style-src 'self'; frame-src 'self'; "
                         "form-action 'self'; base-uri 'none'; frame-ancestors 'none'");
}

std::string render(const std::string& name, const mstch::map& ctx)
{
  return mstch::render(std::string(templates::get(name)), ctx);
}

// RFC 5987 / RFC 6266 filename* parameter.
std::string content_disposition(const std::string& name)
{
  std::string ascii, encoded;
  for (unsigned char c : name) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-' || c == '_';
    ascii.push_back(c < 0x80 && c >= 0x20 && c != '"' && c != '\\' ? static_cast<char>(c) : '_');
    if (plain) {
      encoded.push_back(static_cast<char>(c));
    } else {
      encoded += fmt::format("%{:02X}", c);
    }
  }
  return fmt::format("attachment; filename=\"{}\"; filename*=UTF-8''{}", ascii, encoded);
}

} // namespace

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
  return last.empty() ? peer : last;
}

App::App(const config::Config& config, store::Store& store, util::Clock clock)
    : m_config(config), m_store(store), m_clock(std::move(clock))
{
}

Response App::page(int status, const std::string& title, const std::string& text)
{
  Response r;
  r.status = status;
  r.body = render(
      "page.fr.html",
      mstch::map{{"organisation", m_config.organisation.name}, {"title", title}, {"text", text}});
  security_headers(r);
  return r;
}

Response App::handle(const Request& request)
{
  if (request.path == "/healthz") {
    Response r;
    r.content_type = "text/plain; charset=utf-8";
    r.body = "ok\n";
    return r;
  }
  if (request.path == "/static/pli.css") {
    Response r;
    r.content_type = "text/css; charset=utf-8";
    r.body = std::string(templates::get("pli.css"));
    r.headers.emplace_back("Cache-Control", "public, max-age=3600");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    return r;
  }
  if (request.path.rfind("/m/", 0) == 0) {
    std::string rest = request.path.substr(3);
    auto slash = rest.find('/');
    std::string token = rest.substr(0, slash);
    return link(request, token, slash == std::string::npos ? "" : rest.substr(slash));
  }
  return page(404, "Page introuvable", "Cette adresse ne correspond à aucune page.");
}

Response App::link(const Request& r, const std::string& token, const std::string& rest)
{
  const auto unknown = [&] {
    return page(404, "Lien inconnu",
                "Ce lien ne correspond à aucun courrier. Vérifiez qu'il a été copié en entier.");
  };
  if (!valid_token(token)) {
    return unknown();
  }
  auto tok = m_store.get_token(util::sha256_hex(token));
  if (!tok) {
    if (tok.error().code != static_cast<int>(store::Errc::not_found)) {
      return page(503, "Service indisponible", "Réessayez dans quelques instants.");
    }
    return unknown();
  }
  auto d = m_store.get_delivery(tok->delivery());
  auto m = d ? m_store.get_message(d->message()) : util::Result<store::pb::Message>(d.error());
  if (!d || !m) {
    return page(503, "Service indisponible", "Réessayez dans quelques instants.");
  }
  const util::Micros now = m_clock();
  if (d->revoked()) {
    return page(410, "Lien révoqué",
                "L'expéditeur a révoqué ce lien. Contactez-le si vous avez besoin du courrier.");
  }
  if (tok->expires_at() != 0 && now > tok->expires_at()) {
    return page(410, "Lien expiré",
                "Ce lien n'est plus valable. Contactez l'expéditeur pour obtenir le courrier.");
  }
  const auto& tz = m_config.organisation.timezone;
  const auto type = static_cast<model::MessageType>(m->type());
  std::string consultation = m->consultation();
  mstch::map ctx{
      {"organisation", m_config.organisation.name},
      {"sender", m->from_header().empty() ? m->sender() : m->from_header()},
      {"recipient", d->recipient()},
      {"type_label", std::string(model::label(type, m_config.organisation.locale))},
      {"subject", m->subject()},
      {"sent_at", util::format_human(m->sent_at(), tz)},
      {"token", token},
  };
  if (!consultation.empty()) {
    ctx["consultation"] = consultation;
  }

  if (rest.empty() && r.method == "GET") {
    {
      std::lock_guard lock(m_fetch_mutex);
      auto& last = m_last_fetch[d->id()];
      if (now - last >= k_fetch_interval) {
        last = now;
        auto st = m_store.append_events(
            {store::NewEvent{d->id(),
                             model::EventKind::fetched,
                             now,
                             {{"ip", r.client_ip}, {"user_agent", r.user_agent}}}});
        if (!st) {
          log::line(log::Level::warning, "", {{"event", "fetched"}, {"store", st.error().message}});
        }
      }
    }
    Response resp;
    resp.body = render("landing.fr.html", ctx);
    security_headers(resp);
    return resp;
  }
  if (rest.empty() && r.method == "POST") {
    auto st = m_store.append_events(
        {store::NewEvent{d->id(),
                         model::EventKind::read,
                         now,
                         {{"ip", r.client_ip}, {"user_agent", r.user_agent}}}});
    if (!st) {
      log::line(log::Level::error, "", {{"event", "read"}, {"store", st.error().message}});
      return page(
          503, "Service indisponible",
          "L'accusé de réception n'a pas pu être enregistré. Réessayez dans quelques instants.");
    }
    log::line(log::Level::info, "",
              {{"event", "read"}, {"delivery", d->id()}, {"ip", r.client_ip}});
    ctx["read_at"] = util::format_human(d->read_at() != 0 ? d->read_at() : now, tz);
    if (!m->text_body().empty()) {
      ctx["text_body"] = m->text_body();
    }
    ctx["has_html"] = !m->html_body().empty();
    mstch::array atts;
    for (int i = 0; i < m->attachments_size(); ++i) {
      const auto& a = m->attachments(i);
      atts.push_back(mstch::map{{"index", std::to_string(i)},
                                {"name", a.name()},
                                {"size", human_size(a.size())},
                                {"sha256", a.sha256()},
                                {"token", token}});
    }
    ctx["has_attachments"] = !atts.empty();
    ctx["attachments"] = atts;
    Response resp;
    resp.body = render("content.fr.html", ctx);
    security_headers(resp);
    return resp;
  }
  // Content URLs need a recorded read first.
  if (d->read_at() == 0) {
    return page(
        403, "Accès au contenu",
        "Ouvrez d'abord le courrier depuis le lien reçu : l'accès génère l'accusé de réception.");
  }
  if (rest == "/html" && r.method == "GET") {
    Response resp;
    resp.body = m->html_body();
    resp.headers.emplace_back(
        "Content-Security-Policy",
        "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'");
    resp.headers.emplace_back("X-Content-Type-Options", "nosniff");
    resp.headers.emplace_back("Cache-Control", "no-store");
    resp.headers.emplace_back("Referrer-Policy", "no-referrer");
    return resp;
  }
  if (rest.rfind("/a/", 0) == 0 && r.method == "GET") {
    int index = std::atoi(rest.c_str() + 3);
    if (index < 0 || index >= m->attachments_size() || rest.size() < 4) {
      return page(404, "Pièce jointe introuvable", "Cette pièce jointe n'existe pas.");
    }
    const auto& a = m->attachments(index);
    auto blob = m_store.get_blob(a.sha256());
    if (!blob) {
      return page(503, "Service indisponible", "Réessayez dans quelques instants.");
    }
    auto st = m_store.append_events({store::NewEvent{d->id(),
                                                     model::EventKind::download,
                                                     now,
                                                     {{"ip", r.client_ip},
                                                      {"user_agent", r.user_agent},
                                                      {"name", a.name()},
                                                      {"sha256", a.sha256()}}}});
    if (!st) {
      return page(503, "Service indisponible", "Réessayez dans quelques instants.");
    }
    Response resp;
    resp.content_type = a.media_type().empty() ? "application/octet-stream" : a.media_type();
    resp.body = std::move(blob.value());
    resp.headers.emplace_back("Content-Disposition", content_disposition(a.name()));
    resp.headers.emplace_back("X-Content-Type-Options", "nosniff");
    resp.headers.emplace_back("Cache-Control", "no-store");
    resp.headers.emplace_back("Content-Security-Policy", "sandbox");
    return resp;
  }
  return page(405, "Action impossible", "Cette action n'est pas possible sur ce lien.");
}

} // namespace pli::linkd
