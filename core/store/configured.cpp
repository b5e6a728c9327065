#include "core/store/configured.hpp"

#include <sysexits.h>

namespace pli::store {

Spec spec_for(const config::Config& config, Program program)
{
  Spec spec;
  spec.backend = config.store.backend == config::Config::StoreBackend::postgresql
                     ? Backend::postgresql
                     : Backend::lmdb;
  spec.lmdb = OpenOptions{config.store.path, config.store.map_size_mb, false};
  spec.pg.url = config.store.url;
  spec.pg.passfile = config.store.passfile;
  spec.pg.pool = static_cast<std::size_t>(config.store.pool);
  switch (program) {
  case Program::milter:
    spec.lmdb.write_mostly = true;  // see OpenOptions: its peak RSS would grow with the store
    spec.lmdb.group_wait_us = 2000; // see OpenOptions: concurrent sessions share more commits
    spec.pg.application_name = "pli-milter";
    break;
  case Program::linkd:
    spec.lmdb.reserve_percent = static_cast<std::uint32_t>(config.store.linkd_reserve_percent);
    spec.pg.application_name = "pli-linkd";
    break;
  case Program::admin:
    spec.pg.application_name = "pli";
    break;
  }
  return spec;
}

std::string open_failure(const Spec& spec, const util::Error& error)
{
  if (spec.backend == Backend::lmdb) {
    return "cannot open the store " + spec.lmdb.path + ": " + error.message;
  }
  // PostgreSQL's messages name the database already (without its password).
  const std::string db = redact_url(spec.pg.url);
  return error.message.find(db) != std::string::npos
             ? "cannot open the store: " + error.message
             : "cannot open the store's database " + db + ": " + error.message;
}

int daemon_exit_status(const Spec& spec, const util::Error& error)
{
  return spec.backend == Backend::postgresql && error.code == Errc::invalid ? EX_CONFIG
                                                                            : EX_TEMPFAIL;
}

} // namespace pli::store
