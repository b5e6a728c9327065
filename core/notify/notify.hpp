// Notifications to the buyer who sent a registered message (issue 6): a short mail when a
// delivery is first read (carrying the signed receipt PDF) and when it becomes
// not_delivered, French by default (English when organisation.locale is en). Each kind is
// switched by `notify.read` / `notify.not_delivered`.
//
// They go through the re-injection listener (no pli milter) with a null return path
// (RFC 3834 `Auto-Submitted: auto-generated`), so they are never registered, tracked or
// bounced back at pli. The process that records the event calls notify_event() after its
// commit: pli-linkd for `read`, pli-milter for `failed`.
#pragma once

#include "core/config/config.hpp"
#include "core/smtp/client.hpp"
#include "core/store/store.hpp"

#include <optional>
#include <string>

namespace pli::notify {

enum class Outcome
{
  sent,
  disabled,      // switched off in the config
  not_first,     // not the first read / the delivery was already not delivered
  no_sender,     // the message has no envelope sender to write to
  store_error,   // the exchange could not be read
  reinject_error // the listener refused or was unreachable
};

struct Result
{
  Outcome outcome = Outcome::disabled;
  std::string detail; // the reason or the SMTP reply
  bool receipt_attached = false;
};

// A composed notification: envelope recipient and the RFC 5322 message (CRLF).
struct Mail
{
  std::string to;
  std::string data;
  bool receipt_attached = false;
};

// Text received in a delivery report (a remote server's reply, its name), made fit to be
// quoted in a mail pli sends: valid UTF-8 on one line without control characters, at most
// `max_bytes` bytes (cut at a character boundary and marked "…"), and with its links made
// inert ("https://x" becomes "https[:]//x", a dot inside a host name "[.]"), so that no
// mail reader turns it into a link. Returns the result; never fails.
std::string inert_text(std::string_view text, std::size_t max_bytes);

// Composes the notification of `kind` (read or failed) for the delivery `delivery_id`,
// as it is in the store now. nullopt when the store cannot give the exchange.
// A read notification carries the receipt when the signing key (keys.dir) is readable.
std::optional<Mail> compose(const config::Config& config, store::Store& store,
                            const std::string& delivery_id, model::EventKind kind, util::Micros now,
                            const std::string& message_id = "");

// The SMTP client options for Postfix's re-injection listener (`reinject` in pli.yaml), by
// which every mail pli makes leaves: notices, notifications, reply notices, login links.
smtp::Options reinject_options(const config::Config& config);

// Decides and sends. `before` is the delivery as it was before the event was recorded.
// `message_id` (without <>): the mail's Message-ID, derived from its outbox job so that a
// second sending of the same job is recognisable; "" = one made from the delivery and the
// time. Logs what it did (one line); never throws.
Result notify_event(const config::Config& config, store::Store& store,
                    const store::pb::Delivery& before, model::EventKind kind,
                    const std::string& message_id = "");

} // namespace pli::notify
