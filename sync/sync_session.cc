#include "sync/sync_session.h"

#include <algorithm>

namespace aidsync {
namespace {

int64_t Now(Replica& replica) { return replica.env().clock->NowMillis(); }

std::function<bool(const Digest&)> Holds(Replica& replica) {
  return [&replica](const Digest& id) {
    auto held = replica.HoldsChangeset(id);
    return held.ok() && *held;
  };
}

// How many changesets `theirs` holds that `ours` lacks, chain by chain (an
// estimate for status: forks may make it slightly high).
int64_t MissingFrom(const std::vector<ChainHead>& ours, const std::vector<ChainHead>& theirs) {
  std::map<ChainId, uint64_t> have;
  for (const auto& h : ours) have[h.chain] = h.count;
  int64_t missing = 0;
  for (const auto& h : theirs) {
    uint64_t mine = have.count(h.chain) ? have[h.chain] : 0;
    if (h.count > mine) missing += static_cast<int64_t>(h.count - mine);
  }
  return missing;
}

// The stored record of the peer holding `cert` (a fresh one if it is new),
// with its identity refreshed from the certificate.
PeerRecord PeerFor(Replica& replica, const CertificateFields& cert) {
  PeerRecord peer;
  auto known = replica.Peer(cert.node_key.Hex());
  if (known.ok() && known->has_value()) peer = **known;
  peer.id = cert.node_key.Hex();
  peer.name = cert.name;
  peer.code = cert.code;
  return peer;
}

}  // namespace

Status AbsorbRevocations(Replica& replica, const std::vector<std::string>& revocations) {
  for (const auto& bytes : revocations) {
    auto added = replica.AddRevocation(bytes);
    if (added.ok()) continue;
    const Status::Code code = added.status().code();
    if (code != Status::Code::kCorruption && code != Status::Code::kBadSignature &&
        code != Status::Code::kUnauthorized && code != Status::Code::kInvalidArgument)
      return added.status();  // our own store failed: not the sender's fault
    RETURN_IF_ERROR(replica.CountRejectedInput("bad_revocation"));
  }
  return Status::OK();
}

Status AbsorbBatch(Replica& replica, const std::vector<std::string>& certificates,
                   const std::vector<std::string>& changesets, ApplyReport* report) {
  for (const auto& cert : certificates) {
    // A certificate that does not verify is simply not trusted; the
    // changesets it was meant to vouch for are then rejected as unknown_author.
    auto added = replica.AddCertificate(cert);
    if (!added.ok()) {
      // Our own store failing is not the sender's fault.
      if (added.status().code() == Status::Code::kIOError || added.status().code() == Status::Code::kBusy)
        return added.status();
      RETURN_IF_ERROR(replica.CountRejectedInput("bad_certificate"));
    } else if (*added) {
      ++report->certificates;
    }
  }
  if (changesets.empty()) return Status::OK();
  ASSIGN_OR_RETURN(ApplyReport r, replica.ApplyRemote(changesets));
  report->applied += r.applied;
  report->duplicates += r.duplicates;
  report->held += r.held;
  report->rejected += r.rejected;
  for (auto& s : r.rejections) report->rejections.push_back(std::move(s));
  return Status::OK();
}

// ---- OutgoingStream ----------------------------------------------------------

int64_t OutgoingStream::pending() const {
  int64_t n = 0;
  for (size_t i = index_; i < gaps_.size(); ++i) n += static_cast<int64_t>(gaps_[i].missing);
  return n;
}

Status OutgoingStream::Next(Replica& replica, size_t max_bytes, std::vector<std::string>* changesets,
                            std::vector<std::string>* certificates, bool* more) {
  size_t bytes = 0;
  while (index_ < gaps_.size() && bytes < max_bytes) {
    const ChainGap& gap = gaps_[index_];
    // ReadChain returns at least one changeset if any remains, even one over
    // the budget; such a one waits for the next batch unless this one is
    // still empty, so a batch never overshoots max_bytes (the reply must
    // cross a slow link within the heartbeat timeout, PROTOCOL.md 7.1).
    ASSIGN_OR_RETURN(auto rows, replica.ReadChain(gap, after_, max_bytes - bytes));
    if (rows.empty()) {
      ++index_;
      after_ = {};
      continue;
    }
    if (!changesets->empty() && rows.front().envelope.size() > max_bytes - bytes) break;
    // The author's certificate goes before its first changeset (DESIGN 5).
    if (certified_.insert(gap.chain.author).second) {
      ASSIGN_OR_RETURN(std::optional<Certificate> cert, replica.CertificateByKey(gap.chain.author));
      if (cert) certificates->push_back(cert->bytes());
    }
    for (auto& row : rows) {
      bytes += row.envelope.size();
      after_ = row.at;
      changesets->push_back(std::move(row.envelope));
    }
  }
  *more = index_ < gaps_.size();
  return Status::OK();
}

// ---- SyncClient --------------------------------------------------------------

SyncClient::SyncClient(Replica& replica, Certificate server, std::string address, uint64_t session_id,
                       SyncOptions options)
    : replica_(replica),
      server_(std::move(server)),
      address_(std::move(address)),
      session_id_(session_id),
      options_(options),
      packer_(options.pack_level) {
  peer_ = PeerFor(replica_, server_.fields());
  known_address_ = peer_.address.empty() ? address_ : peer_.address;
  peer_.address = address_;
}

std::string SyncClient::Send(SyncMsg msg) {
  msg.session = session_id_;
  std::string bytes = EncodeMessage(msg, EncodeOptions{peer_reads_packed_ ? &packer_ : nullptr});
  ++stats_.messages_sent;
  stats_.bytes_sent += static_cast<int64_t>(bytes.size());
  return bytes;
}

Result<std::string> SyncClient::Start() {
  ASSIGN_OR_RETURN(std::optional<Certificate> own, replica_.CertificateByKey(replica_.identity().key));
  if (!own) return Status::Unauthorized("this node has no certificate yet: enrol it first");
  ASSIGN_OR_RETURN(my_heads_, replica_.HeadsVisibleTo(server_.fields().scope));
  ASSIGN_OR_RETURN(my_revocations_, replica_.RevocationsDigest());
  started_ms_ = Now(replica_);
  HelloMsg hello{own->bytes(), Now(replica_), HeadsDigest(my_heads_), my_revocations_,
                 options_.packing ? kAcceptsPacked : 0};
  state_ = State::kAwaitWelcome;
  return Send(SyncMsg{kProtocolVersion, session_id_, std::move(hello)});
}

Status SyncClient::Finish(const std::string& error) {
  if (state_ != State::kDone) {
    // One history record per session, however it ended (for the timeline).
    (void)replica_.RecordSession({peer_.id, started_ms_, Now(replica_), false, stats_.changesets_sent,
                                  stats_.changesets_received, stats_.bytes_sent, stats_.bytes_received, error});
  }
  state_ = State::kDone;
  peer_.last_error = error;
  // The address is recorded once a session there succeeded: a mistyped
  // endpoint must not replace the one that works.
  if (!error.empty()) peer_.address = known_address_;
  if (error.empty()) {
    complete_ = true;
    peer_.last_sync_ms = Now(replica_);
    peer_.pending_in = 0;
    peer_.pending_out = 0;
  }
  return replica_.SavePeer(peer_);
}

void SyncClient::RecordFailure(const std::string& error) { (void)Finish(error); }

Result<std::optional<std::string>> SyncClient::OnReply(std::string_view reply) {
  ++stats_.messages_received;
  stats_.bytes_received += static_cast<int64_t>(reply.size());
  auto fail = [&](Status st) -> Result<std::optional<std::string>> {
    (void)Finish(st.message());
    return st;
  };
  auto msg = DecodeMessage(reply, options_.limits);
  if (!msg.ok()) return fail(msg.status().WithContext("reply from " + peer_.name));
  if (msg->version != kProtocolVersion)
    return fail(Status::Unavailable(peer_.name + " speaks protocol version " + std::to_string(msg->version) +
                                    ", this node " + std::to_string(kProtocolVersion)));
  // A refusal may come before the server could read our session id (0).
  if (auto* refused = std::get_if<RefusedMsg>(&msg->body); refused && (msg->session == session_id_ || msg->session == 0))
    return fail(Status::Unavailable(peer_.name + " refused the session: " + refused->reason + " (" +
                                    refused->detail + ")"));
  if (msg->session != session_id_) return fail(Status::Corruption("a reply for another session"));
  peer_.last_seen_ms = Now(replica_);
  if (state_ == State::kAwaitWelcome) {
    if (auto* welcome = std::get_if<WelcomeMsg>(&msg->body)) {
      auto next = OnWelcome(*welcome);
      if (!next.ok()) return fail(next.status());
      return next;
    }
  } else if (state_ == State::kExchanging) {
    if (auto* batch = std::get_if<BatchMsg>(&msg->body)) {
      auto next = OnBatch(*batch);
      if (!next.ok()) return fail(next.status());
      return next;
    }
  }
  return fail(Status::Corruption(peer_.name + " sent a message out of sequence"));
}

Result<std::optional<std::string>> SyncClient::OnWelcome(const WelcomeMsg& welcome) {
  ASSIGN_OR_RETURN(Certificate cert, Certificate::Parse(welcome.certificate, replica_.identity().authority));
  if (!(cert.fields().node_key == server_.fields().node_key))
    return Status::Unauthorized("the node that answered is " + cert.fields().name + ", not " +
                                server_.fields().name);
  // Revocations first: they decide which of the changesets to come are valid,
  // and whether this peer may be talked to at all.
  RETURN_IF_ERROR(AbsorbRevocations(replica_, welcome.revocations));
  ASSIGN_OR_RETURN(std::optional<Revocation> revoked, replica_.RevocationOf(cert.fields().node_key));
  if (revoked)
    return Status::Unauthorized(cert.fields().name + "'s key was revoked by the county; this node no longer syncs with it");
  // What this node sends goes by the newest certificate it holds for the
  // server's key: a newer one in the welcome is learnt (and replaces the one
  // the session started with), an older one is refused like a client's.
  RETURN_IF_ERROR(replica_.AddCertificate(cert.bytes()).status());
  ASSIGN_OR_RETURN(std::optional<Certificate> newest, replica_.CertificateByKey(cert.fields().node_key));
  if (!newest) return Status::Corruption("the server's certificate is missing from this node's trust store");
  if (newest->bytes() != cert.bytes())
    return Status::Unauthorized(cert.fields().name + " answered with a superseded certificate (this node holds a "
                                "newer one for its key, scope " + newest->fields().scope +
                                "); it must install its newest certificate");
  if (server_.bytes() != cert.bytes()) {
    server_ = std::move(cert);
    ASSIGN_OR_RETURN(my_heads_, replica_.HeadsVisibleTo(server_.fields().scope));
  }
  send_revocations_ = !welcome.revocations_digest || !(*welcome.revocations_digest == my_revocations_);
  // An older server announces nothing and gets the plain list.
  peer_reads_packed_ = options_.packing && (welcome.accepts & kAcceptsPacked) != 0;
  peer_.clock_offset_ms = welcome.wall_ms - Now(replica_);
  if (welcome.up_to_date) {
    RETURN_IF_ERROR(Finish(""));
    return std::optional<std::string>();
  }
  outgoing_ = OutgoingStream(GapsFor(my_heads_, welcome.heads, Holds(replica_)));
  peer_.pending_out = outgoing_.pending();
  peer_.pending_in = MissingFrom(my_heads_, welcome.heads);
  RETURN_IF_ERROR(replica_.SavePeer(peer_));
  state_ = State::kExchanging;
  ASSIGN_OR_RETURN(std::string push, NextPush(true));
  return std::optional<std::string>(std::move(push));
}

Result<std::string> SyncClient::NextPush(bool with_heads) {
  PushMsg push;
  push.has_heads = with_heads;
  if (with_heads) push.heads = my_heads_;
  if (with_heads && send_revocations_) {
    ASSIGN_OR_RETURN(push.revocations, replica_.Revocations());
  }
  RETURN_IF_ERROR(outgoing_.Next(replica_, options_.batch_bytes, &push.changesets, &push.certificates, &push.more));
  stats_.changesets_sent += static_cast<int64_t>(push.changesets.size());
  return Send(SyncMsg{kProtocolVersion, session_id_, std::move(push)});
}

Result<std::optional<std::string>> SyncClient::OnBatch(const BatchMsg& batch) {
  stats_.rejected_by_peer += batch.rejected;
  ApplyReport report;
  RETURN_IF_ERROR(AbsorbBatch(replica_, batch.certificates, batch.changesets, &report));
  stats_.changesets_received += report.applied;
  stats_.rejected_here += report.rejected;
  if (batch.more || !outgoing_.done()) {
    ASSIGN_OR_RETURN(std::string push, NextPush(false));
    return std::optional<std::string>(std::move(push));
  }
  RETURN_IF_ERROR(Finish(""));
  return std::optional<std::string>();
}

// ---- SyncServer --------------------------------------------------------------

SyncServer::SyncServer(Replica& replica, SyncOptions options, SessionLog log)
    : replica_(replica), options_(options), log_(std::move(log)), packer_(options.pack_level) {}

void SyncServer::EndSession(const CertificateFields& client, const SessionStats& s, int64_t started_ms,
                            const std::string& outcome) {
  (void)replica_.RecordSession({client.node_key.Hex(), started_ms, Now(replica_), true, s.changesets_sent,
                                s.changesets_received, s.bytes_sent, s.bytes_received,
                                outcome.rfind("ok", 0) == 0 ? "" : outcome});
  if (!log_) return;
  log_("session " + client.code + " " + client.name + ": sent " + std::to_string(s.changesets_sent) + " (" +
       std::to_string(s.bytes_sent) + " bytes), received " + std::to_string(s.changesets_received) + " (" +
       std::to_string(s.bytes_received) + " bytes), " + std::to_string(Now(replica_) - started_ms) + " ms, " +
       outcome);
}

std::string SyncServer::Refuse(uint64_t session, const std::string& reason, const std::string& detail) {
  (void)replica_.CountRejectedInput(reason);
  return EncodeMessage(SyncMsg{kProtocolVersion, session, RefusedMsg{reason, detail}});
}

bool SyncServer::TakeNewData() {
  bool had = new_data_;
  new_data_ = false;
  return had;
}

void SyncServer::Expire(int64_t idle_ms) {
  int64_t now = Now(replica_);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now - it->second.last_active_ms > idle_ms) {
      EndSession(it->second.client.fields(), it->second.stats, it->second.started_ms, "abandoned by the peer");
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

int SyncServer::AdmitCurveKey(std::string_view curve_key) {
  auto revoked = replica_.IsRevokedCurveKey(curve_key);
  // A store that cannot answer admits nobody: the client retries later.
  if (!revoked.ok()) return 300;
  if (!*revoked) return 200;
  (void)replica_.CountRejectedInput("revoked_key");
  if (log_) log_("refused a connection from a revoked key");
  return 400;
}

std::string SyncServer::Handle(const std::string& connection, const std::string& client_curve_key,
                               std::string_view request) {
  auto msg = DecodeMessage(request, options_.limits);
  if (!msg.ok()) return Refuse(0, "malformed_message", msg.status().message());
  if (msg->version != kProtocolVersion)
    return Refuse(msg->session, "protocol_version",
                  "this node speaks protocol version " + std::to_string(kProtocolVersion));
  if (auto* hello = std::get_if<HelloMsg>(&msg->body))
    return OnHello(connection, client_curve_key, msg->session, *hello);
  if (auto* join = std::get_if<JoinMsg>(&msg->body)) return OnJoin(client_curve_key, msg->session, *join);
  if (auto* push = std::get_if<PushMsg>(&msg->body)) return OnPush(connection, msg->session, *push);
  return Refuse(msg->session, "unexpected_message", "a server expects hello or push");
}

// Whether `client_curve_key` (64 hex, from ZAP) is the Curve key of `node`.
bool IsCurveKeyOf(const std::string& client_curve_key, const PublicKey& node) {
  auto curve = DeriveCurvePublic(node);
  if (!curve.ok()) return false;
  return ToHex(std::string_view(reinterpret_cast<const char*>(curve->data()), curve->size())) == client_curve_key;
}

std::string SyncServer::OnHello(const std::string& connection, const std::string& client_curve_key,
                                uint64_t session, const HelloMsg& hello) {
  auto cert = Certificate::Parse(hello.certificate, replica_.identity().authority);
  if (!cert.ok()) return Refuse(session, "bad_certificate", cert.status().message());
  const CertificateFields& f = cert->fields();
  // The certificate must be that of the key the connection was made with:
  // certificates are public, and presenting someone else's proves nothing.
  if (!IsCurveKeyOf(client_curve_key, f.node_key))
    return Refuse(session, "certificate_not_yours",
                  "the certificate of " + f.name + " was presented over a connection made with another key");
  auto revoked = replica_.RevocationOf(f.node_key);
  if (revoked.ok() && revoked->has_value())
    return Refuse(session, "revoked_key", f.name + "'s key was revoked by the county");
  // The client's rights are those of the newest certificate this node holds
  // for its key (the trust store keeps the newest): an older one, perhaps
  // issued for a wider scope before the station was enrolled anew, is
  // refused rather than obeyed.
  auto added = replica_.AddCertificate(cert->bytes());
  auto newest = replica_.CertificateByKey(f.node_key);
  if (!added.ok() || !newest.ok() || !newest->has_value())
    return Refuse(session, "server_error", "this node cannot read its own store now; try again later");
  if ((*newest)->bytes() != cert->bytes()) {
    const CertificateFields& n = (*newest)->fields();
    return Refuse(session, "certificate_superseded",
                  "the county issued " + f.name + "'s key a newer certificate (" + n.code + " " + n.name + ", scope " +
                      n.scope + ") than the one presented; install the newest certificate");
  }
  const Certificate& client = **newest;
  auto heads = replica_.HeadsVisibleTo(client.fields().scope);
  auto own = replica_.CertificateByKey(replica_.identity().key);
  auto revocations_digest = replica_.RevocationsDigest();
  if (!heads.ok() || !own.ok() || !own->has_value() || !revocations_digest.ok() || !revoked.ok())
    return Refuse(session, "server_error", "this node cannot read its own store now; try again later");

  int64_t now = Now(replica_);
  PeerRecord peer = PeerFor(replica_, f);
  peer.last_seen_ms = now;
  peer.clock_offset_ms = hello.wall_ms - now;
  peer.last_error.clear();

  WelcomeMsg welcome;
  welcome.certificate = (*own)->bytes();
  welcome.wall_ms = now;
  welcome.revocations_digest = *revocations_digest;
  welcome.accepts = options_.packing ? kAcceptsPacked : 0;
  const bool same_revocations = hello.revocations_digest && *hello.revocations_digest == *revocations_digest;
  if (!same_revocations) {
    auto all = replica_.Revocations();
    if (!all.ok()) return Refuse(session, "server_error", "this node cannot read its own store now; try again later");
    welcome.revocations = std::move(*all);
  }
  welcome.up_to_date = same_revocations && hello.digest && *hello.digest == HeadsDigest(*heads);
  if (welcome.up_to_date) {
    peer.last_sync_ms = now;
    peer.pending_in = 0;
    peer.pending_out = 0;
  } else {
    welcome.heads = *heads;
    Session& s = sessions_[{connection, session}];
    s = Session{client, *heads, {}, false, now, now, {}};
    // An older client announces nothing and gets the plain list.
    s.peer_reads_packed = options_.packing && (hello.accepts & kAcceptsPacked) != 0;
  }
  (void)replica_.SavePeer(peer);
  const bool up_to_date = welcome.up_to_date;
  std::string reply = EncodeMessage(SyncMsg{kProtocolVersion, session, std::move(welcome)});
  if (up_to_date) {
    SessionStats stats;
    stats.bytes_received = static_cast<int64_t>(hello.certificate.size());
    stats.bytes_sent = static_cast<int64_t>(reply.size());
    EndSession(f, stats, now, "ok, already up to date");
  }
  return reply;
}

std::string SyncServer::OnPush(const std::string& connection, uint64_t session, const PushMsg& push) {
  auto it = sessions_.find({connection, session});
  if (it == sessions_.end()) return Refuse(session, "no_session", "push without a hello (session expired?)");
  Session& s = it->second;
  s.last_active_ms = Now(replica_);
  const CertificateFields& client = s.client.fields();
  // A key revoked while its session is open gets nothing more.
  if (auto revoked = replica_.RevocationOf(client.node_key); !revoked.ok() || revoked->has_value()) {
    const bool is_revoked = revoked.ok();
    sessions_.erase(it);
    if (!is_revoked) return Refuse(session, "server_error", "this node cannot read its own store now; try again later");
    return Refuse(session, "revoked_key", "this node's key was revoked by the county");
  }
  // Nor does one whose certificate was superseded meanwhile: the stream was
  // cut to the old certificate's scope.
  if (auto newest = replica_.CertificateByKey(client.node_key);
      !newest.ok() || !newest->has_value() || (*newest)->bytes() != s.client.bytes()) {
    const bool superseded = newest.ok() && newest->has_value();
    sessions_.erase(it);
    if (!superseded) return Refuse(session, "server_error", "this node cannot read its own store now; try again later");
    return Refuse(session, "certificate_superseded",
                  "the county issued this node's key a newer certificate during the session; sync again");
  }
  if (!s.have_gaps) {
    if (!push.has_heads) return Refuse(session, "malformed_message", "the first push must carry heads");
    s.outgoing = OutgoingStream(GapsFor(s.my_heads, push.heads, Holds(replica_)));
    s.have_gaps = true;
    auto peer = replica_.Peer(client.node_key.Hex());
    if (peer.ok() && peer->has_value()) {
      (*peer)->pending_out = s.outgoing.pending();
      (*peer)->pending_in = MissingFrom(s.my_heads, push.heads);
      (void)replica_.SavePeer(**peer);
    }
  }
  if (push.has_heads) {
    Status revocations = AbsorbRevocations(replica_, push.revocations);
    if (!revocations.ok()) return Refuse(session, "server_error", revocations.message());
  }
  ApplyReport report;
  Status absorbed = AbsorbBatch(replica_, push.certificates, push.changesets, &report);
  if (!absorbed.ok()) return Refuse(session, "server_error", absorbed.message());
  if (report.applied > 0) new_data_ = true;
  s.stats.changesets_received += report.applied;
  s.stats.rejected_here += report.rejected;
  ++s.stats.messages_received;
  for (const auto& cs : push.changesets) s.stats.bytes_received += static_cast<int64_t>(cs.size());

  BatchMsg batch;
  batch.applied = static_cast<uint32_t>(report.applied + report.duplicates);
  batch.rejected = static_cast<uint32_t>(report.rejected);
  const size_t budget = s.batch_budget != 0 ? s.batch_budget : options_.batch_bytes;
  Status next = s.outgoing.Next(replica_, budget, &batch.changesets, &batch.certificates, &batch.more);
  if (!next.ok()) return Refuse(session, "server_error", next.message());
  s.stats.changesets_sent += static_cast<int64_t>(batch.changesets.size());
  for (const auto& cs : batch.changesets) s.stats.bytes_sent += static_cast<int64_t>(cs.size());
  const EncodeOptions encode{s.peer_reads_packed ? &packer_ : nullptr};
  const bool complete = !push.more && !batch.more;
  if (complete) {
    // Both sides have sent everything: the session is complete.
    auto peer = replica_.Peer(client.node_key.Hex());
    if (peer.ok() && peer->has_value()) {
      (*peer)->last_sync_ms = Now(replica_);
      (*peer)->last_seen_ms = (*peer)->last_sync_ms;
      (*peer)->pending_in = 0;
      (*peer)->pending_out = 0;
      (void)replica_.SavePeer(**peer);
    }
    EndSession(client, s.stats, s.started_ms,
               s.stats.rejected_here > 0 ? "ok, " + std::to_string(s.stats.rejected_here) + " refused" : "ok");
    sessions_.erase(it);  // `s` is gone; `encode` was taken before
  }
  size_t envelope_bytes = 0;
  for (const auto& cs : batch.changesets) envelope_bytes += cs.size();
  std::string reply = EncodeMessage(SyncMsg{kProtocolVersion, session, std::move(batch)}, encode);
  if (!complete && encode.packer != nullptr && envelope_bytes > 0 && !reply.empty()) {
    // The next batch: about batch_bytes on the wire at this batch's ratio.
    const double per_wire_byte = static_cast<double>(envelope_bytes) / static_cast<double>(reply.size());
    const double wanted = static_cast<double>(options_.batch_bytes) * per_wire_byte;
    s.batch_budget = static_cast<size_t>(std::clamp(wanted, static_cast<double>(options_.batch_bytes),
                                                    static_cast<double>(options_.batch_bytes *
                                                                        options_.max_packed_batch_factor)));
  }
  return reply;
}

std::string SyncServer::OnJoin(const std::string& client_curve_key, uint64_t session, const JoinMsg& join) {
  if (replica_.identity().role != Role::kHub)
    return Refuse(session, "not_the_hub", "only the county hub enrols stations");
  if (!IsCurveKeyOf(client_curve_key, join.node_key))
    return Refuse(session, "join_key_mismatch", "the join names a key other than the connection's");
  if (!VerifyDigestSignature(join.node_key, JoinProofDigest(join.secret, join.node_key), join.signature))
    return Refuse(session, "join_bad_signature", "the join is not signed by the key it names");
  const std::string dir = replica_.dir();
  auto load_authority = [&dir] { return SigningKey::Load(AuthorityKeyPath(dir)); };
  const char* reason = nullptr;
  auto cert = replica_.RedeemInvite(join.secret, join.node_key, load_authority, &reason);
  if (!cert.ok()) {
    const Status::Code code = cert.status().code();
    // Trouble with the hub's own store is not the joiner's fault.
    if (reason == nullptr || code == Status::Code::kIOError || code == Status::Code::kBusy ||
        code == Status::Code::kCorruption)
      return Refuse(session, "server_error", "the hub cannot enrol now: " + cert.status().message());
    if (log_) log_("refused a join: " + std::string(reason));
    return Refuse(session, reason, cert.status().message());
  }
  auto own = replica_.CertificateByKey(replica_.identity().key);
  auto revocations = replica_.Revocations();
  if (!own.ok() || !own->has_value() || !revocations.ok())
    return Refuse(session, "server_error", "this node cannot read its own store now; try again later");
  if (log_) log_("enrolled " + cert->fields().code + " " + cert->fields().name + " (scope " + cert->fields().scope + ")");
  new_data_ = true;  // its stations row goes to the other peers
  return EncodeMessage(
      SyncMsg{kProtocolVersion, session, EnrolledMsg{cert->bytes(), (*own)->bytes(), std::move(*revocations)}});
}

// ---- JoinClient --------------------------------------------------------------

Result<std::string> JoinClient::Start() {
  JoinMsg join;
  join.secret.bytes = token_.secret.bytes;
  join.node_key = key_.public_key();
  join.signature = key_.SignDigest(JoinProofDigest(token_.secret, join.node_key));
  return EncodeMessage(SyncMsg{kProtocolVersion, session_id_, std::move(join)});
}

Result<std::optional<std::string>> JoinClient::OnReply(std::string_view reply) {
  ASSIGN_OR_RETURN(SyncMsg msg, DecodeMessage(reply));
  if (msg.version != kProtocolVersion)
    return Status::Unavailable("the hub speaks protocol version " + std::to_string(msg.version));
  if (auto* refused = std::get_if<RefusedMsg>(&msg.body))
    return Status::Unauthorized("the hub refused to enrol this node: " + refused->detail + " (" + refused->reason + ")");
  auto* enrolled = std::get_if<EnrolledMsg>(&msg.body);
  if (enrolled == nullptr || msg.session != session_id_) return Status::Corruption("the hub sent an unexpected reply");
  ASSIGN_OR_RETURN(Certificate mine, Certificate::Parse(enrolled->certificate, token_.authority));
  if (!(mine.fields().node_key == key_.public_key()))
    return Status::Unauthorized("the hub sent a certificate for another key");
  ASSIGN_OR_RETURN(Certificate hub, Certificate::Parse(enrolled->hub_certificate, token_.authority));
  if (!(hub.fields().node_key == token_.hub_key) || hub.fields().role != Role::kHub)
    return Status::Unauthorized("the hub's certificate does not match the token");
  enrolled_ = std::move(*enrolled);
  return std::optional<std::string>();
}

}  // namespace aidsync
