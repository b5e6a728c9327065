// The store factory and the Spec each program's pli.yaml names (core/store/configured.hpp):
// LMDB options per program, the PostgreSQL URL, pool and application_name, what a program
// says and which status it exits with when the store does not open at start.
#include "core/store/configured.hpp"
#include "core/store/open.hpp"

#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sysexits.h>

#include <filesystem>

using namespace pli;

namespace {

config::Config loaded(const std::string& store)
{
  auto c = config::load_from_string("organisation: { name: x }\nstore: " + store + R"(
milter: { socket: "unix:/run/pli/milter.sock" }
policy: { buyers: ["*@marches.example.org"] }
bounce: { address: "pli-bounce@example.org" }
linkd: { public_url: "https://pli.example.org/" }
)",
                                    "pli.yaml");
  INFO((c.ok() ? std::string() : c.error().message));
  REQUIRE(c.ok());
  return std::move(c.value());
}

} // namespace

TEST_CASE("spec_for: each program's LMDB options, from pli.yaml", "[store][open]")
{
  const auto c = loaded("{ path: /var/lib/pli, map_size_mb: 512, linkd_reserve_percent: 20 }");
  const auto milter = store::spec_for(c, store::Program::milter);
  const auto linkd = store::spec_for(c, store::Program::linkd);
  const auto admin = store::spec_for(c, store::Program::admin);
  for (const auto* s : {&milter, &linkd, &admin}) {
    CHECK(s->backend == store::Backend::lmdb);
    CHECK(s->lmdb.path == "/var/lib/pli");
    CHECK(s->lmdb.map_size_mb == 512);
    CHECK_FALSE(s->lmdb.read_only);
    CHECK_FALSE(s->lmdb.no_sync);
  }
  CHECK(milter.lmdb.write_mostly);
  CHECK(milter.lmdb.group_wait_us == 2000);
  CHECK(milter.lmdb.reserve_percent == 0);
  CHECK_FALSE(linkd.lmdb.write_mostly);
  CHECK(linkd.lmdb.group_wait_us == 0);
  CHECK(linkd.lmdb.reserve_percent == 20);
  CHECK_FALSE(admin.lmdb.write_mostly);
  CHECK(admin.lmdb.reserve_percent == 0);
}

TEST_CASE("spec_for: the PostgreSQL URL, pool, passfile and application_name", "[store][open]")
{
  const auto c = loaded("{ backend: postgresql, path: /var/lib/pli, pool: 3, passfile: "
                        "/etc/pli/pgpass, url: \"postgresql://pli_milter@db.example.org/pli\" }");
  const auto milter = store::spec_for(c, store::Program::milter);
  CHECK(milter.backend == store::Backend::postgresql);
  CHECK(milter.pg.url == "postgresql://pli_milter@db.example.org/pli");
  CHECK(milter.pg.passfile == "/etc/pli/pgpass");
  CHECK(milter.pg.pool == 3);
  CHECK(milter.pg.application_name == "pli-milter");
  CHECK(store::spec_for(c, store::Program::linkd).pg.application_name == "pli-linkd");
  CHECK(store::spec_for(c, store::Program::admin).pg.application_name == "pli");
}

TEST_CASE("open: the LMDB store of the Spec, created and usable", "[store][open]")
{
  test::TempDir dir;
  const auto c = loaded("{ path: " + (dir.path / "store").string() + ", map_size_mb: 64 }");
  const auto spec = store::spec_for(c, store::Program::admin);
  auto st = store::open(spec);
  INFO((st.ok() ? std::string() : st.error().message));
  REQUIRE(st.ok());
  CHECK(std::filesystem::exists(dir.path / "store" / "data.mdb"));
  auto none = st.value()->get_message("m-none");
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code == store::Errc::not_found);
}

TEST_CASE("open: a PostgreSQL server that does not answer is unavailable, exit 75", "[store][open]")
{
  test::TempDir dir; // no server listens on a socket there
  const auto c =
      loaded("{ backend: postgresql, path: /var/lib/pli, url: \"host=" + dir.path.string() +
             " dbname=pli user=pli_milter\" }");
  auto spec = store::spec_for(c, store::Program::milter);
  spec.pg.connect_timeout_s = 2;
  auto st = store::open(spec);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == store::Errc::unavailable);
  CHECK(store::daemon_exit_status(spec, st.error()) == EX_TEMPFAIL);
  const std::string said = store::open_failure(spec, st.error());
  CHECK_THAT(said, Catch::StartsWith("cannot open the store"));
  CHECK_THAT(said, Catch::Contains(dir.path.string()));
  CHECK(said.find('\n') == std::string::npos);
}

TEST_CASE("open: a URL libpq refuses is invalid, exit 78", "[store][open]")
{
  const auto c = loaded("{ backend: postgresql, path: /var/lib/pli, url: \"host=/nonexistent "
                        "dbname=pli colour=blue\" }");
  const auto spec = store::spec_for(c, store::Program::linkd);
  auto st = store::open(spec);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == store::Errc::invalid);
  CHECK(store::daemon_exit_status(spec, st.error()) == EX_CONFIG);
  CHECK_THAT(store::open_failure(spec, st.error()), Catch::Contains("colour"));
}

TEST_CASE("open: a port that is not a number is invalid (78), not a server that may come back",
          "[store][open]")
{
  const auto c = loaded("{ backend: postgresql, path: /var/lib/pli, url: "
                        "\"postgresql://db.example.org:port/pli\" }");
  const auto spec = store::spec_for(c, store::Program::milter);
  auto st = store::open(spec);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == store::Errc::invalid);
  CHECK(store::daemon_exit_status(spec, st.error()) == EX_CONFIG);
  CHECK_THAT(store::open_failure(spec, st.error()), Catch::Contains("port"));
}

TEST_CASE("open_failure and daemon_exit_status: one sentence, no password, the right status",
          "[store][open]")
{
  store::Spec pg;
  pg.backend = store::Backend::postgresql;
  pg.pg.url = "postgresql://pli_owner:s3cret@db.example.org/pli";
  const util::Error schema{store::Errc::invalid,
                           "the schema is older than this pli: run pli store migrate-schema"};
  const std::string said = store::open_failure(pg, schema);
  CHECK_THAT(said, Catch::Contains("db.example.org"));
  CHECK_THAT(said, Catch::Contains("pli store migrate-schema"));
  CHECK_THAT(said, !Catch::Contains("s3cret"));
  CHECK(store::daemon_exit_status(pg, schema) == EX_CONFIG);
  CHECK(store::daemon_exit_status(pg, util::Error{store::Errc::unavailable, "down"}) ==
        EX_TEMPFAIL);
  CHECK(store::daemon_exit_status(pg, util::Error{store::Errc::io, "disk"}) == EX_TEMPFAIL);

  store::Spec lmdb;
  lmdb.lmdb.path = "/var/lib/pli";
  CHECK(store::open_failure(lmdb, util::Error{store::Errc::io, "no space left"}) ==
        "cannot open the store /var/lib/pli: no space left");
  // LMDB: every failure at start may pass by itself (as ever).
  CHECK(store::daemon_exit_status(lmdb, util::Error{store::Errc::invalid, "x"}) == EX_TEMPFAIL);
}
