// pli list [filters] [--page N] [--per-page N] [--json]: one row per delivery, newest
// first, with the total and page/pages.
#include "admin-cli/cli.hpp"
#include "core/cli/views.hpp"

#include <fmt/format.h>

namespace pli::admin {

namespace {

struct Args
{
  store::Query q;
  std::vector<std::string> statuses;
  std::string type, since, until;
} args;

std::string status_names()
{
  std::string s;
  for (auto st : model::all_statuses()) {
    s += (s.empty() ? "" : ", ") + std::string(model::code(st));
  }
  return s;
}

std::string type_names()
{
  std::string s;
  for (auto t : model::all_message_types()) {
    s += (s.empty() ? "" : ", ") + std::string(model::code(t));
  }
  return s;
}

int run_list(Context& ctx)
{
  store::Query q = args.q;
  for (const auto& s : args.statuses) {
    auto st = model::parse_status(s);
    if (!st) {
      throw Failure(k_exit_usage, fmt::format("unknown status '{}' ({})", s, status_names()));
    }
    q.statuses.push_back(*st);
  }
  if (!args.type.empty()) {
    q.type = model::parse_message_type(args.type);
    if (!q.type) {
      throw Failure(k_exit_usage,
                    fmt::format("unknown message type '{}' ({})", args.type, type_names()));
    }
  }
  if (!args.since.empty()) {
    q.since = parse_date(ctx.config, "--since", args.since);
  }
  if (!args.until.empty()) {
    q.until = parse_date(ctx.config, "--until", args.until);
    if (args.until.size() == 10) {
      *q.until += 86400LL * 1000000LL; // a date alone includes that whole day
    }
  }
  if (q.since && q.until && *q.until <= *q.since) {
    throw Failure(k_exit_usage, "--until must be after --since");
  }
  auto r = checked(ctx.store->list(q));
  const auto& tz = ctx.config.organisation.timezone;
  const auto loc = ctx.config.organisation.locale;
  const bool fr = loc == model::Locale::fr;
  const std::size_t pages = r.total == 0 ? 1 : (r.total + q.per_page - 1) / q.per_page;

  if (ctx.json) {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& it : r.items) {
      auto events = checked(ctx.store->events_of_message(it.message.id()));
      auto j = cli::delivery_json(it.delivery, events, tz);
      j["subject"] = it.message.subject();
      j["type"] = std::string(model::code(static_cast<model::MessageType>(it.message.type())));
      j["sender"] = it.message.sender();
      j["consultation"] = it.message.consultation().empty()
                              ? nlohmann::json(nullptr)
                              : nlohmann::json(it.message.consultation());
      j["sent_at"] = util::format_iso(it.message.sent_at(), tz);
      items.push_back(j);
    }
    ctx.out.document({{"format_version", cli::k_format_version},
                      {"total", r.total},
                      {"page", q.page},
                      {"pages", pages},
                      {"per_page", q.per_page},
                      {"items", items}});
    return 0;
  }
  const std::string summary =
      fr ? fmt::format("{} résultat{} — page {}/{}", r.total, r.total > 1 ? "s" : "", q.page, pages)
         : fmt::format("{} result{} — page {}/{}", r.total, r.total == 1 ? "" : "s", q.page, pages);
  ctx.out.line(summary);
  if (r.items.empty()) {
    ctx.out.line(r.total == 0
                     ? (fr ? "Aucun courrier ne correspond." : "No mail matches.")
                     : (fr ? "Aucun résultat sur cette page." : "No result on this page."));
    return 0;
  }
  auto h = [&](util::Micros t) { return human(ctx.config, t); };
  std::vector<std::vector<std::string>> rows;
  for (const auto& it : r.items) {
    const auto& d = it.delivery;
    rows.push_back({std::string(model::label(static_cast<model::Status>(d.status()), loc)),
                    h(d.sent_at()), h(d.delivered_at() != 0 ? d.delivered_at() : d.failed_at()),
                    h(d.read_at()), h(d.replied_at()),
                    cli::cut(std::string(model::label(
                                 static_cast<model::MessageType>(it.message.type()), loc)),
                             24),
                    cli::cut(it.message.subject(), 40), d.recipient(),
                    cli::cut(it.message.text_body().substr(0, 300), 30), d.id()});
  }
  ctx.out.table({fr ? "Statut" : "Status", fr ? "Envoi (E)" : "Sent (E)",
                 fr ? "Délivré (D)" : "Delivered (D)", fr ? "Lu (L)" : "Read (L)",
                 fr ? "Réponse (R)" : "Reply (R)", "Type", fr ? "Objet" : "Subject",
                 fr ? "Destinataire" : "Recipient", fr ? "Début du message" : "Start of the body",
                 "Id"},
                rows);
  ctx.out.line(summary);
  return 0;
}

} // namespace

Command list_command()
{
  return Command{
      "list", "deliveries, newest first, 10 a page", StoreAccess::read,
      [](CLI::App& app) {
        app.add_option("--status", args.statuses, "status (several allowed): " + status_names());
        app.add_option("--type", args.type, "message type code: " + type_names());
        app.add_option("--rcpt", args.q.recipient, "recipient contains TEXT");
        app.add_option("--sender", args.q.sender, "sender contains TEXT");
        app.add_option("--consultation", args.q.consultation, "consultation reference");
        app.add_option("--keywords", args.q.keywords,
                       "words starting words of the subject or body (case and accents ignored)");
        app.add_option("--since", args.since, "sent on or after DATE (YYYY-MM-DD[ HH:MM])");
        app.add_option("--until", args.until, "sent before DATE (a whole day when only a date)");
        app.add_option("--page", args.q.page, "page number (from 1)")->check(CLI::PositiveNumber);
        app.add_option("--per-page", args.q.per_page, "rows per page (1 to 1000)")
            ->check(CLI::Range(1, 1000));
      },
      run_list};
}

} // namespace pli::admin
