// Bundles (DESIGN 5): the changesets a named node may see, written to a file
// sealed to that node's key and carried by anyone (a USB stick); signatures
// make the contents safe to carry, sealing makes a lost stick leak nothing.
//
// File format (docs/FORMATS.md): a sealed stream (crypto/sealed_stream.h)
// whose frames each start with a tag byte: 1 = BundleHeader (Cap'n Proto,
// schema/bundle.capnp), 2 = a certificate, 3 = a changeset envelope. The
// header comes first, certificates before the changesets they vouch for,
// changesets in the sender's log order (every chain in order).
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "sync/replica.h"

namespace aidsync {

struct BundleCreateSummary {
  int64_t certificates = 0;
  int64_t revocations = 0;
  int64_t changesets = 0;
  int64_t bytes = 0;
};

// Writes a bundle for the node with station code `recipient_code` to
// `out_path` (mode 0600; written to a temporary name, fsynced, then linked to
// the final name, which never replaces an existing file: a half-written
// bundle never appears under the final name). Holds exactly the
// changesets that node may see. NotFound if no certificate for that code is
// known; AlreadyExists if out_path exists; IOError for the file system.
Result<BundleCreateSummary> CreateBundle(Replica& replica, const std::string& recipient_code,
                                         const std::string& out_path);

struct BundleApplySummary {
  ApplyReport report;               // summed over every batch
  int64_t certificates_rejected = 0;
  int64_t revocations = 0;          // new revocations stored
  int64_t revocations_rejected = 0; // revocations that did not verify (counted as bad_revocation)
};

// Limits on reading a bundle, which is untrusted input.
struct BundleReadOptions {
  // Changesets handed to the replica at a time: bounds memory.
  size_t batch_changesets = 512;
  // Largest frame: a changeset envelope plus its tag. Stops a forged length
  // from making the reader allocate without bound.
  size_t max_frame_bytes = 512 * 1024;
};

// Opens the bundle at `path` with this node's key and applies what it holds:
// certificates into the trust store, changesets through ApplyRemote (valid
// ones are applied even if others are rejected), all in one transaction that
// commits only once the whole stream has authenticated, so a damaged or
// truncated bundle changes nothing. NotFound if the file is missing; Corruption if it is
// not a bundle, was sealed to another key, or is truncated or tampered with;
// InvalidArgument if it was made for another station code.
Result<BundleApplySummary> ApplyBundle(Replica& replica, const std::string& path,
                                       const BundleReadOptions& options = {});

}  // namespace aidsync
