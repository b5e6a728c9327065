// The milter's decisions, independent of libmilter (the adapter in milter/ calls these).
//
// A buyer's mail to external recipients becomes one registered delivery per recipient
// (doc/ARCHITECTURE.md): stored, then re-injected through Postfix's listener
// with a VERP return path and a DSN request (RFC 3461), then removed from the original.
// Mail to the bounce address (pli-bounce+DELIVERYID@domain) is a DSN (RFC 3464) that
// becomes delivery events. Anything else is accepted untouched, as early as possible.
#pragma once

#include "core/config/config.hpp"
#include "core/store/store.hpp"
#include "core/util/time.hpp"

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace pli::notify {
class Outbox;
}
namespace pli::smtp {
class Pool;
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

// Every decision has a name, a log line and a counter (doc/ARCHITECTURE.md).
enum class Outcome
{
  accept_untouched, // not registered mail: left alone
  registered,       // deliveries recorded, injected, removed from the original
  registered_retry, // a retried message: nothing new to inject
  dsn_recorded,     // a DSN for a delivery, recorded
  dsn_unattributed, // mail to the bounce address we could not attribute
  tempfail_store_full,
  tempfail_store_error,
  tempfail_reinject_unreachable,
  tempfail_reinject_refused,
  tempfail_internal,
  tempfail_not_yet_sent, // a report for a delivery whose `sent` is still being recorded
  reject_too_large,
  reject_too_many_recipients,
  // Reports received from outside (RCPT and end of message of a pli-bounce+ID recipient).
  reject_unknown_delivery, // 550 5.1.1 at RCPT: an id pli never issued, or never sent
  reject_report_too_large, // 552 5.3.4: over bounce.max_report_kb, not parsed
  dsn_claim_recorded,      // a report from outside, recorded as an unverified claim
  reject_invalid_text,     // the store refused the message's record (a text not valid UTF-8)
};

std::string_view outcome_name(Outcome o);

// What the adapter answers at end of message.
struct Verdict
{
  Outcome outcome = Outcome::accept_untouched;
  bool discard = false;   // SMFIS_DISCARD (nothing left to deliver)
  std::string reply_code; // for tempfail/reject: "451", "552" ...
  std::string xcode;      // "4.3.0" ...
  std::string reply_text;
};

enum class Step
{
  proceed,
  accept,
  tempfail,
  reject,
  // At RCPT, for one recipient (the others of the transaction go on).
  reject_recipient, // 550 5.1.1: no such delivery report address
  defer_recipient,  // 450 4.3.0: a delivery still being recorded
  store_error,      // 451 4.3.0: the store cannot answer now
};

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

  void reset_message()
  {
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
  Engine(const config::Config& config, store::Store& store, util::Clock clock = util::now_micros);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The buyer's failure notifications leave from an outbox (its thread), kept under
  // STORE/outbox/milter when the store has a path: starting it runs those a previous run
  // left waiting for the re-injection listener. Called once the process is what it will be
  // (after daemon()); otherwise started by the first notification.
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

  // Normalises an address from smtpd ("<a@B>") or the DSN path ("a@B", "", "<>").
  static std::string normalise(const std::string& address);

  // How long a report for a young delivery whose `sent` is not yet recorded waits for it
  // (Postfix reports a notice while the milter that injected it is still recording its
  // `sent`) before it is tempfailed: under load most reports would otherwise be deferred
  // for Postfix's queue run delay. Tests set 0.
  std::chrono::milliseconds unsent_wait{3000};

private:
  Verdict registered(Transaction& t, MtaSession& mta, const std::string& queue_id);
  Verdict bounce(Transaction& t, MtaSession& mta, const std::string& queue_id);
  Verdict strip_options(Transaction& t, MtaSession& mta, const std::string& queue_id);
  // The most a message may buffer: bounce.max_report_kb for reports, else max_message_mb.
  std::size_t max_bytes(const Transaction& t) const;

  const config::Config& m_config;
  store::Store& m_store;
  util::Clock m_clock;
  // The re-injection listener's sessions, kept open between messages.
  std::unique_ptr<smtp::Pool> m_reinject;
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
