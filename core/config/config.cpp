#include "core/config/config.hpp"

#include "core/util/cidr.hpp"
#include "core/util/encoding.hpp"
#include "core/util/text.hpp"
#include "core/util/time.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

namespace pli::config {

namespace {

enum class Kind
{
  string,
  uint,
  boolean,
  string_list,
  list_map // name -> list of strings
};

struct Key
{
  std::string path;
  Kind kind;
  bool required;
  // Stores the node's value into the config; returns an error message or "".
  std::function<std::string(const YAML::Node&, Config&)> apply;
  // For lists: checks one item; returns an error message or "" (reported at the item's line).
  std::function<std::string(const std::string&)> check_item = nullptr;
};

std::string as_string(const YAML::Node& n)
{
  return n.as<std::string>();
}

std::string check_nonempty(const std::string& v)
{
  return v.empty() ? "must not be empty" : "";
}

std::string check_address(const std::string& v)
{
  auto at = v.find('@');
  if (at == std::string::npos || at == 0 || at + 1 == v.size() ||
      v.find('@', at + 1) != std::string::npos || v.find_first_of(" <>\"+") != std::string::npos) {
    return fmt::format("'{}' is not a plain address like pli-bounce@example.org (no '+')", v);
  }
  return "";
}

std::string check_url(const std::string& v)
{
  if (v.rfind("https://", 0) != 0 && v.rfind("http://", 0) != 0) {
    return fmt::format("'{}' must start with https:// or http://", v);
  }
  return "";
}

std::string check_host_port(const std::string& v)
{
  auto colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == v.size()) {
    return fmt::format("'{}' must be HOST:PORT, e.g. 127.0.0.1:8080", v);
  }
  for (char c : v.substr(colon + 1)) {
    if (c < '0' || c > '9') {
      return fmt::format("'{}' must be HOST:PORT, e.g. 127.0.0.1:8080", v);
    }
  }
  return "";
}

std::string check_socket(const std::string& v)
{
  if (v.rfind("unix:", 0) == 0 || v.rfind("local:", 0) == 0) {
    return v.size() > 6 ? "" : "needs a path after unix:";
  }
  if (v.rfind("inet:", 0) == 0 || v.rfind("inet6:", 0) == 0) {
    return v.find('@') != std::string::npos || v.find(':', 5) != std::string::npos
               ? ""
               : "inet sockets are written inet:PORT@HOST, e.g. inet:8891@127.0.0.1";
  }
  return fmt::format("'{}' must be unix:/path or inet:PORT@HOST", v);
}

// A libpq connection string: a URI (postgresql://user@host/db?sslmode=verify-full) or
// key=value pairs, without a password (it belongs in the passfile, never in pli.yaml).
std::string check_pg_url(const std::string& v)
{
  const bool uri = v.rfind("postgresql://", 0) == 0 || v.rfind("postgres://", 0) == 0;
  if (!uri && v.find('=') == std::string::npos) {
    return "is not a libpq connection URI (postgresql://pli_milter@db.example.org/pli) nor "
           "key=value pairs (host=db.example.org dbname=pli)";
  }
  const std::string refuse = "must not hold a password: put it in store.passfile (or the file "
                             "PGPASSFILE names), never in pli.yaml";
  if (uri) {
    const auto authority = v.find("://") + 3;
    const auto end = v.find_first_of("/?", authority);
    const auto at = v.rfind('@', end == std::string::npos ? v.size() : end);
    if (at != std::string::npos && at >= authority &&
        v.substr(authority, at - authority).find(':') != std::string::npos) {
      return refuse;
    }
  }
  const std::string lower = util::ascii_lower(v);
  for (auto pos = lower.find("password"); pos != std::string::npos;
       pos = lower.find("password", pos + 1)) {
    const bool starts = pos == 0 || lower[pos - 1] == ' ' || lower[pos - 1] == '?' ||
                        lower[pos - 1] == '&' || lower[pos - 1] == '\t';
    auto after = lower.find_first_not_of(" \t", pos + 8);
    if (starts && after != std::string::npos && lower[after] == '=') {
      return refuse;
    }
  }
  return "";
}

template <typename F>
Key str_key(std::string path, bool required, F setter,
            std::function<std::string(const std::string&)> check = nullptr)
{
  return Key{path, Kind::string, required,
             [setter, check](const YAML::Node& n, Config& c) -> std::string {
               std::string v = as_string(n);
               if (check) {
                 if (auto e = check(v); !e.empty()) {
                   return e;
                 }
               }
               return setter(c, v);
             }};
}

template <typename F> Key uint_key(std::string path, std::uint64_t min, std::uint64_t max, F setter)
{
  return Key{path, Kind::uint, false,
             [setter, min, max](const YAML::Node& n, Config& c) -> std::string {
               std::uint64_t v = n.as<std::uint64_t>();
               if (v < min || v > max) {
                 return fmt::format("must be between {} and {}", min, max);
               }
               setter(c, v);
               return "";
             }};
}

template <typename F> Key bool_key(std::string path, F setter)
{
  return Key{path, Kind::boolean, false, [setter](const YAML::Node& n, Config& c) -> std::string {
               setter(c, n.as<bool>());
               return "";
             }};
}

template <typename F> Key list_key(std::string path, bool required, F setter)
{
  return Key{path, Kind::string_list, required,
             [setter](const YAML::Node& n, Config& c) -> std::string {
               std::vector<std::string> v;
               for (const auto& item : n) {
                 if (!item.IsScalar()) {
                   return "every item must be a string";
                 }
                 v.push_back(item.as<std::string>());
               }
               return setter(c, std::move(v));
             }};
}

// A list of networks (util::Cidr), each item checked at its own line.
template <typename F> Key cidr_list_key(std::string path, F setter)
{
  Key k{path, Kind::string_list, false, [setter](const YAML::Node& n, Config& c) -> std::string {
          std::vector<util::Cidr> v;
          for (const auto& item : n) {
            auto cidr = util::Cidr::parse(item.as<std::string>());
            if (!cidr) {
              return cidr.error().message;
            }
            v.push_back(cidr.value());
          }
          setter(c, std::move(v));
          return "";
        }};
  k.check_item = [](const std::string& item) {
    auto cidr = util::Cidr::parse(item);
    return cidr ? std::string() : cidr.error().message;
  };
  return k;
}

template <typename F> Key list_map_key(std::string path, F setter)
{
  return Key{path, Kind::list_map, false, [setter](const YAML::Node& n, Config& c) -> std::string {
               std::map<std::string, std::vector<std::string>> m;
               for (auto it = n.begin(); it != n.end(); ++it) {
                 const YAML::Node k = it->first;
                 const YAML::Node v = it->second;
                 if (!k.IsScalar() || !v.IsSequence()) {
                   return "every entry must be NAME: [\"address\", ...]";
                 }
                 auto& list = m[k.as<std::string>()];
                 for (const auto& item : v) {
                   if (!item.IsScalar()) {
                     return "every item must be a string";
                   }
                   list.push_back(item.as<std::string>());
                 }
               }
               return setter(c, std::move(m));
             }};
}

// Lower-cases a list of addresses; an error message when one is not an address.
std::string addresses(std::vector<std::string>& v)
{
  for (auto& a : v) {
    a = util::ascii_lower(util::trim(a));
    auto at = a.find('@');
    if (at == std::string::npos || at == 0 || at + 1 == a.size() ||
        a.find_first_of(" <>\"") != std::string::npos) {
      return fmt::format("'{}' is not an address like buyer@example.org", a);
    }
  }
  return "";
}

const std::vector<Key>& keys()
{
  static const std::vector<Key> k = {
      str_key("organisation.name", true,
              [](Config& c, const std::string& v) {
                c.organisation.name = v;
                return check_nonempty(v);
              }),
      str_key("organisation.locale", false,
              [](Config& c, const std::string& v) -> std::string {
                auto l = model::parse_locale(v);
                if (!l) {
                  return fmt::format("'{}' is not a supported locale (fr, en)", v);
                }
                c.organisation.locale = *l;
                return "";
              }),
      str_key("organisation.timezone", false,
              [](Config& c, const std::string& v) -> std::string {
                if (!util::valid_timezone(v)) {
                  return fmt::format(
                      "'{}' is not a time zone of the tz database (e.g. Europe/Paris)", v);
                }
                c.organisation.timezone = v;
                return "";
              }),
      str_key("store.backend", false,
              [](Config& c, const std::string& v) -> std::string {
                if (v == "lmdb") {
                  c.store.backend = Config::StoreBackend::lmdb;
                } else if (v == "postgresql") {
                  c.store.backend = Config::StoreBackend::postgresql;
                } else {
                  return fmt::format("'{}' is not a store backend (lmdb, postgresql)", v);
                }
                return "";
              }),
      str_key("store.path", true,
              [](Config& c, const std::string& v) {
                c.store.path = v;
                return check_nonempty(v);
              }),
      uint_key("store.map_size_mb", 16, 1u << 24,
               [](Config& c, std::uint64_t v) { c.store.map_size_mb = v; }),
      uint_key("store.linkd_reserve_percent", 0, 90,
               [](Config& c, std::uint64_t v) { c.store.linkd_reserve_percent = v; }),
      str_key(
          "store.url", false,
          [](Config& c, const std::string& v) {
            c.store.url = v;
            return std::string();
          },
          check_pg_url),
      uint_key("store.pool", 1, 1000, [](Config& c, std::uint64_t v) { c.store.pool = v; }),
      str_key("store.passfile", false,
              [](Config& c, const std::string& v) {
                c.store.passfile = v;
                return check_nonempty(v);
              }),
      str_key(
          "milter.socket", true,
          [](Config& c, const std::string& v) {
            c.milter.socket = v;
            return std::string();
          },
          check_socket),
      uint_key("milter.max_message_mb", 1, 1024,
               [](Config& c, std::uint64_t v) { c.milter.max_message_mb = v; }),
      uint_key("milter.max_recipients", 1, 10000,
               [](Config& c, std::uint64_t v) { c.milter.max_recipients = v; }),
      bool_key("milter.allow_remote_inet", [](Config& c, bool v) { c.milter.allow_remote_inet = v; }),
      uint_key("milter.retry_window_hours", 1, 24 * 30,
               [](Config& c, std::uint64_t v) { c.milter.retry_window_hours = v; }),
      str_key(
          "milter.metrics_listen", false,
          [](Config& c, const std::string& v) {
            c.milter.metrics_listen = v;
            return std::string();
          },
          [](const std::string& v) {
            if (auto e = check_host_port(v); !e.empty()) {
              return e;
            }
            const std::string host = v.substr(0, v.rfind(':'));
            return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0
                       ? std::string()
                       : fmt::format("'{}': the metrics listen on a loopback address", v);
          }),
      list_key("policy.buyers", true,
               [](Config& c, std::vector<std::string> v) {
                 c.policy.buyers = std::move(v);
                 return c.policy.buyers.empty() ? std::string("needs at least one sender pattern")
                                                : std::string();
               }),
      list_key("policy.internal_domains", false,
               [](Config& c, std::vector<std::string> v) {
                 for (auto& d : v) {
                   d = util::ascii_lower(d);
                 }
                 c.policy.internal_domains = std::move(v);
                 return std::string();
               }),
      cidr_list_key("policy.trusted_networks", [](Config& c, std::vector<util::Cidr> v) {
        c.policy.trusted_networks = std::move(v);
      }),
      str_key("policy.default_mode", false,
              [](Config& c, const std::string& v) -> std::string {
                auto m = model::parse_mode(v);
                if (!m) {
                  return fmt::format("'{}' is not a mode (ar, simple, off)", v);
                }
                c.policy.default_mode = *m;
                return "";
              }),
      str_key("policy.default_type", false,
              [](Config& c, const std::string& v) -> std::string {
                auto t = model::parse_message_type(v);
                if (!t) {
                  return fmt::format("'{}' is not a message type code (libre, invitation, "
                                     "modification, reponse-question, complement, attribution, "
                                     "notification, rejet)",
                                     v);
                }
                c.policy.default_type = *t;
                return "";
              }),
      bool_key("policy.default_reply", [](Config& c, bool v) { c.policy.default_reply = v; }),
      list_map_key("policy.sender_logins",
                   [](Config& c, std::map<std::string, std::vector<std::string>> v) {
                     for (auto& [login, senders] : v) {
                       for (auto& s : senders) {
                         s = util::ascii_lower(util::trim(s));
                         if (s.find('@') == std::string::npos) {
                           return fmt::format("login {}: '{}' is not an address or a glob like "
                                              "*@marches.example.org",
                                              login, s);
                         }
                       }
                       c.policy.sender_logins[util::ascii_lower(login)] = std::move(senders);
                     }
                     return std::string();
                   }),
      bool_key("policy.register_local_submissions",
               [](Config& c, bool v) { c.policy.register_local_submissions = v; }),
      str_key("reinject.host", false,
              [](Config& c, const std::string& v) {
                c.reinject.host = v;
                return check_nonempty(v);
              }),
      uint_key("reinject.port", 1, 65535,
               [](Config& c, std::uint64_t v) { c.reinject.port = static_cast<std::uint16_t>(v); }),
      uint_key("reinject.timeout_seconds", 1, 3600,
               [](Config& c, std::uint64_t v) { c.reinject.timeout_seconds = v; }),
      str_key(
          "bounce.address", true,
          [](Config& c, const std::string& v) {
            c.bounce.address = util::ascii_lower(v);
            auto at = c.bounce.address.find('@');
            c.bounce.local_part = c.bounce.address.substr(0, at);
            c.bounce.domain = c.bounce.address.substr(at + 1);
            return std::string();
          },
          check_address),
      bool_key("bounce.keep", [](Config& c, bool v) { c.bounce.keep = v; }),
      uint_key("bounce.max_report_kb", 16, 1u << 20,
               [](Config& c, std::uint64_t v) { c.bounce.max_report_kb = v; }),
      str_key(
          "linkd.listen", false,
          [](Config& c, const std::string& v) {
            c.linkd.listen = v;
            return std::string();
          },
          check_host_port),
      str_key(
          "linkd.public_url", true,
          [](Config& c, const std::string& v) {
            c.linkd.public_url = v;
            while (!c.linkd.public_url.empty() && c.linkd.public_url.back() == '/') {
              c.linkd.public_url.pop_back();
            }
            return std::string();
          },
          check_url),
      uint_key("linkd.link_validity_days", 1, 3650,
               [](Config& c, std::uint64_t v) { c.linkd.link_validity_days = v; }),
      uint_key("linkd.threads", 1, 64, [](Config& c, std::uint64_t v) { c.linkd.threads = v; }),
      uint_key("linkd.max_connections", 16, 100000,
               [](Config& c, std::uint64_t v) { c.linkd.max_connections = v; }),
      list_key("linkd.trusted_proxies", false,
               [](Config& c, std::vector<std::string> v) {
                 c.linkd.trusted_proxies = std::move(v);
                 return std::string();
               }),
      str_key("keys.dir", false,
              [](Config& c, const std::string& v) {
                c.keys.dir = v;
                return check_nonempty(v);
              }),
      bool_key("notify.read", [](Config& c, bool v) { c.notify.read = v; }),
      bool_key("notify.not_delivered", [](Config& c, bool v) { c.notify.not_delivered = v; }),
      uint_key("notify.retry_first_seconds", 1, 3600,
               [](Config& c, std::uint64_t v) { c.notify.retry_first_seconds = v; }),
      uint_key("notify.lease_seconds", 1, 86400,
               [](Config& c, std::uint64_t v) { c.notify.lease_seconds = v; }),
      uint_key("notify.poll_seconds", 1, 3600,
               [](Config& c, std::uint64_t v) { c.notify.poll_seconds = v; }),
      uint_key("linkd.reply_max_mb", 1, 1024,
               [](Config& c, std::uint64_t v) { c.linkd.reply_max_mb = v; }),
      uint_key("linkd.reply_max_attachments", 0, 100,
               [](Config& c, std::uint64_t v) { c.linkd.reply_max_attachments = v; }),
      uint_key("linkd.unknown_tokens_per_minute", 1, 100000,
               [](Config& c, std::uint64_t v) { c.linkd.unknown_tokens_per_minute = v; }),
      uint_key("linkd.timeout_seconds", 1, 3600,
               [](Config& c, std::uint64_t v) { c.linkd.timeout_seconds = v; }),
      uint_key("linkd.max_replies_per_delivery", 1, 10000,
               [](Config& c, std::uint64_t v) { c.linkd.max_replies_per_delivery = v; }),
      uint_key("linkd.max_reply_mb_per_delivery", 1, 100000,
               [](Config& c, std::uint64_t v) { c.linkd.max_reply_mb_per_delivery = v; }),
      uint_key("linkd.repeat_interval_minutes", 0, 1440,
               [](Config& c, std::uint64_t v) { c.linkd.repeat_interval_minutes = v; }),
      list_map_key("buyers_area.teams",
                   [](Config& c, std::map<std::string, std::vector<std::string>> v) {
                     for (auto& [name, members] : v) {
                       if (auto e = addresses(members); !e.empty()) {
                         return fmt::format("team {}: {}", name, e);
                       }
                     }
                     c.buyers_area.teams = std::move(v);
                     return std::string();
                   }),
      list_key("buyers_area.admins", false,
               [](Config& c, std::vector<std::string> v) {
                 auto e = addresses(v);
                 c.buyers_area.admins = std::move(v);
                 return e;
               }),
      uint_key("buyers_area.login_link_minutes", 1, 1440,
               [](Config& c, std::uint64_t v) { c.buyers_area.login_link_minutes = v; }),
      uint_key("buyers_area.session_hours", 1, 720,
               [](Config& c, std::uint64_t v) { c.buyers_area.session_hours = v; }),
      uint_key("buyers_area.logins_per_hour", 1, 10000,
               [](Config& c, std::uint64_t v) { c.buyers_area.logins_per_hour = v; }),
      uint_key("buyers_area.logins_per_hour_per_client", 1, 100000,
               [](Config& c, std::uint64_t v) { c.buyers_area.logins_per_hour_per_client = v; }),
  };
  return k;
}

class Loader
{
public:
  explicit Loader(std::string file) : m_file(std::move(file)) {}

  util::Result<Config> run(const std::string& text)
  {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
      return error_at(e.mark, e.msg);
    }
    if (!root.IsMap()) {
      return util::Error{Errc::invalid,
                         fmt::format("{}:1: the file must be a YAML mapping of sections "
                                     "(organisation, store, milter, policy, ...)",
                                     m_file)};
    }
    Config config;
    config.file = m_file;
    if (auto e = walk(root, "", config); !e.empty()) {
      return util::Error{Errc::invalid, e};
    }
    if (!config.milter.allow_remote_inet && remote_inet_socket(config.milter.socket)) {
      return error_at(m_marks["milter.socket"],
                      fmt::format("milter.socket: '{}' lets any host that reaches it speak the "
                                  "milter protocol; listen on 127.0.0.1 or a unix: socket, or "
                                  "set milter.allow_remote_inet: true",
                                  config.milter.socket));
    }
    if (config.store.backend == Config::StoreBackend::postgresql && config.store.url.empty()) {
      return error_at(m_marks["store.backend"],
                      "store.backend: postgresql needs store.url, e.g. "
                      "\"postgresql://pli_milter@db.example.org/pli?sslmode=verify-full\"");
    }
    for (const auto& key : keys()) {
      if (key.required && m_seen.count(key.path) == 0) {
        auto section = key.path.substr(0, key.path.rfind('.'));
        auto it = m_section_marks.find(section);
        int line = it == m_section_marks.end() ? 1 : it->second.line + 1;
        return util::Error{Errc::invalid,
                           fmt::format("{}:{}: missing required key '{}'", m_file, line, key.path)};
      }
    }
    return config;
  }

private:
  util::Error error_at(const YAML::Mark& mark, const std::string& message) const
  {
    int line = mark.line < 0 ? 1 : mark.line + 1;
    return util::Error{Errc::invalid, fmt::format("{}:{}: {}", m_file, line, message)};
  }

  static bool is_section(const std::string& path)
  {
    for (const auto& key : keys()) {
      if (key.path.rfind(path + ".", 0) == 0) {
        return true;
      }
    }
    return false;
  }

  static const Key* find_key(const std::string& path)
  {
    for (const auto& key : keys()) {
      if (key.path == path) {
        return &key;
      }
    }
    return nullptr;
  }

  std::string walk(const YAML::Node& map, const std::string& prefix, Config& config)
  {
    for (auto it = map.begin(); it != map.end(); ++it) {
      // Copies: the iterator's value is a temporary (references to it dangle; ASan).
      const YAML::Node k = it->first;
      const YAML::Node v = it->second;
      std::string name = k.IsScalar() ? k.as<std::string>() : std::string("?");
      std::string path = prefix.empty() ? name : prefix + "." + name;
      if (m_seen.count(path) != 0) {
        return error_at(k.Mark(), fmt::format("duplicate key '{}'", path)).message;
      }
      m_seen.insert(path);
      m_marks[path] = v.Mark();
      if (const Key* key = find_key(path)) {
        YAML::Mark where = v.Mark();
        if (auto e = apply(*key, v, config, where); !e.empty()) {
          return error_at(where, fmt::format("{}: {}", path, e)).message;
        }
      } else if (is_section(path)) {
        if (!v.IsMap()) {
          return error_at(v.Mark(), fmt::format("'{}' must be a mapping of keys", path)).message;
        }
        m_section_marks[path] = k.Mark();
        if (auto e = walk(v, path, config); !e.empty()) {
          return e;
        }
      } else {
        return error_at(k.Mark(), fmt::format("unknown key '{}'", path)).message;
      }
    }
    return "";
  }

  // Checks the node's type, then stores it; `where` becomes the offending item's mark.
  static std::string apply(const Key& key, const YAML::Node& v, Config& config, YAML::Mark& where)
  {
    switch (key.kind) {
    case Kind::string:
      if (!v.IsScalar()) {
        return "must be a string";
      }
      break;
    case Kind::uint: {
      if (!v.IsScalar()) {
        return "must be a whole number";
      }
      std::uint64_t n = 0;
      if (!YAML::convert<std::uint64_t>::decode(v, n) || v.as<std::string>().find('-') == 0) {
        return fmt::format("must be a whole number, not '{}'", v.as<std::string>());
      }
      break;
    }
    case Kind::boolean: {
      bool b = false;
      if (!v.IsScalar() || !YAML::convert<bool>::decode(v, b)) {
        return "must be true or false";
      }
      break;
    }
    case Kind::string_list:
      if (!v.IsSequence()) {
        return "must be a list, e.g. [\"a\", \"b\"]";
      }
      for (const auto& item : v) {
        if (!item.IsScalar()) {
          where = item.Mark();
          return "every item must be a string";
        }
        if (key.check_item) {
          if (auto e = key.check_item(item.as<std::string>()); !e.empty()) {
            where = item.Mark();
            return e;
          }
        }
      }
      break;
    case Kind::list_map:
      if (!v.IsMap()) {
        return "must be a mapping of names to lists, e.g. { marches: [\"a@x.org\"] }";
      }
      break;
    }
    return key.apply(v, config);
  }

  std::string m_file;
  std::set<std::string> m_seen;
  std::map<std::string, YAML::Mark> m_section_marks;
  std::map<std::string, YAML::Mark> m_marks; // every key's value
};

} // namespace

bool remote_inet_socket(const std::string& spec)
{
  std::string rest;
  if (spec.rfind("inet:", 0) == 0) {
    rest = spec.substr(5);
  } else if (spec.rfind("inet6:", 0) == 0) {
    rest = spec.substr(6);
  } else {
    return false; // unix: / local:
  }
  const auto at = rest.find('@');
  if (at == std::string::npos) {
    return true; // every interface
  }
  std::string host = util::ascii_lower(rest.substr(at + 1));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") {
    return false;
  }
  static const util::Cidr v4 = util::Cidr::parse("127.0.0.0/8").value();
  static const util::Cidr v6 = util::Cidr::parse("::1/128").value();
  return !v4.contains(host) && !v6.contains(host);
}

util::Result<Config> load_from_string(const std::string& text, const std::string& file)
{
  return Loader(file).run(text);
}

util::Result<Config> load(const std::string& file)
{
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return util::Error{Errc::unreadable, fmt::format("{}:0: cannot read the config file", file)};
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return load_from_string(buf.str(), file);
}

std::string resolve_path(const std::string& cli_value)
{
  if (!cli_value.empty()) {
    return cli_value;
  }
  if (const char* env = std::getenv("PLI_CONFIG"); env != nullptr && *env != '\0') {
    return env;
  }
  return "/etc/pli/pli.yaml";
}

Config load_or_exit(const std::string& file)
{
  auto result = load(file);
  if (!result) {
    std::fprintf(stderr, "%s\n", result.error().message.c_str());
    std::exit(k_exit_config);
  }
  return std::move(result.value());
}

} // namespace pli::config
