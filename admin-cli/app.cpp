#include "admin-cli/cli.hpp"

#include "core/store/configured.hpp"

#include "core/util/encoding.hpp"
#include "core/util/time.hpp"

#include <fmt/format.h>

#include <iostream>

namespace pli::admin {

std::string human(const config::Config& c, util::Micros t)
{
  return t == 0 ? std::string() : util::format_human(t, c.organisation.timezone);
}

util::Micros parse_date(const config::Config& c, const std::string& option,
                        const std::string& value)
{
  auto t = util::parse_local(value, c.organisation.timezone);
  if (!t) {
    throw Failure(k_exit_usage,
                  fmt::format("{} needs a date like 2024-01-31 or \"2024-01-31 14:00\", not '{}'",
                              option, value));
  }
  return *t;
}

std::string resolve_message(store::Store& st, const std::string& id, std::string* delivery)
{
  // Only "not found" moves on to the next kind of id: a record that cannot be read (corrupt,
  // newer schema, I/O) is a store error (exit 74), never "no such id".
  auto missing = [](const util::Error& e) { return e.code == store::Errc::not_found; };
  auto m = st.get_message(id);
  if (m) {
    return id;
  }
  if (!missing(m.error())) {
    throw Failure(k_exit_store, fmt::format("cannot read '{}': {}", id, m.error().message));
  }
  auto d = st.get_delivery(id);
  if (d) {
    if (delivery != nullptr) {
      *delivery = id;
    }
    return d->message();
  }
  if (!missing(d.error())) {
    throw Failure(k_exit_store, fmt::format("cannot read '{}': {}", id, d.error().message));
  }
  std::string mid = id;
  if (mid.size() > 2 && mid.front() == '<' && mid.back() == '>') {
    mid = mid.substr(1, mid.size() - 2);
  }
  auto found = st.find_by_message_id(mid);
  if (found) {
    return found.value();
  }
  if (!missing(found.error())) {
    throw Failure(k_exit_store, fmt::format("cannot read '{}': {}", id, found.error().message));
  }
  throw Failure(k_exit_unknown_id, fmt::format("no message or delivery '{}' (give a message id, "
                                               "a delivery id or a Message-ID)",
                                               id));
}

store::pb::Delivery resolve_delivery(store::Store& st, const std::string& id,
                                     const std::string& recipient)
{
  std::string only;
  const std::string mid = resolve_message(st, id, &only);
  if (!only.empty() && recipient.empty()) {
    return checked(st.get_delivery(only));
  }
  auto m = checked(st.get_message(mid));
  std::vector<store::pb::Delivery> matches;
  for (const auto& did : m.delivery_ids()) {
    auto d = checked(st.get_delivery(did));
    if (recipient.empty() || util::ascii_lower(d.recipient()) == util::ascii_lower(recipient)) {
      matches.push_back(std::move(d));
    }
  }
  if (matches.empty()) {
    throw Failure(k_exit_unknown_id,
                  fmt::format("message {} has no recipient '{}'", mid, recipient));
  }
  if (matches.size() > 1) {
    std::string list;
    for (const auto& d : matches) {
      list += (list.empty() ? "" : ", ") + d.recipient();
    }
    throw Failure(k_exit_usage, fmt::format("message {} has {} recipients ({}): choose one with "
                                            "--recipient",
                                            mid, matches.size(), list));
  }
  return matches.front();
}

namespace {

const std::vector<Command>& commands()
{
  static const std::vector<Command> table = {
      show_command(),
      list_command(),
      receipt_command(),
      verify_command(),
      consultation_set_command(),
      revoke_command(),
      export_command(),
      purge_command(),
      keygen_command(),
      check_config_command(),
      doctor_command(),
      store_check_command(),
      store_migrate_schema_command(),
      store_copy_command(),
  };
  return table;
}

} // namespace

int run(int argc, char** argv)
{
  CLI::App app{"pli: find registered mail exchanges, follow their events, issue receipts"};
  app.require_subcommand(0, 1);
  std::string config_file;
  app.add_option("--config", config_file, "config file (default $PLI_CONFIG or /etc/pli/pli.yaml)");
  bool check_flag = false;
  app.add_flag("--check-config", check_flag, "same as the check-config command");
  bool json = false;

  std::vector<std::pair<CLI::App*, const Command*>> parsers;
  std::map<std::string, CLI::App*> groups;
  for (const auto& c : commands()) {
    CLI::App* parent = &app;
    std::string name = c.name;
    if (auto space = name.find(' '); space != std::string::npos) {
      std::string group = name.substr(0, space);
      auto it = groups.find(group);
      if (it == groups.end()) {
        CLI::App* g = app.add_subcommand(group, group + " commands");
        g->require_subcommand(1);
        it = groups.emplace(group, g).first;
      }
      parent = it->second;
      name = name.substr(space + 1);
    }
    CLI::App* sub = parent->add_subcommand(name, c.help);
    c.declare(*sub);
    if (sub->get_option_no_throw("--json") == nullptr) {
      sub->add_flag("--json", json, "JSON output");
    }
    parsers.emplace_back(sub, &c);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    for (char& c : what) {
      c = c == '\n' ? ' ' : c;
    }
    std::cerr << "pli: " << what << " (see pli --help)\n";
    return k_exit_usage;
  }
  const Command* chosen = nullptr;
  for (const auto& [sub, c] : parsers) {
    if (sub->parsed() || (check_flag && c->name == "check-config")) {
      chosen = c;
    }
  }
  if (chosen == nullptr) {
    std::cerr << "pli: a command is needed (see pli --help)\n";
    return k_exit_usage;
  }
  auto config = config::load_or_exit(config::resolve_path(config_file));
  auto printer = cli::make_printer(json ? cli::Format::json : cli::Format::text, std::cout);
  try {
    std::unique_ptr<store::Store> st;
    if (chosen->access != StoreAccess::none) {
      const auto spec = store::spec_for(config, store::Program::admin);
      auto s = store::open(spec);
      if (!s) {
        // PostgreSQL: a bad URL or a schema to migrate is the operator's to fix (78); the
        // server unreachable, like any store error, 74.
        const bool fix =
            spec.backend == store::Backend::postgresql && s.error().code == store::Errc::invalid;
        throw Failure(fix ? k_exit_config : k_exit_store, store::open_failure(spec, s.error()));
      }
      st = std::move(s.value());
    }
    Context ctx{config, st.get(), *printer, json};
    int rc = chosen->run(ctx);
    std::cout.flush();
    return rc;
  } catch (const Failure& f) {
    std::cout.flush();
    std::cerr << "pli: " << cli::terminal_safe(f.what(), true) << "\n";
    return f.status;
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "pli: " << cli::terminal_safe(e.what(), true) << "\n";
    return k_exit_store;
  }
}

} // namespace pli::admin
