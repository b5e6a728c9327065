// pli.yaml: loading and validation.
//
// One table of keys (path, type, default, validator) drives loading; unknown keys,
// missing required keys, wrong types and invalid values are errors reported as
// "FILE:LINE: message" (pli.yaml(5); config::Errc), and binaries exit with status EX_CONFIG (78).
// The parsed Config is immutable.
#pragma once

#include "core/model/model.hpp"
#include "core/util/cidr.hpp"
#include "core/util/result.hpp"

#include <sysexits.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pli::config {

// The exit status of a binary whose configuration does not load (any config::Errc).
constexpr int k_exit_config = EX_CONFIG;

enum class Errc
{
  invalid = 1,    // a key unknown, missing, of the wrong type or with an invalid value
  unreadable = 2, // the file cannot be read
};

} // namespace pli::config
PLI_ERROR_CODE_ENUM(pli::config, Errc, "pli.config", "invalid configuration",
                    "unreadable configuration");
namespace pli::config {

struct Config
{
  std::string file; // where it was loaded from

  struct Organisation
  {
    std::string name;
    model::Locale locale = model::Locale::fr;
    std::string timezone = "Europe/Paris";
  } organisation;

  // Where the evidence store lives: one LMDB environment on this host (the default), or a
  // PostgreSQL database shared by several hosts.
  enum class StoreBackend
  {
    lmdb,
    postgresql
  };

  struct Store
  {
    StoreBackend backend = StoreBackend::lmdb;
    std::string path; // LMDB: the environment; both: an earlier version's outbox files (outbox/)
    std::uint64_t map_size_mb = 4096;
    // Share of the map pli-linkd never fills (replies, events, login links): it refuses a
    // write that would leave less free, so that the milter can still register mail.
    std::uint64_t linkd_reserve_percent = 10;
    // PostgreSQL: a libpq URI or key=value conninfo (required), never with a password in it.
    std::string url;
    std::uint64_t pool = 8; // connections per process at most
    std::string passfile;   // libpq's password file; "": PGPASSFILE or ~/.pgpass
  } store;

  struct Milter
  {
    std::string socket;
    std::uint64_t max_message_mb = 50;
    std::uint64_t max_recipients = 100;
    bool allow_remote_inet = false;         // an inet: socket on a non-loopback address
    std::uint64_t retry_window_hours = 120; // a resent identical mail within it is a retry
    std::string metrics_listen; // HOST:PORT of the loopback /metrics listener; "" for none
  } milter;

  struct Policy
  {
    std::vector<std::string> buyers;           // globs on the envelope sender
    std::vector<std::string> internal_domains; // recipients there keep the original
    std::vector<util::Cidr> trusted_networks;  // clients there need no SMTP AUTH
    model::Mode default_mode = model::Mode::ar;
    model::MessageType default_type = model::MessageType::libre;
    bool default_reply = false;
    // SASL login (lower-case) -> sender addresses or globs it may use, besides itself.
    std::map<std::string, std::vector<std::string>> sender_logins;
    bool register_local_submissions = false; // sendmail/pickup mail from a buyer address
  } policy;

  struct Reinject
  {
    std::string host = "127.0.0.1";
    std::uint16_t port = 10025;
    std::uint64_t timeout_seconds = 30;
  } reinject;

  struct Bounce
  {
    std::string address; // pli-bounce@example.org
    bool keep = false;   // keep DSNs (deliver them to the bounce mailbox) after recording
    // A delivery report larger than this is refused (552) without being parsed.
    std::uint64_t max_report_kb = 1024;
    std::string local_part; // derived: "pli-bounce"
    std::string domain;     // derived: "example.org"
  } bounce;

  struct Linkd
  {
    std::string listen = "127.0.0.1:8080";
    std::string public_url;
    std::uint64_t link_validity_days = 90;
    std::uint64_t threads = 16;
    std::uint64_t max_connections = 2000;
    std::vector<std::string> trusted_proxies = {"127.0.0.1", "::1"};
    std::uint64_t reply_max_mb = 20;               // whole reply (text + attachments)
    std::uint64_t reply_max_attachments = 10;      // files in one reply
    std::uint64_t unknown_tokens_per_minute = 20;  // per client address, then 429
    std::uint64_t timeout_seconds = 15;            // connection inactivity
    std::uint64_t max_replies_per_delivery = 20;   // replies one recipient may send, then 403
    std::uint64_t max_reply_mb_per_delivery = 100; // all replies of one delivery, then 413
    std::uint64_t repeat_interval_minutes = 10;    // repeated reads/downloads: one event each
  } linkd;

  struct Keys
  {
    std::string dir = "/etc/pli/keys"; // receipt.key (0600, Ed25519 seed), receipt.pub
  } keys;

  // The buyers' area of pli-linkd (/suivi/): who sees whose messages, and its limits.
  struct BuyersArea
  {
    std::map<std::string, std::vector<std::string>> teams; // name -> addresses (lower-case);
                                                           // members see each other's mail
    std::vector<std::string> admins;                       // see every message (lower-case)
    std::uint64_t login_link_minutes = 15;                 // validity of a mailed login link
    std::uint64_t session_hours = 8;                       // session cookie lifetime
    std::uint64_t logins_per_hour = 5;                     // login links asked for one address
    std::uint64_t logins_per_hour_per_client = 30; // login links asked from one client address
  } buyers_area;

  struct Notify
  {
    bool read = true;          // mail the sender when a delivery is first read (with the receipt)
    bool not_delivered = true; // mail the sender when a delivery fails
    // The outbox (notify/outbox.hpp): the first retry delay (the next ones scale from it:
    // 30 s, 2 min, 10 min, 30 min, 1 h), the lease of a claimed job, the search for due jobs
    // of other processes and hosts.
    std::uint64_t retry_first_seconds = 30;
    std::uint64_t lease_seconds = 300;
    std::uint64_t poll_seconds = 5;
  } notify;
};

// True when a libmilter socket spec listens beyond this host: inet:PORT (every address),
// inet:PORT@HOST with HOST neither a loopback address nor "localhost", likewise inet6:.
bool remote_inet_socket(const std::string& spec);

// Loads and validates FILE. The error message is "FILE:LINE: what is wrong".
util::Result<Config> load(const std::string& file);
// Same, from text (for tests); `file` is the name used in messages.
util::Result<Config> load_from_string(const std::string& text, const std::string& file);

// The config file to use: `cli_value` if not empty, else $PLI_CONFIG, else /etc/pli/pli.yaml.
std::string resolve_path(const std::string& cli_value);

// Loads or prints the error to stderr and exits with k_exit_config (EX_CONFIG).
Config load_or_exit(const std::string& file);

} // namespace pli::config
