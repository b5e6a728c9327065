#include "milter/adapter.hpp"

#include "core/config/config.hpp"
#include "core/log/log.hpp"
#include "core/milter/engine.hpp"
#include "core/store/configured.hpp"
#include "milter/listener.hpp"
#include "milter/metrics_http.hpp"

#include <libmilter/mfapi.h>

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <cstring>
#include <memory>

namespace pli::milter {

namespace {

// The modifications pli asks for: Subject and X-Pli-Options changed or removed
// (MtaSession::change_header), registered recipients removed (delete_recipient).
constexpr unsigned long k_actions = SMFIF_CHGHDRS | SMFIF_DELRCPT;

Engine* g_engine = nullptr;
// The "no reply" steps Postfix agreed to (negotiate). Callbacks of those steps must answer
// SMFIS_NOREPLY; MAIL FROM, DATA and end of message are always answered (Postfix waits for
// an answer it did not agree to skip: not answering DATA stalls every message ~40 ms over
// TCP).
unsigned long g_noreply = 0;

sfsistat quiet(unsigned long step)
{
  return (g_noreply & step) != 0 ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

class LibmilterSession final : public MtaSession
{
public:
  explicit LibmilterSession(SMFICTX* ctx) : m_ctx(ctx) {}
  std::string macro(const char* name) override
  {
    const char* v = smfi_getsymval(m_ctx, const_cast<char*>(name));
    return v == nullptr ? std::string() : std::string(v);
  }
  bool delete_recipient(const std::string& rcpt) override
  {
    return smfi_delrcpt(m_ctx, const_cast<char*>(rcpt.c_str())) == MI_SUCCESS;
  }
  bool change_header(const std::string& name, int index, const std::string& value) override
  {
    return smfi_chgheader(m_ctx, const_cast<char*>(name.c_str()), index,
                          value.empty() ? nullptr : const_cast<char*>(value.c_str())) == MI_SUCCESS;
  }

private:
  SMFICTX* m_ctx;
};

Transaction* txn(SMFICTX* ctx)
{
  return static_cast<Transaction*>(smfi_getpriv(ctx));
}

// The answer of `o` (its row of the table): its reply set, its return code.
sfsistat answer(SMFICTX* ctx, Outcome o, bool discard = false)
{
  const OutcomeInfo& row = info(o);
  if (!row.smtp_code.empty()) {
    // libmilter copies the strings; the table's are NUL-terminated literals.
    smfi_setreply(ctx, const_cast<char*>(row.smtp_code.data()),
                  const_cast<char*>(row.enhanced.data()), const_cast<char*>(row.text.data()));
  }
  switch (row.action) {
  case Action::accept:
    return discard ? SMFIS_DISCARD : SMFIS_ACCEPT;
  case Action::tempfail:
    return SMFIS_TEMPFAIL;
  case Action::reject:
    return SMFIS_REJECT;
  case Action::none:
    break;
  }
  return SMFIS_CONTINUE;
}

sfsistat answer(SMFICTX* ctx, Step s)
{
  const auto o = outcome_of(s);
  return o ? answer(ctx, *o) : SMFIS_CONTINUE;
}

sfsistat internal_error(SMFICTX* ctx, const char* where, const char* what)
{
  LibmilterSession s(ctx);
  log::line(log::Level::error, s.macro("i"),
            {{"decision", outcome_name(Outcome::tempfail_internal)},
             {"callback", where},
             {"error", what}});
  if (g_engine != nullptr) {
    g_engine->counters().add(Outcome::tempfail_internal);
  }
  return answer(ctx, Outcome::tempfail_internal);
}

#define PLI_GUARD(where, body)                                                                     \
  try {                                                                                            \
    body                                                                                           \
  } catch (const std::exception& e) {                                                              \
    return internal_error(ctx, where, e.what());                                                   \
  } catch (...) {                                                                                  \
    return internal_error(ctx, where, "unknown exception");                                        \
  }

extern "C" sfsistat on_negotiate(SMFICTX* /*ctx*/, unsigned long f0, unsigned long f1,
                                 unsigned long /*f2*/, unsigned long /*f3*/, unsigned long* pf0,
                                 unsigned long* pf1, unsigned long* pf2, unsigned long* pf3)
{
  if ((f0 & k_actions) != k_actions) {
    return SMFIS_REJECT; // the MTA cannot do what registered mail needs
  }
  *pf0 = k_actions;
  // RCPT is answered: a report address of a delivery pli never sent is refused there,
  // before its report is buffered (only buyers' and null-sender mail reach RCPT). HELO is
  // seen (the origin of reports from outside) but not answered.
  const unsigned long wanted_noreply = SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_HDR | SMFIP_NR_BODY;
  const unsigned long skipped = SMFIP_NOUNKNOWN | SMFIP_NOEOH;
  *pf1 = (f1 & wanted_noreply) | (f1 & skipped);
  g_noreply = f1 & wanted_noreply; // the same for every connection from one MTA
  *pf2 = 0;
  *pf3 = 0;
  return SMFIS_CONTINUE;
}

extern "C" sfsistat on_connect(SMFICTX* ctx, char* hostname, _SOCK_ADDR* addr)
{
  PLI_GUARD("connect", {
    auto t = std::make_unique<Transaction>();
    char buf[INET6_ADDRSTRLEN] = {};
    int port = -1; // no address: never taken for Postfix's own cleanup
    if (addr != nullptr) {
      if (addr->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<sockaddr_in*>(addr);
        inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
        port = ntohs(in->sin_port);
      } else if (addr->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<sockaddr_in6*>(addr);
        inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
        port = ntohs(in6->sin6_port);
      }
    }
    g_engine->connect(*t, hostname == nullptr ? "" : hostname, buf, port);
    smfi_setpriv(ctx, t.release());
    return quiet(SMFIP_NR_CONN);
  })
}

extern "C" sfsistat on_helo(SMFICTX* ctx, char* name)
{
  PLI_GUARD("helo", {
    if (Transaction* t = txn(ctx); t != nullptr && name != nullptr) {
      g_engine->helo(*t, name);
    }
    return quiet(SMFIP_NR_HELO);
  })
}

extern "C" sfsistat on_envfrom(SMFICTX* ctx, char** argv)
{
  PLI_GUARD("envfrom", {
    Transaction* t = txn(ctx);
    if (t == nullptr || argv == nullptr || argv[0] == nullptr) {
      return SMFIS_ACCEPT;
    }
    LibmilterSession s(ctx);
    return answer(ctx, g_engine->envfrom(*t, argv[0], s));
  })
}

extern "C" sfsistat on_envrcpt(SMFICTX* ctx, char** argv)
{
  PLI_GUARD("envrcpt", {
    Transaction* t = txn(ctx);
    if (t != nullptr && argv != nullptr && argv[0] != nullptr) {
      return answer(ctx, g_engine->envrcpt(*t, argv[0]));
    }
    return SMFIS_CONTINUE;
  })
}

extern "C" sfsistat on_data(SMFICTX* ctx)
{
  PLI_GUARD("data", {
    Transaction* t = txn(ctx);
    return t == nullptr ? SMFIS_ACCEPT : answer(ctx, g_engine->data(*t));
  })
}

extern "C" sfsistat on_header(SMFICTX* ctx, char* name, char* value)
{
  PLI_GUARD("header", {
    if (Transaction* t = txn(ctx)) {
      g_engine->header(*t, name, value == nullptr ? "" : value);
    }
    return quiet(SMFIP_NR_HDR);
  })
}

extern "C" sfsistat on_body(SMFICTX* ctx, unsigned char* chunk, size_t len)
{
  PLI_GUARD("body", {
    if (Transaction* t = txn(ctx)) {
      g_engine->body(*t, std::string_view(reinterpret_cast<const char*>(chunk), len));
    }
    return quiet(SMFIP_NR_BODY);
  })
}

extern "C" sfsistat on_eom(SMFICTX* ctx)
{
  PLI_GUARD("eom", {
    Transaction* t = txn(ctx);
    if (t == nullptr) {
      return internal_error(ctx, "eom", "no connection state");
    }
    LibmilterSession s(ctx);
    const Verdict v = g_engine->eom(*t, s);
    t->reset_message();
    return answer(ctx, v.outcome, v.discard);
  })
}

extern "C" sfsistat on_abort(SMFICTX* ctx)
{
  if (Transaction* t = txn(ctx)) {
    t->reset_message();
  }
  return SMFIS_CONTINUE;
}

extern "C" sfsistat on_close(SMFICTX* ctx)
{
  // The connection's state, owned by libmilter's context from connect to close.
  const std::unique_ptr<Transaction> owned(txn(ctx));
  smfi_setpriv(ctx, nullptr);
  return SMFIS_CONTINUE;
}

// libmilter spells sockets unix:/path or inet:PORT@HOST, as pli.yaml does.
std::string socket_path(const std::string& spec)
{
  for (const char* prefix : {"unix:", "local:"}) {
    if (spec.rfind(prefix, 0) == 0) {
      return spec.substr(std::strlen(prefix));
    }
  }
  return "";
}

} // namespace

int run(const config::Config& config, bool foreground)
{
  log::open("pli-milter", foreground);
  // Privileged set-up first: the socket. The store is opened after daemon(): an LMDB
  // environment must not be used across a fork.
  if (config::remote_inet_socket(config.milter.socket) && !config.milter.allow_remote_inet) {
    log::message(log::Level::error, "refusing to listen on " + config.milter.socket +
                                        ": not a loopback address (milter.allow_remote_inet)");
    return config::k_exit_config;
  }
  smfiDesc desc{};
  desc.xxfi_name = const_cast<char*>("pli-milter");
  desc.xxfi_version = SMFI_VERSION;
  desc.xxfi_flags = k_actions;
  desc.xxfi_connect = on_connect;
  desc.xxfi_helo = on_helo;
  desc.xxfi_envfrom = on_envfrom;
  desc.xxfi_envrcpt = on_envrcpt;
  desc.xxfi_data = on_data;
  desc.xxfi_header = on_header;
  desc.xxfi_body = on_body;
  desc.xxfi_eom = on_eom;
  desc.xxfi_abort = on_abort;
  desc.xxfi_close = on_close;
  desc.xxfi_negotiate = on_negotiate;

  // A TCP socket is bound here and handed to libmilter as fd:N, with TCP_NODELAY (inherited
  // by the accepted sockets): without it, modifications sent before the final reply stall
  // ~40 ms each. A unix socket is libmilter's own.
  std::string conn = config.milter.socket;
  Fd inet;
  std::string host, port;
  if (int family = 0; inet_spec(conn, family, host, port)) {
    std::string error;
    inet = listen_tcp(family, host, port, true, error);
    if (!inet) {
      log::message(log::Level::error, "cannot listen on " + conn + ": " + error);
      return EX_OSERR;
    }
    conn = "fd:" + std::to_string(inet.get());
  }
  Fd metrics_listener;
  if (const std::string& m = config.milter.metrics_listen; !m.empty()) {
    std::string error;
    const auto colon = m.rfind(':');
    std::string mhost = m.substr(0, colon);
    if (mhost.size() > 2 && mhost.front() == '[' && mhost.back() == ']') {
      mhost = mhost.substr(1, mhost.size() - 2);
    }
    metrics_listener = listen_tcp(AF_UNSPEC, mhost, m.substr(colon + 1), false, error);
    if (!metrics_listener) {
      log::message(log::Level::error,
                   "cannot listen on " + m + " (milter.metrics_listen): " + error);
      return EX_OSERR;
    }
  }
  if (smfi_setconn(const_cast<char*>(conn.c_str())) != MI_SUCCESS ||
      smfi_register(desc) != MI_SUCCESS) {
    log::message(log::Level::error, "cannot set up libmilter on " + config.milter.socket);
    return EX_OSERR;
  }
  const auto path = socket_path(config.milter.socket);
  // A unix socket is created 0660 (never wider, even for an instant), then given to the
  // postfix group: Postfix's smtpd and cleanup connect as that group's members.
  const mode_t old = umask(path.empty() ? 0 : 0117);
  int rc = smfi_opensocket(true);
  umask(old);
  if (rc != MI_SUCCESS) {
    log::message(log::Level::error, "cannot open the milter socket " + config.milter.socket);
    return EX_OSERR;
  }
  inet.release(); // libmilter's now: smfi_main closes it
  if (!path.empty()) {
    if (const group* g = getgrnam("postfix");
        g != nullptr && getegid() != g->gr_gid &&
        lchown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
      log::message(log::Level::error,
                   "cannot give the milter socket " + path + " to the postfix group");
      return EX_OSERR;
    }
  }
  if (!foreground && daemon(0, 0) != 0) {
    log::message(log::Level::error, "cannot daemonize");
    return EX_OSERR;
  }
  const auto spec = store::spec_for(config, store::Program::milter);
  auto opened = store::open(spec);
  if (!opened) {
    log::message(log::Level::error, store::open_failure(spec, opened.error()));
    return store::daemon_exit_status(spec, opened.error());
  }
  auto store = std::move(opened.value());
  Engine engine(config, *store);
  g_engine = &engine;
  engine.start_outbox();                  // its thread: after daemon()
  std::unique_ptr<MetricsServer> metrics; // its thread too
  if (metrics_listener) {
    metrics = MetricsServer::start(std::move(metrics_listener), engine.counters());
    if (metrics == nullptr) {
      log::message(log::Level::error,
                   "cannot serve the metrics on " + config.milter.metrics_listen);
      g_engine = nullptr;
      return EX_OSERR;
    }
  }
  log::message(log::Level::info, "pli-milter listening on " + config.milter.socket);
  rc = smfi_main();
  metrics.reset();
  g_engine = nullptr;
  log::message(log::Level::info, "pli-milter stopped");
  return rc == MI_SUCCESS ? 0 : 1;
}

} // namespace pli::milter
