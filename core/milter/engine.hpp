// The milter's decisions, independent of libmilter (the adapter in milter/ calls these).
//
// A buyer's mail to external recipients becomes one registered delivery per recipient
// (registration.cpp): stored, then re-injected through Postfix's listener
// with a VERP return path and a DSN request (RFC 3461), then removed from the original.
// Mail to the bounce address (pli-bounce+DELIVERYID@domain) is a DSN (RFC 3464) that
// becomes delivery events. Anything else is accepted untouched, as early as possible.
#pragma once

#include "core/config/config.hpp"
#include "core/milter/injector.hpp"
#include "core/milter/metrics.hpp"
#include "core/milter/outcome.hpp"
#include "core/store/store.hpp"
#include "core/util/time.hpp"

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pli::notify {
class Outbox;
}

namespace pli::milter {

// What the engine asks of the MTA; libmilter implements it, tests record it.
class MtaSession
{
public:
  virtual ~MtaSession() = default;
  // A macro's value ("" when undefined), e.g. "i", "{auth_authen}".
  virtual std::string macro(const char* name) = 0;
  // Removes a recipient as the MTA gave it. Returns false on failure.
  virtual bool delete_recipient(const std::string& rcpt) = 0;
  // Changes the index-th (1-based) header `name`; an empty value with `remove` deletes it.
  virtual bool change_header(const std::string& name, int index, const std::string& value) = 0;
};

// What the adapter answers at end of message: the outcome's row of the table
// (outcome.hpp), an accepted message being discarded when it has no recipient left.
struct Verdict
{
  Outcome outcome = Outcome::accept_untouched;
  bool discard = false; // SMFIS_DISCARD (nothing left to deliver)
};

// What a callback before end of message decides.
enum class Step
{
  proceed, // go on to the next step
  accept,  // accept_untouched: nothing of this message concerns pli
  // At RCPT, for one recipient (the others of the transaction go on).
  reject_recipient, // reject_unknown_delivery: no such delivery report address
  defer_recipient,  // tempfail_recipient_not_yet_sent: a delivery still being recorded
  store_error,      // tempfail_store_error: the store cannot answer now
};

// The outcome a step answers with (its row of the table); none for Step::proceed.
constexpr std::optional<Outcome> outcome_of(Step s)
{
  switch (s) {
  case Step::proceed:
    return std::nullopt;
  case Step::accept:
    return Outcome::accept_untouched;
  case Step::reject_recipient:
    return Outcome::reject_unknown_delivery;
  case Step::defer_recipient:
    return Outcome::tempfail_recipient_not_yet_sent;
  case Step::store_error:
    return Outcome::tempfail_store_error;
  }
  return Outcome::tempfail_internal;
}

struct Recipient
{
  std::string as_given; // what the MTA handed us, for smfi_delrcpt
  std::string address;  // normalised: no <>, lower-case domain
  enum class Kind
  {
    external,
    internal,
    bounce
  } kind = Kind::external;
  std::string delivery; // for bounce recipients: the +extension
};

// Per-connection and per-message state.
struct Transaction
{
  std::string client_ip;
  std::string client_name; // the connect event's host name
  std::string helo;
  // The organisation's own Postfix (cleanup's non_smtpd_milters: bounce(8) reports, and
  // sendmail/pickup submissions) rather than an SMTP client: see Engine::connect.
  bool local_origin = false;
  bool report = false; // a message to a bounce address: bounded by bounce.max_report_kb
  std::string sender;  // normalised, "" for the null sender
  bool buyer = false;
  bool null_sender = false;
  std::vector<Recipient> recipients;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::size_t bytes = 0;
  bool too_large = false;
  bool headers_only = false; // a buyer's mail to internal recipients only: tags to strip
  // The +ID of a sender at the bounce address over SMTP: maybe the notice of delivery ID,
  // relayed by another MTA of the same store (Engine::relayed_notice).
  std::string relayed_delivery;

  void reset_message()
  {
    relayed_delivery.clear();
    report = false;
    sender.clear();
    buyer = false;
    null_sender = false;
    recipients.clear();
    headers.clear();
    body.clear();
    bytes = 0;
    too_large = false;
    headers_only = false;
  }
};

class Engine
{
public:
  // `injector` re-injects registered mail (nullptr: an SmtpInjector on the listener of
  // reinject.*, notify::reinject_options).
  Engine(const config::Config& config, store::Store& store, util::Clock clock = util::now_micros,
         std::unique_ptr<Injector> injector = nullptr);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The buyer's failure notifications leave from the store's outbox (queue "milter", its
  // thread): starting it sends those due, queued by this or any other pli-milter of the
  // store (and moves an earlier version's files under STORE/outbox/milter into the store).
  // Called once the process is what it will be (after daemon()); otherwise started by the
  // first notification.
  void start_outbox();

  // At connect: where the mail comes from. Postfix's cleanup(8) presents mail it did not
  // receive over SMTP (its own delivery reports, through non_smtpd_milters) as host
  // "localhost", address 127.0.0.1 and port 0; an SMTP client (the public MX, or anyone
  // connecting to any smtpd, loopback included) always has a non-zero source port, and
  // only the hosts of smtpd_authorized_xclient_hosts could claim another one.
  void connect(Transaction& t, const std::string& hostname, const std::string& ip, int port);
  void helo(Transaction& t, const std::string& name);
  Step envfrom(Transaction& t, const std::string& sender, MtaSession& mta);
  // Classifies a recipient (external, internal, bounce address). Refuses only a bounce
  // address received over SMTP whose delivery id pli never issued or never sent
  // (reject_recipient, logged) or whose `sent` is still being recorded (defer_recipient),
  // so that such reports are never buffered; limits are checked at end of message.
  Step envrcpt(Transaction& t, const std::string& rcpt);
  // At DATA: accept what can never be registered nor is a DSN for us.
  Step data(Transaction& t);
  void header(Transaction& t, const std::string& name, const std::string& value);
  void body(Transaction& t, std::string_view chunk);
  Verdict eom(Transaction& t, MtaSession& mta);

  // Every outcome decided so far (each callback's answer counts once; so does each
  // recipient refused at re-injection, and an internal error the adapter reports).
  Counters& counters() { return m_counters; }
  const Counters& counters() const { return m_counters; }

  // Normalises an address from smtpd ("<a@B>") or the DSN path ("a@B", "", "<>").
  static std::string normalise(const std::string& address);

  // How long a report for a young delivery whose `sent` is not yet recorded waits for it
  // (Postfix reports a notice while the milter that injected it is still recording its
  // `sent`) before it is tempfailed: under load most reports would otherwise be deferred
  // for Postfix's queue run delay. Tests set 0.
  std::chrono::milliseconds unsent_wait{3000};

private:
  // The callbacks' decisions, before they are counted.
  Step decide_envfrom(Transaction& t, const std::string& sender, MtaSession& mta);
  Step decide_envrcpt(Transaction& t, const std::string& rcpt);
  Step decide_data(Transaction& t);
  Verdict decide_eom(Transaction& t, MtaSession& mta);
  Step counted(Step s);
  // pli's own return path: the bounce address, with or without a +extension.
  bool is_bounce_address(const std::string& address) const;
  // At DATA, a buyer's mail from pli-bounce+ID to one external recipient: Step::accept when
  // it is delivery ID's notice (that delivery, to that recipient), relayed by another MTA
  // whose pli-milter registered it; store_error; nothing when it is not (registered as usual).
  std::optional<Step> relayed_notice(const Transaction& t);

  // A buyer's mail to external recipients (registration.cpp), in four steps over one
  // Registration: plan the recipients' deliveries (new, or a retry's), record the message
  // and its new deliveries, inject one notice (or copy) per delivery not yet sent, and
  // settle the original (its registered recipients removed, pli's options stripped). A
  // step that cannot go on gives the verdict.
  struct Registration;
  Verdict registered(Transaction& t, MtaSession& mta, const std::string& queue_id);
  std::optional<Verdict> plan_recipients(Registration& r);
  std::optional<Verdict> record(Registration& r);
  std::optional<Verdict> inject(Registration& r);
  Verdict settle_original(Registration& r);

  Verdict bounce(Transaction& t, MtaSession& mta, const std::string& queue_id);
  Verdict strip_options(Transaction& t, MtaSession& mta, const std::string& queue_id);
  // The most a message may buffer: bounce.max_report_kb for reports, else max_message_mb.
  std::size_t max_bytes(const Transaction& t) const;

  const config::Config& m_config;
  store::Store& m_store;
  util::Clock m_clock;
  std::unique_ptr<Injector> m_injector;
  Counters m_counters;
  notify::Outbox& outbox();
  std::once_flag m_outbox_once;
  std::unique_ptr<notify::Outbox> m_outbox; // last: its jobs use the members above
};

// Assembles the message as the milter saw it: headers then body, CRLF line endings.
std::string assemble(const Transaction& t);

// SHA-256 (hex) of what the client sent: its headers and body, without the trace headers
// that MTAs add on each attempt (Received, Return-Path, Delivered-To, X-Original-To,
// Authentication-Results, Received-SPF, ARC-*) and without Date (a client composing the mail
// again writes a new one). Stable across a client's retries of one mail.
std::string content_hash(const Transaction& t);

} // namespace pli::milter
