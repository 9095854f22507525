// Revocations in the replica (DESIGN 6): storing the authority's signed
// revocations, refusing a revoked key's later changesets, and taking back
// the ones this node applied before it learned of the revocation.
#include <set>

#include "sync/replica.h"

#include "sync/packing.h"

namespace aidsync {
namespace {

constexpr const char* kRevokedAuthor = "revoked_author";

}  // namespace

Result<bool> Replica::AddRevocation(std::string_view bytes) {
  ASSIGN_OR_RETURN(Revocation revocation, Revocation::Parse(bytes, identity_.authority));
  const RevocationFields& f = revocation.fields();
  ASSIGN_OR_RETURN(auto curve, DeriveCurvePublic(f.node_key));
  bool added = false;
  auto store_it = [&]() -> Status {
    {
      // One revocation per key. Should two different ones ever exist, every
      // node keeps the one with the smaller id, so all nodes agree.
      auto known = db_->Cached("SELECT id FROM aidsync_revocations WHERE node_key = ?");
      known->BindBlob(1, f.node_key.view());
      ASSIGN_OR_RETURN(bool found, known->Step());
      if (found && !(revocation.id().view() < known->ColumnBlob(0))) return Status::OK();
    }
    auto store = db_->Cached(
        "INSERT OR REPLACE INTO aidsync_revocations(node_key, curve_key, id, revoked_at, bytes) VALUES (?, ?, ?, ?, ?)");
    store->BindBlob(1, f.node_key.view())
        .BindBlob(2, std::string_view(reinterpret_cast<const char*>(curve.data()), curve.size()))
        .BindBlob(3, revocation.id().view())
        .Bind(4, f.revoked_at_ms)
        .BindBlob(5, revocation.bytes());
    RETURN_IF_ERROR(store->Run());
    auto clear = db_->Cached("DELETE FROM aidsync_revoked_chains WHERE node_key = ?");
    clear->BindBlob(1, f.node_key.view());
    RETURN_IF_ERROR(clear->Run());
    for (const auto& c : f.chains) {
      auto limit = db_->Cached(
          "INSERT INTO aidsync_revoked_chains(node_key, scope, class, last_seq) VALUES (?, ?, ?, ?)");
      limit->BindBlob(1, f.node_key.view()).BindText(2, c.scope).Bind(3, static_cast<int64_t>(c.cls));
      limit->Bind(4, static_cast<int64_t>(c.last_seq));
      RETURN_IF_ERROR(limit->Run());
    }
    added = true;
    return TakeBackRevoked(revocation);
  };
  // Inside a caller's transaction (a bundle), or in one of its own.
  RETURN_IF_ERROR(db_->InTransaction() ? store_it() : InWriteTransaction(store_it));
  return added;
}

Status Replica::TakeBackRevoked(const Revocation& revocation) {
  const RevocationFields& f = revocation.fields();
  const std::string detail = "signed by a key the authority revoked (" + (f.reason.empty() ? "no reason given" : f.reason) + ")";
  ApplyReport report;
  // Held changesets of the key past its limits will never be valid.
  {
    ASSIGN_OR_RETURN(Statement held, db_->Prepare("SELECT hash, envelope FROM aidsync_held"));
    struct Refused {
      Digest id;
      std::string envelope;
      ChangesetContent content;
    };
    std::vector<Refused> refused;
    while (true) {
      ASSIGN_OR_RETURN(bool row, held.Step());
      if (!row) break;
      Digest id;
      auto content = DecodeChangeset(held.ColumnBlob(1), &id);
      if (!content.ok() || !(content->author == f.node_key)) continue;
      if (content->seq > revocation.LastValidSeq(content->scope, content->cls))
        refused.push_back({id, std::string(held.ColumnBlob(1)), std::move(content).value()});
    }
    held.Reset();
    for (const auto& r : refused)
      RETURN_IF_ERROR(Reject(r.envelope, r.id, &r.content, kRevokedAuthor, detail, &report));
  }
  // Changesets this node applied before it learned of the revocation leave
  // the log for the rejected store; the view is then rebuilt without them.
  struct Entry {
    int64_t log_id;
    Digest id;
    std::string envelope;
    ChangesetContent meta;  // what the log row says of it: author, scope, class, seq
  };
  std::vector<Entry> taken;
  {
    ASSIGN_OR_RETURN(Statement log, db_->Prepare(
        "SELECT id, hash, scope, class, seq, envelope FROM aidsync_log WHERE author = ? ORDER BY id"));
    log.BindBlob(1, f.node_key.view());
    while (true) {
      ASSIGN_OR_RETURN(bool row, log.Step());
      if (!row) break;
      TableClass cls = log.ColumnInt(3) == 0 ? TableClass::kReference : TableClass::kCase;
      if (static_cast<uint64_t>(log.ColumnInt(4)) <= revocation.LastValidSeq(std::string(log.ColumnText(2)), cls))
        continue;
      ASSIGN_OR_RETURN(Digest id, Digest::FromBytes(log.ColumnBlob(1)));
      ASSIGN_OR_RETURN(std::string envelope,
                       UnpackStoredEnvelope(log.ColumnBlob(5), ChangesetLimits{}.max_envelope_bytes));
      ChangesetContent meta;
      meta.author = f.node_key;
      meta.scope = std::string(log.ColumnText(2));
      meta.cls = cls;
      meta.seq = static_cast<uint64_t>(log.ColumnInt(4));
      taken.push_back({log.ColumnInt(0), id, std::move(envelope), std::move(meta)});
    }
  }
  if (taken.empty()) return Status::OK();
  for (const auto& e : taken) {
    RETURN_IF_ERROR(Reject(e.envelope, e.id, &e.meta, kRevokedAuthor, detail, &report, /*taken_back=*/true));
    auto drop = db_->Cached("DELETE FROM aidsync_log WHERE id = ?");
    drop->Bind(1, e.log_id);
    RETURN_IF_ERROR(drop->Run());
    auto forget_fork = db_->Cached("DELETE FROM aidsync_forks WHERE hash_a = ? OR hash_b = ?");
    forget_fork->BindBlob(1, e.id.view()).BindBlob(2, e.id.view());
    RETURN_IF_ERROR(forget_fork->Run());
  }
  // The key's chain heads, folded again from what stays in the log.
  auto clear = db_->Cached("DELETE FROM aidsync_chains WHERE author = ?");
  clear->BindBlob(1, f.node_key.view());
  RETURN_IF_ERROR(clear->Run());
  {
    ASSIGN_OR_RETURN(Statement kept, db_->Prepare(
        "SELECT hash, scope, class, seq FROM aidsync_log WHERE author = ? ORDER BY id"));
    kept.BindBlob(1, f.node_key.view());
    std::vector<std::pair<ChangesetContent, Digest>> chain;
    while (true) {
      ASSIGN_OR_RETURN(bool row, kept.Step());
      if (!row) break;
      ChangesetContent c;
      c.author = f.node_key;
      c.scope = std::string(kept.ColumnText(1));
      c.cls = kept.ColumnInt(2) == 0 ? TableClass::kReference : TableClass::kCase;
      c.seq = static_cast<uint64_t>(kept.ColumnInt(3));
      ASSIGN_OR_RETURN(Digest id, Digest::FromBytes(kept.ColumnBlob(0)));
      chain.emplace_back(std::move(c), id);
    }
    kept.Reset();
    for (const auto& [content, id] : chain) RETURN_IF_ERROR(UpdateChainHead(content, id));
  }
  return RebuildInTransaction({});
}

Status Replica::CheckNotRevoked(const ChangesetContent& content) {
  auto limit = db_->Cached(
      "SELECT c.last_seq FROM aidsync_revocations r LEFT JOIN aidsync_revoked_chains c "
      "ON c.node_key = r.node_key AND c.scope = ? AND c.class = ? WHERE r.node_key = ?");
  limit->BindText(1, content.scope).Bind(2, static_cast<int64_t>(content.cls)).BindBlob(3, content.author.view());
  ASSIGN_OR_RETURN(bool revoked, limit->Step());
  if (!revoked) return Status::OK();
  uint64_t last = limit->IsNull(0) ? 0 : static_cast<uint64_t>(limit->ColumnInt(0));
  limit->Reset();
  if (content.seq <= last) return Status::OK();
  return Status::Unauthorized("author " + content.author.Hex().substr(0, 16) + " was revoked after changeset " +
                              std::to_string(last) + " of this chain; this is number " + std::to_string(content.seq));
}

Result<std::optional<Revocation>> Replica::RevocationOf(const PublicKey& key) {
  auto stmt = db_->Cached("SELECT bytes FROM aidsync_revocations WHERE node_key = ?");
  stmt->BindBlob(1, key.view());
  ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return std::optional<Revocation>();
  std::string bytes(stmt->ColumnBlob(0));
  stmt->Reset();
  ASSIGN_OR_RETURN(Revocation r, Revocation::Parse(bytes, identity_.authority));
  return std::optional<Revocation>(std::move(r));
}

Result<std::vector<RevokedRecord>> Replica::RevokedNodes() {
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(
      "SELECT r.node_key, coalesce(c.name, ''), coalesce(c.code, ''), r.revoked_at FROM aidsync_revocations r "
      "LEFT JOIN aidsync_certificates c ON c.node_key = r.node_key ORDER BY c.code, r.node_key"));
  std::vector<RevokedRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    RevokedRecord r;
    r.key = ToHex(stmt.ColumnBlob(0));
    r.name = std::string(stmt.ColumnText(1));
    r.code = std::string(stmt.ColumnText(2));
    r.revoked_at_ms = stmt.ColumnInt(3);
    out.push_back(std::move(r));
  }
  return out;
}

Result<bool> Replica::IsRevokedCurveKey(std::string_view curve_key) {
  auto stmt = db_->Cached("SELECT 1 FROM aidsync_revocations WHERE curve_key = ?");
  stmt->BindBlob(1, curve_key);
  ASSIGN_OR_RETURN(bool row, stmt->Step());
  stmt->Reset();
  return row;
}

Result<std::vector<std::string>> Replica::Revocations() {
  return FirstColumnOfEach("SELECT bytes FROM aidsync_revocations ORDER BY id");
}

Result<Digest> Replica::RevocationsDigest() {
  ASSIGN_OR_RETURN(std::vector<std::string> ids, FirstColumnOfEach("SELECT id FROM aidsync_revocations ORDER BY id"));
  std::string all;
  for (const auto& id : ids) all += id;
  return ComputeDigest("aidsync revocation list", all);
}

Result<Revocation> Replica::Revoke(const PublicKey& key, const std::string& reason, const SigningKey& authority) {
  if (identity_.role != Role::kHub) return Status::Unauthorized("only the county hub revokes keys");
  if (key == identity_.key) return Status::InvalidArgument("the hub cannot revoke its own key");
  ASSIGN_OR_RETURN(std::optional<Revocation> existing, RevocationOf(key));
  if (existing) return Status::AlreadyExists("key " + key.Hex().substr(0, 16) + " is already revoked");
  ASSIGN_OR_RETURN(std::optional<Certificate> cert, CertificateByKey(key));
  if (!cert) return Status::NotFound("no enrolled node has key " + key.Hex() + " (see `aidsync list stations`)");
  RevocationFields fields;
  fields.node_key = key;
  fields.reason = reason;
  fields.revoked_at_ms = env_.clock->NowMillis();
  // What the hub holds of each of the key's chains stays valid: every record
  // the station made before it was lost is kept.
  ASSIGN_OR_RETURN(Statement chains, db_->Prepare("SELECT scope, class, seq FROM aidsync_chains WHERE author = ?"));
  chains.BindBlob(1, key.view());
  while (true) {
    ASSIGN_OR_RETURN(bool row, chains.Step());
    if (!row) break;
    fields.chains.push_back({std::string(chains.ColumnText(0)),
                             chains.ColumnInt(1) == 0 ? TableClass::kReference : TableClass::kCase,
                             static_cast<uint64_t>(chains.ColumnInt(2))});
  }
  chains.Reset();
  ASSIGN_OR_RETURN(Revocation revocation, Revocation::Issue(std::move(fields), authority));
  RETURN_IF_ERROR(AddRevocation(revocation.bytes()).status());
  return revocation;
}

}  // namespace aidsync
