// pli doctor [--postfix-config DIR] [--offline]: is Postfix set up for registered mail?
// Every problem comes with the exact line that fixes it. Exit 0 only when all is well.
#include "core/doctor/doctor.hpp"
#include "admin-cli/cli.hpp"

#include <fmt/format.h>

namespace pli::admin {

namespace {

struct DoctorArgs
{
  std::string postfix_config;
  bool offline = false;
} dargs;

int run_doctor(Context& ctx)
{
  doctor::Options options;
  options.postfix_config_dir = dargs.postfix_config;
  options.live = !dargs.offline;
  const auto checks = doctor::run(ctx.config, options);
  const bool fr = ctx.config.organisation.locale == model::Locale::fr;
  nlohmann::json items = nlohmann::json::array();
  std::size_t problems = 0;
  for (const auto& c : checks) {
    problems += c.ok ? 0 : 1;
    items.push_back({{"ok", c.ok},
                     {"check", c.what},
                     {"where", c.where},
                     {"fix", c.ok ? nlohmann::json(nullptr) : nlohmann::json(c.fix)}});
    if (c.ok) {
      ctx.out.line("ok    " + c.what);
      continue;
    }
    ctx.out.line("FAIL  " + c.what);
    ctx.out.line(fmt::format("      {} ({}) :", fr ? "à corriger dans" : "fix in", c.where));
    std::string fix = c.fix;
    std::size_t start = 0;
    while (start <= fix.size()) {
      auto nl = fix.find('\n', start);
      ctx.out.line("        " +
                   fix.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
      if (nl == std::string::npos) {
        break;
      }
      start = nl + 1;
    }
  }
  ctx.out.document({{"ok", problems == 0}, {"problems", problems}, {"checks", items}});
  if (problems == 0) {
    ctx.out.line(fr ? "Tout est en ordre." : "All is well.");
    return 0;
  }
  ctx.out.line(fr ? fmt::format("{} problème{} à corriger.", problems, problems > 1 ? "s" : "")
                  : fmt::format("{} problem{} to fix.", problems, problems > 1 ? "s" : ""));
  return k_exit_invalid;
}

} // namespace

Command doctor_command()
{
  return Command{
      "doctor",
      "check Postfix and pli: each problem with the line that fixes it (exit 0: all is well)",
      StoreAccess::none,
      [](CLI::App& app) {
        app.add_option("--postfix-config", dargs.postfix_config,
                       "Postfix configuration directory (postconf -c DIR); default /etc/postfix");
        app.add_flag("--offline", dargs.offline,
                     "only the configuration: do not try the milter, linkd, store and keys");
      },
      run_doctor};
}

} // namespace pli::admin
