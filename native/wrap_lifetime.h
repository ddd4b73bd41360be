// How a ReaderWrap ends: the environment's teardown hook and the count of
// open uv handles (Teardown), Shutdown and the destructor, and the probes
// that tell whether the environment is stopping.
//
// The Reader is shut down by whichever comes first of close() from
// JavaScript (wrap_close.cc), garbage collection of the wrapper, or the
// environment's teardown (worker exit, process teardown). Shutdown stops and
// joins the reader thread before the uv handles are closed, so the thread can
// never send to a handle that is gone.
//
// The uv handles' close callbacks are code of this addon that libuv runs on
// a later turn of the loop. A worker that alone loaded the addon has it
// unloaded right after its environment's cleanup hooks; a close callback
// left for the loop's last run would then jump into unmapped memory. So
// teardown goes through an async cleanup hook (napi_add_async_cleanup_hook):
// it shuts the wrap down, and Node keeps running the loop until the hook is
// removed, which the last close callback does. The hook and the count of
// open handles live in a Teardown block of their own, since handles closed
// by GC or close() may outlive the wrap; the block goes when both the wrap
// and the hook are gone.
//
// Locking: none. All of it runs on the environment's own thread; the reader
// thread, the only other thread that touches a uv handle (uv_async_send),
// is joined in Shutdown before the handles are closed.
#pragma once

#include <napi.h>
#include <uv.h>

#include "reader_wrap.h"

namespace fan {

// Whether JavaScript can still run in `env`: not once it is stopping
// (process.exit() or worker.terminate()). Setting a property is one of the
// calls Node-API refuses then.
bool canRunJs(napi_env env);

// Whether `env` is stopping, asked on its own thread while JavaScript waits
// in a synchronous take() (see Reader::Interrupt). The probe's handles go
// with a scope of their own: a long wait asks many times.
bool envStopping(napi_env env);

// The environment's teardown hook and the uv handles' count (see above).
// Every uv handle's data points here, never at the wrap, which may be gone.
struct ReaderWrap::Teardown {
  napi_async_cleanup_hook_handle hook = nullptr;  // null once removed
  ReaderWrap* wrap = nullptr;                     // null once the wrap is destroyed
  int handlesOpen = 0;                            // made, close callback not yet run
  bool shutDown = false;                          // the wrap's Shutdown ran: no new handles

  // The environment is going away (worker exit, process teardown): shut
  // down; Node runs the loop until finishIfDone removes the hook.
  static void OnEnvTeardown(napi_async_cleanup_hook_handle, void* data) {
    auto* t = static_cast<Teardown*>(data);
    if (t->wrap)
      t->wrap->Shutdown();
    else
      t->finishIfDone();
  }

  template <typename Handle>
  static void Close(Handle* handle) {
    uv_close(reinterpret_cast<uv_handle_t*>(handle), [](uv_handle_t* h) {
      auto* t = static_cast<Teardown*>(h->data);
      delete reinterpret_cast<Handle*>(h);
      t->handlesOpen--;
      t->finishIfDone();
    });
  }

  // Removing the hook ends the environment's wait when it is tearing down,
  // and unregisters it otherwise. May delete this.
  void finishIfDone() {
    if (shutDown && handlesOpen == 0 && hook) {
      napi_async_cleanup_hook_handle h = hook;
      hook = nullptr;
      napi_remove_async_cleanup_hook(h);
    }
    if (!hook && !wrap) delete this;
  }
};

}  // namespace fan
