#include "sync/bundle.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <fcntl.h>
#include <kj/exception.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/durable_file.h"
#include "crypto/sealed_stream.h"
#include "schema/bundle.capnp.h"
#include "schema/canonical.h"

namespace aidsync {
namespace {

enum FrameTag : char { kHeader = 1, kCertificate = 2, kChangeset = 3, kRevocation = 4 };
constexpr uint32_t kBundleFormatVersion = 1;

// Closes the FILE on every path.
struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

std::string EncodeHeader(const Replica& replica, const std::string& recipient_code, int64_t now_ms) {
  capnp::MallocMessageBuilder message;
  auto h = message.initRoot<wire::BundleHeader>();
  h.setFormatVersion(kBundleFormatVersion);
  auto key = replica.identity().key.view();
  h.setSenderKey(kj::arrayPtr(reinterpret_cast<const kj::byte*>(key.data()), key.size()));
  h.setSenderCode(replica.identity().code);
  h.setRecipientCode(recipient_code);
  h.setCreatedAtMs(now_ms);
  return std::string(1, kHeader) + SerializeCanonical(h.asReader());
}

struct Header {
  std::string recipient_code;
  std::string sender_code;
};

Result<Header> DecodeHeader(std::string_view frame) {
  if (frame.empty() || frame[0] != kHeader) return Status::Corruption("bundle does not start with its header");
  frame.remove_prefix(1);
  if (frame.size() > 4096) return Status::Corruption("bundle header is too large");
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 512;  // a header is a few words: refuse amplification
  options.nestingLimit = 4;
  ASSIGN_OR_RETURN(auto message, CanonicalMessage::Parse(frame, options, "bundle header"));
  try {
    auto h = message->Root<wire::BundleHeader>();
    if (h.getFormatVersion() != kBundleFormatVersion)
      return Status::Corruption("bundle format version " + std::to_string(h.getFormatVersion()) +
                                " is not supported by this aidsync");
    return Header{h.getRecipientCode(), h.getSenderCode()};
  } catch (const kj::Exception& e) {
    return Status::Corruption(std::string("bundle header is malformed: ") + e.getDescription().cStr());
  }
}

Result<File> OpenPrivateOutput(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return Status::AlreadyExists(path + " already exists");
    return Status::IOError("cannot create " + path + ": " + std::strerror(errno));
  }
  std::FILE* f = ::fdopen(fd, "wb");
  if (f == nullptr) {
    ::close(fd);
    return Status::IOError("cannot open " + path + ": " + std::strerror(errno));
  }
  return File(f);
}

// Reads every frame; `fn` sees each after the header (tag byte included).
Status ForEachFrame(Replica& replica, const std::string& path, const BundleReadOptions& options,
                    const std::function<Status(std::string_view frame)>& fn) {
  File in(std::fopen(path.c_str(), "rb"));
  if (!in) {
    if (errno == ENOENT) return Status::NotFound("no bundle at " + path);
    return Status::IOError("cannot open bundle " + path + ": " + std::strerror(errno));
  }
  SealedStreamOptions sealed;
  sealed.max_frame_bytes = options.max_frame_bytes;
  auto reader = SealedStreamReader::Open(in.get(), replica.identity_key(), sealed);
  if (!reader.ok())
    return Status::Corruption("bundle " + path + " cannot be opened with this node's key (" +
                              reader.status().message() + ")");
  auto first = (*reader)->Next();
  if (!first.ok()) return first.status().WithContext("bundle " + path);
  if (!first->has_value()) return Status::Corruption("bundle " + path + " is empty");
  std::string header_frame = std::move(**first);
  ASSIGN_OR_RETURN(Header header, DecodeHeader(header_frame));
  if (header.recipient_code != replica.identity().code)
    return Status::InvalidArgument("bundle " + path + " was made for station " + header.recipient_code +
                                   ", not this node (" + replica.identity().code + ")");
  while (true) {
    auto frame = (*reader)->Next();
    if (!frame.ok()) return frame.status().WithContext("bundle " + path);
    if (!frame->has_value()) return Status::OK();
    RETURN_IF_ERROR(fn(**frame));
  }
}

}  // namespace

Result<BundleCreateSummary> CreateBundle(Replica& replica, const std::string& recipient_code,
                                         const std::string& out_path) {
  ASSIGN_OR_RETURN(std::optional<Certificate> recipient, replica.CertificateByCode(recipient_code));
  if (!recipient) return Status::NotFound("no enrolled node with station code " + recipient_code + " is known here");
  // CertificateByCode prefers the newest certificate of a live key; it names
  // a revoked key only when every key of the code is revoked, and a bundle
  // sealed to that key would hand the records to whoever holds it now.
  ASSIGN_OR_RETURN(std::optional<Revocation> revoked, replica.RevocationOf(recipient->fields().node_key));
  if (revoked)
    return Status::Unauthorized("station code " + recipient_code + "'s key was revoked by the county; enrol its "
                                "replacement key before making it a bundle");
  const std::string scope = recipient->fields().scope;
  const std::string tmp = out_path + ".partial";
  ::unlink(tmp.c_str());  // a leftover of an interrupted earlier attempt
  ASSIGN_OR_RETURN(File out, OpenPrivateOutput(tmp));
  BundleCreateSummary summary;
  Status st = [&]() -> Status {
    ASSIGN_OR_RETURN(auto writer,
                     SealedStreamWriter::Start(out.get(), recipient->fields().node_key, *replica.env().random));
    RETURN_IF_ERROR(writer->Write(EncodeHeader(replica, recipient_code, replica.env().clock->NowMillis())));
    ASSIGN_OR_RETURN(std::vector<std::string> certs, replica.CertificatesVisibleTo(scope));
    for (const auto& cert : certs) {
      RETURN_IF_ERROR(writer->Write(std::string(1, kCertificate) + cert));
      ++summary.certificates;
    }
    // Revocations before changesets: they decide which changesets are valid.
    ASSIGN_OR_RETURN(std::vector<std::string> revocations, replica.Revocations());
    for (const auto& r : revocations) {
      RETURN_IF_ERROR(writer->Write(std::string(1, kRevocation) + r));
      ++summary.revocations;
    }
    RETURN_IF_ERROR(replica.ForEachChangesetVisibleTo(scope, [&](std::string_view envelope) -> Status {
      ++summary.changesets;
      summary.bytes += static_cast<int64_t>(envelope.size());
      return writer->Write(std::string(1, kChangeset) + std::string(envelope));
    }));
    RETURN_IF_ERROR(writer->Finish());
    if (std::fflush(out.get()) != 0 || ::fsync(::fileno(out.get())) != 0)
      return Status::IOError("cannot write " + tmp + ": " + std::strerror(errno));
    return Status::OK();
  }();
  out.reset();
  if (st.ok() && ::link(tmp.c_str(), out_path.c_str()) != 0) {
    st = errno == EEXIST ? Status::AlreadyExists(out_path + " already exists")
                         : Status::IOError("cannot create " + out_path + ": " + std::strerror(errno));
  }
  ::unlink(tmp.c_str());
  if (st.ok()) st = SyncParentDirectory(out_path);
  if (!st.ok()) return st;
  return summary;
}

Result<BundleApplySummary> ApplyBundle(Replica& replica, const std::string& path,
                                       const BundleReadOptions& options) {
  // One pass in one transaction: frames are authenticated as they are read,
  // and a damaged or truncated bundle rolls back everything it applied.
  BundleApplySummary summary;
  std::vector<std::string> batch;
  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::OK();
    RETURN_IF_ERROR(replica.ApplyRemoteBatch(batch, &summary.report));
    batch.clear();
    return Status::OK();
  };
  RETURN_IF_ERROR(replica.InWriteTransaction([&]() -> Status {
    RETURN_IF_ERROR(ForEachFrame(replica, path, options, [&](std::string_view frame) -> Status {
      if (frame.empty()) return Status::Corruption("bundle holds an empty frame");
      switch (frame[0]) {
        case kCertificate: {
          RETURN_IF_ERROR(flush());  // certificates vouch for the changesets after them
          auto added = replica.AddCertificate(frame.substr(1));
          if (!added.ok()) {
            // Our own store failing is not the bundle's fault.
            if (added.status().code() == Status::Code::kIOError || added.status().code() == Status::Code::kBusy)
              return added.status();
            ++summary.certificates_rejected;
          } else if (*added) {
            ++summary.report.certificates;
          }
          return Status::OK();
        }
        case kRevocation: {
          RETURN_IF_ERROR(flush());
          auto added = replica.AddRevocation(frame.substr(1));
          if (!added.ok()) {
            const Status::Code code = added.status().code();
            if (code == Status::Code::kIOError || code == Status::Code::kBusy) return added.status();
            ++summary.revocations_rejected;
            RETURN_IF_ERROR(replica.CountRejectedInput("bad_revocation"));
          } else if (*added) {
            ++summary.revocations;
          }
          return Status::OK();
        }
        case kChangeset:
          batch.emplace_back(frame.substr(1));
          return batch.size() >= options.batch_changesets ? flush() : Status::OK();
        default:
          return Status::Corruption("bundle holds a frame of unknown kind");
      }
    }));
    return flush();
  }));
  return summary;
}

}  // namespace aidsync
