// A small SMTP client for re-injection into Postfix's listener (RFC 5321, with the
// DSN extension of RFC 3461 and PIPELINING of RFC 2920). One connection carries
// several transactions; each has its own envelope.
#pragma once

#include <string>
#include <vector>

namespace pli::smtp {

struct Envelope
{
  std::string mail_from; // address without <>
  std::string envid;     // RFC 3461 ENVID (xtext-safe characters only), may be empty
  std::string ret;       // "HDRS" or "FULL" or empty
  std::string rcpt;      // address without <>
  std::string notify;    // e.g. "SUCCESS,FAILURE,DELAY", may be empty
  std::string data;      // the message, lines ending in CRLF or LF
};

struct TxnResult
{
  bool ok = false;
  bool temporary = true; // on failure: 4xx or connection trouble (true), 5xx (false)
  std::string reply;     // the last server reply line(s), e.g. "250 2.0.0 Ok: queued as 4Xk..."
  std::string queue_id;  // parsed from "queued as ..." when present
};

struct Options
{
  std::string host = "127.0.0.1";
  int port = 10025;
  int timeout_seconds = 30;
  std::string helo = "localhost";
};

// Sends each envelope in its own transaction over one connection. A connection
// failure fails every remaining transaction (temporary). Never throws.
std::vector<TxnResult> send(const Options& options, const std::vector<Envelope>& envelopes);

} // namespace pli::smtp
