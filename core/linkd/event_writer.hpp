// One thread that appends the events pli-linkd's requests wait for (reads), all those
// pending at once in one store transaction: one commit and its fsyncs for every read waiting,
// however many, without a thread blocked per read. Each request learns its own outcome:
// when the shared append fails (a delivery purged meanwhile), each event of that batch is
// appended again on its own, so one bad event never fails the others.
//
// `done` runs on the writer thread after the commit (or the failure), never before: the
// answer that depends on it is sent only once the event is durable. It must be short (hand
// the rest of the work to another thread): the next batch waits for it.
#pragma once

#include "core/store/store.hpp"

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace pli::linkd {

class EventWriter
{
public:
  using Done = std::function<void(const std::optional<util::Error>& error)>;

  explicit EventWriter(store::Store& store);
  // Appends what is still queued, then stops.
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // Queues `event`; false (nothing done) once stop() was called: append it in place.
  bool submit(store::NewEvent event, Done done);
  // Appends what is queued; later submits are refused. The destructor stops too.
  void stop();

  // Batches committed so far and events in them (tests, metrics).
  std::uint64_t batches() const;

private:
  struct Item
  {
    store::NewEvent event;
    Done done;
  };
  void loop();
  void write(std::vector<Item>& batch);

  store::Store& m_store;
  mutable std::mutex m_mutex;
  std::condition_variable m_cv;
  std::vector<Item> m_queue;
  bool m_stopping = false;
  std::uint64_t m_batches = 0;
  std::thread m_thread; // last: started once the rest exists
};

} // namespace pli::linkd
