// Network enrolment on the hub (DESIGN 6): invites are stored by the digest
// of their secret and consumed atomically, bound to the joiner's key.
#include "schema/scope.h"
#include "sync/local_write.h"
#include "sync/replica.h"

namespace aidsync {

Status Replica::CreateInvite(const InviteSpec& spec, const InviteSecret& secret, int64_t expires_at_ms,
                             const SigningKey& authority) {
  if (identity_.role != Role::kHub) return Status::Unauthorized("only the county hub makes invites");
  RETURN_IF_ERROR(ValidateScope(spec.scope));
  if (!ScopeContains(identity_.scope, spec.scope))
    return Status::InvalidArgument("scope " + spec.scope + " is outside the county " + identity_.scope);
  // The certificate is issued later, at join; issuing one now for this
  // node's key runs every check a certificate's fields must pass, so a bad
  // name or code is refused here rather than when the station is waiting.
  CertificateFields trial{identity_.key, spec.name, spec.code, Role::kStation, spec.scope, 0, {}};
  RETURN_IF_ERROR(Certificate::Issue(trial, authority).status());
  RETURN_IF_ERROR(CheckMayEnrol(spec.code, spec.scope, std::nullopt));
  return InWriteTransaction([&]() -> Status {
    auto insert = db_->Cached(
        "INSERT INTO aidsync_invites(id, name, code, scope, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)");
    insert->BindBlob(1, InviteId(secret).view()).BindText(2, spec.name).BindText(3, spec.code);
    insert->BindText(4, spec.scope).Bind(5, env_.clock->NowMillis()).Bind(6, expires_at_ms);
    return insert->Run();
  });
}

Result<Certificate> Replica::RedeemInvite(const InviteSecret& secret, const PublicKey& node_key,
                                          const std::function<Result<SigningKey>()>& load_authority,
                                          const char** reason) {
  *reason = "invite_unknown";
  if (identity_.role != Role::kHub) return Status::Unauthorized("this node is not the hub and keeps no invites");
  const Digest id = InviteId(secret);
  {
    // A read without the write lock first: a guessed secret costs one lookup.
    auto probe = db_->Cached("SELECT 1 FROM aidsync_invites WHERE id = ?");
    probe->BindBlob(1, id.view());
    ASSIGN_OR_RETURN(bool found, probe->Step());
    if (!found) return Status::NotFound("no such invite on this hub (mistyped, or made on another hub)");
  }
  *reason = nullptr;
  ASSIGN_OR_RETURN(auto tx, BeginLocal());
  ASSIGN_OR_RETURN(SigningKey authority, load_authority());
  InviteSpec spec;
  {
    auto find = db_->Cached("SELECT name, code, scope, expires_at, used_by FROM aidsync_invites WHERE id = ?");
    find->BindBlob(1, id.view());
    ASSIGN_OR_RETURN(bool found, find->Step());
    *reason = "invite_unknown";
    if (!found) return Status::NotFound("no such invite on this hub (mistyped, or made on another hub)");
    spec = {std::string(find->ColumnText(0)), std::string(find->ColumnText(1)), std::string(find->ColumnText(2))};
    const int64_t expires_at = find->ColumnInt(3);
    const bool used = !find->IsNull(4);
    const bool used_by_this_key = used && find->ColumnBlob(4) == node_key.view();
    find->Reset();
    *reason = "invite_refused";
    ASSIGN_OR_RETURN(std::optional<Revocation> revoked, RevocationOf(node_key));
    if (revoked) return Status::Unauthorized("this key was revoked; a revoked key cannot enrol again");
    if (used_by_this_key) {
      // The same key asking again (its first reply was lost) gets the same
      // enrolment again; any other key finds the invite used.
      ASSIGN_OR_RETURN(std::optional<Certificate> issued, CertificateByKey(node_key));
      if (issued) {
        *reason = nullptr;
        return *std::move(issued);
      }
    } else if (used) {
      *reason = "invite_used";
      return Status::Unauthorized("this invite was already used by another machine; ask the county admin for a new one");
    } else if (env_.clock->NowMillis() > expires_at) {
      *reason = "invite_expired";
      return Status::Unauthorized("this invite expired; ask the county admin for a new one");
    }
  }
  // The joiner's key may be enrolled already (offline, or by another
  // invite): only as exactly this station, and then it gets that
  // certificate, not a second one beside it.
  RETURN_IF_ERROR(CheckMayEnrol(spec.code, spec.scope, node_key, spec.name));
  ASSIGN_OR_RETURN(std::optional<Certificate> held, CertificateByKey(node_key));
  CertificateFields fields{node_key, spec.name, spec.code, Role::kStation, spec.scope, env_.clock->NowMillis(), {}};
  ASSIGN_OR_RETURN(Certificate cert, held ? Result<Certificate>(*std::move(held)) : Certificate::Issue(fields, authority));
  *reason = nullptr;
  auto consume = db_->Cached("UPDATE aidsync_invites SET used_by = ?, used_at = ? WHERE id = ?");
  consume->BindBlob(1, node_key.view()).Bind(2, env_.clock->NowMillis()).BindBlob(3, id.view());
  RETURN_IF_ERROR(consume->Run());
  RETURN_IF_ERROR(RecordStationIn(*tx, cert));
  RETURN_IF_ERROR(tx->Commit().status());
  return cert;
}

Status Replica::SaveListenEndpoint(const std::string& endpoint) {
  return InWriteTransaction([&] {
    auto set = db_->Cached("INSERT OR REPLACE INTO aidsync_node(key, value) VALUES ('listen', ?)");
    set->BindText(1, endpoint);
    return set->Run();
  });
}

Result<std::optional<std::string>> Replica::ListenEndpoint() {
  auto get = db_->Cached("SELECT value FROM aidsync_node WHERE key = 'listen'");
  ASSIGN_OR_RETURN(bool row, get->Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(std::string(get->ColumnText(0)));
}

}  // namespace aidsync
