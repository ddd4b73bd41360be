// How a ReaderWrap ends (see wrap_lifetime.h): Shutdown, the destructor, and
// whether the environment is stopping.
#include "wrap_lifetime.h"

namespace fan {

bool canRunJs(napi_env env) {
  napi_value object;
  napi_value value;
  return napi_create_object(env, &object) == napi_ok && napi_get_boolean(env, true, &value) == napi_ok &&
         napi_set_named_property(env, object, "probe", value) == napi_ok;
}

bool envStopping(napi_env env) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return true;
  const bool running = canRunJs(env);
  napi_close_handle_scope(env, scope);
  return !running;
}

ReaderWrap::~ReaderWrap() {
  Shutdown();
  if (!teardown_) return;
  teardown_->wrap = nullptr;
  teardown_->finishIfDone();  // deletes it unless handles are still closing
  teardown_ = nullptr;
}

void ReaderWrap::Shutdown(std::vector<int>* later) {
  // Stop polling before the reader closes the fds the polls watch.
  for (uv_poll_t* poll : permissionPolls_) {
    uv_poll_stop(poll);
    Teardown::Close(poll);
  }
  permissionPolls_.clear();
  // Joins the reader thread and answers every pending permission event.
  if (reader_) reader_->close(later);
  if (async_) {
    Teardown::Close(async_);
    async_ = nullptr;
  }
  if (!callback_.IsEmpty()) callback_.Reset();
  if (!numbers_.IsEmpty()) numbers_.Reset();
  if (!teardown_) return;
  teardown_->shutDown = true;
  teardown_->finishIfDone();  // the wrap is alive: this never deletes it
}

}  // namespace fan
