#include "core/linkd/event_writer.hpp"

namespace pli::linkd {

EventWriter::EventWriter(store::Store& store) : m_store(store), m_thread([this] { loop(); }) {}

EventWriter::~EventWriter()
{
  stop();
}

void EventWriter::stop()
{
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_cv.notify_all();
  if (m_thread.joinable()) {
    m_thread.join();
  }
}

bool EventWriter::submit(store::NewEvent event, Done done)
{
  {
    std::lock_guard lock(m_mutex);
    if (m_stopping) {
      return false;
    }
    m_queue.push_back(Item{std::move(event), std::move(done)});
  }
  m_cv.notify_one();
  return true;
}

std::uint64_t EventWriter::batches() const
{
  std::lock_guard lock(m_mutex);
  return m_batches;
}

void EventWriter::loop()
{
  std::vector<Item> batch;
  std::unique_lock lock(m_mutex);
  for (;;) {
    m_cv.wait(lock, [this] { return m_stopping || !m_queue.empty(); });
    if (m_queue.empty()) {
      return; // stopping, nothing left
    }
    batch.swap(m_queue); // everything pending: the requests that came during the last commit
    ++m_batches;
    lock.unlock();
    write(batch);
    batch.clear();
    lock.lock();
  }
}

void EventWriter::write(std::vector<Item>& batch)
{
  std::vector<store::NewEvent> events;
  events.reserve(batch.size());
  for (const auto& item : batch) {
    events.push_back(item.event);
  }
  auto all = m_store.append_events(events);
  if (all || batch.size() == 1) {
    const std::optional<util::Error> error =
        all ? std::nullopt : std::optional<util::Error>(all.error());
    for (auto& item : batch) {
      item.done(error);
    }
    return;
  }
  // Nothing of this batch was written: each on its own, each with its own outcome.
  for (auto& item : batch) {
    auto one = m_store.append_events({item.event});
    item.done(one ? std::nullopt : std::optional<util::Error>(one.error()));
  }
}

} // namespace pli::linkd
