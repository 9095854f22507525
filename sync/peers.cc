#include "sync/peers.h"

#include <cstdlib>

#include "sync/replica.h"

namespace aidsync {

Result<std::optional<PeerRecord>> Replica::Peer(const std::string& id) {
  auto stmt = db_->Cached(
      "SELECT id, name, code, address, last_seen, last_sync, pending_out, pending_in, clock_offset_ms, last_error "
      "FROM aidsync_peers WHERE id = ?");
  stmt->BindText(1, id);
  ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return std::optional<PeerRecord>();
  PeerRecord p;
  p.id = std::string(stmt->ColumnText(0));
  p.name = std::string(stmt->ColumnText(1));
  p.code = std::string(stmt->ColumnText(2));
  p.address = std::string(stmt->ColumnText(3));
  p.last_seen_ms = stmt->ColumnInt(4);
  p.last_sync_ms = stmt->ColumnInt(5);
  p.pending_out = stmt->ColumnInt(6);
  p.pending_in = stmt->ColumnInt(7);
  p.clock_offset_ms = stmt->ColumnInt(8);
  p.last_error = std::string(stmt->ColumnText(9));
  return std::optional<PeerRecord>(std::move(p));
}

Status Replica::SavePeer(const PeerRecord& p) {
  auto stmt = db_->Cached(
      "INSERT OR REPLACE INTO aidsync_peers(id, name, code, address, last_seen, last_sync, pending_out, pending_in, "
      "clock_offset_ms, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  stmt->BindText(1, p.id).BindText(2, p.name).BindText(3, p.code).BindText(4, p.address);
  stmt->Bind(5, p.last_seen_ms).Bind(6, p.last_sync_ms).Bind(7, p.pending_out).Bind(8, p.pending_in);
  stmt->Bind(9, p.clock_offset_ms).BindText(10, p.last_error);
  return stmt->Run();
}

Status Replica::CountRejectedInput(const std::string& reason) {
  auto count = db_->Cached(
      "INSERT INTO aidsync_rejected_counts(reason, n) VALUES (?, 1) ON CONFLICT(reason) DO UPDATE SET n = n + 1");
  count->BindText(1, reason);
  return count->Run();
}

Result<std::vector<PeerRecord>> Replica::Peers() {
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare("SELECT id FROM aidsync_peers ORDER BY code, id"));
  std::vector<std::string> ids;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    ids.emplace_back(stmt.ColumnText(0));
  }
  std::vector<PeerRecord> out;
  for (const auto& id : ids) {
    ASSIGN_OR_RETURN(std::optional<PeerRecord> p, Peer(id));
    if (p) out.push_back(std::move(*p));
  }
  return out;
}

Status Replica::RecordSession(const SessionRecord& r) {
  auto insert = db_->Cached(
      "INSERT INTO aidsync_sessions(peer, started_at, ended_at, as_server, changesets_sent, changesets_received, "
      "bytes_sent, bytes_received, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  insert->BindText(1, r.peer).Bind(2, r.started_ms).Bind(3, r.ended_ms).Bind(4, static_cast<int64_t>(r.as_server));
  insert->Bind(5, r.changesets_sent).Bind(6, r.changesets_received).Bind(7, r.bytes_sent).Bind(8, r.bytes_received);
  insert->BindText(9, r.error);
  RETURN_IF_ERROR(insert->Run());
  // Every 1000th record, drop those past the bound (one indexed delete).
  const int64_t id = db_->LastInsertRowId();
  if (id % 1000 != 0) return Status::OK();
  auto prune = db_->Cached("DELETE FROM aidsync_sessions WHERE id <= ?");
  prune->Bind(1, id - kMaxSessionsKept);
  return prune->Run();
}

Result<std::vector<SessionRecord>> Replica::Sessions(const std::string& peer, int64_t since_ms, int64_t newest) {
  // The newest `newest` (LIMIT -1: all), then back in insertion order.
  auto stmt = db_->Cached(
      "SELECT * FROM (SELECT id, peer, started_at, ended_at, as_server, changesets_sent, changesets_received, "
      "bytes_sent, bytes_received, error FROM aidsync_sessions WHERE peer = ? AND ended_at >= ? "
      "ORDER BY id DESC LIMIT ?) ORDER BY id");
  stmt->BindText(1, peer).Bind(2, since_ms).Bind(3, newest > 0 ? newest : int64_t{-1});
  std::vector<SessionRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) break;
    SessionRecord r;
    r.peer = std::string(stmt->ColumnText(1));
    r.started_ms = stmt->ColumnInt(2);
    r.ended_ms = stmt->ColumnInt(3);
    r.as_server = stmt->ColumnInt(4) != 0;
    r.changesets_sent = stmt->ColumnInt(5);
    r.changesets_received = stmt->ColumnInt(6);
    r.bytes_sent = stmt->ColumnInt(7);
    r.bytes_received = stmt->ColumnInt(8);
    r.error = std::string(stmt->ColumnText(9));
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace aidsync
