// Commands that change the store: consultation set, revoke, purge.
#include "admin-cli/cli.hpp"

#include "core/util/text.hpp"

#include <fmt/format.h>

#include <cstdlib>

namespace pli::admin {

namespace {

struct ConsultationArgs
{
  std::string ref, title, object, deadline;
} cargs;

struct RevokeArgs
{
  std::string id, recipient;
} rargs;

struct PurgeArgs
{
  std::uint64_t days = 0;
  bool dry_run = false;
} pargs;

int run_consultation_set(Context& ctx)
{
  auto& st = *ctx.store;
  store::pb::Consultation c;
  if (auto existing = st.get_consultation(cargs.ref)) {
    c = existing.value();
  }
  // Arguments are bytes: the stored texts are valid UTF-8, on one line (util/text.hpp).
  c.set_reference(util::clean_line(cargs.ref));
  if (!cargs.title.empty()) {
    c.set_title(util::clean_line(cargs.title));
  }
  if (!cargs.object.empty()) {
    c.set_object(util::clean_line(cargs.object));
  }
  if (!cargs.deadline.empty()) {
    c.set_deadline(parse_date(ctx.config, "--deadline", cargs.deadline));
  }
  c.set_updated_at(util::now_micros());
  checked(st.put_consultation(c));
  const bool fr = ctx.config.organisation.locale == model::Locale::fr;
  ctx.out.document(
      {{"reference", c.reference()},
       {"title", c.title()},
       {"object", c.object()},
       {"deadline", c.deadline() == 0 ? nlohmann::json(nullptr)
                                      : nlohmann::json(util::format_iso(
                                            c.deadline(), ctx.config.organisation.timezone))}});
  ctx.out.line(fmt::format(
      fmt::runtime(fr ? "Consultation {} enregistrée." : "Consultation {} recorded."), cargs.ref));
  return 0;
}

int run_revoke(Context& ctx)
{
  auto& st = *ctx.store;
  const bool fr = ctx.config.organisation.locale == model::Locale::fr;
  std::string only;
  const std::string mid = resolve_message(st, rargs.id, &only);
  std::vector<store::pb::Delivery> targets;
  if (!only.empty() || !rargs.recipient.empty()) {
    targets.push_back(resolve_delivery(st, rargs.id, rargs.recipient));
  } else {
    auto m = checked(st.get_message(mid));
    for (const auto& did : m.delivery_ids()) {
      targets.push_back(checked(st.get_delivery(did)));
    }
  }
  const char* user = std::getenv("SUDO_USER");
  if (user == nullptr || *user == '\0') {
    user = std::getenv("USER");
  }
  std::vector<store::NewEvent> events;
  nlohmann::json done = nlohmann::json::array();
  for (const auto& d : targets) {
    if (d.revoked()) {
      ctx.out.line(fmt::format(fmt::runtime(fr ? "Le lien de {} ({}) était déjà révoqué."
                                               : "The link of {} ({}) was already revoked."),
                               d.recipient(), d.id()));
      continue;
    }
    store::NewEvent e;
    e.delivery = d.id();
    e.kind = model::EventKind::revoked;
    e.at = util::now_micros();
    e.detail = {{"by", std::string("pli revoke") +
                           (user != nullptr ? " (" + std::string(user) + ")" : std::string())}};
    events.push_back(std::move(e));
    done.push_back({{"delivery", d.id()}, {"recipient", d.recipient()}});
  }
  if (!events.empty()) {
    checked(st.append_events(events));
  }
  for (const auto& j : done) {
    ctx.out.line(fmt::format(
        fmt::runtime(fr ? "Lien de {} ({}) révoqué : il ne donne plus accès au courrier."
                        : "Link of {} ({}) revoked: it no longer opens the mail."),
        j["recipient"].get<std::string>(), j["delivery"].get<std::string>()));
  }
  ctx.out.document({{"message", mid}, {"revoked", done}});
  return 0;
}

int run_purge(Context& ctx)
{
  const bool fr = ctx.config.organisation.locale == model::Locale::fr;
  const util::Micros before =
      util::now_micros() - static_cast<util::Micros>(pargs.days) * 86400LL * 1000000LL;
  // The messages are listed before they go (a dry run lists what would go).
  auto preview = checked(ctx.store->purge(before, store::PurgeMode::dry_run));
  std::vector<std::vector<std::string>> rows;
  nlohmann::json items = nlohmann::json::array();
  for (const auto& id : preview.messages) {
    auto m = ctx.store->get_message(id);
    if (!m) {
      continue;
    }
    rows.push_back({id, human(ctx.config, m->sent_at()), cli::cut(m->subject(), 50)});
    items.push_back({{"id", id},
                     {"sent_at", util::format_iso(m->sent_at(), ctx.config.organisation.timezone)},
                     {"subject", m->subject()}});
  }
  store::PurgeResult r = preview;
  if (!pargs.dry_run) {
    r = checked(ctx.store->purge(before, store::PurgeMode::apply));
  }
  ctx.out.document({{"dry_run", pargs.dry_run},
                    {"before", util::format_iso(before, ctx.config.organisation.timezone)},
                    {"messages", items},
                    {"deliveries", r.deliveries},
                    {"events", r.events},
                    {"tokens", r.tokens},
                    {"replies", r.replies},
                    {"blobs_deleted", r.blobs_deleted},
                    {"blobs_kept", r.blobs_kept}});
  if (!rows.empty()) {
    ctx.out.table({"Message", fr ? "Envoyé le" : "Sent on", fr ? "Objet" : "Subject"}, rows);
  }
  const std::string verb = pargs.dry_run ? (fr ? "seraient supprimés" : "would be deleted")
                                         : (fr ? "supprimés" : "deleted");
  ctx.out.line(fr ? fmt::format("{} courrier(s) envoyé(s) avant le {} {} : {} remise(s), {} "
                                "événement(s), {} lien(s), {} fichier(s) ({} encore utilisé(s) "
                                "conservé(s)).",
                                r.messages.size(), human(ctx.config, before), verb, r.deliveries,
                                r.events, r.tokens, r.blobs_deleted, r.blobs_kept)
                  : fmt::format("{} message(s) sent before {} {}: {} deliveries, {} events, {} "
                                "links, {} files ({} still used, kept).",
                                r.messages.size(), human(ctx.config, before), verb, r.deliveries,
                                r.events, r.tokens, r.blobs_deleted, r.blobs_kept));
  return 0;
}

} // namespace

Command consultation_set_command()
{
  return Command{"consultation set", "record a consultation's title, object and deadline",
                 StoreAccess::write,
                 [](CLI::App& app) {
                   app.add_option("REF", cargs.ref, "reference, e.g. 2022AK_014")->required();
                   app.add_option("--title", cargs.title, "title (intitulé)");
                   app.add_option("--object", cargs.object, "object");
                   app.add_option("--deadline", cargs.deadline,
                                  "\"YYYY-MM-DD HH:MM\" (organisation's time zone)");
                 },
                 run_consultation_set};
}

Command revoke_command()
{
  return Command{
      "revoke", "stop a delivery's link (all of a message's, without --recipient)",
      StoreAccess::write,
      [](CLI::App& app) {
        app.add_option("ID", rargs.id, "delivery id, message id or Message-ID")->required();
        app.add_option("--recipient", rargs.recipient, "only this recipient's link");
      },
      run_revoke};
}

Command purge_command()
{
  return Command{
      "purge", "retention: delete the exchanges sent more than DAYS days ago", StoreAccess::write,
      [](CLI::App& app) {
        app.add_option("--older-than", pargs.days, "age in days (0: everything sent until now)")
            ->required();
        app.add_flag("--dry-run", pargs.dry_run, "list what would be deleted");
      },
      run_purge};
}

} // namespace pli::admin
