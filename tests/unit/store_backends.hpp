// The store's domain tests run against both stores: a store of either backend, made empty
// for one test (an LMDB environment in a temporary directory, or a fresh database of the
// private PostgreSQL cluster, pg_cluster.hpp). Use as
//   test::AnyStore where(GENERATE(test::Backend::lmdb, test::Backend::postgresql));
#pragma once

#include "core/store/store.hpp"

#include "tests/unit/pg_cluster.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <optional>

namespace pli::test {

enum class Backend
{
  lmdb,
  postgresql
};

struct AnyStore
{
  explicit AnyStore(Backend b) : backend(b)
  {
    if (b == Backend::postgresql) {
      pg.emplace();
    }
  }
  // Another handle on the same store (as another process, or host, would open it).
  std::unique_ptr<store::Store> open() const
  {
    if (backend == Backend::postgresql) {
      return pg->open();
    }
    auto s = store::open_lmdb({dir.path.string(), 64, false});
    REQUIRE(s.ok());
    return std::move(s.value());
  }
  const char* name() const { return backend == Backend::lmdb ? "lmdb" : "postgresql"; }

  Backend backend;
  TempDir dir;
  std::optional<PgDatabase> pg;
};

} // namespace pli::test
