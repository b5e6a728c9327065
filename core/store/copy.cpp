// pli store copy (copy.hpp).
#include "core/store/copy.hpp"

#include "core/store/evidence.hpp"

#include <fmt/format.h>

namespace pli::store {

namespace {

bool stops(const util::Error& e)
{
  return e.code != Errc::conflict && e.code != Errc::invalid;
}

// The copy's events of `b`'s message must be the bundle's, one for one, and verify.
bool read_back(Store& to, const MessageBundle& b, std::string& why)
{
  auto events = to.events_of_message(b.message.id());
  if (!events) {
    why = events.error().message;
    return false;
  }
  if (events->size() != b.events.size()) {
    why = fmt::format("{} events in the copy, {} in the source", events->size(), b.events.size());
    return false;
  }
  for (std::size_t i = 0; i < events->size(); ++i) {
    if ((*events)[i].hash() != b.events[i].hash()) {
      why = fmt::format("event {} differs", i + 1);
      return false;
    }
  }
  if (!verify_chain(events.value())) {
    why = "its chain does not verify in the copy";
    return false;
  }
  for (const auto& d : b.deliveries) {
    auto mine = to.get_delivery(d.id());
    if (!mine || mine->status() != d.status()) {
      why = fmt::format("delivery {} differs", d.id());
      return false;
    }
  }
  return true;
}

} // namespace

Result<CopyReport> copy(Store& from, Store& to, const std::function<void(std::size_t)>& progress)
{
  CopyReport report;
  std::optional<util::Error> fatal;
  auto visited = from.export_messages([&](const MessageBundle& b) {
    ++report.messages;
    report.events += b.events.size();
    if (progress && report.messages % 1000 == 0) {
      progress(report.messages);
    }
    auto done = to.import_message(b);
    if (!done) {
      if (stops(done.error())) {
        fatal = done.error();
        return false;
      }
      report.problems.push_back(fmt::format("{}: {}", b.message.id(), done.error().message));
      return true;
    }
    switch (done.value()) {
    case Imported::added:
      ++report.added;
      break;
    case Imported::extended:
      ++report.extended;
      break;
    case Imported::same:
      ++report.same;
      break;
    }
    std::string why;
    if (read_back(to, b, why)) {
      ++report.verified;
    } else {
      report.problems.push_back(fmt::format("{}: {}", b.message.id(), why));
    }
    return true;
  });
  if (fatal) {
    return *fatal;
  }
  if (!visited) {
    return visited.error();
  }
  // Loose records after the messages: a token or a key names a delivery already copied.
  std::vector<LooseRecord> batch;
  auto flush = [&]() -> util::Status {
    auto written = to.import_loose(batch);
    batch.clear();
    if (!written) {
      return written.error();
    }
    report.loose_written += written.value();
    return util::ok_status();
  };
  auto loose = from.export_loose([&](const LooseRecord& r) {
    ++report.loose;
    batch.push_back(r);
    if (batch.size() >= 500) {
      if (auto st = flush(); !st) {
        fatal = st.error();
        return false;
      }
    }
    return true;
  });
  if (fatal) {
    return *fatal;
  }
  if (!loose) {
    return loose.error();
  }
  if (auto st = flush(); !st) {
    return st.error();
  }
  Query all;
  all.per_page = 1;
  auto a = from.list(all);
  if (!a) {
    return a.error();
  }
  auto b = to.list(all);
  if (!b) {
    return b.error();
  }
  report.source_deliveries = a->total;
  report.copy_deliveries = b->total;
  if (a->total != b->total) {
    report.problems.push_back(
        fmt::format("the source lists {} deliveries, the copy {}", a->total, b->total));
  }
  return report;
}

} // namespace pli::store
