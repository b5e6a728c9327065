// A buyer's mail to external recipients becomes one registered delivery per recipient: its
// deliveries planned (a client's retry reuses the first attempt's), the message and its new
// deliveries recorded, one notice (or, in mode simple, one copy) re-injected per delivery
// not yet sent with a VERP return path and a DSN request (RFC 3461), and the original
// settled: its registered recipients removed, pli's options stripped for the others.
#include "core/log/log.hpp"
#include "core/milter/engine.hpp"
#include "core/milter/engine_detail.hpp"
#include "core/milter/options.hpp"
#include "core/mime/charset.hpp"
#include "core/mime/compose.hpp"
#include "core/mime/parse.hpp"
#include "core/notify/outbox.hpp"
#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"
#include "core/util/time.hpp"

#include <strings.h>

#include <optional>
#include <set>

namespace pli::milter {

using detail::header_value;
using detail::recipients_not_updated;
using detail::store_failure_logged;

namespace {

// The enhanced status code (RFC 3463) of an SMTP reply "553 5.6.7 text", or "".
std::string enhanced_status(const std::string& reply)
{
  if (reply.size() < 9 || reply[3] != ' ' || (reply[4] != '4' && reply[4] != '5') ||
      reply[5] != '.') {
    return "";
  }
  const auto end = reply.find(' ', 4);
  return reply.substr(4, end == std::string::npos ? std::string::npos : end - 4);
}

} // namespace

// One registered mail between its steps.
struct Engine::Registration
{
  // One external recipient's delivery: new, or the one a first attempt recorded.
  struct Planned
  {
    const Recipient* rcpt;
    store::pb::Delivery delivery;
    std::string token;
    bool already_sent = false;
  };

  Transaction& t;
  MtaSession& mta;
  const std::string& queue_id;
  ClientOptions opts{};
  model::Mode mode = model::Mode::ar;
  model::MessageType type{};
  bool reply = false;
  std::string reference{};
  std::string raw{}; // the original as received; moved into the store's record
  std::string content{};
  mime::ParsedMessage parsed{};
  util::Micros now = 0;
  std::string original_sha{};
  std::size_t raw_size = 0;
  std::string message_key{};
  std::vector<Planned> planned{};
  store::NewMessage nm{};
  std::string message_id{};
  std::size_t created = 0;                    // new deliveries (0: a retry)
  std::vector<store::pb::Delivery> refused{}; // permanently, for the buyer's notification
};

Verdict Engine::registered(Transaction& t, MtaSession& mta, const std::string& queue_id)
{
  Registration r{t, mta, queue_id};
  const std::string subject = mime::decode_header_value(header_value(t, "Subject"));
  r.opts = parse_client_options(subject, header_value(t, "X-Pli-Options"));
  for (const auto& w : r.opts.warnings) {
    log::line(log::Level::warning, queue_id, {{"warning", w}, {"from", t.sender}});
  }
  r.mode = r.opts.mode.value_or(m_config.policy.default_mode);
  if (r.mode == model::Mode::off) {
    log::line(log::Level::info, queue_id,
              {{"decision", outcome_name(Outcome::accept_untouched)},
               {"reason", "mode off"},
               {"from", t.sender}});
    return Verdict{};
  }
  r.type = r.opts.type.value_or(m_config.policy.default_type);
  r.reply = r.opts.reply.value_or(m_config.policy.default_reply);
  r.reference = r.opts.reference.value_or("");
  r.raw = assemble(t);
  r.content = content_hash(t);
  if (r.mode != model::Mode::simple) {
    std::string().swap(t.body); // in `raw`; only mode simple re-injects it
  }
  // After the body's copy is freed: 50 sessions of 100 KB mail may be parsing at once.
  r.parsed = mime::parse_message(r.raw);
  r.now = m_clock();
  r.original_sha = util::sha256_hex(r.raw);
  r.raw_size = r.raw.size();
  r.message_key = r.parsed.message_id.empty() ? r.original_sha : r.parsed.message_id;

  if (auto v = plan_recipients(r)) {
    return *v;
  }
  if (auto v = record(r)) {
    return *v;
  }
  if (auto v = inject(r)) {
    return *v;
  }
  return settle_original(r);
}

std::optional<Verdict> Engine::plan_recipients(Registration& r)
{
  const Transaction& t = r.t;
  const util::Micros expires =
      r.now + static_cast<util::Micros>(m_config.linkd.link_validity_days) * 86400LL * 1000000LL;
  const util::Micros window =
      static_cast<util::Micros>(m_config.milter.retry_window_hours) * 3600LL * 1000000LL;
  std::set<std::string> seen;
  for (const auto& rcpt : t.recipients) {
    if (rcpt.kind != Recipient::Kind::external ||
        !seen.insert(util::ascii_lower(rcpt.address)).second) {
      continue;
    }
    Registration::Planned p{&rcpt, {}, {}, false};
    // A retry is the same mail: same Message-ID, envelope sender, content and recipient,
    // within milter.retry_window_hours of the first attempt. Anything else is a new mail.
    const std::string key =
        util::sha256_hex("2\n" + r.message_key + "\n" + util::ascii_lower(t.sender) + "\n" +
                         r.content + "\n" + util::ascii_lower(rcpt.address));
    auto existing = m_store.find_by_idempotency_key(key);
    std::optional<store::pb::Delivery> first;
    if (existing) {
      auto d = m_store.get_delivery(existing.value());
      if (!d && d.error().code != store::Errc::not_found) {
        return store_failure_logged(r.queue_id, d.error(), t.sender);
      }
      if (d && r.now - d->created_at() <= window) {
        first = std::move(d.value());
      }
    }
    if (first) {
      p.delivery = std::move(*first);
      p.already_sent = p.delivery.sent_at() != 0;
      r.message_id = p.delivery.message();
      if (!p.already_sent && r.mode == model::Mode::ar) {
        p.token = util::base64url(util::random_bytes(16));
        if (auto st = m_store.add_token(p.delivery.id(), util::sha256_hex(p.token), expires); !st) {
          return store_failure_logged(r.queue_id, st.error(), t.sender);
        }
      }
    } else if (!existing && existing.error().code != store::Errc::not_found) {
      return store_failure_logged(r.queue_id, existing.error(), t.sender);
    } else {
      p.delivery.set_id(util::random_id("d"));
      p.delivery.set_recipient(rcpt.address);
      p.delivery.set_created_at(r.now);
      p.delivery.set_expires_at(expires);
      p.delivery.set_idempotency_key(key);
      if (r.mode == model::Mode::ar) {
        p.token = util::base64url(util::random_bytes(16));
        p.delivery.set_token_hash(util::sha256_hex(p.token));
      }
      r.nm.deliveries.push_back(p.delivery);
    }
    r.planned.push_back(std::move(p));
  }
  r.created = r.nm.deliveries.size();
  return std::nullopt;
}

std::optional<Verdict> Engine::record(Registration& r)
{
  if (r.created == 0) {
    return std::nullopt; // a retry: the message and its deliveries are recorded
  }
  auto& m = r.nm.message;
  m.set_id(util::random_id("m"));
  r.message_id = m.id();
  m.set_message_id(r.parsed.message_id);
  m.set_subject(r.opts.subject);
  m.set_type(static_cast<std::uint32_t>(r.type));
  m.set_mode(static_cast<std::uint32_t>(r.mode));
  m.set_reply_allowed(r.reply);
  m.set_consultation(r.reference);
  m.set_sender(r.t.sender);
  m.set_from_header(r.parsed.from);
  m.set_sent_at(r.now);
  m.set_original_sha256(r.original_sha);
  m.set_original_size(r.raw_size);
  // The copies the message record needs are moved, not copied: 50 sessions of 100 KB
  // mail each hold these until the store's shared commit.
  m.set_text_body(std::move(r.parsed.text_body));
  m.set_html_body(std::move(r.parsed.html_body));
  m.set_queue_id(r.queue_id);
  r.nm.blobs[r.original_sha] = std::move(r.raw);
  for (auto& a : r.parsed.attachments) {
    auto* pa = m.add_attachments();
    pa->set_name(a.name);
    pa->set_media_type(a.media_type);
    pa->set_size(a.data.size());
    pa->set_sha256(a.sha256_hex);
    pa->set_content_id(a.content_id);
    r.nm.blobs.emplace(a.sha256_hex, std::move(a.data));
  }
  for (auto& d : r.nm.deliveries) {
    m.add_delivery_ids(d.id());
    d.set_message(m.id());
  }
  for (auto& p : r.planned) {
    if (p.delivery.message().empty()) {
      p.delivery.set_message(m.id());
    }
  }
  // Moved: the store frees the bodies and blobs once copied into its transaction, while
  // this session waits for the group's commit.
  if (auto st = m_store.create_message(std::move(r.nm)); !st) {
    if (st.error().code == store::Errc::invalid) {
      // Permanent: the same mail would be refused on every retry.
      log::line(log::Level::error, r.queue_id,
                {{"decision", outcome_name(Outcome::reject_invalid_text)},
                 {"store", st.error().message},
                 {"from", r.t.sender}});
      return Verdict{Outcome::reject_invalid_text};
    }
    return store_failure_logged(r.queue_id, st.error(), r.t.sender);
  }
  return std::nullopt;
}

std::optional<Verdict> Engine::inject(Registration& r)
{
  const Transaction& t = r.t;
  // Consultation details for the notice, when the reference is known.
  std::optional<mime::ConsultationInfo> consultation;
  if (!r.reference.empty()) {
    mime::ConsultationInfo info{r.reference, "", "", ""};
    if (auto c = m_store.get_consultation(r.reference)) {
      info.title = c->title();
      info.object = c->object();
      if (c->deadline() != 0) {
        info.deadline = util::format_human_short(c->deadline(), m_config.organisation.timezone);
      }
    }
    consultation = info;
  }

  // One message per recipient not yet sent.
  std::vector<smtp::Envelope> envelopes;
  std::vector<Registration::Planned*> to_send;
  const std::string from_header = header_value(t, "From");
  for (auto& p : r.planned) {
    if (p.already_sent) {
      continue;
    }
    smtp::Envelope e;
    const std::string& did = p.delivery.id();
    e.mail_from = m_config.bounce.local_part + "+" + did + "@" + m_config.bounce.domain;
    e.envid = did;
    e.ret = "HDRS";
    e.rcpt = p.rcpt->address;
    e.notify = "SUCCESS,FAILURE,DELAY";
    if (r.mode == model::Mode::ar) {
      mime::NoticeInput in;
      in.locale = m_config.organisation.locale;
      in.timezone = m_config.organisation.timezone;
      in.organisation = m_config.organisation.name;
      in.from_header_raw = from_header.empty() ? "<" + t.sender + ">" : from_header;
      in.sender_display = r.parsed.from.empty() ? t.sender : r.parsed.from;
      in.recipient = p.rcpt->address;
      in.subject = r.opts.subject;
      in.type = r.type;
      in.consultation = consultation;
      in.link = m_config.linkd.public_url + "/m/" + p.token;
      in.expires_at = p.delivery.expires_at();
      in.now = r.now;
      // Stable across retries: a notice injected twice (the milter killed between the
      // injection and its `sent` record) carries the same Message-ID both times.
      in.message_id = did + "@" + m_config.bounce.domain;
      in.reply_allowed = r.reply;
      e.data = mime::compose_notice(in);
    } else {
      // Mode simple: the original content, without pli's options.
      Transaction copy;
      for (const auto& [n, v] : t.headers) {
        if (strcasecmp(n.c_str(), "X-Pli-Options") == 0) {
          continue;
        }
        if (strcasecmp(n.c_str(), "Subject") == 0 && r.opts.subject_changed) {
          copy.headers.emplace_back(n, mime::encode_header(r.opts.subject));
          continue;
        }
        copy.headers.emplace_back(n, v);
      }
      copy.body = t.body;
      e.data = assemble(copy);
    }
    envelopes.push_back(std::move(e));
    to_send.push_back(&p);
  }

  const auto results =
      envelopes.empty() ? std::vector<smtp::TxnResult>{} : m_injector->send(envelopes);

  std::vector<store::NewEvent> sent;
  std::string failure;
  bool unreachable = false;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (results[i].ok) {
      sent.push_back(
          store::NewEvent{to_send[i]->delivery.id(),
                          model::EventKind::sent,
                          r.now,
                          {{"reinject_queue_id", results[i].queue_id}, {"reply", results[i].reply}},
                          {}});
    } else if (!results[i].temporary) {
      // A recipient the mail system refuses for good (5xx at re-injection, e.g. an
      // internationalised address without SMTPUTF8): a permanent, recorded failure of that
      // delivery, never a 4xx the client would retry for days.
      const std::string& did = to_send[i]->delivery.id();
      sent.push_back(store::NewEvent{did,
                                     model::EventKind::failed,
                                     r.now,
                                     {{"reason", "refused by the re-injection listener"},
                                      {"status", enhanced_status(results[i].reply)},
                                      {"diagnostic", results[i].reply}},
                                     util::sha256_hex(did + "\nreinject_refused")});
      if (m_config.notify.not_delivered) {
        // The buyer's failure notification, queued with the event (the outbox sends it).
        sent.back().job =
            store::Job{"milter", "failure_notification", to_send[i]->delivery.SerializeAsString()};
      }
      r.refused.push_back(to_send[i]->delivery);
      m_counters.add(Outcome::recipient_refused);
      log::line(log::Level::warning, r.queue_id,
                {{"decision", outcome_name(Outcome::recipient_refused)},
                 {"delivery", did},
                 {"to", to_send[i]->rcpt->address},
                 {"reinject", results[i].reply}});
    } else {
      failure = results[i].reply;
      unreachable |= results[i].failure == smtp::Failure::unreachable;
    }
  }
  if (!sent.empty()) {
    if (auto st = m_store.append_events(sent); !st) {
      // Injected but not recorded: the client retries and sends the notice again (same
      // delivery, same Message-ID).
      return store_failure_logged(r.queue_id, st.error(), t.sender);
    }
  }
  if (!failure.empty()) {
    const Outcome o =
        unreachable ? Outcome::tempfail_reinject_unreachable : Outcome::tempfail_reinject_refused;
    log::line(log::Level::error, r.queue_id,
              {{"decision", outcome_name(o)}, {"reinject", failure}});
    return Verdict{o};
  }
  if (!r.refused.empty() && m_config.notify.not_delivered) {
    outbox().wake();
  }
  return std::nullopt;
}

Verdict Engine::settle_original(Registration& r)
{
  Transaction& t = r.t;
  // Remove the registered recipients from the original; discard it when none remain.
  std::size_t remaining = t.recipients.size();
  for (const auto& p : r.planned) {
    for (const auto& rcpt : t.recipients) {
      if (&rcpt == p.rcpt ||
          (rcpt.kind == Recipient::Kind::external &&
           util::ascii_lower(rcpt.address) == util::ascii_lower(p.rcpt->address))) {
        if (!r.mta.delete_recipient(rcpt.as_given)) {
          return recipients_not_updated(r.queue_id, rcpt.as_given);
        }
        --remaining;
      }
    }
  }
  std::string ids;
  for (const auto& p : r.planned) {
    ids += (ids.empty() ? "" : ",") + p.delivery.id();
  }
  const Outcome o = r.created == 0 ? Outcome::registered_retry : Outcome::registered;
  log::line(log::Level::info, r.queue_id,
            {{"decision", outcome_name(o)},
             {"mode", model::code(r.mode)},
             {"message", r.message_id},
             {"deliveries", ids},
             {"from", t.sender}});
  Verdict v{o, remaining == 0};
  if (!v.discard) {
    // Internal recipients keep the original, without pli's options.
    if (r.opts.subject_changed) {
      r.mta.change_header("Subject", 1, mime::encode_header(r.opts.subject));
    }
    if (!header_value(t, "X-Pli-Options").empty()) {
      r.mta.change_header("X-Pli-Options", 1, "");
    }
  }
  return v;
}

} // namespace pli::milter
