// The store: messages, deliveries, events, link tokens, content-addressed blobs
// (originals and attachments, stored once by SHA-256), consultations, and the
// indexes that serve `pli list`.
//
// Store is an interface; LmdbStore (lmdb_store_impl.hpp) is the embedded implementation,
// PgStore (postgresql.hpp) the shared one; open.hpp chooses from the configuration.
// Every write is one durable transaction: when a write returns ok, it is on disk.
// Events are append-only and chained: each holds the hash of the previous event of
// its message (see evidence.hpp).
#pragma once

#include "core/model/model.hpp"
#include "core/store/records.pb.h"
#include "core/util/result.hpp"
#include "core/util/time.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pli::store {

enum class Errc
{
  not_found = 1,
  full = 2,     // the store's map is full: the milter tempfails
  io = 3,       // any other storage failure
  conflict = 4, // a record that must be new already exists
  invalid = 5,  // a record that cannot be decoded (schema version unknown, corrupt bytes)
  // The database server cannot be reached or dropped the connection (PostgreSQL): nothing
  // was written; the same call succeeds once it is back (milter 451, linkd 503, CLI 74).
  unavailable = 6,
};

} // namespace pli::store
PLI_ERROR_CODE_ENUM(pli::store, Errc, "pli.store", "not found", "store full", "storage failure",
                    "already exists", "undecodable record", "database unavailable");
namespace pli::store {
template <typename T> using Result = util::Result<T>;

// A new message with its deliveries, as the milter records it in one transaction.
struct NewMessage
{
  pb::Message message;                      // id, sent_at ... filled; delivery_ids filled by caller
  std::vector<pb::Delivery> deliveries;     // each with id, recipient, token_hash, idempotency_key
  std::map<std::string, std::string> blobs; // sha256 hex -> bytes (original, attachments)
};

// A mail to send after a commit (the transactional outbox, notify/outbox.hpp): `queue` is the
// program that sends it ("milter" | "linkd"), `kind` its type, `payload` what it needs to
// rebuild itself (never a bearer secret: links are minted when the mail is sent).
struct Job
{
  std::string queue;
  std::string kind;
  std::string payload;
};

// A job taken by claim_jobs: the lease (due_at = now + lease) keeps it from every other
// claimer until it ends.
struct ClaimedJob
{
  std::uint64_t id = 0;
  Job job;
  std::uint32_t attempts = 0; // this claim included
  util::Micros created_at = 0;
  util::Micros due_at = 0;
};

struct NewEvent
{
  std::string delivery; // delivery id
  model::EventKind kind;
  util::Micros at = 0;
  std::map<std::string, std::string> detail;
  // When not empty, an event already recorded under the same key is not recorded again
  // (duplicate DSNs); the check and the write are one transaction.
  std::string dedupe_key;
  // Queued in the same transaction, only when the event is recorded (an event skipped by its
  // dedupe_key queues nothing).
  std::optional<Job> job = std::nullopt;
};

// A recipient's reply with its attachments' bytes and the sender's link token (hashed).
struct NewReply
{
  pb::Reply reply;                          // id, delivery, message, at, text ... filled
  std::map<std::string, std::string> blobs; // sha256 hex -> bytes (attachments)
  util::Micros token_expires_at = 0;        // reply.token_hash's validity
  // Appended in the same transaction (linkd's `reply` event): a reply is never recorded
  // without its event, nor the event without its reply.
  std::vector<NewEvent> events;
};

struct Query
{
  std::vector<model::Status> statuses; // any of them; empty = all
  std::optional<model::MessageType> type;
  std::string recipient;             // substring, case-insensitive
  std::string sender;                // substring, case-insensitive
  std::vector<std::string> senders;  // exact envelope senders, any of them (rights of the
                                     // buyers' area); case-insensitive; empty = all
  std::string consultation;          // exact reference
  std::string keywords;              // every word must start a word of subject or body,
                                     // ignoring case and accents
  std::optional<util::Micros> since; // sent_at >= since
  std::optional<util::Micros> until; // sent_at < until
  std::size_t page = 1;              // 1-based
  std::size_t per_page = 10;
};

struct ListItem
{
  pb::Delivery delivery;
  pb::Message message;
};

enum class PurgeMode
{
  dry_run,
  apply
};

struct PurgeResult
{
  std::vector<std::string> messages; // ids of the purged messages, oldest first
  std::size_t deliveries = 0;
  std::size_t events = 0;
  std::size_t tokens = 0;
  std::size_t replies = 0;
  std::size_t blobs_deleted = 0;
  std::size_t blobs_kept = 0; // still referenced by a remaining message or reply
};

enum class CheckMode
{
  report, // reads every record, changes nothing
  repair, // also rewrites the records that can be repaired (one transaction)
};

// A record that the strict parser refuses (see lenient.hpp).
struct DamagedRecord
{
  std::string database;    // "events", "replies" ...
  std::string key;         // printable: an event's key is "MESSAGE/SEQ", others as stored
  std::string reason;      // one sentence
  bool repairable = false; // only its text is at fault: readable repaired
  bool repaired = false;   // rewritten by this check (CheckMode::repair)
};

struct CheckResult
{
  std::size_t records = 0;            // records read
  std::size_t repaired_earlier = 0;   // readable, carrying the bytes of an earlier repair
  std::vector<DamagedRecord> damaged; // in database and key order
  // Messages with a damaged event, and whether their chain verifies (after the repair, or as
  // read repaired): message id -> verifies.
  std::map<std::string, bool> chains;
};

struct ListResult
{
  std::size_t total = 0;
  std::vector<ListItem> items; // the page, newest first
};

// `pli store copy`: everything of one message as stored, from one store to another.
struct MessageBundle
{
  pb::Message message;                      // with its bodies
  std::vector<pb::Delivery> deliveries;     // in the message's delivery_ids order
  std::vector<pb::Event> events;            // oldest first, as recorded (seq, hashes)
  std::vector<pb::Reply> replies;           // of every delivery
  std::map<std::string, std::string> blobs; // sha256 hex -> bytes: the original, the
                                            // attachments, the replies' attachments
};

// The records a bundle does not hold: every link token (a retried message's extra ones,
// the buyers' links to replies), every idempotency and event dedupe key, the consultations
// and the buyers' area credentials.
struct LooseRecord
{
  enum class Kind
  {
    token = 1,        // key: token hash, value: pb::Token bytes
    key = 2,          // key: idempotency or "event:" dedupe key, value: delivery id
    consultation = 3, // key: reference, value: pb::Consultation bytes
    credential = 4,   // key: credential key, value: pb::Credential bytes
  };
  Kind kind = Kind::token;
  std::string key;
  std::string value;
};

enum class Imported
{
  added,    // the message was not there
  extended, // it was, with a prefix of the bundle's events: the rest was added
  same,     // already there, identical
};

class Store
{
public:
  virtual ~Store() = default;

  // Records a message, its deliveries, their tokens and the blobs, atomically.
  // Errors: full, io, conflict (an id already exists). Taken by value: a caller that moves
  // it in lets the store free the bodies and blobs once copied into the transaction.
  virtual Result<util::Unit> create_message(NewMessage m) = 0;

  // Appends events (each to its delivery's message chain) and updates statuses
  // and indexes, in one transaction. Returns the stored events (without the
  // duplicates skipped through dedupe_key).
  // Errors: not_found (unknown delivery), full, io.
  virtual Result<std::vector<pb::Event>> append_events(const std::vector<NewEvent>& events) = 0;

  // Adds another link token for an existing delivery (a retried message whose first
  // notice may or may not have left). Errors: not_found, conflict, full, io.
  virtual Result<util::Unit> add_token(const std::string& delivery, const std::string& token_hash,
                                       util::Micros expires_at) = 0;

  // Adds a sender's link token (purpose 2) for an existing reply: pli-linkd mints it when it
  // sends the reply notice, so that no bearer link waits on disk. Errors: not_found,
  // conflict, full, io.
  virtual Result<util::Unit> add_reply_token(const std::string& reply,
                                             const std::string& token_hash,
                                             util::Micros expires_at) = 0;

  // Lookups. Errors: not_found, invalid, io.
  virtual Result<pb::Message> get_message(const std::string& id) = 0;
  virtual Result<pb::Delivery> get_delivery(const std::string& id) = 0;
  virtual Result<std::string> get_blob(const std::string& sha256_hex) = 0;
  virtual Result<pb::Token> get_token(const std::string& token_hash_hex) = 0;
  // Resolves a Message-ID header (without <>) to the message id.
  virtual Result<std::string> find_by_message_id(const std::string& message_id) = 0;
  // The delivery recorded under an idempotency key (Message-ID or content hash + recipient).
  virtual Result<std::string> find_by_idempotency_key(const std::string& key) = 0;
  // All events of a message, oldest first.
  virtual Result<std::vector<pb::Event>> events_of_message(const std::string& message_id) = 0;
  // Waits at most `max` for delivery `id` to be recorded as sent (its sent_at set: a delivery
  // report can come back before the host that injected the notice has committed its `sent`).
  // Woken by the commits themselves, never by polling: those of this process (LMDB), those
  // of any host (PostgreSQL: LISTEN/NOTIFY). Returns the delivery as last read, sent or not.
  // Errors: those of get_delivery.
  virtual Result<pb::Delivery> wait_for_sent(const std::string& id,
                                             std::chrono::milliseconds max) = 0;

  // Records a reply, its blobs and the sender's token (purpose 2), adds it to its
  // delivery's reply_ids, and appends NewReply::events, in one transaction.
  // Errors: not_found (unknown delivery), conflict (id or token exists), full, io.
  virtual Result<util::Unit> create_reply(const NewReply& r) = 0;
  // Errors: not_found, invalid, io.
  virtual Result<pb::Reply> get_reply(const std::string& id) = 0;

  virtual Result<util::Unit> put_consultation(const pb::Consultation& c) = 0;
  virtual Result<pb::Consultation> get_consultation(const std::string& reference) = 0;

  // One row per delivery matching the query, newest first, one page of it.
  virtual Result<ListResult> list(const Query& q) = 0;
  // Visits every delivery matching the query (page and per_page ignored), newest first;
  // `fn` returns false to stop. Returns how many were visited. Errors: io.
  virtual Result<std::size_t> for_each(const Query& q,
                                       const std::function<bool(const ListItem&)>& fn) = 0;

  // Retention: removes the messages sent before `before` with their deliveries, events,
  // tokens, replies and index entries, and the blobs no remaining message or reply refers
  // to, in one transaction. With PurgeMode::dry_run nothing changes; the result says what
  // would go. Errors: full, io.
  virtual Result<PurgeResult> purge(util::Micros before, PurgeMode mode) = 0;

  // Walks every record of every database, reports those the strict parser refuses (text not
  // valid UTF-8 written by an older pli, corrupt bytes, an unknown schema version) and with
  // CheckMode::repair rewrites those whose only fault is their text, repaired as lenient.hpp
  // says (the original bytes kept in damaged_record; an event's hash still recomputes).
  // Errors: full, io.
  virtual Result<CheckResult> check(CheckMode mode) = 0;

  // The buyers' area (pli-linkd): login links and sessions (credentials.hpp), each under a
  // key naming its kind and the SHA-256 of its random secret. put_credential records a new
  // one and removes expired ones (expires_at <= now) in the same transaction.
  // Errors: conflict (the key exists), full, io.
  virtual Result<util::Unit> put_credential(const std::string& key, const pb::Credential& c,
                                            util::Micros now) = 0;
  // Errors: not_found, invalid, io.
  virtual Result<pb::Credential> get_credential(const std::string& key) = 0;
  // Reads and removes it in one transaction (a login link is used once; logout).
  // Errors: not_found, invalid, io.
  virtual Result<pb::Credential> take_credential(const std::string& key) = 0;

  // Rate limits that every process and host on the store shares (pli-linkd's replicas): one
  // more failure under `key` in the window [window_start, window_end); returns the window's
  // count so far, this one included. Windows that ended are removed now and then. LMDB keeps
  // them in this process only (one host). Errors: io, unavailable.
  virtual Result<std::uint64_t> count_failure(const std::string& key, util::Micros window_start,
                                              util::Micros window_end) = 0;

  // The outbox (notify/outbox.hpp). Jobs are not evidence: purge and `pli store copy` leave
  // them. enqueue: a job with no event (a login link); returns its id. Errors: full, io,
  // unavailable.
  virtual Result<std::uint64_t> enqueue(const Job& job, util::Micros now) = 0;
  // Up to `max` jobs of `queue` due at `now` (due_at <= now), oldest due first, each leased:
  // due_at = now + lease and attempts + 1, in one transaction, so that no other claimer gets
  // them until the lease ends (a job whose claimer died is claimed again after it). Takes no
  // write transaction when nothing is due. Errors: io, unavailable.
  virtual Result<std::vector<ClaimedJob>> claim_jobs(const std::string& queue, util::Micros now,
                                                     util::Micros lease, std::size_t max) = 0;
  // Removes a job (sent, nothing to send, or given up); a job already gone is fine.
  // Errors: io, unavailable.
  virtual Result<util::Unit> finish_job(std::uint64_t id) = 0;
  // A job to try again at `due_at` (its lease ends then). Errors: not_found, io, unavailable.
  virtual Result<util::Unit> retry_job(std::uint64_t id, util::Micros due_at) = 0;
  // Every job of `queue` ("" = all), without claiming them (pli doctor, tests).
  // Errors: io, unavailable.
  virtual Result<std::vector<ClaimedJob>> list_jobs(const std::string& queue) = 0;

  // Copy between stores (`pli store copy`). Visits every message's bundle, oldest message
  // first, each read in one consistent snapshot; `fn` returns false to stop. Returns how
  // many were visited. Errors: invalid (a record that cannot be read), io, unavailable.
  virtual Result<std::size_t>
  export_messages(const std::function<bool(const MessageBundle&)>& fn) = 0;
  // Visits every loose record. Errors: invalid, io, unavailable.
  virtual Result<std::size_t> export_loose(const std::function<bool(const LooseRecord&)>& fn) = 0;
  // Writes a bundle read from another store, in one transaction, with its indexes: a
  // message not here is added whole; one whose events are a prefix of the bundle's
  // (copied earlier, before more happened) gets the missing events and replies and its
  // deliveries' new states; an identical one is left alone. The bundle's hash chain must
  // verify. Errors: invalid (a chain that does not verify), conflict (the two stores
  // disagree on this message: nothing is overwritten), full, io, unavailable.
  virtual Result<Imported> import_message(const MessageBundle& b) = 0;
  // Writes the loose records this store does not hold (a consultation is replaced by the
  // copy's); returns how many were written. A token or key already here for another
  // delivery is a conflict (nothing of the batch written). Errors: conflict, invalid, full,
  // io, unavailable.
  virtual Result<std::size_t> import_loose(const std::vector<LooseRecord>& batch) = 0;
};

struct OpenOptions
{
  std::string path; // directory of the environment
  std::uint64_t map_size_mb = 4096;
  bool read_only = false;
  // Bulk loading only (bench/pli-seed): commits are not synced to disk one by one; the
  // operating system writes them back later (a system crash may lose the last ones).
  // Never for the daemons or the CLI.
  bool no_sync = false;
  // A process that writes much and reads little of what it writes (pli-milter): no
  // read-ahead (MDB_NORDAHEAD), and once its resident size passes 32 MB the store's pages
  // are unmapped from the process (they stay in the page cache), checked after each write of
  // a group commit and after the commit. The kernel maps up to 64 KB around every page a
  // read touches, and LMDB's copy-on-write moves the pages it touches across the whole
  // file, so the process's mapped part would otherwise grow to the size of the store.
  bool write_mostly = false;
  // Group commit (see create_message): when the previous group had several writers, the
  // next group's leader waits up to this long for as many to join before it writes, so
  // that more writes share one commit and its two syncs (0: never waits). Each sync costs
  // CPU as well as time on a virtual machine's disk: with 2 ms, pli-milter under 10 SMTP
  // sessions went from 1.6 to about 2.5 writes per commit, and registered 4 KB mail gained
  // about 10 % (interleaved runs of bench/bench.sh's row; nothing measurable at 100 KB).
  std::uint32_t group_wait_us = 0;
  // Share of the map this process never fills (pli-linkd: store.linkd_reserve_percent), so
  // that another (pli-milter) can still write: append_events, create_reply, add_token and
  // put_credential fail with `full` ("the store keeps its last N MB for registered mail")
  // when the pages in use (the map's high-water mark minus LMDB's free list) plus the
  // write's estimated size would reach (map size - reserve). 0: no reserve.
  std::uint32_t reserve_percent = 0;
};

// Opens (creating when needed) the LMDB environment at `options.path`.
// Errors: io (with the reason), invalid.
Result<std::unique_ptr<Store>> open_lmdb(const OpenOptions& options);

// Words of a text for the keyword index: lower-case, accents removed, split on
// anything that is not a letter or digit; words shorter than 2 characters dropped.
std::vector<std::string> index_words(const std::string& text, std::size_t max_words = 5000);

} // namespace pli::store
