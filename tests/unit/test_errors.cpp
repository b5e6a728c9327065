// Typed error codes (util/result.hpp): each module's Errc has its own category, so a code
// equals only its own module's value, and exit statuses are named sysexits.
#include "core/config/config.hpp"
#include "core/receipt/errc.hpp"
#include "core/store/store.hpp"
#include "core/util/cidr.hpp"
#include "core/util/result.hpp"

#include <catch2/catch.hpp>
#include <sysexits.h>

#include <set>
#include <string>

using namespace pli;

TEST_CASE("errors: a code equals only its own module's value", "[errors]")
{
  // The same number in two modules: never equal.
  const util::Error full{store::Errc::full, "map full"};
  CHECK(full.code == store::Errc::full);
  CHECK(full.code != store::Errc::io);
  CHECK(static_cast<int>(store::Errc::full) == static_cast<int>(config::Errc::unreadable));
  CHECK(full.code != config::Errc::unreadable);
  CHECK(full.code != receipt::Errc::io);
  const util::Error exists{receipt::Errc::exists, "receipt.key exists"};
  CHECK(exists.code == receipt::Errc::exists);
  CHECK(exists.code != store::Errc::not_found); // both are 1
  CHECK(exists.code != config::Errc::invalid);  // 1 too
  CHECK(exists.code != util::Errc::invalid_input);
  // An error is never "no error".
  CHECK(static_cast<bool>(full.code));
  CHECK(static_cast<bool>(util::Error{util::Errc::invalid_input, ""}.code));
}

TEST_CASE("errors: each module's category names itself and its codes", "[errors]")
{
  const std::set<std::string> names = {
      std::error_code(store::Errc::io).category().name(),
      std::error_code(receipt::Errc::io).category().name(),
      std::error_code(config::Errc::invalid).category().name(),
      std::error_code(util::Errc::invalid_input).category().name(),
  };
  CHECK(names == std::set<std::string>{"pli.store", "pli.receipt", "pli.config", "pli.util"});
  CHECK(std::error_code(store::Errc::full).message() == "store full");
  CHECK(std::error_code(store::Errc::not_found).message() == "not found");
  CHECK(std::error_code(store::Errc::conflict).message() == "already exists");
  CHECK(std::error_code(store::Errc::invalid).message() == "undecodable record");
  CHECK(std::error_code(store::Errc::io).message() == "storage failure");
  CHECK(std::error_code(receipt::Errc::exists).message() == "already exists");
  CHECK(std::error_code(receipt::Errc::render).message() == "cannot render the PDF");
  CHECK(std::error_code(receipt::Errc::bad_pdf).message() == "unreadable PDF");
  CHECK(std::error_code(receipt::Errc::io).message() == "file error");
  CHECK(std::error_code(config::Errc::unreadable).message() == "unreadable configuration");
  CHECK(std::error_code(config::Errc::invalid).message() == "invalid configuration");
  CHECK(std::error_code(util::Errc::invalid_input).message() == "invalid input");
  CHECK(std::error_code(99, store::error_category()).message() == "unknown");
}

TEST_CASE("errors: modules give their own codes", "[errors]")
{
  auto net = util::Cidr::parse("10.0.0.0/x");
  REQUIRE_FALSE(net.ok());
  CHECK(net.error().code == util::Errc::invalid_input);
  auto c = config::load_from_string("nonsense: [", "bad.yaml");
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().code == config::Errc::invalid);
  CHECK(c.error().code.category() == config::error_category());
}

TEST_CASE("errors: a config error's exit status is EX_CONFIG", "[errors]")
{
  CHECK(config::k_exit_config == EX_CONFIG);
  CHECK(EX_CONFIG == 78); // what the packaging's unit files and the docs say
}
