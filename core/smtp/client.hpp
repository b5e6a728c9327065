// A small SMTP client for re-injection into Postfix's listener (RFC 5321, with the
// DSN extension of RFC 3461 and PIPELINING of RFC 2920). One connection carries
// several transactions; each has its own envelope.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace pli::smtp {

struct Envelope
{
  std::string mail_from; // address without <>
  std::string envid;     // RFC 3461 ENVID (xtext-encoded on the wire), may be empty
  std::string ret;       // "HDRS" or "FULL" or empty
  std::string rcpt;      // address without <> (ORCPT: its xtext or RFC 6533 form)
  std::string notify;    // e.g. "SUCCESS,FAILURE,DELAY", may be empty
  std::string data;      // the message, lines ending in CRLF or LF
};

// Why a transaction failed, for callers that decide on it (never by reading the text).
enum class Failure
{
  none,        // it succeeded
  reply,       // the server answered 4xx or 5xx
  unreachable, // no connection, or the server closed or dropped it (a 421 included)
  io,          // a timeout, a read or write error, a reply line too long
};

struct TxnResult
{
  bool ok = false;
  bool temporary = true; // on failure: 4xx or connection trouble (true), 5xx (false)
  Failure failure = Failure::none;
  std::string reply;    // the last server reply line(s), e.g. "250 2.0.0 Ok: queued as 4Xk..."
  std::string queue_id; // parsed from "queued as ..." when present
};

struct Options
{
  std::string host = "127.0.0.1";
  int port = 10025;
  int timeout_seconds = 30;
  std::string helo = "localhost";
};

// True when the envelope needs RFC 6531's SMTPUTF8: a non-ASCII address, or non-ASCII
// bytes in the message's header section (RFC 6532 headers). Such an envelope is sent with
// SMTPUTF8 on MAIL FROM; a server that does not offer it fails it permanently (553 5.6.7)
// without a transaction.
bool needs_smtputf8(const Envelope& envelope);

// Sends each envelope in its own transaction over one connection. A connection
// failure fails every remaining transaction (temporary). Never throws.
std::vector<TxnResult> send(const Options& options, const std::vector<Envelope>& envelopes);

struct Session; // a connection past its EHLO

// Sessions kept open between sends to one server, as send() would make them: a busy
// sender (pli-milter re-injecting a notice per registered message) saves a connection, a
// greeting, EHLO and QUIT per message, for itself and for the server. An idle session is
// used again only while fresh (Limits::max_idle_time) and quiet (nothing from the server:
// a closed connection or a 421 of its timeout closes it). When an idle session turns out
// to be closed before a message was sent on it, the message goes on a new connection;
// once sent, a message is never sent again (a lost final reply fails it, temporary).
// Thread-safe.
class Pool
{
public:
  struct Limits
  {
    std::size_t max_idle = 8; // sessions kept open, at most
    std::chrono::seconds max_idle_time{30};
  };
  explicit Pool(Options options, Limits limits);
  explicit Pool(Options options) : Pool(std::move(options), Limits{}) {}
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  ~Pool(); // QUIT on the idle sessions

  // As send(options, envelopes).
  std::vector<TxnResult> send(const std::vector<Envelope>& envelopes);

private:
  std::unique_ptr<Session> take();
  void give_back(std::unique_ptr<Session> s);

  Options m_options;
  Limits m_limits;
  std::mutex m_mu;
  std::vector<std::unique_ptr<Session>> m_idle;
};

} // namespace pli::smtp
