// The JavaScript face of the walker (walker.h): Reader.dirs(op, ...), one
// method of ReaderWrap for every use lib/marks.ts makes of directory sets.
//
//   dirs('new') -> id
//   dirs('walk', id, group, flags, mask, path, follow, collect)
//       -> [dir, name (Buffer), isDirectory, ...] when collect, else undefined
//   dirs('walkAsync', id, group, flags, mask, path, callback(err))
//       the same walk (follow false) on a walker thread of its own
//   dirs('size', id) -> number;  dirs('has', id, path) -> boolean
//   dirs('release', id, group, flags, bits, [otherId, bits, ...], [path, bits, ...])
//   dirs('cancel', id): stops the walks under way (waits for them to stop)
//   dirs('drop', id)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "errors.h"
#include "reader_wrap.h"
#include "walker.h"

namespace fan {

namespace {

uint64_t u64(const Napi::Value& v) { return static_cast<uint64_t>(v.As<Napi::Number>().Int64Value()); }

// A walk for AsyncFanotify: on a thread of its own, with its own duplicate
// of the group fd (a close() meanwhile cannot make the number mean
// another file), reporting back through a threadsafe function.
struct AsyncWalk {
  std::shared_ptr<DirSet> set;
  std::string root;
  DirSet::WalkOptions options;
  SysError err;
  bool ok = true;
};

}  // namespace

Napi::Value ReaderWrap::Dirs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string op = info[0].As<Napi::String>().Utf8Value();
  PathResolver& paths = reader_->paths();
  if (op == "new") return Napi::Number::New(env, paths.addDirSet());
  std::shared_ptr<DirSet> set = paths.dirSet(info[1].As<Napi::Number>().Int32Value());
  if (op == "drop") {
    paths.dropDirSet(info[1].As<Napi::Number>().Int32Value());
    return env.Undefined();
  }
  if (!set && op == "size") return Napi::Number::New(env, 0);  // dropped, or the reader closed
  if (!set && op == "has") return Napi::Boolean::New(env, false);
  if (!set) throwSysError(env, {ECANCELED, "fanotify_mark", ""});
  if (op == "size") return Napi::Number::New(env, static_cast<double>(set->size()));
  if (op == "cancel") {
    set->cancelAndWait();
    return env.Undefined();
  }
  if (op == "has") {
    struct stat st;
    std::string path = info[2].As<Napi::String>().Utf8Value();
    return Napi::Boolean::New(env, lstat(path.c_str(), &st) == 0 && set->has(st.st_dev, st.st_ino));
  }
  int groupFd = reader_->groupFd(info[2].As<Napi::Number>().Int32Value());
  if (groupFd < 0) throwSysError(env, {EBADF, "fanotify_mark", ""});
  unsigned flags = info[3].As<Napi::Number>().Uint32Value();
  uint64_t mask = u64(info[4]);
  if (op == "release") {
    std::unordered_map<std::string, uint64_t> keep;
    Napi::Array sets = info[5].As<Napi::Array>();
    for (uint32_t i = 0; i + 1 < sets.Length(); i += 2) {
      std::shared_ptr<DirSet> other = paths.dirSet(sets.Get(i).As<Napi::Number>().Int32Value());
      if (other && other != set) other->collectKeys(u64(sets.Get(i + 1)), keep);
    }
    Napi::Array targets = info[6].As<Napi::Array>();
    for (uint32_t i = 0; i + 1 < targets.Length(); i += 2) {
      struct stat st;
      std::string path = targets.Get(i).As<Napi::String>().Utf8Value();
      if (stat(path.c_str(), &st) == 0) keep[DirSet::inodeKey(st.st_dev, st.st_ino)] |= u64(targets.Get(i + 1));
    }
    set->release(groupFd, flags, mask, keep);
    return env.Undefined();
  }
  DirSet::WalkOptions options;
  options.groupFd = groupFd;
  options.flags = flags;
  options.mask = mask;
  std::string root = info[5].As<Napi::String>().Utf8Value();
  if (op == "walkAsync") {
    auto walk = std::make_shared<AsyncWalk>();
    walk->set = set;
    walk->root = root;
    walk->options = options;
    walk->options.groupFd = fcntl(groupFd, F_DUPFD_CLOEXEC, 0);
    if (walk->options.groupFd < 0) throwSysError(env, {errno, "fcntl", ""});
    Napi::ThreadSafeFunction done = Napi::ThreadSafeFunction::New(
        env, info[6].As<Napi::Function>(), "fanotify.walk", 0, 1);
    try {
      paths.startWalker([walk, done]() mutable {
        walk->ok = walk->set->walk(walk->root, walk->options, walk->err);
        close(walk->options.groupFd);  // before the callback: the walk is over
        done.BlockingCall([walk](Napi::Env env, Napi::Function callback) {
          callback.Call({walk->ok ? env.Null() : makeSysError(env, walk->err).Value()});
        });
        done.Release();
      });
    } catch (...) {
      close(walk->options.groupFd);
      done.Release();
      throw;
    }
    return env.Undefined();
  }
  options.follow = info[6].ToBoolean().Value();
  std::vector<DirSet::Found> found;
  if (info[7].ToBoolean().Value()) options.found = &found;
  SysError err;
  if (!set->walk(root, options, err)) throwSysError(env, err);
  if (!options.found) return env.Undefined();
  Napi::Array out = Napi::Array::New(env, found.size() * 3);
  uint32_t k = 0;
  for (const DirSet::Found& f : found) {
    out.Set(k++, Napi::String::New(env, f.dir));
    out.Set(k++, Napi::Buffer<char>::Copy(env, f.name.data(), f.name.size()));
    out.Set(k++, Napi::Boolean::New(env, f.isDirectory));
  }
  return out;
}

}  // namespace fan
