#include "sync/protocol.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>

#include "schema/sync.capnp.h"

namespace aidsync {
namespace {

kj::ArrayPtr<const kj::byte> Bytes(std::string_view s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}
std::string_view View(capnp::Data::Reader d) { return {reinterpret_cast<const char*>(d.begin()), d.size()}; }

void FillHeads(const std::vector<ChainHead>& heads, capnp::List<wire::ChainHead>::Builder out) {
  for (size_t i = 0; i < heads.size(); ++i) {
    const ChainHead& h = heads[i];
    auto b = out[i];
    b.setAuthor(Bytes(h.chain.author.view()));
    b.setScope(h.chain.scope);
    b.setTableClass(h.chain.cls == TableClass::kReference ? wire::TableClass::REFERENCE : wire::TableClass::CASE);
    b.setSeq(h.seq);
    b.setHead(Bytes(h.head.view()));
    b.setCount(h.count);
    b.setFingerprint(Bytes(h.fingerprint.view()));
  }
}

void FillBlobs(const std::vector<std::string>& blobs, capnp::List<capnp::Data>::Builder out) {
  for (size_t i = 0; i < blobs.size(); ++i) out.set(i, Bytes(blobs[i]));
}

Result<std::vector<ChainHead>> ReadHeads(capnp::List<wire::ChainHead>::Reader in, const ProtocolLimits& limits) {
  if (in.size() > limits.max_heads) return Status::Corruption("too many chain heads in one message");
  std::vector<ChainHead> heads;
  heads.reserve(in.size());
  for (auto r : in) {
    ChainHead h;
    ASSIGN_OR_RETURN(h.chain.author, PublicKey::FromBytes(View(r.getAuthor())));
    h.chain.scope = r.getScope();
    switch (r.getTableClass()) {
      case wire::TableClass::REFERENCE: h.chain.cls = TableClass::kReference; break;
      case wire::TableClass::CASE: h.chain.cls = TableClass::kCase; break;
      default: return Status::Corruption("chain head has an unknown table class");
    }
    h.seq = r.getSeq();
    ASSIGN_OR_RETURN(h.head, Digest::FromBytes(View(r.getHead())));
    h.count = r.getCount();
    ASSIGN_OR_RETURN(h.fingerprint, Digest::FromBytes(View(r.getFingerprint())));
    heads.push_back(std::move(h));
  }
  return heads;
}

Result<std::vector<std::string>> ReadRevocations(capnp::List<capnp::Data>::Reader in, const ProtocolLimits& limits) {
  if (in.size() > limits.max_revocations) return Status::Corruption("too many revocations in one message");
  std::vector<std::string> out;
  out.reserve(in.size());
  for (auto d : in) out.emplace_back(View(d));
  return out;
}

Result<std::optional<Digest>> ReadOptionalDigest(capnp::Data::Reader d) {
  if (d.size() == 0) return std::optional<Digest>();
  ASSIGN_OR_RETURN(Digest digest, Digest::FromBytes(View(d)));
  return std::optional<Digest>(digest);
}

std::vector<std::string> ReadBlobs(capnp::List<capnp::Data>::Reader in) {
  std::vector<std::string> out;
  out.reserve(in.size());
  for (auto d : in) out.emplace_back(View(d));
  return out;
}

// The changesets of a Push or Batch: the plain list, or the packed field
// unpacked. A sender uses one or the other, never both.
Result<std::vector<std::string>> ReadChangesets(capnp::List<capnp::Data>::Reader plain, capnp::Data::Reader packed,
                                                const ProtocolLimits& limits) {
  if (packed.size() == 0) {
    if (plain.size() > limits.max_changesets) return Status::Corruption("too many changesets in one message");
    return ReadBlobs(plain);
  }
  if (plain.size() != 0) return Status::Corruption("a message carries both plain and packed changesets");
  return Unpack(View(packed), UnpackLimits{limits.max_unpacked_bytes, limits.max_changesets});
}

static_assert(kAcceptsPacked == wire::ACCEPTS_PACKED, "sync/protocol.h and schema/sync.capnp disagree");

struct Encoder {
  wire::SyncMessage::Builder m;
  const EncodeOptions& options;

  // Into `packed` when the peer reads it and zstd succeeds, else the plain list.
  template <typename Builder>
  void SetChangesets(const std::vector<std::string>& changesets, Builder b) {
    if (options.packer != nullptr && !changesets.empty()) {
      auto packed = options.packer->Pack(changesets);
      if (packed.ok()) {
        b.setPacked(Bytes(*packed));
        return;
      }
    }
    FillBlobs(changesets, b.initChangesets(changesets.size()));
  }

  void operator()(const HelloMsg& h) {
    auto b = m.initHello();
    b.setCertificate(Bytes(h.certificate));
    b.setWallMs(h.wall_ms);
    if (h.digest) b.setDigest(Bytes(h.digest->view()));
    if (h.revocations_digest) b.setRevocationsDigest(Bytes(h.revocations_digest->view()));
    b.setAccepts(h.accepts);
  }
  void operator()(const WelcomeMsg& w) {
    auto b = m.initWelcome();
    b.setCertificate(Bytes(w.certificate));
    b.setWallMs(w.wall_ms);
    b.setUpToDate(w.up_to_date);
    FillHeads(w.heads, b.initHeads(w.heads.size()));
    if (w.revocations_digest) b.setRevocationsDigest(Bytes(w.revocations_digest->view()));
    if (!w.revocations.empty()) FillBlobs(w.revocations, b.initRevocations(w.revocations.size()));
    b.setAccepts(w.accepts);
  }
  void operator()(const PushMsg& p) {
    auto b = m.initPush();
    if (p.has_heads) FillHeads(p.heads, b.initHeads(p.heads.size()));
    FillBlobs(p.certificates, b.initCertificates(p.certificates.size()));
    SetChangesets(p.changesets, b);
    b.setMore(p.more);
    if (!p.revocations.empty()) FillBlobs(p.revocations, b.initRevocations(p.revocations.size()));
  }
  void operator()(const BatchMsg& p) {
    auto b = m.initBatch();
    FillBlobs(p.certificates, b.initCertificates(p.certificates.size()));
    SetChangesets(p.changesets, b);
    b.setMore(p.more);
    b.setApplied(p.applied);
    b.setRejected(p.rejected);
  }
  void operator()(const RefusedMsg& r) {
    auto b = m.initRefused();
    b.setReason(r.reason);
    b.setDetail(r.detail);
  }
  void operator()(const JoinMsg& j) {
    auto b = m.initJoin();
    b.setSecret(Bytes(j.secret.view()));
    b.setNodeKey(Bytes(j.node_key.view()));
    b.setSignature(kj::arrayPtr(j.signature.data(), j.signature.size()));
  }
  void operator()(const EnrolledMsg& e) {
    auto b = m.initEnrolled();
    b.setCertificate(Bytes(e.certificate));
    b.setHubCertificate(Bytes(e.hub_certificate));
    FillBlobs(e.revocations, b.initRevocations(e.revocations.size()));
  }
};

Result<SyncMsg> ReadMessage(wire::SyncMessage::Reader m, const ProtocolLimits& limits) {
  SyncMsg msg;
  msg.version = m.getProtocolVersion();
  msg.session = m.getSessionId();
  // Another version's message may hold kinds or fields we do not know: the
  // caller refuses it by version before looking at the body.
  if (msg.version != kProtocolVersion) return msg;
  switch (m.which()) {
    case wire::SyncMessage::HELLO: {
      auto h = m.getHello();
      HelloMsg out{std::string(View(h.getCertificate())), h.getWallMs(), std::nullopt, std::nullopt};
      ASSIGN_OR_RETURN(out.digest, ReadOptionalDigest(h.getDigest()));
      ASSIGN_OR_RETURN(out.revocations_digest, ReadOptionalDigest(h.getRevocationsDigest()));
      out.accepts = h.getAccepts();
      msg.body = std::move(out);
      break;
    }
    case wire::SyncMessage::WELCOME: {
      auto w = m.getWelcome();
      WelcomeMsg out{std::string(View(w.getCertificate())), w.getWallMs(), w.getUpToDate(), {}, {}, {}};
      ASSIGN_OR_RETURN(out.heads, ReadHeads(w.getHeads(), limits));
      ASSIGN_OR_RETURN(out.revocations_digest, ReadOptionalDigest(w.getRevocationsDigest()));
      ASSIGN_OR_RETURN(out.revocations, ReadRevocations(w.getRevocations(), limits));
      out.accepts = w.getAccepts();
      msg.body = std::move(out);
      break;
    }
    case wire::SyncMessage::PUSH: {
      auto p = m.getPush();
      PushMsg out;
      out.has_heads = p.hasHeads();
      ASSIGN_OR_RETURN(out.heads, ReadHeads(p.getHeads(), limits));
      out.certificates = ReadBlobs(p.getCertificates());
      ASSIGN_OR_RETURN(out.changesets, ReadChangesets(p.getChangesets(), p.getPacked(), limits));
      out.more = p.getMore();
      ASSIGN_OR_RETURN(out.revocations, ReadRevocations(p.getRevocations(), limits));
      msg.body = std::move(out);
      break;
    }
    case wire::SyncMessage::BATCH: {
      auto b = m.getBatch();
      BatchMsg out{ReadBlobs(b.getCertificates()), {}, b.getMore(), b.getApplied(), b.getRejected()};
      ASSIGN_OR_RETURN(out.changesets, ReadChangesets(b.getChangesets(), b.getPacked(), limits));
      msg.body = std::move(out);
      break;
    }
    case wire::SyncMessage::REFUSED: {
      auto r = m.getRefused();
      msg.body = RefusedMsg{r.getReason(), r.getDetail()};
      break;
    }
    case wire::SyncMessage::JOIN: {
      auto j = m.getJoin();
      JoinMsg out;
      if (j.getSecret().size() != out.secret.bytes.size()) return Status::Corruption("join secret is not 32 bytes");
      std::memcpy(out.secret.bytes.data(), j.getSecret().begin(), out.secret.bytes.size());
      ASSIGN_OR_RETURN(out.node_key, PublicKey::FromBytes(View(j.getNodeKey())));
      if (j.getSignature().size() != out.signature.size()) return Status::Corruption("join signature is not 64 bytes");
      std::memcpy(out.signature.data(), j.getSignature().begin(), out.signature.size());
      msg.body = std::move(out);
      break;
    }
    case wire::SyncMessage::ENROLLED: {
      auto e = m.getEnrolled();
      EnrolledMsg out{std::string(View(e.getCertificate())), std::string(View(e.getHubCertificate())), {}};
      ASSIGN_OR_RETURN(out.revocations, ReadRevocations(e.getRevocations(), limits));
      msg.body = std::move(out);
      break;
    }
    default:
      return Status::Corruption("message of an unknown kind (a newer protocol?)");
  }
  return msg;
}

}  // namespace

std::string EncodeMessage(const SyncMsg& msg, const EncodeOptions& options) {
  capnp::MallocMessageBuilder builder;
  auto m = builder.initRoot<wire::SyncMessage>();
  m.setProtocolVersion(msg.version);
  m.setSessionId(msg.session);
  std::visit(Encoder{m, options}, msg.body);
  auto words = capnp::messageToFlatArray(builder);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

Result<SyncMsg> DecodeMessage(std::string_view bytes, const ProtocolLimits& limits) {
  if (bytes.size() > limits.max_message_bytes)
    return Status::Corruption("message of " + std::to_string(bytes.size()) + " bytes is over the limit");
  if (bytes.size() < 8 || bytes.size() % 8 != 0) return Status::Corruption("message is not a whole Cap'n Proto message");
  auto words = kj::heapArray<capnp::word>(bytes.size() / 8);
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  capnp::ReaderOptions options;
  options.traversalLimitInWords = limits.traversal_limit_words;
  options.nestingLimit = limits.nesting_limit;
  try {
    capnp::FlatArrayMessageReader reader(words, options);
    if (reader.getEnd() != words.end()) return Status::Corruption("message has trailing bytes");
    return ReadMessage(reader.getRoot<wire::SyncMessage>(), limits);
  } catch (const kj::Exception& e) {
    return Status::Corruption(std::string("message is malformed: ") + e.getDescription().cStr());
  }
}

}  // namespace aidsync
