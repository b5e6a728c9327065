// pli export [--since DATE] [--format csv|json] [-o FILE]: every delivery, for archiving.
#include "core/cli/export.hpp"
#include "admin-cli/cli.hpp"
#include "core/cli/views.hpp"
#include "core/receipt/pdf.hpp"

#include <fmt/format.h>

#include <iostream>
#include <optional>
#include <sstream>

namespace pli::admin {

namespace {

struct Args
{
  std::string since, format = "csv", output;
} args;

int run_export(Context& ctx)
{
  if (args.format != "csv" && args.format != "json") {
    throw Failure(k_exit_usage, fmt::format("--format is csv or json, not '{}'", args.format));
  }
  store::Query q;
  if (!args.since.empty()) {
    q.since = parse_date(ctx.config, "--since", args.since);
  }
  const auto& tz = ctx.config.organisation.timezone;
  std::ostringstream buffer;
  std::ostream& out = args.output.empty() ? std::cout : buffer;
  const bool json = args.format == "json" || ctx.json;
  std::size_t n = 0;
  std::string cached_message;
  std::vector<store::pb::Event> cached_events;
  std::optional<std::string> cached_error;
  std::size_t unreadable = 0; // messages whose events could not be read
  if (json) {
    out << "{\"format_version\":" << cli::k_format_version
        << ",\"exported_at\":" << nlohmann::json(util::format_iso(util::now_micros(), tz)).dump()
        << ",\"items\":[";
  } else {
    out << cli::k_utf8_bom << cli::csv_header();
  }
  auto visited = checked(ctx.store->for_each(q, [&](const store::ListItem& item) {
    if (json) {
      if (item.message.id() != cached_message) {
        auto ev = ctx.store->events_of_message(item.message.id());
        cached_events = ev ? std::move(ev.value()) : std::vector<store::pb::Event>{};
        cached_error = ev ? std::nullopt : std::optional<std::string>(ev.error().message);
        cached_message = item.message.id();
        if (cached_error) {
          ++unreadable;
          std::cerr << fmt::format("pli: the events of message {} cannot be read: {}\n",
                                   item.message.id(), *cached_error);
        }
      }
      auto j = cli::export_item(item, cached_events, tz);
      if (cached_error) {
        j["events"] = nullptr; // never an empty list that looks like "nothing happened"
        j["events_error"] = *cached_error;
      }
      out << (n == 0 ? "\n" : ",\n")
          << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
      out << cli::csv_row(item, tz);
    }
    ++n;
    return static_cast<bool>(out);
  }));
  if (json) {
    out << "\n],\"total\":" << visited << "}\n";
  }
  if (!args.output.empty()) {
    if (auto st = receipt::write_file_atomic(args.output, buffer.str()); !st) {
      throw Failure(k_exit_cant_create, st.error().message);
    }
    std::cerr << fmt::format("pli: {} rows written to {}\n", visited, args.output);
  }
  if (unreadable > 0) {
    throw Failure(k_exit_store, fmt::format("the events of {} message(s) could not be read (their "
                                            "items say events_error); see pli store check",
                                            unreadable));
  }
  return 0;
}

} // namespace

Command export_command()
{
  return Command{"export", "every delivery as CSV (UTF-8 with BOM) or JSON, for archiving",
                 StoreAccess::read,
                 [](CLI::App& app) {
                   app.add_option("--since", args.since, "sent on or after DATE (YYYY-MM-DD)");
                   app.add_option("--format", args.format, "csv (default) or json");
                   app.add_option("-o,--output", args.output, "write to FILE instead of stdout");
                 },
                 run_export};
}

} // namespace pli::admin
