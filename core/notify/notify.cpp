#include "core/notify/notify.hpp"

#include "core/log/log.hpp"
#include "core/mime/builder.hpp"
#include "core/mime/charset.hpp"
#include "core/receipt/pdf.hpp"
#include "core/receipt/timeline.hpp"
#include "core/smtp/client.hpp"
#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"

#include <fmt/format.h>

namespace pli::notify {

namespace {

const store::pb::Event* last_event(const receipt::Exchange& x, model::EventKind kind)
{
  const store::pb::Event* found = nullptr;
  for (const auto& e : x.events) {
    if (e.delivery() == x.delivery.id() && static_cast<model::EventKind>(e.kind()) == kind) {
      found = &e;
      if (kind == model::EventKind::read) {
        break; // the first read is the receipt
      }
    }
  }
  return found;
}

std::string detail_of(const store::pb::Event* e, const char* key)
{
  if (e == nullptr) {
    return "";
  }
  auto it = e->detail().find(key);
  return it == e->detail().end() ? "" : it->second;
}

// The most of a report's text a notification quotes, per field.
constexpr std::size_t k_quoted_max = 300;

bool ascii_alnum(char c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool ascii_alpha(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

} // namespace

std::string inert_text(std::string_view text, std::size_t max_bytes)
{
  std::string s = mime::repair_utf8(text);
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      c = ' ';
    }
  }
  bool cut = false;
  if (s.size() > max_bytes) {
    std::size_t at = max_bytes;
    while (at > 0 && (static_cast<unsigned char>(s[at]) & 0xc0) == 0x80) {
      --at;
    }
    s.resize(at);
    cut = true;
  }
  std::string out;
  out.reserve(s.size() + 16);
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 3, "://") == 0) {
      out += "[:]//";
      i += 2;
    } else if (s[i] == '.' && i > 0 && ascii_alnum(s[i - 1]) && i + 1 < s.size() &&
               ascii_alpha(s[i + 1])) {
      out += "[.]";
    } else {
      out.push_back(s[i]);
    }
  }
  return cut ? out + "…" : out;
}

std::optional<Mail> compose(const config::Config& config, store::Store& store,
                            const std::string& delivery_id, model::EventKind kind, util::Micros now,
                            const std::string& message_id)
{
  auto xr = receipt::gather(store, delivery_id);
  if (!xr) {
    return std::nullopt;
  }
  const receipt::Exchange& x = xr.value();
  const auto& m = x.message;
  const auto& d = x.delivery;
  const auto loc = config.organisation.locale;
  const bool fr = loc == model::Locale::fr;
  const auto& tz = config.organisation.timezone;
  auto human = [&](util::Micros t) {
    return t == 0 ? std::string("-") : util::format_human(t, tz);
  };

  std::string about = std::string(model::label(static_cast<model::MessageType>(m.type()), loc));
  if (!m.consultation().empty()) {
    about += fr ? ", consultation " : ", consultation ";
    about += m.consultation();
    if (x.consultation && !x.consultation->title().empty()) {
      about += " — " + x.consultation->title();
    }
  }
  const store::pb::Event* ev = last_event(x, kind);
  std::string subject, text;
  std::string pdf;
  if (kind == model::EventKind::read) {
    const std::string ip = detail_of(ev, "ip");
    util::Micros at = ev != nullptr ? ev->at() : d.read_at();
    subject = fr ? "Accusé de réception : « " + m.subject() + " »"
                 : "Acknowledgment of receipt: \"" + m.subject() + "\"";
    text = fr ? fmt::format("Bonjour,\n\nVotre courrier « {} » ({}), envoyé le {} à {}, a été lu "
                            "par son destinataire le {}{}.\n\n",
                            m.subject(), about, human(m.sent_at()), d.recipient(), human(at),
                            ip.empty() ? "" : " (adresse IP " + ip + ")")
              : fmt::format("Hello,\n\nYour mail \"{}\" ({}), sent on {} to {}, was read by its "
                            "recipient on {}{}.\n\n",
                            m.subject(), about, human(m.sent_at()), d.recipient(), human(at),
                            ip.empty() ? "" : " (IP address " + ip + ")");
    auto key = receipt::load_signing_key(config.keys.dir);
    if (key) {
      receipt::ReceiptOptions o;
      o.organisation = config.organisation.name;
      o.locale = loc;
      o.timezone = tz;
      o.issued_at = now;
      auto r = receipt::make_receipt(x, o, key.value());
      if (r) {
        pdf = std::move(r->pdf);
      } else {
        log::line(log::Level::error, "", {{"notify", "read"}, {"receipt", r.error().message}});
      }
    } else {
      log::line(log::Level::warning, "", {{"notify", "read"}, {"receipt", key.error().message}});
    }
    text += pdf.empty() ? (fr ? "L'accusé de réception signé peut être obtenu auprès du support "
                                "(pli receipt " +
                                    d.id() + ").\n"
                              : "The signed receipt can be obtained from support (pli receipt " +
                                    d.id() + ").\n")
                        : (fr ? "L'accusé de réception signé est joint à ce message (PDF).\n"
                              : "The signed acknowledgment of receipt is attached (PDF).\n");
  } else {
    util::Micros at = ev != nullptr ? ev->at() : d.failed_at();
    subject = fr ? "Courrier non délivré : « " + m.subject() + " »"
                 : "Mail not delivered: \"" + m.subject() + "\"";
    text = fr ? fmt::format("Bonjour,\n\nVotre courrier « {} » ({}), envoyé le {}, n'a pas pu "
                            "être délivré à {} (compte rendu du {}).\n\n",
                            m.subject(), about, human(m.sent_at()), d.recipient(), human(at))
              : fmt::format("Hello,\n\nYour mail \"{}\" ({}), sent on {}, could not be delivered "
                            "to {} (report of {}).\n\n",
                            m.subject(), about, human(m.sent_at()), d.recipient(), human(at));
    // The report's own words come from whichever server wrote them: quoted, capped,
    // links inert.
    std::string quoted;
    for (const auto& [key, fr_label, en_label] :
         {std::tuple{"remote_mta", "Serveur distant", "Remote server"},
          std::tuple{"status", "Statut", "Status"},
          std::tuple{"diagnostic", "Diagnostic", "Diagnostic"}}) {
      std::string v = detail_of(ev, key);
      if (!v.empty()) {
        quoted += std::string("> ") + (fr ? fr_label : en_label) + (fr ? " : " : ": ") +
                  inert_text(v, k_quoted_max) + "\n";
      }
    }
    if (!quoted.empty()) {
      text += fr ? "Compte rendu du serveur (cité tel quel, liens désactivés) :\n"
                 : "The server's report (quoted as received, links disabled):\n";
      text += quoted;
    }
    text += fr ? "\nVérifiez l'adresse du destinataire puis renvoyez le courrier, ou utilisez un "
                 "autre moyen de transmission.\n"
               : "\nCheck the recipient's address and send the mail again, or use another "
                 "channel.\n";
  }
  text += fr ? fmt::format("\n-- \n{} — messagerie avec accusé de réception (pli)\nMessage "
                           "automatique, sans suivi : n'y répondez pas.\n",
                           config.organisation.name)
             : fmt::format("\n-- \n{} — registered mail (pli)\nAutomatic message, not tracked: "
                           "do not reply.\n",
                           config.organisation.name);

  mime::OutgoingMail mail;
  mail.from_display = config.organisation.name + " (pli)";
  mail.from_address = config.bounce.address;
  mail.to = m.sender();
  mail.subject = subject;
  mail.date = now;
  mail.message_id = !message_id.empty()
                        ? message_id
                        : "n." + d.id() + "." + std::to_string(now) + "@" + config.bounce.domain;
  if (!m.message_id().empty()) {
    mail.extra_headers.emplace_back("In-Reply-To", "<" + m.message_id() + ">");
    mail.extra_headers.emplace_back("References", "<" + m.message_id() + ">");
  }
  mail.extra_headers.emplace_back("Auto-Submitted", "auto-generated");
  mail.extra_headers.emplace_back(
      "X-Pli-Notification", std::string(kind == model::EventKind::read ? "read" : "not_delivered") +
                                "; delivery=" + d.id());
  mail.language = fr ? "fr" : "en";
  mail.layout = mime::Layout::mixed;
  mail.boundary_tag = "n_";
  mail.text = std::move(text);
  const bool attached = !pdf.empty();
  if (attached) {
    mail.attachments.push_back(
        {"application/pdf",
         (fr ? "accuse-de-reception-" : "acknowledgment-of-receipt-") + d.id() + ".pdf",
         std::move(pdf)});
  }
  return Mail{m.sender(), mime::build(mail), attached};
}

smtp::Options reinject_options(const config::Config& config)
{
  smtp::Options so;
  so.host = config.reinject.host;
  so.port = config.reinject.port;
  so.timeout_seconds = static_cast<int>(config.reinject.timeout_seconds);
  return so;
}

Result notify_event(const config::Config& config, store::Store& store,
                    const store::pb::Delivery& before, model::EventKind kind,
                    const std::string& message_id)
{
  Result r;
  const char* name = kind == model::EventKind::read ? "read" : "not_delivered";
  auto done = [&](Outcome o, std::string detail) {
    r.outcome = o;
    r.detail = std::move(detail);
    if (o != Outcome::disabled) {
      log::line(o == Outcome::sent || o == Outcome::not_first ? log::Level::info
                                                              : log::Level::warning,
                "",
                {{"notify", name},
                 {"delivery", before.id()},
                 {"outcome", o == Outcome::sent ? "sent" : "skipped"},
                 {"detail", r.detail}});
    }
    return r;
  };
  try {
    if (kind == model::EventKind::read) {
      if (!config.notify.read) {
        return done(Outcome::disabled, "notify.read is false");
      }
      if (before.read_at() != 0) {
        return done(Outcome::not_first, "already read before");
      }
    } else if (kind == model::EventKind::failed) {
      if (!config.notify.not_delivered) {
        return done(Outcome::disabled, "notify.not_delivered is false");
      }
      if (static_cast<model::Status>(before.status()) == model::Status::not_delivered) {
        return done(Outcome::not_first, "already not delivered");
      }
      auto now_d = store.get_delivery(before.id());
      if (!now_d) {
        return done(Outcome::store_error, now_d.error().message);
      }
      if (static_cast<model::Status>(now_d->status()) != model::Status::not_delivered) {
        return done(Outcome::not_first, "the failure did not change the status");
      }
    } else {
      return done(Outcome::disabled, "no notification for this event");
    }
    auto mail = compose(config, store, before.id(), kind, util::now_micros(), message_id);
    if (!mail) {
      return done(Outcome::store_error, "the exchange could not be read");
    }
    if (mail->to.empty()) {
      return done(Outcome::no_sender, "the message has no envelope sender");
    }
    r.receipt_attached = mail->receipt_attached;
    const smtp::Options so = reinject_options(config);
    smtp::Envelope env;
    env.mail_from = ""; // null return path: never registered, never bounced back to pli
    env.rcpt = mail->to;
    env.data = std::move(mail->data);
    auto results = smtp::send(so, {env});
    if (results.empty() || !results.front().ok) {
      return done(Outcome::reinject_error, results.empty() ? "no result" : results.front().reply);
    }
    return done(Outcome::sent, results.front().queue_id);
  } catch (const std::exception& e) {
    return done(Outcome::reinject_error, e.what());
  }
}

} // namespace pli::notify
