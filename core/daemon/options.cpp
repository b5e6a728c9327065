#include "core/daemon/options.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

namespace pli::daemon {

Parsed parse_options(const std::string& description, int argc, const char* const* argv,
                     std::ostream& out, std::ostream& err)
{
  CLI::App app{description};
  Options o;
  app.add_option("--config", o.config_file,
                 "config file (default $PLI_CONFIG or /etc/pli/pli.yaml)");
  app.add_flag("--foreground", o.foreground, "stay in the foreground and log to stderr too");
  app.add_flag("--check-config", o.check_config, "check the config file and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return Parsed{std::nullopt, app.exit(e, out, err)};
  }
  return Parsed{std::move(o), 0};
}

int main(const std::string& description, int argc, const char* const* argv,
         const std::function<int(const config::Config&, bool foreground)>& run)
{
  const Parsed parsed = parse_options(description, argc, argv, std::cout, std::cerr);
  if (!parsed.options) {
    return parsed.exit_status;
  }
  const config::Config config =
      config::load_or_exit(config::resolve_path(parsed.options->config_file));
  if (parsed.options->check_config) {
    return 0;
  }
  return run(config, parsed.options->foreground);
}

} // namespace pli::daemon
