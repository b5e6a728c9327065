// What both stores check of the records `pli store copy` hands them (store.hpp:
// MessageBundle, LooseRecord) before writing any of it. Private to core/store.
#pragma once

#include "core/store/store.hpp"

#include <set>
#include <string>
#include <vector>

namespace pli::store::detail {

// The blobs a bundle names: the original, the message's attachments, the replies'.
std::set<std::string> bundle_blob_names(const pb::Message& m,
                                        const std::vector<pb::Reply>& replies);

// A bundle no store could have written is Errc::invalid: a chain that does not verify, an
// event or a delivery of another message, a delivery missing, a blob that does not match
// its SHA-256, a text that is not UTF-8.
util::Status check_bundle(const MessageBundle& b);

// A loose record whose bytes do not read back as its kind's record is Errc::invalid.
util::Status check_loose(const LooseRecord& r);

// Two records with the same bytes.
bool same_record(const google::protobuf::Message& a, const google::protobuf::Message& b);

} // namespace pli::store::detail
