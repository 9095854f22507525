// The replica's chains as seen by the sync protocol: heads, and reading a
// chain's changesets in order.
#include "sync/replica.h"

#include "sync/packing.h"

namespace aidsync {
namespace {

TableClass ClassOf(int64_t v) { return v == 0 ? TableClass::kReference : TableClass::kCase; }

}  // namespace

Status Replica::UpdateChainHead(const ChangesetContent& content, const Digest& id) {
  ChainHead head;
  head.chain = {content.author, content.scope, content.cls};
  {
    auto read = db_->Cached(
        "SELECT seq, hash, count, fingerprint FROM aidsync_chains WHERE author = ? AND scope = ? AND class = ?");
    read->BindBlob(1, content.author.view()).BindText(2, content.scope).Bind(3, static_cast<int64_t>(content.cls));
    ASSIGN_OR_RETURN(bool found, read->Step());
    if (found) {
      head.seq = static_cast<uint64_t>(read->ColumnInt(0));
      ASSIGN_OR_RETURN(head.head, Digest::FromBytes(read->ColumnBlob(1)));
      head.count = static_cast<uint64_t>(read->ColumnInt(2));
      ASSIGN_OR_RETURN(head.fingerprint, Digest::FromBytes(read->ColumnBlob(3)));
    }
  }
  // The head is the smallest id at the highest seq: every node holding the
  // same changesets picks the same one, whatever order they arrived in.
  if (content.seq > head.seq || (content.seq == head.seq && id < head.head)) {
    head.seq = content.seq;
    head.head = id;
  }
  ++head.count;
  FoldIntoFingerprint(id, &head.fingerprint);
  auto write = db_->Cached(
      "INSERT OR REPLACE INTO aidsync_chains(author, scope, class, seq, hash, count, fingerprint) "
      "VALUES (?, ?, ?, ?, ?, ?, ?)");
  write->BindBlob(1, content.author.view()).BindText(2, content.scope).Bind(3, static_cast<int64_t>(content.cls));
  write->Bind(4, static_cast<int64_t>(head.seq)).BindBlob(5, head.head.view());
  write->Bind(6, static_cast<int64_t>(head.count)).BindBlob(7, head.fingerprint.view());
  return write->Run();
}

Result<std::vector<ChainHead>> Replica::HeadsVisibleTo(const std::string& scope) {
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(
      "SELECT author, scope, class, seq, hash, count, fingerprint FROM aidsync_chains ORDER BY author, scope, class"));
  std::vector<ChainHead> heads;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    TableClass cls = ClassOf(stmt.ColumnInt(2));
    if (!ChangesetVisibleTo(scope, stmt.ColumnText(1), cls)) continue;
    ChainHead h;
    ASSIGN_OR_RETURN(h.chain.author, PublicKey::FromBytes(stmt.ColumnBlob(0)));
    h.chain.scope = std::string(stmt.ColumnText(1));
    h.chain.cls = cls;
    h.seq = static_cast<uint64_t>(stmt.ColumnInt(3));
    ASSIGN_OR_RETURN(h.head, Digest::FromBytes(stmt.ColumnBlob(4)));
    h.count = static_cast<uint64_t>(stmt.ColumnInt(5));
    ASSIGN_OR_RETURN(h.fingerprint, Digest::FromBytes(stmt.ColumnBlob(6)));
    heads.push_back(std::move(h));
  }
  return heads;
}

Result<bool> Replica::HoldsChangeset(const Digest& id) {
  auto stmt = db_->Cached("SELECT 1 FROM aidsync_log WHERE hash = ?");
  stmt->BindBlob(1, id.view());
  return stmt->Step();
}

Result<std::vector<Replica::LoggedChangeset>> Replica::ReadChain(const ChainGap& gap, const ChainCursor& after,
                                                                 size_t max_bytes) {
  // (seq, id) order walks the chain index, so each batch costs what it reads,
  // not the length of the chain; forks at one seq come in log order.
  auto stmt = db_->Cached(
      "SELECT seq, id, envelope FROM aidsync_log WHERE author = ? AND scope = ? AND class = ? AND seq > ? "
      "AND (seq > ? OR (seq = ? AND id > ?)) ORDER BY seq, id");
  stmt->BindBlob(1, gap.chain.author.view()).BindText(2, gap.chain.scope);
  stmt->Bind(3, static_cast<int64_t>(gap.chain.cls)).Bind(4, static_cast<int64_t>(gap.after_seq));
  stmt->Bind(5, static_cast<int64_t>(after.seq)).Bind(6, static_cast<int64_t>(after.seq)).Bind(7, after.log_id);
  // Stops before the changeset that would take the total past max_bytes,
  // except the first: a changeset larger than max_bytes is returned alone
  // (OutgoingStream::Next decides whether it fits the batch).
  std::vector<LoggedChangeset> out;
  size_t bytes = 0;
  while (bytes < max_bytes) {
    ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) break;
    ASSIGN_OR_RETURN(std::string envelope,
                     UnpackStoredEnvelope(stmt->ColumnBlob(2), ChangesetLimits{}.max_envelope_bytes));
    if (!out.empty() && envelope.size() > max_bytes - bytes) break;
    out.push_back({{static_cast<uint64_t>(stmt->ColumnInt(0)), stmt->ColumnInt(1)}, std::move(envelope)});
    bytes += out.back().envelope.size();
  }
  return out;
}

}  // namespace aidsync
