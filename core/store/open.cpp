// The store factory: the one place that turns a Spec into an LMDB or a PostgreSQL store.
#include "core/store/open.hpp"

namespace pli::store {

Result<std::unique_ptr<Store>> open(const Spec& spec)
{
  switch (spec.backend) {
  case Backend::lmdb:
    return open_lmdb(spec.lmdb);
  case Backend::postgresql:
    return open_postgresql(spec.pg);
  }
  return util::Error{Errc::invalid, "unknown store backend"};
}

} // namespace pli::store
