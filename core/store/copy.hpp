// `pli store copy`: everything of one store written into another (LMDB to PostgreSQL when a
// site moves to several hosts, PostgreSQL to LMDB for a backup that reads without a
// server), then checked: every message's events and hash chain read back from the copy,
// and the totals of both stores compared. Safe to re-run: what is already there is left
// alone, a message that gained events since is extended (store.hpp, import_message).
#pragma once

#include "core/store/store.hpp"

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace pli::store {

struct CopyReport
{
  std::size_t messages = 0; // bundles read from the source
  std::size_t added = 0;
  std::size_t extended = 0;
  std::size_t same = 0;
  std::size_t events = 0;        // events of the messages read
  std::size_t loose = 0;         // tokens, keys, consultations, credentials read
  std::size_t loose_written = 0; // of which written (absent from the copy)
  // Messages that could not be copied (a chain that does not verify, the two stores
  // disagreeing), one sentence each; the others are copied all the same.
  std::vector<std::string> problems;
  // The check after the copy: messages whose events and chain read back identical.
  std::size_t verified = 0;
  std::size_t source_deliveries = 0; // totals of `list` with no filter, per store
  std::size_t copy_deliveries = 0;
  bool ok() const { return problems.empty() && verified == messages; }
};

// Copies `from` into `to`. `progress` (may be empty) is called with the number of messages
// read so far, every 1,000. Errors: those that stop the copy (io, full, unavailable of
// either store); a message that cannot be copied is a problem in the report instead.
Result<CopyReport> copy(Store& from, Store& to,
                        const std::function<void(std::size_t)>& progress = {});

} // namespace pli::store
