// pli store copy --from STORE --to STORE [--json]: everything of one store written into
// another (messages, deliveries, events with their chains, tokens, replies, blobs,
// consultations, credentials), then read back and checked (store::copy, copy.hpp). A store
// is `lmdb:DIRECTORY` or a PostgreSQL URL (postgresql://…); an omitted side is the
// configured store. Safe to re-run. Exit 0 when everything was copied and verifies, 1 when
// some message could not be (listed), 74 when a store cannot be read or written.
#include "admin-cli/cli.hpp"
#include "core/store/configured.hpp"
#include "core/store/copy.hpp"

#include <fmt/format.h>

#include <iostream>

namespace pli::admin {

namespace {

struct Args
{
  std::string from;
  std::string to;
} args;

// The store a --from/--to value names; empty: the configured one.
store::Spec spec_of(const config::Config& config, const std::string& value)
{
  store::Spec spec = store::spec_for(config, store::Program::admin);
  if (value.empty()) {
    return spec;
  }
  if (value.rfind("lmdb:", 0) == 0 && value.size() > 5) {
    spec.backend = store::Backend::lmdb;
    spec.lmdb.path = value.substr(5);
    return spec;
  }
  if (value.rfind("postgresql://", 0) == 0 || value.rfind("postgres://", 0) == 0) {
    spec.backend = store::Backend::postgresql;
    spec.pg.url = value;
    return spec;
  }
  throw Failure(k_exit_usage,
                fmt::format("'{}' names no store: give lmdb:DIRECTORY or postgresql://…",
                            store::redact_url(value)));
}

std::unique_ptr<store::Store> open_side(const store::Spec& spec, const std::string& value)
{
  auto s = store::open(spec);
  if (!s) {
    const std::string name = value.empty() ? "the configured store" : store::redact_url(value);
    throw Failure(s.error().code == store::Errc::invalid ? k_exit_config : k_exit_store,
                  fmt::format("cannot open {}: {}", name, s.error().message));
  }
  return std::move(s.value());
}

int run_store_copy(Context& ctx)
{
  const bool fr = ctx.config.organisation.locale == model::Locale::fr;
  if (args.from.empty() && args.to.empty()) {
    throw Failure(k_exit_usage, fr ? "indiquez --from ou --to (l'autre côté est le magasin "
                                     "configuré)"
                                   : "give --from or --to (the other side is the configured "
                                     "store)");
  }
  const store::Spec from_spec = spec_of(ctx.config, args.from);
  const store::Spec to_spec = spec_of(ctx.config, args.to);
  auto from = open_side(from_spec, args.from);
  auto to = open_side(to_spec, args.to);
  auto progress = [&](std::size_t n) {
    if (!ctx.json) {
      std::cerr << (fr ? fmt::format("pli: {} messages copiés…\n", n)
                       : fmt::format("pli: {} messages copied…\n", n));
    }
  };
  auto r = checked(store::copy(*from, *to, progress));
  ctx.out.document({{"messages", r.messages},
                    {"added", r.added},
                    {"extended", r.extended},
                    {"unchanged", r.same},
                    {"events", r.events},
                    {"other_records", r.loose},
                    {"other_records_written", r.loose_written},
                    {"verified", r.verified},
                    {"source_deliveries", r.source_deliveries},
                    {"copy_deliveries", r.copy_deliveries},
                    {"problems", r.problems},
                    {"ok", r.ok()}});
  for (const auto& p : r.problems) {
    ctx.out.line(fmt::format("{} {}", fr ? "Non copié :" : "Not copied:", p));
  }
  ctx.out.line(
      fr ? fmt::format("{} message(s) lu(s) : {} ajouté(s), {} complété(s), {} déjà présent(s) ; "
                       "{} événement(s) ; {} autre(s) enregistrement(s), dont {} écrit(s) ; {} "
                       "message(s) relu(s) et vérifié(s) dans la copie ; {} remise(s) dans la "
                       "source, {} dans la copie.",
                       r.messages, r.added, r.extended, r.same, r.events, r.loose, r.loose_written,
                       r.verified, r.source_deliveries, r.copy_deliveries)
         : fmt::format("{} message(s) read: {} added, {} extended, {} already there; {} "
                       "event(s); {} other record(s), {} written; {} message(s) read back and "
                       "verified in the copy; {} deliveries in the source, {} in the copy.",
                       r.messages, r.added, r.extended, r.same, r.events, r.loose, r.loose_written,
                       r.verified, r.source_deliveries, r.copy_deliveries));
  return r.ok() ? 0 : k_exit_invalid;
}

} // namespace

Command store_copy_command()
{
  return Command{"store copy",
                 "copy every record of one store into another and check the copy (safe to "
                 "re-run)",
                 StoreAccess::none,
                 [](CLI::App& app) {
                   app.add_option("--from", args.from,
                                  "lmdb:DIRECTORY or postgresql://… (default: the configured "
                                  "store)");
                   app.add_option("--to", args.to,
                                  "lmdb:DIRECTORY or postgresql://… (default: the configured "
                                  "store)");
                 },
                 run_store_copy};
}

} // namespace pli::admin
