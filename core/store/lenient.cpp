// Refusing and repairing records whose text is not valid UTF-8 (see lenient.hpp).
#include "core/store/lenient.hpp"

#include "core/util/text.hpp"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>

#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

namespace pli::store {

namespace {

namespace gp = google::protobuf;

constexpr std::string_view k_damaged_field = "damaged_record";

std::string invalid_in(const gp::Message& m, const std::string& prefix)
{
  const gp::Reflection* r = m.GetReflection();
  std::vector<const gp::FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const auto* f : fields) {
    const std::string name = prefix + f->name();
    if (f->is_map()) {
      const auto* key = f->message_type()->map_key();
      const auto* value = f->message_type()->map_value();
      for (int i = 0; i < r->FieldSize(m, f); ++i) {
        const gp::Message& entry = r->GetRepeatedMessage(m, f, i);
        const gp::Reflection* er = entry.GetReflection();
        std::string k;
        if (key->type() == gp::FieldDescriptor::TYPE_STRING) {
          k = er->GetString(entry, key);
          if (!util::is_utf8(k)) {
            return name + " (a key)";
          }
        }
        if (value->type() == gp::FieldDescriptor::TYPE_STRING &&
            !util::is_utf8(er->GetString(entry, value))) {
          return name + "[" + util::clean_line(k, 40) + "]";
        }
      }
    } else if (f->type() == gp::FieldDescriptor::TYPE_STRING) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(m, f); ++i) {
          if (!util::is_utf8(r->GetRepeatedStringReference(m, f, i, nullptr))) {
            return name;
          }
        }
      } else {
        std::string scratch;
        if (!util::is_utf8(r->GetStringReference(m, f, &scratch))) {
          return name;
        }
      }
    } else if (f->type() == gp::FieldDescriptor::TYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(m, f); ++i) {
          if (auto bad = invalid_in(r->GetRepeatedMessage(m, f, i), name + "."); !bad.empty()) {
            return bad;
          }
        }
      } else if (auto bad = invalid_in(r->GetMessage(m, f), name + "."); !bad.empty()) {
        return bad;
      }
    }
  }
  return "";
}

// The records' file with every `string` field made `bytes` (map entries become plain
// repeated messages, whose keys may then be bytes too): the same wire format, parsed without
// any UTF-8 check.
class LenientPool
{
public:
  static LenientPool& get()
  {
    static LenientPool pool;
    return pool;
  }

  // The lenient twin of `d`, or nullptr.
  const gp::Descriptor* twin(const gp::Descriptor* d)
  {
    std::lock_guard lock(m_mu);
    if (m_files.insert(d->file()->name()).second) {
      gp::FileDescriptorProto fp;
      d->file()->CopyTo(&fp);
      for (auto& m : *fp.mutable_message_type()) {
        loosen(m);
      }
      // Its dependencies (none today) would have to be built first.
      m_pool.BuildFile(fp);
    }
    return m_pool.FindMessageTypeByName(d->full_name());
  }

  std::unique_ptr<gp::Message> make(const gp::Descriptor* twin)
  {
    std::lock_guard lock(m_mu);
    const gp::Message* proto = m_factory.GetPrototype(twin);
    return std::unique_ptr<gp::Message>(proto == nullptr ? nullptr : proto->New());
  }

private:
  static void loosen(gp::DescriptorProto& m)
  {
    m.mutable_options()->clear_map_entry();
    for (auto& f : *m.mutable_field()) {
      if (f.type() == gp::FieldDescriptorProto::TYPE_STRING) {
        f.set_type(gp::FieldDescriptorProto::TYPE_BYTES);
      }
    }
    for (auto& n : *m.mutable_nested_type()) {
      loosen(n);
    }
  }

  std::mutex m_mu;
  std::set<std::string> m_files;
  gp::DescriptorPool m_pool;
  gp::DynamicMessageFactory m_factory{&m_pool};
};

// Repairs, in `twin` (a lenient message), every field that is a `string` in `original`.
// Returns true when something changed.
bool repair(gp::Message& twin, const gp::Descriptor* original)
{
  bool changed = false;
  const gp::Reflection* r = twin.GetReflection();
  std::vector<const gp::FieldDescriptor*> fields;
  r->ListFields(twin, &fields);
  for (const auto* f : fields) {
    const gp::FieldDescriptor* of = original->FindFieldByNumber(f->number());
    if (of == nullptr) {
      continue;
    }
    if (of->type() == gp::FieldDescriptor::TYPE_STRING) {
      for (int i = 0; f->is_repeated() && i < r->FieldSize(twin, f); ++i) {
        const std::string& v = r->GetRepeatedStringReference(twin, f, i, nullptr);
        if (!util::is_utf8(v)) {
          r->SetRepeatedString(&twin, f, i, util::to_utf8(v));
          changed = true;
        }
      }
      if (!f->is_repeated()) {
        std::string scratch;
        const std::string& v = r->GetStringReference(twin, f, &scratch);
        if (!util::is_utf8(v)) {
          r->SetString(&twin, f, util::to_utf8(v));
          changed = true;
        }
      }
    } else if (of->type() == gp::FieldDescriptor::TYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(twin, f); ++i) {
          changed |= repair(*r->MutableRepeatedMessage(&twin, f, i), of->message_type());
        }
      } else {
        changed |= repair(*r->MutableMessage(&twin, f), of->message_type());
      }
    }
  }
  return changed;
}

} // namespace

// protobuf logs every string field that is not UTF-8 to stderr as it refuses it; the store
// says what happened instead (Errc::invalid, a repaired read), so those lines are dropped
// and every other protobuf message still goes to stderr.
void quiet_utf8_logs()
{
  static std::once_flag once;
  std::call_once(once, [] {
    gp::SetLogHandler([](gp::LogLevel level, const char* file, int line, const std::string& m) {
      if (m.find("invalid UTF-8 data") != std::string::npos) {
        return;
      }
      std::fprintf(stderr, "[libprotobuf %s %s:%d] %s\n",
                   level >= gp::LOGLEVEL_ERROR ? "ERROR" : "WARNING", file, line, m.c_str());
    });
  });
}

std::string first_invalid_text(const gp::Message& m)
{
  return invalid_in(m, "");
}

bool parse_lenient(std::string_view bytes, gp::Message& out)
{
  quiet_utf8_logs();
  out.Clear();
  if (out.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return true;
  }
  auto& pool = LenientPool::get();
  const gp::Descriptor* twin = pool.twin(out.GetDescriptor());
  auto loose = twin == nullptr ? nullptr : pool.make(twin);
  if (!loose || !loose->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return false;
  }
  if (!repair(*loose, out.GetDescriptor())) {
    return false; // refused for another reason than its text
  }
  if (!out.ParseFromString(loose->SerializeAsString())) {
    return false;
  }
  if (const auto* f = out.GetDescriptor()->FindFieldByName(std::string(k_damaged_field));
      f != nullptr && f->type() == gp::FieldDescriptor::TYPE_BYTES && !f->is_repeated()) {
    out.GetReflection()->SetString(&out, f, std::string(bytes));
  }
  return true;
}

} // namespace pli::store
