// The store a program's pli.yaml names (store.backend, store.path, store.url …), as a Spec
// for store::open, and what a program says and returns when it cannot open it at start.
#pragma once

#include "core/config/config.hpp"
#include "core/store/open.hpp"

#include <string>

namespace pli::store {

// The programs, each with its own LMDB options and its own PostgreSQL application_name.
enum class Program
{
  milter, // pli-milter: LMDB write_mostly and group commit
  linkd,  // pli-linkd: LMDB store.linkd_reserve_percent
  admin   // pli (the CLI, pli doctor)
};

// The Spec for `program` from `config`.
Spec spec_for(const config::Config& config, Program program);

// The one sentence a program prints (or logs) when the store does not open at start: the
// error's message, with where the store is (a URL without its password) unless it says it.
std::string open_failure(const Spec& spec, const util::Error& error);

// The daemons' exit status for that failure (sysexits). PostgreSQL: EX_CONFIG for what the
// configuration or the operator must fix (a bad URL, a schema absent, older or newer than
// the binary: Errc::invalid), EX_TEMPFAIL for what may pass by itself (the server
// unreachable: Errc::unavailable; I/O). LMDB: EX_TEMPFAIL, as ever.
int daemon_exit_status(const Spec& spec, const util::Error& error);

} // namespace pli::store
