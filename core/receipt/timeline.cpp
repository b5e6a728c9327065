#include "core/receipt/timeline.hpp"

#include "core/util/time.hpp"

#include <fmt/format.h>

#include <map>

namespace pli::receipt {

namespace {

std::string detail_of(const store::pb::Event& e, const char* key)
{
  auto it = e.detail().find(key);
  return it == e.detail().end() ? std::string() : it->second;
}

} // namespace

util::Result<Exchange> gather(store::Store& st, const std::string& delivery_id)
{
  Exchange x;
  auto d = st.get_delivery(delivery_id);
  if (!d) {
    return d.error();
  }
  x.delivery = std::move(d.value());
  auto m = st.get_message(x.delivery.message());
  if (!m) {
    return m.error();
  }
  x.message = std::move(m.value());
  auto events = st.events_of_message(x.message.id());
  if (!events) {
    return events.error();
  }
  x.events = std::move(events.value());
  if (!x.message.consultation().empty()) {
    if (auto c = st.get_consultation(x.message.consultation())) {
      x.consultation = std::move(c.value());
    }
  }
  return x;
}

std::string sender_display(const store::pb::Message& m)
{
  return m.from_header().empty() ? m.sender() : m.from_header();
}

std::string event_sentence(const store::pb::Event& e, const Exchange& x, model::Locale l)
{
  const bool fr = l == model::Locale::fr;
  const std::string& rcpt = x.delivery.recipient();
  const std::string sender = x.message.sender();
  switch (static_cast<model::EventKind>(e.kind())) {
  case model::EventKind::sent:
    return fr ? "Envoi du courrier par " + sender : "Mail sent by " + sender;
  case model::EventKind::delayed:
    return fr ? "Remise retardée à " + rcpt : "Delivery to " + rcpt + " delayed";
  case model::EventKind::delivered:
    return fr ? "Courrier délivré à " + rcpt : "Mail delivered to " + rcpt;
  case model::EventKind::failed:
    return fr ? "Courrier non délivré à " + rcpt : "Mail not delivered to " + rcpt;
  case model::EventKind::read:
    return fr ? "Courrier lu par " + rcpt : "Mail read by " + rcpt;
  case model::EventKind::download: {
    std::string name = detail_of(e, "name");
    return fr ? "Pièce jointe « " + name + " » téléchargée par " + rcpt
              : "Attachment \"" + name + "\" downloaded by " + rcpt;
  }
  case model::EventKind::reply:
    return fr ? "Réponse de " + rcpt : "Reply from " + rcpt;
  case model::EventKind::reply_read:
    return fr ? "Réponse lue par " + sender : "Reply read by " + sender;
  case model::EventKind::revoked:
    return fr ? "Lien révoqué" : "Link revoked";
  case model::EventKind::fetched:
    return fr ? "Lien consulté (technique, sans lecture)" : "Link fetched (technical, not a read)";
  case model::EventKind::remote_failed:
    return fr ? "Échec signalé par un serveur distant pour " + rcpt +
                    " (non vérifié : reçu de l'extérieur, ne change pas le statut)"
              : "Failure for " + rcpt +
                    " reported by a remote server (unverified: received from outside, the "
                    "status is unchanged)";
  case model::EventKind::remote_delivered:
    return fr ? "Remise à " + rcpt +
                    " signalée par un serveur distant (non vérifiée : reçue de l'extérieur, ne "
                    "change pas le statut)"
              : "Delivery to " + rcpt +
                    " reported by a remote server (unverified: received from outside, the "
                    "status is unchanged)";
  case model::EventKind::remote_delayed:
    return fr ? "Retard de remise à " + rcpt +
                    " signalé par un serveur distant (non vérifié : reçu de l'extérieur)"
              : "Delay of the delivery to " + rcpt +
                    " reported by a remote server (unverified: received from outside)";
  }
  return std::string(model::label(static_cast<model::EventKind>(e.kind()), l));
}

std::string event_evidence(const store::pb::Event& e, model::Locale l)
{
  const bool fr = l == model::Locale::fr;
  std::string out;
  auto add = [&](const char* key, const char* fr_label, const char* en_label) {
    std::string v = detail_of(e, key);
    if (!v.empty()) {
      out += out.empty() ? "" : (fr ? " ; " : "; ");
      out += fr ? fmt::format("{} : {}", fr_label, v) : fmt::format("{}: {}", en_label, v);
    }
  };
  if (model::is_remote_claim(static_cast<model::EventKind>(e.kind()))) {
    // Where the claim came from: all that is known of a report received from outside.
    add("client_ip", "reçu de l'adresse IP", "received from IP address");
    add("helo", "HELO", "HELO");
    add("reporting_mta", "serveur rapporteur", "reporting server");
    add("authentication_results", "authentification", "authentication");
  }
  add("remote_mta", "serveur distant", "remote server");
  add("status", "statut", "status");
  add("diagnostic", "diagnostic", "diagnostic");
  add("ip", "adresse IP", "IP address");
  add("user_agent", "navigateur", "browser");
  add("sha256", "SHA-256", "SHA-256");
  add("by", "par", "by");
  if (std::string n = detail_of(e, "repeats"); !n.empty()) {
    out += out.empty() ? "" : (fr ? " ; " : "; ");
    out += fr ? fmt::format("et {} fois depuis la précédente, comptées sans être enregistrées une "
                            "à une",
                            n)
              : fmt::format("and {} times since the previous one, counted, not recorded one by one",
                            n);
  }
  return out;
}

namespace {

// 19998 -> "19 998" (French) or "19,998".
std::string group_digits(std::size_t n, char sep)
{
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) {
      out.push_back(sep);
    }
    out.push_back(digits[i]);
  }
  return out;
}

bool repeatable(model::EventKind k)
{
  switch (k) {
  case model::EventKind::read:
  case model::EventKind::download:
  case model::EventKind::fetched:
  case model::EventKind::reply_read:
  case model::EventKind::delayed:
    return true;
  default:
    return false;
  }
}

std::string summary(model::EventKind k, std::size_t n, util::Micros first, util::Micros last,
                    model::Locale l, const std::string& tz)
{
  const bool fr = l == model::Locale::fr;
  const char* what = "";
  switch (k) {
  case model::EventKind::read:
    what = fr ? "consultations" : "reads";
    break;
  case model::EventKind::download:
    what = fr ? "téléchargements" : "downloads";
    break;
  case model::EventKind::fetched:
    what = fr ? "accès techniques au lien" : "technical fetches of the link";
    break;
  case model::EventKind::reply_read:
    what = fr ? "lectures de réponses" : "reads of replies";
    break;
  default:
    what = fr ? "avis de retard" : "delay reports";
    break;
  }
  const std::string count = group_digits(n, fr ? ' ' : ',');
  return fr ? fmt::format("… et {} autres {} du {} au {}", count, what,
                          util::format_human(first, tz), util::format_human(last, tz))
            : fmt::format("… and {} more {} from {} to {}", count, what,
                          util::format_human(first, tz), util::format_human(last, tz));
}

} // namespace

std::vector<TimelineRow> timeline_rows(const Exchange& x, const std::string& delivery_id,
                                       model::Locale l, const std::string& timezone,
                                       std::size_t keep)
{
  std::vector<const store::pb::Event*> mine;
  std::map<std::uint32_t, std::size_t> total; // repeatable kind -> events of this delivery
  for (const auto& e : x.events) {
    if (e.delivery() == delivery_id) {
      mine.push_back(&e);
      if (repeatable(static_cast<model::EventKind>(e.kind()))) {
        ++total[e.kind()];
      }
    }
  }
  struct Left
  {
    std::size_t n = 0;
    util::Micros first = 0, last = 0;
  };
  std::map<std::uint32_t, std::size_t> seen;
  std::map<std::uint32_t, Left> left;
  std::vector<TimelineRow> rows;
  for (const auto* e : mine) {
    const auto kind = static_cast<model::EventKind>(e->kind());
    if (repeatable(kind)) {
      const std::size_t i = seen[e->kind()]++;
      const bool last = i + 1 == total[e->kind()];
      if (i >= keep && !last) {
        Left& lo = left[e->kind()];
        lo.first = lo.n == 0 ? e->at() : lo.first;
        lo.last = e->at();
        ++lo.n;
        continue;
      }
      if (last && left[e->kind()].n != 0) {
        const Left& lo = left[e->kind()];
        rows.push_back(
            {nullptr, lo.first, summary(kind, lo.n, lo.first, lo.last, l, timezone), ""});
      }
    }
    rows.push_back({e, e->at(), event_sentence(*e, x, l), event_evidence(*e, l)});
  }
  return rows;
}

} // namespace pli::receipt
