// pli-linkd: the recipients' link pages. See linkd/server.cpp and core/linkd/app.cpp.
#include "core/config/config.hpp"
#include "linkd/server.hpp"

#include <CLI/CLI.hpp>

int main(int argc, char** argv)
{
  CLI::App app{"pli-linkd: the pages behind the links of registered mail"};
  std::string config_file;
  bool foreground = false;
  bool check_only = false;
  app.add_option("--config", config_file, "config file (default $PLI_CONFIG or /etc/pli/pli.yaml)");
  app.add_flag("--foreground", foreground, "stay in the foreground and log to stderr too");
  app.add_flag("--check-config", check_only, "check the config file and exit");
  CLI11_PARSE(app, argc, argv);
  auto config = pli::config::load_or_exit(pli::config::resolve_path(config_file));
  if (check_only) {
    return 0;
  }
  return pli::linkd::serve(config, foreground);
}
