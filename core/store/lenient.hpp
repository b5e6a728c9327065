// Records whose text is not valid UTF-8: refusing them on write, reading them back.
//
// Records are proto3 messages: protobuf's parser refuses a `string` field that is not valid
// UTF-8 (serialising only logs). Versions of pli before this check could store such a record
// (a user agent `Mozilla\xff\xfe` in a read event), which then made every read of it fail.
//
// Writes: every write path checks its records with first_invalid_text() and refuses them
// with Errc::invalid. Reads: a record that the strict parser refuses is parsed again by
// parse_lenient(), with every `string` field read as bytes and repaired (util::to_utf8:
// each ill-formed sequence becomes U+FFFD); the record then carries its original bytes in
// `damaged_record`, so that callers can say it was repaired and the original stays
// available. An event repaired so keeps its hash: canonical_event_json() writes invalid
// UTF-8 as U+FFFD exactly as util::to_utf8 does, so the chain still verifies. `pli store
// check --repair` rewrites such records in their repaired form (damaged_record kept).
#pragma once

#include <google/protobuf/message.h>

#include <string>
#include <string_view>

namespace pli::store {

// The name of the first `string` field of `m` (nested messages, repeated fields and maps
// included) that is not valid UTF-8, e.g. "detail[user_agent]"; "" when every text is valid.
std::string first_invalid_text(const google::protobuf::Message& m);

// Parses `bytes` into `out` (cleared first), repairing the text fields that are not valid
// UTF-8, and sets `out`'s `damaged_record` field (when it has one) to `bytes` if anything was
// repaired. Returns false when `bytes` is not a record of that type even so (corrupt bytes).
bool parse_lenient(std::string_view bytes, google::protobuf::Message& out);

// Drops protobuf's log lines about strings that are not UTF-8 (the store reports them as
// values instead); other protobuf messages still go to stderr. Called by open_lmdb, before
// the daemons' threads start (protobuf's SetLogHandler is not thread-safe); idempotent.
void quiet_utf8_logs();

} // namespace pli::store
