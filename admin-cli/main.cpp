// pli: the support CLI. Commands (INTERFACE.md) are declared in one table-like block;
// output goes through the table or JSON printer.
#include "core/cli/views.hpp"
#include "core/config/config.hpp"
#include "core/model/model.hpp"
#include "core/store/store.hpp"
#include "core/util/encoding.hpp"
#include "core/util/time.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <set>

namespace {

using namespace pli;

constexpr int k_exit_unknown_id = 2;
constexpr int k_exit_usage = 64;
constexpr int k_exit_store = 74;

[[noreturn]] void die(int status, const std::string& message)
{
  std::cerr << "pli: " << message << "\n";
  std::exit(status);
}

std::size_t display_width(const std::string& s)
{
  std::size_t n = 0;
  for (unsigned char c : s) {
    n += (c & 0xC0) != 0x80;
  }
  return n;
}

void print_table(const std::vector<std::string>& head,
                 const std::vector<std::vector<std::string>>& rows)
{
  std::vector<std::size_t> w(head.size());
  for (std::size_t i = 0; i < head.size(); ++i) {
    w[i] = display_width(head[i]);
    for (const auto& r : rows) {
      w[i] = std::max(w[i], display_width(r[i]));
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      out += cells[i];
      if (i + 1 < cells.size()) {
        out += std::string(w[i] - display_width(cells[i]) + 2, ' ');
      }
    }
    std::cout << out << "\n";
  };
  line(head);
  for (const auto& r : rows) {
    line(r);
  }
}

std::string cut(const std::string& s, std::size_t max)
{
  if (display_width(s) <= max) {
    return s;
  }
  std::string out;
  std::size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80 && ++n > max - 1) {
      break;
    }
    out.push_back(static_cast<char>(c));
  }
  return out + "…";
}

std::unique_ptr<store::Store> open_store(const config::Config& config)
{
  auto s = store::open_lmdb({config.store.path, config.store.map_size_mb, false});
  if (!s) {
    die(k_exit_store, s.error().message);
  }
  return std::move(s.value());
}

// Resolves a message id, a delivery id or a Message-ID header to a message id.
std::string resolve_message(store::Store& st, const std::string& id,
                            std::string* delivery = nullptr)
{
  if (auto m = st.get_message(id)) {
    return id;
  }
  if (auto d = st.get_delivery(id)) {
    if (delivery != nullptr) {
      *delivery = id;
    }
    return d->message();
  }
  std::string mid = id;
  if (mid.size() > 2 && mid.front() == '<' && mid.back() == '>') {
    mid = mid.substr(1, mid.size() - 2);
  }
  if (auto m = st.find_by_message_id(mid)) {
    return m.value();
  }
  die(k_exit_unknown_id, fmt::format("no message or delivery '{}' (give a message id, a "
                                     "delivery id or a Message-ID)",
                                     id));
}

std::string human(util::Micros t, const config::Config& c)
{
  return t == 0 ? "" : util::format_human(t, c.organisation.timezone);
}

int cmd_show(const config::Config& config, const std::string& id, bool json)
{
  auto st = open_store(config);
  std::string only_delivery;
  std::string mid = resolve_message(*st, id, &only_delivery);
  auto m = st->get_message(mid);
  if (!m) {
    die(k_exit_store, m.error().message);
  }
  std::vector<store::pb::Delivery> ds;
  for (const auto& did : m->delivery_ids()) {
    auto d = st->get_delivery(did);
    if (d && (only_delivery.empty() || did == only_delivery)) {
      ds.push_back(d.value());
    }
  }
  auto events = st->events_of_message(mid);
  if (!events) {
    die(k_exit_store, events.error().message);
  }
  const auto& tz = config.organisation.timezone;
  if (json) {
    std::cout << cli::message_json(m.value(), ds, events.value(), tz).dump(2) << "\n";
    return 0;
  }
  const auto loc = config.organisation.locale;
  std::cout << "Message      " << m->id() << "\n";
  std::cout << "Objet        " << m->subject() << "\n";
  std::cout << "Type         " << model::label(static_cast<model::MessageType>(m->type()), loc)
            << "\n";
  std::cout << "Mode         " << (m->mode() == 1 ? "avec accusé de réception" : "simple") << "\n";
  if (!m->consultation().empty()) {
    std::cout << "Consultation " << m->consultation() << "\n";
  }
  std::cout << "Expéditeur   " << m->sender() << "\n";
  std::cout << "Envoyé le    " << human(m->sent_at(), config) << "\n";
  std::cout << "Empreinte    " << m->original_sha256() << "\n";
  for (const auto& a : m->attachments()) {
    std::cout << "Pièce jointe " << a.name() << " (" << a.size() << " octets, " << a.sha256()
              << ")\n";
  }
  for (const auto& d : ds) {
    std::cout << "\nDestinataire " << d.recipient() << " — "
              << model::label(static_cast<model::Status>(d.status()), loc) << " (" << d.id()
              << ")\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : events.value()) {
      if (e.delivery() != d.id()) {
        continue;
      }
      std::string detail;
      for (const char* k : {"status", "remote_mta", "diagnostic", "ip", "user_agent", "name"}) {
        auto it = e.detail().find(k);
        if (it != e.detail().end() && !it->second.empty()) {
          detail += (detail.empty() ? "" : ", ") + std::string(k) + "=" + it->second;
        }
      }
      rows.push_back({human(e.at(), config),
                      std::string(model::label(static_cast<model::EventKind>(e.kind()), loc)),
                      cut(detail, 80)});
    }
    print_table({"Date", "Événement", "Détail"}, rows);
  }
  return 0;
}

int cmd_list(const config::Config& config, store::Query q, bool json, const std::string& since,
             const std::string& until)
{
  const auto& tz = config.organisation.timezone;
  if (!since.empty()) {
    q.since = util::parse_local(since, tz);
    if (!q.since) {
      die(k_exit_usage, "--since needs a date like 2024-01-31 or \"2024-01-31 14:00\"");
    }
  }
  if (!until.empty()) {
    q.until = util::parse_local(until, tz);
    if (!q.until) {
      die(k_exit_usage, "--until needs a date like 2024-01-31 or \"2024-01-31 14:00\"");
    }
    if (until.size() == 10) {
      *q.until += 86400LL * 1000000LL; // a whole day is included
    }
  }
  auto st = open_store(config);
  auto r = st->list(q);
  if (!r) {
    die(k_exit_store, r.error().message);
  }
  const std::size_t pages = r->total == 0 ? 1 : (r->total + q.per_page - 1) / q.per_page;
  if (json) {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& it : r->items) {
      auto events = st->events_of_message(it.message.id());
      auto j = cli::delivery_json(it.delivery,
                                  events ? events.value() : std::vector<store::pb::Event>{}, tz);
      j["subject"] = it.message.subject();
      j["type"] = std::string(model::code(static_cast<model::MessageType>(it.message.type())));
      j["sender"] = it.message.sender();
      j["sent_at"] = util::format_iso(it.message.sent_at(), tz);
      items.push_back(j);
    }
    std::cout << nlohmann::json{{"format_version", cli::k_format_version},
                                {"total", r->total},
                                {"page", q.page},
                                {"pages", pages},
                                {"per_page", q.per_page},
                                {"items", items}}
                     .dump(2)
              << "\n";
    return 0;
  }
  const auto loc = config.organisation.locale;
  std::vector<std::vector<std::string>> rows;
  for (const auto& it : r->items) {
    const auto& d = it.delivery;
    rows.push_back(
        {std::string(model::label(static_cast<model::Status>(d.status()), loc)),
         human(d.sent_at(), config), human(d.delivered_at(), config), human(d.read_at(), config),
         human(d.replied_at(), config),
         cut(std::string(model::label(static_cast<model::MessageType>(it.message.type()), loc)),
             24),
         cut(it.message.subject(), 40), d.recipient(),
         cut(it.message.text_body().substr(0, 200), 30), d.id()});
  }
  for (auto& row : rows) {
    for (auto& cell : row) {
      for (char& c : cell) {
        if (c == '\n' || c == '\r' || c == '\t') {
          c = ' ';
        }
      }
    }
  }
  print_table({"Statut", "Envoi (E)", "Délivré (D)", "Lu (L)", "Réponse (R)", "Type", "Objet",
               "Destinataire", "Début du message", "Id"},
              rows);
  std::cout << fmt::format("{} résultat{} — page {}/{}\n", r->total, r->total > 1 ? "s" : "",
                           q.page, pages);
  return 0;
}

int cmd_consultation_set(const config::Config& config, const std::string& ref,
                         const std::string& title, const std::string& object,
                         const std::string& deadline)
{
  auto st = open_store(config);
  store::pb::Consultation c;
  if (auto existing = st->get_consultation(ref)) {
    c = existing.value();
  }
  c.set_reference(ref);
  if (!title.empty()) {
    c.set_title(title);
  }
  if (!object.empty()) {
    c.set_object(object);
  }
  if (!deadline.empty()) {
    auto t = util::parse_local(deadline, config.organisation.timezone);
    if (!t) {
      die(k_exit_usage, "--deadline needs \"YYYY-MM-DD HH:MM\"");
    }
    c.set_deadline(*t);
  }
  c.set_updated_at(util::now_micros());
  if (auto r = st->put_consultation(c); !r) {
    die(k_exit_store, r.error().message);
  }
  std::cout << "Consultation " << ref << " enregistrée.\n";
  return 0;
}

} // namespace

int main(int argc, char** argv)
{
  CLI::App app{"pli: find registered mail exchanges, follow their events, issue receipts"};
  app.require_subcommand(1);
  std::string config_file;
  app.add_option("--config", config_file, "config file (default $PLI_CONFIG or /etc/pli/pli.yaml)");

  bool json = false;
  std::string id;

  auto* show = app.add_subcommand("show", "one exchange: its deliveries and events");
  show->add_option("ID", id, "message id, delivery id or Message-ID")->required();
  show->add_flag("--json", json, "JSON output");

  store::Query q;
  std::vector<std::string> statuses;
  std::string type, since, until;
  auto* list = app.add_subcommand("list", "deliveries, newest first");
  list->add_option("--status", statuses,
                   "status (several allowed): sending, not_delivered, "
                   "delivered, read, reply_unread, reply_read");
  list->add_option("--type", type, "message type code (libre, rejet, ...)");
  list->add_option("--rcpt", q.recipient, "recipient contains TEXT");
  list->add_option("--sender", q.sender, "sender contains TEXT");
  list->add_option("--consultation", q.consultation, "consultation reference");
  list->add_option("--keywords", q.keywords,
                   "words in the subject or body (case and accents ignored)");
  list->add_option("--since", since, "sent on or after DATE (YYYY-MM-DD[ HH:MM])");
  list->add_option("--until", until, "sent before DATE (a whole day when only a date)");
  list->add_option("--page", q.page, "page number")->check(CLI::PositiveNumber);
  list->add_option("--per-page", q.per_page, "rows per page")->check(CLI::Range(1, 1000));
  list->add_flag("--json", json, "JSON output");

  std::string ref, title, object, deadline;
  auto* consultation = app.add_subcommand("consultation", "consultations");
  consultation->require_subcommand(1);
  auto* cset =
      consultation->add_subcommand("set", "record a consultation's title, object and deadline");
  cset->add_option("REF", ref, "reference, e.g. 2022AK_014")->required();
  cset->add_option("--title", title, "title (intitulé)");
  cset->add_option("--object", object, "object");
  cset->add_option("--deadline", deadline, "\"YYYY-MM-DD HH:MM\" (organisation's time zone)");

  auto* check = app.add_subcommand("check-config", "check the config file");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : k_exit_usage;
  }
  auto config = config::load_or_exit(config::resolve_path(config_file));
  if (check->parsed()) {
    std::cout << config.file << ": ok\n";
    return 0;
  }
  if (show->parsed()) {
    return cmd_show(config, id, json);
  }
  if (list->parsed()) {
    for (const auto& s : statuses) {
      auto st = model::parse_status(s);
      if (!st) {
        die(k_exit_usage,
            fmt::format("unknown status '{}' (sending, not_delivered, delivered, read, "
                        "reply_unread, reply_read)",
                        s));
      }
      q.statuses.push_back(*st);
    }
    if (!type.empty()) {
      q.type = model::parse_message_type(type);
      if (!q.type) {
        die(k_exit_usage, fmt::format("unknown message type '{}'", type));
      }
    }
    return cmd_list(config, q, json, since, until);
  }
  if (cset->parsed()) {
    return cmd_consultation_set(config, ref, title, object, deadline);
  }
  return k_exit_usage;
}
