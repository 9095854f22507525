// The seed generators of tests/fuzz/make_corpus.cc, one per fuzz target, split
// over two files to keep each short. Each returns its target's seeds: file
// name -> input bytes, made from real objects of the fuzz county.
#pragma once

#include <map>
#include <string>

#include "tests/fuzz/fuzz_county.h"

namespace aidsync::fuzz {

using Seeds = std::map<std::string, std::string>;

// make_corpus_sync.cc: the targets whose seeds are sync traffic.
Seeds SyncMessageSeeds(County& county);
Seeds ChangesetSeeds(County& county);
Seeds BundleSeeds(County& county);

}  // namespace aidsync::fuzz
