// Opens the store a configuration names: LMDB (one host) or PostgreSQL (several hosts).
#pragma once

#include "core/store/postgresql.hpp"
#include "core/store/store.hpp"

namespace pli::store {

enum class Backend
{
  lmdb,
  postgresql
};

struct Spec
{
  Backend backend = Backend::lmdb;
  OpenOptions lmdb;
  PgOptions pg;
};

// Errors: those of open_lmdb or open_postgresql.
Result<std::unique_ptr<Store>> open(const Spec& spec);

} // namespace pli::store
