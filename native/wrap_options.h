// Reading JavaScript's arguments into the native types: the options object of
// new Reader() and the rules of setScope(), as lib/ passes them.
#pragma once

#include <napi.h>

#include <vector>

#include "reader.h"
#include "scope.h"

namespace fan {

// ReaderOptions from new Reader()'s options object; what it leaves out keeps
// its default.
ReaderOptions parseOptions(const Napi::Object& o);
// Its `buffers` option: paths and names as Buffers (encoding: 'buffer').
bool parseBuffers(const Napi::Value& options);
// setScope's rules: [{ kind: 0 subtree | 1 children | 2 exact, path, mask }].
std::vector<ScopeRule> parseScopeRules(const Napi::Array& list);

}  // namespace fan
