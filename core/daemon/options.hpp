// The command line both daemons (pli-milter, pli-linkd) accept, parsed in one place:
// --config FILE, --foreground, --check-config, --help. Each daemon's main() is one call to
// daemon::main with its description and its run function.
#pragma once

#include "core/config/config.hpp"

#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace pli::daemon {

struct Options
{
  std::string config_file;   // --config; empty: $PLI_CONFIG, else /etc/pli/pli.yaml
  bool foreground = false;   // --foreground: stay in the foreground, log to stderr too
  bool check_config = false; // --check-config: check the config file and exit
};

struct Parsed
{
  std::optional<Options> options; // absent: exit with `exit_status`
  int exit_status = 0;            // 0 after --help; CLI11's status for a bad command line
};

// Parses the daemon's command line. --help writes the usage (headed by `description`) to
// `out` and gives no options and status 0; an unknown option or a missing value writes the
// reason to `err` and gives no options and CLI11's non-zero status (109 for an unexpected
// argument).
Parsed parse_options(const std::string& description, int argc, const char* const* argv,
                     std::ostream& out, std::ostream& err);

// A daemon's whole main(): parse_options (on stdout/stderr), load the config (exit 78 with
// the reason on stderr when it is unusable), stop there with 0 for --check-config, else
// return `run(config, foreground)`.
int main(const std::string& description, int argc, const char* const* argv,
         const std::function<int(const config::Config&, bool foreground)>& run);

} // namespace pli::daemon
