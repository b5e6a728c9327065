#include "core/doctor/doctor.hpp"

#include "core/store/configured.hpp"
#include "core/store/open.hpp"
#include "core/store/postgresql.hpp"
#include "core/store/store.hpp"
#include "core/util/encoding.hpp"
#include "core/util/text.hpp"
#include "core/util/time.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

namespace pli::doctor {

namespace {

// The programs whose rights the role of store.url must have: the one its name says
// (pli_milter, pli_linkd, pli_admin, as doc/storage.md names them), else all three (one
// role for every program, e.g. the database's owner).
std::vector<std::string> programs_of_role(const std::string& url)
{
  const std::string redacted = store::redact_url(url);
  for (const char* program : {"milter", "linkd", "admin"}) {
    if (redacted.find(std::string("pli_") + program) != std::string::npos) {
      return {program};
    }
  }
  return {"milter", "linkd", "admin"};
}

// PostgreSQL: the server answers, the schema is this binary's, the role has its rights.
std::vector<Check> database_checks(const config::Config& config)
{
  std::vector<Check> checks;
  const auto spec = store::spec_for(config, store::Program::admin);
  const std::string db = store::redact_url(spec.pg.url);
  const std::string grant = "pli store migrate-schema --url URL-OF-THE-OWNER-ROLE (it grants "
                            "pli_milter, pli_linkd and pli_admin their rights)";
  auto found = store::schema_version_found(spec.pg);
  if (!found && found.error().code == store::Errc::unavailable) {
    checks.push_back({false, "the store's database " + db + " answers: " + found.error().message,
                      "check store.url and store.passfile in pli.yaml, that the server runs and "
                      "that its pg_hba.conf lets this host in (README, \"Several hosts\")",
                      "system"});
    return checks;
  }
  checks.push_back({true, "the store's database " + db + " answers", "", "system"});
  const int want = store::schema_version();
  if (!found) { // it answers, but this role may not read the schema's version
    checks.push_back(
        {false, "the role cannot read the database's schema version: " + found.error().message,
         grant, "system"});
  } else if (found.value() != want) {
    checks.push_back(
        {false,
         fmt::format("the database's schema is version {}, this pli needs {}", found.value(), want),
         found.value() < want ? "pli store migrate-schema --url URL-OF-THE-OWNER-ROLE"
                              : "install the pli that created this schema (or a newer one)",
         "system"});
    return checks;
  } else {
    checks.push_back(
        {true, fmt::format("the database's schema is version {}", want), "", "system"});
  }
  for (const auto& program : programs_of_role(spec.pg.url)) {
    auto missing = store::missing_rights(spec.pg, program);
    if (!missing) {
      checks.push_back(
          {false,
           "cannot read the rights of the role for " + program + ": " + missing.error().message, "",
           "system"});
      continue;
    }
    std::string lines;
    for (const auto& line : missing.value()) {
      lines += (lines.empty() ? "" : "\n") + line;
    }
    checks.push_back({missing->empty(),
                      missing->empty() ? "the role has the rights " + program + " needs"
                                       : "the role lacks rights " + program + " needs:\n" + lines,
                      grant, "system"});
  }
  return checks;
}

// Runs argv without a shell; returns (exit status, stdout).
std::pair<int, std::string> run_command(const std::vector<std::string>& argv)
{
  int out[2];
  if (pipe(out) != 0) {
    return {-1, ""};
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(out[0]);
    close(out[1]);
    return {-1, ""};
  }
  if (pid == 0) {
    dup2(out[1], 1);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
      dup2(devnull, 2);
    }
    close(out[0]);
    close(out[1]);
    std::vector<char*> args;
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) {
    text.append(buf, static_cast<std::size_t>(n));
  }
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

std::vector<std::string> postconf_args(const Options& o, std::vector<std::string> extra)
{
  std::vector<std::string> argv{"postconf"};
  if (!o.postfix_config_dir.empty()) {
    argv.push_back("-c");
    argv.push_back(o.postfix_config_dir);
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

// Splits a Postfix list value (commas and/or whitespace), keeping inline:{ ... } whole.
std::vector<std::string> split_list(const std::string& value)
{
  std::vector<std::string> items;
  std::string cur;
  int depth = 0;
  for (char c : value) {
    if (c == '{') {
      ++depth;
    } else if (c == '}') {
      --depth;
    }
    if (depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n')) {
      if (!cur.empty()) {
        items.push_back(cur);
      }
      cur.clear();
      continue;
    }
    cur.push_back(c);
  }
  if (!cur.empty()) {
    items.push_back(cur);
  }
  return items;
}

bool contains_item(const std::string& value, const std::string& item)
{
  for (const auto& i : split_list(value)) {
    if (util::ascii_lower(i) == util::ascii_lower(item)) {
      return true;
    }
  }
  return false;
}

struct Postfix
{
  std::map<std::string, std::string> main;                          // name -> value
  std::vector<std::pair<std::string, std::string>> services;        // service/type -> command line
  std::map<std::string, std::map<std::string, std::string>> params; // service/type -> -o params
  std::set<std::string> map_types;                                  // postconf -m
};

Postfix read_postfix(const Options& o, std::string& error)
{
  Postfix p;
  auto [rc, text] = run_command(postconf_args(o, {}));
  if (rc != 0) {
    error = rc == 127 ? "postconf is not installed"
                      : "postconf failed (is the config directory right?)";
    return p;
  }
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find(" = ");
    if (eq != std::string::npos) {
      p.main[line.substr(0, eq)] = line.substr(eq + 3);
    } else if (!line.empty() && line.back() == '=') {
      p.main[std::string(util::trim(line.substr(0, line.size() - 1)))] = "";
    }
  }
  auto [rcm, services] = run_command(postconf_args(o, {"-M"}));
  std::istringstream ms(services);
  while (std::getline(ms, line)) {
    std::istringstream f(line);
    std::string name, type;
    f >> name >> type;
    if (!name.empty()) {
      p.services.emplace_back(name + "/" + type, line);
    }
  }
  auto [rcp, params] = run_command(postconf_args(o, {"-P"}));
  std::istringstream ps(params);
  while (std::getline(ps, line)) {
    // service/type/parameter = value
    auto eq = line.find(" = ");
    std::string key = eq == std::string::npos ? line : line.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : line.substr(eq + 3);
    if (!key.empty() && key.back() == '=') {
      key = std::string(util::trim(key.substr(0, key.size() - 1)));
    }
    auto last = key.rfind('/');
    if (last == std::string::npos) {
      continue;
    }
    p.params[key.substr(0, last)][key.substr(last + 1)] = value;
  }
  std::istringstream types(run_command(postconf_args(o, {"-m"})).second);
  while (std::getline(types, line)) {
    p.map_types.insert(std::string(util::trim(line)));
  }
  return p;
}

bool socket_answers(const std::string& pli_socket)
{
  if (pli_socket.rfind("unix:", 0) == 0 || pli_socket.rfind("local:", 0) == 0) {
    std::string path = pli_socket.substr(pli_socket.find(':') + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    bool ok = fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    if (fd >= 0) {
      close(fd);
    }
    return ok;
  }
  // inet:PORT@HOST
  auto at = pli_socket.find('@');
  std::string port = pli_socket.substr(pli_socket.find(':') + 1,
                                       at == std::string::npos ? std::string::npos
                                                               : at - pli_socket.find(':') - 1);
  std::string host = at == std::string::npos ? "127.0.0.1" : pli_socket.substr(at + 1);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0) {
    return false;
  }
  bool ok = false;
  for (addrinfo* ai = res; ai != nullptr && !ok; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    ok = fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
    if (fd >= 0) {
      close(fd);
    }
  }
  freeaddrinfo(res);
  return ok;
}

// GET /healthz on linkd.listen, HTTP/1.0, expecting "200".
bool linkd_answers(const std::string& listen)
{
  auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host.size() > 1 && host.front() == '[') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), listen.substr(colon + 1).c_str(), &hints, &res) != 0) {
    return false;
  }
  int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
  bool ok = false;
  if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
    timeval tv{3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const std::string req = "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[64] = {};
      ssize_t n = read(fd, buf, sizeof buf - 1);
      ok = n > 12 && std::strstr(buf, " 200") != nullptr;
    }
  }
  if (fd >= 0) {
    close(fd);
  }
  freeaddrinfo(res);
  return ok;
}

} // namespace

std::string postfix_milter_spec(const std::string& pli_socket, const std::string& queue_directory)
{
  for (const char* prefix : {"unix:", "local:"}) {
    if (pli_socket.rfind(prefix, 0) == 0) {
      std::string path = pli_socket.substr(std::strlen(prefix));
      std::string q = queue_directory;
      while (!q.empty() && q.back() == '/') {
        q.pop_back();
      }
      if (!q.empty() && path.rfind(q + "/", 0) == 0) {
        return "unix:" + path.substr(q.size() + 1);
      }
      return "unix:" + path;
    }
  }
  if (pli_socket.rfind("inet:", 0) == 0) {
    auto at = pli_socket.find('@');
    if (at != std::string::npos) {
      return "inet:" + pli_socket.substr(at + 1) + ":" + pli_socket.substr(5, at - 5);
    }
  }
  return pli_socket;
}

std::vector<Check> run(const config::Config& config, const Options& options)
{
  std::vector<Check> checks;
  auto add = [&](bool ok, std::string what, std::string fix, std::string where) {
    checks.push_back(Check{ok, std::move(what), std::move(fix), std::move(where)});
  };
  std::string error;
  Postfix pf = read_postfix(options, error);
  if (!error.empty()) {
    add(false, "Postfix's configuration cannot be read: " + error,
        options.postfix_config_dir.empty() ? "apt-get install postfix"
                                           : "check the directory given to --postfix-config",
        "system");
    return checks;
  }
  auto main = [&](const std::string& k) {
    auto it = pf.main.find(k);
    return it == pf.main.end() ? std::string() : it->second;
  };
  const std::string queue_dir = main("queue_directory");
  const std::string spec = postfix_milter_spec(config.milter.socket, queue_dir);
  auto names_milter = [&](const std::string& value) {
    for (const auto& item : split_list(value)) {
      std::string i = item;
      if (i.rfind("{", 0) == 0) { // { inet:..., connect_timeout=... }
        i = split_list(std::string(util::trim(i.substr(1, i.size() - 2)))).front();
      }
      if (i == spec || postfix_milter_spec(i, queue_dir) == spec ||
          i == "unix:" + config.milter.socket.substr(config.milter.socket.find(':') + 1)) {
        return true;
      }
    }
    return false;
  };

  // main.cf
  add(main("milter_default_action") == "tempfail",
      "milter_default_action is tempfail (if pli-milter is down, mail waits instead of leaving "
      "unregistered)",
      "milter_default_action = tempfail", "main.cf");
  add(std::atoi(main("milter_protocol").c_str()) >= 6, "milter_protocol is 6",
      "milter_protocol = 6", "main.cf");
  add(names_milter(main("non_smtpd_milters")),
      "non_smtpd_milters names pli-milter (Postfix's own delivery reports reach it)",
      "non_smtpd_milters = " + spec, "main.cf");
  add(contains_item(main("internal_mail_filter_classes"), "bounce"),
      "internal_mail_filter_classes includes bounce", "internal_mail_filter_classes = bounce",
      "main.cf");
  add(main("recipient_delimiter").find('+') != std::string::npos,
      "recipient_delimiter includes + (pli-bounce+DELIVERYID addresses)", "recipient_delimiter = +",
      "main.cf");

  // The bounce address must route to pli-smtp, and no map may be unusable.
  const std::string sdt = main("sender_dependent_default_transport_maps");
  const std::string sdt_fix =
      "sender_dependent_default_transport_maps = inline:{ " + config.bounce.address + "=pli-smtp }";
  bool routed = false;
  for (const auto& map : split_list(sdt)) {
    const std::string type = map.substr(0, map.find(':'));
    if (pf.map_types.count(type) == 0) {
      add(false,
          "sender_dependent_default_transport_maps uses a '" + type +
              "' table that this Postfix cannot read: ALL outgoing mail stalls",
          type == "pcre" ? "apt-get install postfix-pcre   (or use an inline: or hash: table)"
                         : sdt_fix,
          "main.cf");
      continue;
    }
    for (const std::string& key :
         {config.bounce.local_part + "+dtest@" + config.bounce.domain, config.bounce.address}) {
      std::vector<std::string> argv{"postmap"};
      if (!options.postfix_config_dir.empty()) {
        argv.push_back("-c");
        argv.push_back(options.postfix_config_dir);
      }
      argv.push_back("-q");
      argv.push_back(key);
      argv.push_back(map);
      auto [rc, value] = run_command(argv);
      std::string v(util::trim(value));
      if (rc == 0 && (v == "pli-smtp" || v.rfind("pli-smtp:", 0) == 0)) {
        routed = true;
      }
    }
  }
  add(routed,
      "mail from " + config.bounce.local_part + "+ID@" + config.bounce.domain +
          " leaves through the pli-smtp transport (so that Postfix reports \"relayed\")",
      sdt_fix, "main.cf");
  if (contains_item(main("smtpd_milters"), spec) || names_milter(main("smtpd_milters"))) {
    add(false,
        "smtpd_milters in main.cf names pli-milter for every smtpd: put it on the submission "
        "service only (master.cf), and remove it here",
        "smtpd_milters =", "main.cf");
  }

  // master.cf
  const std::string pli_smtp_fix = "pli-smtp  unix  -  -  y  -  -  smtp\n"
                                   "  -o syslog_name=postfix/pli-smtp\n"
                                   "  -o smtp_discard_ehlo_keywords=silent-discard,dsn";
  auto pli_smtp = pf.params.find("pli-smtp/unix");
  bool has_pli_smtp = false;
  for (const auto& [name, line] : pf.services) {
    has_pli_smtp |= name == "pli-smtp/unix" && line.find(" smtp") != std::string::npos;
  }
  add(has_pli_smtp && pli_smtp != pf.params.end() &&
          pli_smtp->second["smtp_discard_ehlo_keywords"].find("dsn") != std::string::npos,
      "master.cf has the pli-smtp transport, hiding the remote's DSN support", pli_smtp_fix,
      "master.cf");

  const std::string listener = config.reinject.host + ":" + std::to_string(config.reinject.port);
  bool reinject_ok = false, reinject_milter = false, submission_milter = false;
  std::vector<std::string> unenforced; // submission services letting a login use any sender
  std::string reinject_smtputf8;       // the listener's own smtputf8_enable, "" when not overridden
  for (const auto& [name, line] : pf.services) {
    const auto params = pf.params[name];
    auto it = params.find("smtpd_milters");
    const bool overrides = it != params.end();
    const bool names = overrides ? names_milter(it->second) : names_milter(main("smtpd_milters"));
    if (name == listener + "/inet" || name == std::to_string(config.reinject.port) + "/inet") {
      reinject_ok = true;
      reinject_milter = names;
      if (auto u = params.find("smtputf8_enable"); u != params.end()) {
        reinject_smtputf8 = u->second;
      }
    } else if (name.size() > 5 && name.substr(name.size() - 5) == "/inet" &&
               line.find(" smtpd") != std::string::npos && names) {
      submission_milter = true;
      // The SASL login must own the MAIL FROM address, or any login registers as any buyer.
      auto effective = [&](const std::string& key) {
        auto p = params.find(key);
        return p != params.end() ? p->second : main(key);
      };
      bool mismatch = false;
      for (const char* list :
           {"smtpd_client_restrictions", "smtpd_helo_restrictions", "smtpd_sender_restrictions",
            "smtpd_relay_restrictions", "smtpd_recipient_restrictions"}) {
        for (const char* r :
             {"reject_sender_login_mismatch", "reject_authenticated_sender_login_mismatch",
              "reject_known_sender_login_mismatch"}) {
          mismatch |= contains_item(effective(list), r);
        }
      }
      if (!mismatch || util::trim(effective("smtpd_sender_login_maps")).empty()) {
        unenforced.push_back(name.substr(0, name.size() - 5));
      }
    }
  }
  add(reinject_ok && !reinject_milter,
      "master.cf has the re-injection listener " + listener + " without pli-milter",
      listener + " inet n - y - - smtpd\n  -o syslog_name=postfix/pli-reinject\n"
                 "  -o smtpd_milters=\n"
                 "  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,"
                 "no_milters\n  -o smtpd_relay_restrictions=permit_mynetworks,reject",
      "master.cf");
  if (reinject_ok) {
    // Internationalised recipients (RFC 6531): pli re-injects their notices with SMTPUTF8,
    // and records a permanent failure (5.6.7) when the listener does not offer it. The
    // main.cf value is read expanded (its default depends on compatibility_level).
    std::string utf8 = reinject_smtputf8;
    if (utf8.empty()) {
      utf8 = std::string(
          util::trim(run_command(postconf_args(options, {"-x", "-h", "smtputf8_enable"})).second));
    }
    add(utf8 == "yes",
        "the re-injection listener offers SMTPUTF8 (internationalised recipients are "
        "registered, not refused with 5.6.7)",
        "smtputf8_enable = yes   (main.cf, or -o smtputf8_enable=yes on " + listener + ")",
        "main.cf");
  }
  add(submission_milter, "an smtpd service (submission) runs pli-milter",
      "submission inet n - y - - smtpd\n  -o smtpd_milters=" + spec, "master.cf");
  for (const auto& service : unenforced) {
    add(false,
        "the " + service +
            " service lets an SMTP AUTH login use any sender address (a buyer's included)",
        service + " inet n - y - - smtpd\n"
                  "  -o smtpd_sender_login_maps=hash:/etc/postfix/sender_logins\n"
                  "  -o smtpd_sender_restrictions=reject_authenticated_sender_login_mismatch",
        "master.cf");
  }
  if (submission_milter && unenforced.empty()) {
    add(true, "the submission service checks that the SMTP AUTH login owns the sender address", "",
        "master.cf");
  }

  if (!options.live) {
    return checks;
  }
  add(socket_answers(config.milter.socket), "pli-milter answers on " + config.milter.socket,
      "systemctl start pli-milter", "system");
  add(linkd_answers(config.linkd.listen), "pli-linkd answers on " + config.linkd.listen,
      "systemctl start pli-linkd", "system");
  if (config.store.backend == config::Config::StoreBackend::postgresql) {
    for (auto& check : database_checks(config)) {
      checks.push_back(std::move(check));
    }
  } else {
    auto st = store::open_lmdb({config.store.path, config.store.map_size_mb, false});
    const bool writable = st.ok() && access(config.store.path.c_str(), W_OK) == 0;
    add(writable, "the store " + config.store.path + " opens and is writable",
        "install -d -o pli -g pli -m 750 " + config.store.path, "system");
  }
  if (auto opened = store::open(store::spec_for(config, store::Program::admin))) {
    // Notifications to buyers waiting in the store's outbox (notify/outbox.hpp): a job tried
    // and waiting for its next attempt, or queued over a minute ago, means the re-injection
    // listener refused it (or no daemon sends it).
    const util::Micros now = util::now_micros();
    const util::Micros minute_ago = now - 60LL * 1000000LL;
    std::size_t waiting = 0;
    util::Micros oldest = now;
    if (auto jobs = opened.value()->list_jobs("")) {
      for (const auto& j : jobs.value()) {
        if ((j.attempts > 0 && j.due_at > now) || j.created_at < minute_ago) {
          ++waiting;
          oldest = std::min(oldest, j.created_at);
        }
      }
    }
    std::string what = "no notification to a buyer is waiting for the re-injection listener";
    if (waiting > 0) {
      what = fmt::format("{} notification{} to buyers wait{} for the re-injection listener "
                         "(the oldest for {} min, in the store's outbox); pli-linkd and "
                         "pli-milter try them again",
                         waiting, waiting > 1 ? "s" : "", waiting > 1 ? "" : "s",
                         (now - oldest) / (60LL * 1000000LL));
    }
    add(waiting == 0, what,
        "systemctl reload postfix   # the re-injection listener " + config.reinject.host + ":" +
            std::to_string(config.reinject.port) + " must answer (see its master.cf check)",
        "system");
  }
  struct stat sb
  {
  };
  const std::string key = config.keys.dir + "/receipt.key";
  // 0600, or 0640 as `pli keygen` makes it as root (root's, the pli group reads it).
  const bool key_ok = stat(key.c_str(), &sb) == 0 && (sb.st_mode & 037) == 0 &&
                      access((config.keys.dir + "/receipt.pub").c_str(), R_OK) == 0;
  add(key_ok,
      "the receipt signing key " + key + " exists, readable by its owner (and its group) only",
      stat(key.c_str(), &sb) == 0 ? "chmod 640 " + key : "pli keygen", "system");
  return checks;
}

} // namespace pli::doctor
