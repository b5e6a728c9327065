// Move-only owners for GLib/GObject handles (GMime objects, g_malloc'd strings).
//
// GObjectPtr<T> holds one reference and drops it with g_object_unref; GCharPtr holds a
// g_malloc'd string and frees it with g_free. Both are std::unique_ptr, so they are
// move-only, and get()/release()/reset() work as usual.
#pragma once

#include <glib-object.h>
#include <glib.h>

#include <memory>

namespace pli::util {

struct GObjectUnref
{
  void operator()(gpointer object) const noexcept
  {
    if (object != nullptr) {
      g_object_unref(object);
    }
  }
};

template <typename T> using GObjectPtr = std::unique_ptr<T, GObjectUnref>;

// Takes ownership of a reference the caller already holds (a *_new() or "transfer full"
// return). Returns an empty pointer when `object` is null.
template <typename T> GObjectPtr<T> adopt_gobject(T* object) noexcept
{
  return GObjectPtr<T>(object);
}

// Adds a reference to a borrowed ("transfer none") object and owns that new reference.
template <typename T> GObjectPtr<T> ref_gobject(T* object) noexcept
{
  if (object != nullptr) {
    g_object_ref(object);
  }
  return GObjectPtr<T>(object);
}

struct GFree
{
  void operator()(gpointer p) const noexcept { g_free(p); }
};

// A g_malloc'd C string (e.g. from g_mime_text_part_get_text, g_utf8_casefold).
using GCharPtr = std::unique_ptr<char, GFree>;

} // namespace pli::util
