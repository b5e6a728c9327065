// daemon/options: the command line pli-milter and pli-linkd share.
#include "core/daemon/options.hpp"

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <vector>

namespace options = pli::daemon;

namespace {

struct Run
{
  options::Parsed parsed;
  std::string out;
  std::string err;
};

Run parse(std::vector<const char*> args)
{
  args.insert(args.begin(), "pli-test");
  std::ostringstream out;
  std::ostringstream err;
  Run r{options::parse_options("pli-test: a daemon", static_cast<int>(args.size()), args.data(),
                               out, err),
        "", ""};
  r.out = out.str();
  r.err = err.str();
  return r;
}

} // namespace

TEST_CASE("daemon options: defaults and each option", "[daemon]")
{
  auto none = parse({});
  REQUIRE(none.parsed.options);
  CHECK(none.parsed.options->config_file.empty());
  CHECK_FALSE(none.parsed.options->foreground);
  CHECK_FALSE(none.parsed.options->check_config);

  auto all = parse({"--config", "/etc/x.yaml", "--foreground", "--check-config"});
  REQUIRE(all.parsed.options);
  CHECK(all.parsed.options->config_file == "/etc/x.yaml");
  CHECK(all.parsed.options->foreground);
  CHECK(all.parsed.options->check_config);

  auto joined = parse({"--config=/etc/y.yaml"});
  REQUIRE(joined.parsed.options);
  CHECK(joined.parsed.options->config_file == "/etc/y.yaml");
  CHECK_FALSE(joined.parsed.options->foreground);
}

TEST_CASE("daemon options: --help prints the usage and exits 0; a bad line exits non-zero",
          "[daemon]")
{
  auto help = parse({"--help"});
  CHECK_FALSE(help.parsed.options);
  CHECK(help.parsed.exit_status == 0);
  CHECK(help.out.find("pli-test: a daemon") == 0);
  for (const char* line :
       {"--config TEXT               config file (default $PLI_CONFIG or /etc/pli/pli.yaml)",
        "--foreground                stay in the foreground and log to stderr too",
        "--check-config              check the config file and exit"}) {
    INFO(line);
    CHECK(help.out.find(line) != std::string::npos);
  }

  auto bogus = parse({"--bogus"});
  CHECK_FALSE(bogus.parsed.options);
  CHECK(bogus.parsed.exit_status == 109);
  CHECK(bogus.err.find("--bogus") != std::string::npos);

  auto missing = parse({"--config"});
  CHECK_FALSE(missing.parsed.options);
  CHECK(missing.parsed.exit_status != 0);
}

TEST_CASE("daemon main: --check-config stops after loading; otherwise run gets the config",
          "[daemon]")
{
  const std::string file = std::string(PLI_SOURCE_DIR) + "/conf/pli.yaml";
  int calls = 0;
  bool foreground = false;
  std::string organisation;
  auto run = [&](const pli::config::Config& c, bool fg) {
    ++calls;
    foreground = fg;
    organisation = c.organisation.name;
    return 7;
  };
  std::vector<const char*> check = {"pli-test", "--config", file.c_str(), "--check-config"};
  CHECK(options::main("d", static_cast<int>(check.size()), check.data(), run) == 0);
  CHECK(calls == 0);
  std::vector<const char*> serve = {"pli-test", "--config", file.c_str(), "--foreground"};
  CHECK(options::main("d", static_cast<int>(serve.size()), serve.data(), run) == 7);
  CHECK(calls == 1);
  CHECK(foreground);
  CHECK(organisation == "Région Exemple");
}

TEST_CASE("daemon main: an unusable config file exits 78 before run", "[daemon]")
{
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::vector<const char*> args = {"pli-test", "--config", "/nonexistent/pli.yaml"};
    ::_exit(options::main("d", static_cast<int>(args.size()), args.data(),
                          [](const pli::config::Config&, bool) { return 0; }));
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 78);
}
