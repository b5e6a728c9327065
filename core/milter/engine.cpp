#include "core/milter/engine.hpp"

#include "core/milter/engine_detail.hpp"

#include "core/dsn/dsn.hpp"
#include "core/log/log.hpp"
#include "core/milter/options.hpp"
#include "core/mime/charset.hpp"
#include "core/mime/compose.hpp"
#include "core/mime/parse.hpp"
#include "core/notify/notify.hpp"
#include "core/notify/outbox.hpp"
#include "core/policy/policy.hpp"
#include "core/smtp/client.hpp"
#include "core/smtp/xtext.hpp"
#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"
#include "core/util/text.hpp"

#include <algorithm>

#include <cstring>
#include <filesystem>
#include <optional>
#include <set>

namespace pli::milter {

namespace {

// How long after its creation a delivery without `sent` may still be being injected.
constexpr util::Micros k_unsent_grace = 10LL * 60 * 1000000;
// The longest text kept from a report received from outside, per detail field.
constexpr std::size_t k_claim_field_max = 512;

// `v` as valid UTF-8 on one line (controls become spaces), at most `max` bytes (cut at a
// character boundary, marked with "…").
std::string bounded_text(std::string_view v, std::size_t max)
{
  std::string s = mime::repair_utf8(v);
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      c = ' ';
    }
  }
  if (s.size() <= max) {
    return s;
  }
  std::size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80) {
    --cut;
  }
  s.resize(cut);
  return s + "…";
}

std::string domain_of(const std::string& address)
{
  auto at = address.rfind('@');
  return at == std::string::npos ? "" : address.substr(at + 1);
}

} // namespace

namespace detail {

Verdict store_failure_logged(const std::string& queue_id, const util::Error& e,
                             const std::string& from)
{
  if (e.code == store::Errc::full) {
    log::line(log::Level::error, queue_id,
              {{"decision", outcome_name(Outcome::tempfail_store_full)},
               {"store", e.message},
               {"action", "raise store.map_size_mb and restart the pli daemons, or pli purge"},
               {"from", from}});
    return Verdict{Outcome::tempfail_store_full};
  }
  log::line(log::Level::error, queue_id,
            {{"decision", outcome_name(Outcome::tempfail_store_error)},
             {"store", e.message},
             {"from", from}});
  return Verdict{Outcome::tempfail_store_error};
}

Verdict recipients_not_updated(const std::string& queue_id, const std::string& rcpt)
{
  log::line(log::Level::error, queue_id,
            {{"decision", outcome_name(Outcome::tempfail_update_recipients)}, {"rcpt", rcpt}});
  return Verdict{Outcome::tempfail_update_recipients};
}

std::string header_value(const Transaction& t, std::string_view name)
{
  for (const auto& [n, v] : t.headers) {
    if (strcasecmp(n.c_str(), std::string(name).c_str()) == 0) {
      return v;
    }
  }
  return "";
}

} // namespace detail

using detail::header_value;
using detail::recipients_not_updated;
using detail::store_failure_logged;

namespace {

// The outbox's runner (queue "milter"): the buyer's failure notification, its payload the
// delivery before it failed. True when done.
bool failure_notification(const config::Config& config, store::Store& store,
                          const store::ClaimedJob& job)
{
  store::pb::Delivery before;
  if (job.job.kind != "failure_notification" || !before.ParseFromString(job.job.payload) ||
      before.id().empty()) {
    log::line(log::Level::error, "", {{"outbox", "job_unusable"}, {"kind", job.job.kind}});
    return true;
  }
  const auto res = notify::notify_event(config, store, before, model::EventKind::failed,
                                        notify::Outbox::message_id(job, config.bounce.domain));
  return res.outcome != notify::Outcome::reinject_error &&
         res.outcome != notify::Outcome::store_error;
}

} // namespace

Engine::Engine(const config::Config& config, store::Store& store, util::Clock clock,
               std::unique_ptr<Injector> injector)
    : m_config(config), m_store(store), m_clock(std::move(clock)),
      m_injector(injector != nullptr
                     ? std::move(injector)
                     : std::make_unique<SmtpInjector>(notify::reinject_options(config)))
{
  mime::init();
  util::crypto_init();
}

notify::Outbox& Engine::outbox()
{
  std::call_once(m_outbox_once, [this] {
    auto options = notify::Outbox::options_from(m_config);
    if (!m_config.store.path.empty()) {
      options.legacy_dir = std::filesystem::path(m_config.store.path) / "outbox" / "milter";
    }
    options.upgrade = [](const std::string& kind,
                         const std::string& payload) -> std::optional<std::string> {
      store::pb::Delivery before;
      if (kind != "failure_notification" || !before.ParseFromString(payload) ||
          before.id().empty()) {
        return std::nullopt;
      }
      return payload;
    };
    m_outbox = std::make_unique<notify::Outbox>(
        m_store, "milter",
        [this](const store::ClaimedJob& j) { return failure_notification(m_config, m_store, j); },
        std::move(options));
  });
  return *m_outbox;
}

void Engine::start_outbox()
{
  outbox();
}

Step Engine::counted(Step s)
{
  if (const auto o = outcome_of(s)) {
    m_counters.add(*o);
  }
  return s;
}

Step Engine::envfrom(Transaction& t, const std::string& sender, MtaSession& mta)
{
  return counted(decide_envfrom(t, sender, mta));
}

Step Engine::envrcpt(Transaction& t, const std::string& rcpt)
{
  return counted(decide_envrcpt(t, rcpt));
}

Step Engine::data(Transaction& t)
{
  return counted(decide_data(t));
}

Verdict Engine::eom(Transaction& t, MtaSession& mta)
{
  const Verdict v = decide_eom(t, mta);
  m_counters.add(v.outcome);
  return v;
}

Engine::~Engine() = default;

std::string Engine::normalise(const std::string& address)
{
  std::string a(util::trim(address));
  if (a.size() >= 2 && a.front() == '<' && a.back() == '>') {
    a = a.substr(1, a.size() - 2);
  }
  auto at = a.rfind('@');
  if (at != std::string::npos) {
    a = a.substr(0, at + 1) + util::ascii_lower(a.substr(at + 1));
  }
  return a;
}

void Engine::connect(Transaction& t, const std::string& hostname, const std::string& ip, int port)
{
  t.client_name = bounded_text(hostname, 255);
  t.client_ip = ip;
  t.local_origin = port == 0 && ip == "127.0.0.1" && hostname == "localhost";
}

void Engine::helo(Transaction& t, const std::string& name)
{
  t.helo = bounded_text(name, 255);
}

bool Engine::is_bounce_address(const std::string& address) const
{
  const std::string lower = util::ascii_lower(address);
  const auto at = lower.rfind('@');
  if (at == std::string::npos || lower.substr(at + 1) != m_config.bounce.domain) {
    return false;
  }
  const std::string local = lower.substr(0, at);
  return local == m_config.bounce.local_part ||
         local.rfind(m_config.bounce.local_part + "+", 0) == 0;
}

Step Engine::decide_envfrom(Transaction& t, const std::string& sender, MtaSession& mta)
{
  t.reset_message();
  t.sender = normalise(sender);
  t.null_sender = t.sender.empty();
  if (t.null_sender) {
    return Step::proceed; // maybe a DSN to our bounce address: decided at RCPT/DATA
  }
  if (!t.local_origin && is_bounce_address(t.sender)) {
    // pli's own mail relayed through this smtpd by another MTA of the same store. From the
    // bare address (pli-linkd's reply notices to buyers): left alone. From pli-bounce+ID (a
    // notice): left alone at DATA if it is the notice of that delivery, never registered
    // again; anything else from that return path is judged as any other mail.
    const auto plus = t.sender.find('+');
    if (plus == std::string::npos) {
      log::line(log::Level::info, mta.macro("i"),
                {{"decision", outcome_name(Outcome::accept_untouched)},
                 {"reason", "sent by pli (the bounce address)"},
                 {"from", t.sender}});
      return Step::accept;
    }
    t.relayed_delivery =
        util::ascii_lower(t.sender.substr(plus + 1, t.sender.rfind('@') - plus - 1));
  }
  if (!policy::is_buyer(m_config.policy, t.sender)) {
    return Step::accept;
  }
  if (t.local_origin) {
    // sendmail/pickup: any local user may write any -f address.
    if (!m_config.policy.register_local_submissions) {
      log::line(log::Level::info, mta.macro("i"),
                {{"decision", outcome_name(Outcome::accept_untouched)},
                 {"reason", "local submission (sendmail) not registered"},
                 {"from", t.sender}});
      return Step::accept;
    }
    t.buyer = true;
    return Step::proceed;
  }
  const std::string login = mta.macro("{auth_authen}");
  if (!login.empty() && !policy::login_owns(m_config.policy, login, t.sender)) {
    log::line(log::Level::warning, mta.macro("i"),
              {{"decision", outcome_name(Outcome::accept_untouched)},
               {"reason", "the SMTP AUTH login does not own the buyer sender"},
               {"login", login},
               {"from", t.sender}});
    return Step::accept;
  }
  if (login.empty() && !policy::is_trusted_client(m_config.policy, t.client_ip)) {
    log::line(log::Level::info, mta.macro("i"),
              {{"decision", outcome_name(Outcome::accept_untouched)},
               {"reason", "buyer sender not authenticated"},
               {"from", t.sender}});
    return Step::accept;
  }
  t.buyer = true;
  return Step::proceed;
}

Step Engine::decide_envrcpt(Transaction& t, const std::string& rcpt)
{
  Recipient r;
  r.as_given = rcpt;
  r.address = normalise(rcpt);
  std::string lower = util::ascii_lower(r.address);
  const std::string prefix = m_config.bounce.local_part + "+";
  if (lower.rfind(prefix, 0) == 0 && domain_of(lower) == m_config.bounce.domain) {
    r.kind = Recipient::Kind::bounce;
    r.delivery = lower.substr(prefix.size(), lower.rfind('@') - prefix.size());
    if (!t.local_origin) {
      // A report from outside: only for a delivery pli issued and sent, decided before
      // anything is buffered. (cleanup(8) cannot refuse a recipient: Postfix's own reports
      // are judged at end of message.)
      auto d = m_store.get_delivery(r.delivery);
      const bool unknown = !d && d.error().code == store::Errc::not_found;
      if (!d && !unknown) {
        log::line(log::Level::error, "",
                  {{"decision", outcome_name(Outcome::tempfail_store_error)},
                   {"store", d.error().message},
                   {"delivery", bounded_text(r.delivery, 64)}});
        return Step::store_error;
      }
      const bool young = d && m_clock() - d->created_at() < k_unsent_grace;
      if (unknown || (d->sent_at() == 0 && !young)) {
        log::line(log::Level::warning, "",
                  {{"decision", outcome_name(Outcome::reject_unknown_delivery)},
                   {"reason", unknown ? "unknown delivery" : "delivery never sent"},
                   {"delivery", bounded_text(r.delivery, 64)},
                   {"client", t.client_ip},
                   {"helo", t.helo}});
        return Step::reject_recipient;
      }
      if (d->sent_at() == 0) {
        log::line(log::Level::info, "",
                  {{"decision", outcome_name(Outcome::tempfail_recipient_not_yet_sent)},
                   {"reason", "delivery not yet recorded as sent"},
                   {"delivery", r.delivery}});
        return Step::defer_recipient;
      }
    }
  } else if (policy::is_internal(m_config.policy, r.address)) {
    r.kind = Recipient::Kind::internal;
  }
  t.recipients.push_back(std::move(r));
  return Step::proceed;
}

Step Engine::decide_data(Transaction& t)
{
  bool any_bounce = false, any_external = false;
  for (const auto& r : t.recipients) {
    any_bounce |= r.kind == Recipient::Kind::bounce;
    any_external |= r.kind == Recipient::Kind::external;
  }
  if (any_bounce) {
    t.report = true;
    return Step::proceed;
  }
  if (t.buyer && any_external && !t.relayed_delivery.empty()) {
    if (const auto s = relayed_notice(t)) {
      return *s;
    }
  }
  if (t.buyer && any_external) {
    return Step::proceed;
  }
  if (t.buyer) {
    // Internal recipients only: the original goes through, but pli's subject tags and
    // X-Pli-Options header are still removed; the body is not buffered.
    t.headers_only = true;
    return Step::proceed;
  }
  return Step::accept;
}

std::optional<Step> Engine::relayed_notice(const Transaction& t)
{
  if (t.recipients.size() != 1) {
    return std::nullopt; // a notice has one recipient
  }
  auto d = m_store.get_delivery(t.relayed_delivery);
  if (!d) {
    if (d.error().code == store::Errc::not_found) {
      return std::nullopt;
    }
    log::line(log::Level::error, "",
              {{"decision", outcome_name(Outcome::tempfail_store_error)},
               {"store", d.error().message},
               {"delivery", bounded_text(t.relayed_delivery, 64)}});
    return Step::store_error;
  }
  if (!smtp::reported_address_matches(t.recipients.front().address, d->recipient())) {
    return std::nullopt;
  }
  log::line(log::Level::info, "",
            {{"decision", outcome_name(Outcome::accept_untouched)},
             {"reason", "sent by pli (the bounce address)"},
             {"delivery", d->id()},
             {"from", t.sender}});
  return Step::accept;
}

std::size_t Engine::max_bytes(const Transaction& t) const
{
  return t.report ? m_config.bounce.max_report_kb * 1024
                  : m_config.milter.max_message_mb * 1024 * 1024;
}

void Engine::header(Transaction& t, const std::string& name, const std::string& value)
{
  t.bytes += name.size() + value.size() + 4;
  if (t.bytes > max_bytes(t)) {
    t.too_large = true;
    return;
  }
  t.headers.emplace_back(name, value);
}

void Engine::body(Transaction& t, std::string_view chunk)
{
  if (t.headers_only) {
    return;
  }
  t.bytes += chunk.size();
  if (t.bytes > max_bytes(t)) {
    t.too_large = true;
    std::string().swap(t.body); // nothing of it is read
    return;
  }
  t.body.append(chunk);
}

std::string assemble(const Transaction& t)
{
  std::string out;
  out.reserve(t.bytes + 256);
  for (const auto& [name, value] : t.headers) {
    out += name;
    out += ": ";
    // Continuation lines reach the milter with bare LF; write them as CRLF.
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r')) {
        out += "\r\n";
      } else {
        out.push_back(value[i]);
      }
    }
    out += "\r\n";
  }
  out += "\r\n";
  out += t.body;
  return out;
}

std::string content_hash(const Transaction& t)
{
  // Date too: a client that composes the mail again on a retry writes a new one.
  static constexpr std::string_view k_trace[] = {
      "received",     "return-path", "delivered-to",          "x-original-to",
      "received-spf", "date",        "authentication-results"};
  // Hashed in pieces: the body is not copied (a registered mail may be 50 MB).
  util::Sha256 hash;
  for (const auto& [name, value] : t.headers) {
    const std::string lower = util::ascii_lower(name);
    if (std::find(std::begin(k_trace), std::end(k_trace), lower) != std::end(k_trace) ||
        lower.rfind("arc-", 0) == 0) {
      continue;
    }
    std::string line = lower + ":";
    for (char c : value) {
      if (c != '\r') {
        line.push_back(c);
      }
    }
    line += '\n';
    hash.update(line);
  }
  hash.update("\n");
  hash.update(t.body);
  return hash.hex();
}

Verdict Engine::decide_eom(Transaction& t, MtaSession& mta)
{
  const std::string queue_id = mta.macro("i");
  if (t.too_large && t.report) {
    log::line(log::Level::warning, queue_id,
              {{"decision", outcome_name(Outcome::reject_report_too_large)},
               {"max_report_kb", std::to_string(m_config.bounce.max_report_kb)},
               {"client", t.client_ip},
               {"helo", t.helo}});
    return Verdict{Outcome::reject_report_too_large};
  }
  if (t.too_large) {
    log::line(log::Level::warning, queue_id,
              {{"decision", outcome_name(Outcome::reject_too_large)}, {"from", t.sender}});
    return Verdict{Outcome::reject_too_large};
  }
  for (const auto& r : t.recipients) {
    if (r.kind == Recipient::Kind::bounce) {
      return bounce(t, mta, queue_id);
    }
  }
  if (t.headers_only) {
    return strip_options(t, mta, queue_id);
  }
  if (t.buyer) {
    if (t.recipients.size() > m_config.milter.max_recipients) {
      log::line(log::Level::warning, queue_id,
                {{"decision", outcome_name(Outcome::reject_too_many_recipients)},
                 {"recipients", std::to_string(t.recipients.size())},
                 {"from", t.sender}});
      return Verdict{Outcome::reject_too_many_recipients};
    }
    return registered(t, mta, queue_id);
  }
  return Verdict{};
}

Verdict Engine::strip_options(Transaction& t, MtaSession& mta, const std::string& queue_id)
{
  const std::string subject = mime::decode_header_value(header_value(t, "Subject"));
  const std::string header = header_value(t, "X-Pli-Options");
  const auto opts = parse_client_options(subject, header);
  if (opts.subject_changed) {
    mta.change_header("Subject", 1, mime::encode_header(opts.subject));
  }
  if (!header.empty()) {
    mta.change_header("X-Pli-Options", 1, "");
  }
  if (opts.subject_changed || !header.empty()) {
    log::line(log::Level::info, queue_id,
              {{"decision", outcome_name(Outcome::accept_untouched)},
               {"reason", "internal recipients only"},
               {"options", "removed"},
               {"from", t.sender}});
  }
  return Verdict{};
}

Verdict Engine::bounce(Transaction& t, MtaSession& mta, const std::string& queue_id)
{
  const std::string raw = assemble(t);
  const auto report = dsn::parse_report(raw);
  const util::Micros now = m_clock();
  std::vector<store::NewEvent> events;
  bool jobs = false; // a failure notification queued with its event
  for (const auto& r : t.recipients) {
    if (r.kind != Recipient::Kind::bounce) {
      continue;
    }
    auto d = m_store.get_delivery(r.delivery);
    if (!d) {
      if (d.error().code != store::Errc::not_found) {
        return store_failure_logged(queue_id, d.error(), "<>");
      }
      log::line(log::Level::warning, queue_id,
                {{"decision", outcome_name(Outcome::dsn_unattributed)},
                 {"reason", "unknown delivery"},
                 {"delivery", r.delivery}});
      continue;
    }
    // Postfix delivers a notice and reports it within milliseconds, often before the thread
    // (or the other host) that injected it has committed its `sent`: wait for that commit
    // (Store::wait_for_sent, woken by the commit). A 451 here makes Postfix defer the notice
    // it has just delivered ("trace failed") and deliver it again later, a duplicate for the
    // recipient. Still not sent after the wait: a young delivery's report is retried later,
    // an old one ignored.
    if (d->sent_at() == 0 && now - d->created_at() < k_unsent_grace && unsent_wait.count() > 0) {
      auto again = m_store.wait_for_sent(r.delivery, unsent_wait);
      if (!again) {
        return store_failure_logged(queue_id, again.error(), "<>");
      }
      d = std::move(again);
    }
    if (d->sent_at() == 0) {
      if (now - d->created_at() < k_unsent_grace) {
        log::line(log::Level::info, queue_id,
                  {{"decision", outcome_name(Outcome::tempfail_not_yet_sent)},
                   {"reason", "delivery not yet recorded as sent"},
                   {"delivery", r.delivery}});
        return Verdict{Outcome::tempfail_not_yet_sent};
      }
      log::line(log::Level::warning, queue_id,
                {{"decision", outcome_name(Outcome::dsn_unattributed)},
                 {"reason", "delivery never sent"},
                 {"delivery", r.delivery}});
      continue;
    }
    if (!report) {
      log::line(log::Level::warning, queue_id,
                {{"decision", outcome_name(Outcome::dsn_unattributed)},
                 {"reason", "not a delivery report"},
                 {"delivery", r.delivery}});
      continue;
    }
    const dsn::RecipientReport* match = nullptr;
    for (const auto& rr : report->recipients) {
      if (smtp::reported_address_matches(rr.final_recipient, d->recipient()) ||
          smtp::reported_address_matches(rr.original_recipient, d->recipient())) {
        match = &rr;
        break;
      }
    }
    if (match == nullptr && report->recipients.size() == 1) {
      match = &report->recipients.front(); // the return path names exactly one delivery
    }
    if (match == nullptr) {
      log::line(log::Level::warning, queue_id,
                {{"decision", outcome_name(Outcome::dsn_unattributed)},
                 {"reason", "no report for the recipient"},
                 {"delivery", r.delivery}});
      continue;
    }
    auto kind_name = dsn::event_kind_for(match->action);
    auto kind = model::parse_event_kind(kind_name);
    if (kind && !t.local_origin) {
      // Received from outside: a claim, whatever it says (model::apply_event).
      kind = *kind == model::EventKind::failed      ? model::EventKind::remote_failed
             : *kind == model::EventKind::delivered ? model::EventKind::remote_delivered
                                                    : model::EventKind::remote_delayed;
      kind_name = model::code(*kind);
    }
    if (!kind) {
      log::line(log::Level::warning, queue_id,
                {{"decision", outcome_name(Outcome::dsn_unattributed)},
                 {"reason", "unknown action"},
                 {"action", match->action_raw},
                 {"delivery", r.delivery}});
      continue;
    }
    std::map<std::string, std::string> detail{{"action", match->action_raw},
                                              {"status", match->status},
                                              {"remote_mta", match->remote_mta},
                                              {"diagnostic", match->diagnostic_code},
                                              {"reporting_mta", report->reporting_mta},
                                              {"dsn_queue_id", queue_id}};
    if (report->inferred) {
      detail["inferred"] = "yes";
    }
    if (!t.local_origin) {
      detail["origin"] = "remote";
      detail["client_ip"] = t.client_ip;
      detail["client_name"] = t.client_name;
      detail["helo"] = t.helo;
      detail["authentication_results"] = header_value(t, "Authentication-Results");
      for (auto& [k, v] : detail) {
        v = bounded_text(v, k_claim_field_max);
      }
    }
    for (auto it = detail.begin(); it != detail.end();) {
      it = it->second.empty() ? detail.erase(it) : std::next(it);
    }
    // A delivery is delivered once: a second success report (its notice injected twice,
    // see registered()) records nothing. Other reports are duplicates when identical.
    const std::string dedupe =
        *kind == model::EventKind::delivered
            ? util::sha256_hex(d->id() + "\n" + std::string(kind_name))
            : util::sha256_hex(d->id() + "\n" + std::string(kind_name) + "\n" + match->status +
                               "\n" + match->final_recipient + "\n" + match->diagnostic_code +
                               "\n" + report->reporting_mta + "\n" + report->arrival_date + "\n" +
                               match->last_attempt_date + "\n" + match->will_retry_until);
    events.push_back(store::NewEvent{d->id(), *kind, now, std::move(detail), dedupe, {}});
    if (*kind == model::EventKind::failed && m_config.notify.not_delivered) {
      // The buyer's failure notification, queued with the event in its transaction (none
      // when the event is a duplicate); notify_event decides when it is sent.
      events.back().job =
          store::Job{"milter", "failure_notification", d.value().SerializeAsString()};
      jobs = true;
    }
    log::line(log::Level::info, queue_id,
              {{"decision",
                outcome_name(t.local_origin ? Outcome::dsn_recorded : Outcome::dsn_claim_recorded)},
               {"delivery", d->id()},
               {"event", kind_name},
               {"status", match->status}});
  }
  if (!events.empty()) {
    if (auto st = m_store.append_events(events); !st) {
      return store_failure_logged(queue_id, st.error(), "<>");
    }
  }
  // The buyer's failure notifications, committed with their events: sent now, from the
  // outbox (tried again while the re-injection listener refuses them).
  if (jobs) {
    outbox().wake();
  }
  Verdict v{events.empty()   ? Outcome::dsn_unattributed
            : t.local_origin ? Outcome::dsn_recorded
                             : Outcome::dsn_claim_recorded,
            !m_config.bounce.keep};
  const bool others = std::any_of(t.recipients.begin(), t.recipients.end(), [](const Recipient& r) {
    return r.kind != Recipient::Kind::bounce;
  });
  if (v.discard && others) {
    // Other recipients share this message: only the bounce addresses are removed.
    for (const auto& r : t.recipients) {
      if (r.kind == Recipient::Kind::bounce && !mta.delete_recipient(r.as_given)) {
        return recipients_not_updated(queue_id, r.as_given);
      }
    }
    v.discard = false;
  }
  return v;
}

} // namespace pli::milter
