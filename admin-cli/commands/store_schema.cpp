// pli store migrate-schema [--url URL]: creates or upgrades the PostgreSQL store's schema
// (store::migrate_schema, one transaction) on the database of store.url or of --url (the
// owner role's: the daemons' roles may not create tables), and grants pli_milter, pli_linkd
// and pli_admin their rights. Prints the version found before and the one after. The daemons
// never do this themselves: they refuse a schema older or newer than theirs.
#include "admin-cli/cli.hpp"

#include "core/store/configured.hpp"
#include "core/store/postgresql.hpp"

#include <fmt/format.h>

namespace pli::admin {

namespace {

struct Args
{
  std::string url;
} args;

int run_migrate_schema(Context& ctx)
{
  const bool fr = ctx.config.organisation.locale == model::Locale::fr;
  auto spec = store::spec_for(ctx.config, store::Program::admin);
  if (!args.url.empty()) {
    spec.pg.url = args.url;
  } else if (spec.backend != store::Backend::postgresql) {
    throw Failure(k_exit_usage, fr ? "le store est LMDB (store.backend) : il n'a pas de schéma à "
                                     "migrer ; pour une base PostgreSQL, donnez --url"
                                   : "the store is LMDB (store.backend): it has no schema to "
                                     "migrate; for a PostgreSQL database, give --url");
  }
  const std::string db = store::redact_url(spec.pg.url);
  auto before = store::migrate_schema(spec.pg);
  if (!before) {
    const int status = before.error().code == store::Errc::invalid ? k_exit_config : k_exit_store;
    throw Failure(status,
                  (fr ? "migration du schéma impossible : " : "cannot migrate the schema: ") +
                      before.error().message);
  }
  auto after = store::schema_version_found(spec.pg);
  if (!after) {
    throw Failure(k_exit_store, (fr ? "version du schéma illisible après la migration : "
                                    : "cannot read the schema version after migrating: ") +
                                    after.error().message);
  }
  ctx.out.document(
      {{"database", db}, {"version_before", before.value()}, {"version_after", after.value()}});
  ctx.out.line(fr ? fmt::format("Schéma de {} : version {} avant, {} après.", db, before.value(),
                                after.value())
                  : fmt::format("Schema of {}: version {} before, {} after.", db, before.value(),
                                after.value()));
  return 0;
}

} // namespace

Command store_migrate_schema_command()
{
  return Command{"store migrate-schema",
                 "create or upgrade the PostgreSQL store's schema (run with the owner role)",
                 StoreAccess::none,
                 [](CLI::App& app) {
                   app.add_option("--url", args.url,
                                  "the database, with the owner role (default store.url)");
                 },
                 run_migrate_schema};
}

} // namespace pli::admin
