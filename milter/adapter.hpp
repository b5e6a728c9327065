// pli-milter's libmilter adapter: trampolines from libmilter callbacks to
// pli::milter::Engine. No exception crosses into libmilter.
#pragma once

#include "core/config/config.hpp"

namespace pli::milter {

// Runs the milter until it is stopped (SIGTERM/SIGINT). Returns the process exit status.
int run(const config::Config& config, bool foreground);

} // namespace pli::milter
