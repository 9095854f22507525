// Applying changesets received from other nodes (DESIGN 4, 6): every check a
// received changeset must pass, and what happens to one that fails.
#include <algorithm>
#include <future>
#include <system_error>

#include "schema/scope.h"
#include "sync/packing.h"
#include "sync/replica.h"
#include "sync/verify_ahead.h"

namespace aidsync {
namespace {

// Stable reason keys, counted in status `rejected`.
constexpr const char* kMalformed = "malformed";
constexpr const char* kBadSignature = "bad_signature";
constexpr const char* kUnknownAuthor = "unknown_author";
constexpr const char* kOutOfScope = "out_of_scope";
constexpr const char* kUnauthorizedTable = "unauthorized_table";
constexpr const char* kBrokenChain = "broken_chain";
constexpr const char* kNotForThisNode = "not_for_this_node";
constexpr const char* kRevokedAuthor = "revoked_author";

const char* ReasonFor(const Status& st) {
  switch (st.code()) {
    case Status::Code::kBadSignature: return kBadSignature;
    case Status::Code::kUnauthorized: return kOutOfScope;
    default: return kMalformed;
  }
}

// A refusal that is about the changeset, not about this node's store: the
// merge reports bad received data as InvalidArgument or Unauthorized, and
// trouble with this node's own files (Corruption of stored metadata, I/O,
// locks) as anything else, which must fail the apply rather than blame the sender.
bool IsRefusal(const Status& st) {
  return st.code() == Status::Code::kInvalidArgument || st.code() == Status::Code::kUnauthorized;
}

}  // namespace

Status Replica::LogChangeset(const ChangesetContent& content, const SignedChangeset& signed_cs,
                             std::string_view stored, int64_t log_id, bool complete) {
  auto insert = db_->Cached(
      "INSERT INTO aidsync_log(id, hash, author, scope, class, seq, hlc, envelope, complete, received_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  // Bound without copies: all of it outlives Run.
  insert->Bind(1, log_id);
  insert->BindBlobView(2, signed_cs.id.view()).BindBlobView(3, content.author.view()).BindTextView(4, content.scope);
  insert->Bind(5, static_cast<int64_t>(content.cls)).Bind(6, static_cast<int64_t>(content.seq));
  insert->Bind(7, static_cast<int64_t>(content.hlc)).BindBlobView(8, stored);
  insert->Bind(9, int64_t{complete ? 1 : 0}).Bind(10, env_.clock->NowMillis());
  RETURN_IF_ERROR(insert->Run());
  return UpdateChainHead(content, signed_cs.id);
}

// The log id the next changeset gets: the one SQLite would choose itself
// (rowid max + 1). Stable inside the caller's write transaction.
static Result<int64_t> NextLogId(Database& db) {
  auto next = db.Cached("SELECT coalesce(max(id), 0) + 1 FROM aidsync_log");
  ASSIGN_OR_RETURN(bool row, next->Step());
  if (!row) return Status::Corruption("cannot read the log's last id");
  return next->ColumnInt(0);
}

Status Replica::AppendAndApply(const ChangesetContent& content, const SignedChangeset& signed_cs,
                               std::vector<TouchedRow>* touched, const std::string* stored) {
  // Logged first: an HLC tie between heads is broken by reading both
  // changesets' authors and ids from the log.
  ASSIGN_OR_RETURN(int64_t log_id, NextLogId(*db_));
  const std::string packed = stored ? std::string() : log_packer_.PackStored(signed_cs.envelope);
  RETURN_IF_ERROR(LogChangeset(content, signed_cs, stored ? *stored : packed, log_id, true));
  bool complete = true;
  RETURN_IF_ERROR(applier_.Apply(content, &signed_cs.id, log_id, &complete, touched));
  if (!complete) {
    auto mark = db_->Cached("UPDATE aidsync_log SET complete = 0 WHERE id = ?");
    mark->Bind(1, log_id);
    RETURN_IF_ERROR(mark->Run());
  }
  return Status::OK();
}

Result<SignedChangeset> Replica::AppendAndApplyLocal(const ChangesetContent& content, bool rows_are_new,
                                                     std::vector<TouchedRow>* touched) {
  // A thread costs more than signing a handful of rows saves.
  constexpr size_t kRowsWorthAThread = 16;
  size_t rows = 0;
  for (const auto& t : content.tables) rows += t.rows.size();
  ASSIGN_OR_RETURN(int64_t log_id, NextLogId(*db_));
  // The signing thread also makes the log's stored (compressed) form.
  std::string stored;
  auto sign = [&]() -> Result<SignedChangeset> {
    Result<SignedChangeset> signed_cs = SignChangeset(content, key_);
    if (signed_cs.ok()) stored = sign_packer_.PackStored(signed_cs->envelope);
    return signed_cs;
  };
  std::future<Result<SignedChangeset>> signing;
  try {
    if (rows >= kRowsWorthAThread) signing = std::async(std::launch::async, sign);
  } catch (const std::system_error&) {
    // No thread to be had (a process limit): sign on this one, below.
  }
  bool complete = true;
  Status applied = applier_.Apply(content, /*id=*/nullptr, log_id, &complete, touched, rows_are_new);
  Result<SignedChangeset> signed_cs = signing.valid() ? signing.get() : sign();
  RETURN_IF_ERROR(applied);
  if (!signed_cs.ok()) return signed_cs.status();
  RETURN_IF_ERROR(LogChangeset(content, *signed_cs, stored, log_id, complete));
  return signed_cs;
}

Status Replica::InWriteTransaction(const std::function<Status()>& fn) {
  ASSIGN_OR_RETURN(auto tx, Transaction::Begin(*db_));
  RETURN_IF_ERROR(fn());
  return tx->Commit();
}

Result<ApplyReport> Replica::ApplyRemote(const std::vector<std::string>& envelopes) {
  ApplyReport report;
  RETURN_IF_ERROR(InWriteTransaction([&] { return ApplyRemoteBatch(envelopes, &report); }));
  return report;
}

Status Replica::ApplyRemoteBatch(const std::vector<std::string>& envelopes, ApplyReport* report) {
  VerifyAhead verified(envelopes);
  for (size_t i = 0; i < envelopes.size(); ++i) {
    std::optional<Digest> applied;
    Digest id;
    std::string stored;
    Result<ChangesetContent> decoded = verified.Take(i, &id, &stored);
    RETURN_IF_ERROR(ApplyDecoded(envelopes[i], id, decoded, report, &applied, stored.empty() ? nullptr : &stored));
    if (applied) RETURN_IF_ERROR(ReleaseHeld(*applied, report));
  }
  // Count what is still waiting: some held early on were released later.
  report->held = 0;
  for (const auto& id : report->held_ids) {
    auto still = db_->Cached("SELECT 1 FROM aidsync_held WHERE hash = ?");
    still->BindBlob(1, id.view());
    ASSIGN_OR_RETURN(bool row, still->Step());
    if (row) ++report->held;
  }
  return Status::OK();
}

bool MayKeepRefusedBody(const ChangesetContent* content, std::string_view reason, std::string_view node_scope) {
  // Only a changeset signed by an enrolled author (revoked since, or refused
  // after its authority was checked) whose scope and class this node's
  // scope may see. Everything else may be another jurisdiction's records: a
  // village must not end up holding another village's applicants because a
  // hostile or mistaken peer sent them (not_for_this_node, out_of_scope,
  // unauthorized_table), nor through bytes whose author nobody vouches for
  // (malformed, bad_signature, unknown_author), whose prefix alone can hold
  // names and ID numbers. A malformed changeset that decoded was refused by
  // the merge, after CheckAuthority, unless its scope itself is invalid.
  if (content == nullptr) return false;
  if (reason != kRevokedAuthor && reason != kBrokenChain && reason != kMalformed) return false;
  if (!ValidateScope(content->scope).ok()) return false;
  return ChangesetVisibleTo(node_scope, content->scope, content->cls);
}

Status Replica::Reject(std::string_view envelope, const Digest& id, const ChangesetContent* content,
                       const std::string& reason, const std::string& detail, ApplyReport* report,
                       bool taken_back) {
  // Refused input is evidence for the admin, but it comes from the network:
  // its body is kept only when this node may hold it (MayKeepRefusedBody);
  // of anything else only what identifies it is kept, so no body ever reaches
  // the table, its WAL or its free pages. And it must not be a way to fill
  // the disk: past kMaxRejectedKept records further refusals are counted,
  // not stored.
  constexpr int64_t kMaxRejectedKept = 10000;
  const bool keep_body = MayKeepRefusedBody(content, reason, identity_.scope);

  bool first_refusal = false;
  {
    auto known = db_->Cached("SELECT 1 FROM aidsync_rejected WHERE hash = ?");
    known->BindBlob(1, id.view());
    ASSIGN_OR_RETURN(bool seen, known->Step());
    first_refusal = !seen;
  }
  int64_t kept = 0;
  if (first_refusal) {
    auto count = db_->Cached("SELECT count(*) FROM aidsync_rejected");
    ASSIGN_OR_RETURN(bool row, count->Step());
    kept = row ? count->ColumnInt(0) : 0;
  }
  if (first_refusal && (kept < kMaxRejectedKept || taken_back)) {
    auto keep = db_->Cached(
        "INSERT INTO aidsync_rejected(hash, reason, detail, envelope, received_at, author, scope, class, seq) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    keep->BindBlob(1, id.view()).BindText(2, reason).BindText(3, detail);
    if (keep_body) {
      keep->BindBlobView(4, envelope);
    } else {
      keep->BindNull(4);
    }
    keep->Bind(5, env_.clock->NowMillis());
    if (content != nullptr) {
      keep->BindBlob(6, content->author.view()).BindText(7, content->scope);
      keep->Bind(8, static_cast<int64_t>(content->cls)).Bind(9, static_cast<int64_t>(content->seq));
    } else {
      keep->BindNull(6).BindNull(7).BindNull(8).BindNull(9);
    }
    RETURN_IF_ERROR(keep->Run());
  } else if (first_refusal) {
    auto alert = db_->Cached("INSERT OR REPLACE INTO aidsync_alerts(key, message, raised_at) VALUES (?, ?, ?)");
    alert->BindText(1, "rejected:full");
    alert->BindText(2, "more than " + std::to_string(kMaxRejectedKept) +
                           " refused inputs: new ones are counted but no longer kept; look at what is being sent");
    alert->Bind(3, env_.clock->NowMillis());
    RETURN_IF_ERROR(alert->Run());
  }
  // A held changeset refused when its predecessor arrived is rejected, not held.
  auto unhold = db_->Cached("DELETE FROM aidsync_held WHERE hash = ?");
  unhold->BindBlob(1, id.view());
  RETURN_IF_ERROR(unhold->Run());
  ++report->rejected;
  report->rejections.push_back(reason + ": " + detail);
  // `rejected` counts distinct changesets: a peer that offers the same bad
  // changeset every session must not make the count grow.
  if (!first_refusal) return Status::OK();
  auto count = db_->Cached(
      "INSERT INTO aidsync_rejected_counts(reason, n) VALUES (?, 1) ON CONFLICT(reason) DO UPDATE SET n = n + 1");
  count->BindText(1, reason);
  return count->Run();
}

Status Replica::MigrateRejectedStore() {
  ASSIGN_OR_RETURN(std::vector<std::string> columns,
                   FirstColumnOfEach("SELECT name FROM pragma_table_info('aidsync_rejected')"));
  if (std::find(columns.begin(), columns.end(), "author") == columns.end()) {
    // `envelope` loses NOT NULL, which only a new table can do.
    RETURN_IF_ERROR(db_->Exec(
        "CREATE TABLE aidsync_rejected_v5("
        "  hash BLOB PRIMARY KEY, reason TEXT NOT NULL, detail TEXT NOT NULL,"
        "  envelope BLOB, received_at INTEGER NOT NULL,"
        "  author BLOB, scope TEXT, class INTEGER, seq INTEGER);"
        "INSERT INTO aidsync_rejected_v5(hash, reason, detail, envelope, received_at) "
        "  SELECT hash, reason, detail, envelope, received_at FROM aidsync_rejected;"
        "DROP TABLE aidsync_rejected;"
        "ALTER TABLE aidsync_rejected_v5 RENAME TO aidsync_rejected;"));
  }
  // Each kept body decoded again: what it says of itself is kept, the body
  // only when Reject would keep it now. In batches, by hash: up to 10,000
  // bodies of up to 257 KiB are not read at once.
  std::string after;
  while (true) {
    struct Row {
      std::string hash, reason, envelope;
    };
    std::vector<Row> rows;
    {
      ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(
          "SELECT hash, reason, envelope FROM aidsync_rejected WHERE envelope IS NOT NULL AND hash > ? "
          "ORDER BY hash LIMIT 64"));
      stmt.BindBlob(1, after);
      while (true) {
        ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        rows.push_back({std::string(stmt.ColumnBlob(0)), std::string(stmt.ColumnText(1)),
                        std::string(stmt.ColumnBlob(2))});
      }
    }
    if (rows.empty()) return Status::OK();
    for (const auto& r : rows) {
      Digest id;
      Result<ChangesetContent> content = DecodeChangeset(r.envelope, &id);
      const ChangesetContent* decoded = content.ok() ? &*content : nullptr;
      auto update = db_->Cached(
          "UPDATE aidsync_rejected SET envelope = CASE WHEN ? THEN envelope END, "
          "author = ?, scope = ?, class = ?, seq = ? WHERE hash = ?");
      update->Bind(1, int64_t{MayKeepRefusedBody(decoded, r.reason, identity_.scope) ? 1 : 0});
      if (decoded != nullptr) {
        update->BindBlob(2, decoded->author.view()).BindText(3, decoded->scope);
        update->Bind(4, static_cast<int64_t>(decoded->cls)).Bind(5, static_cast<int64_t>(decoded->seq));
      } else {
        update->BindNull(2).BindNull(3).BindNull(4).BindNull(5);
      }
      update->BindBlob(6, r.hash);
      RETURN_IF_ERROR(update->Run());
    }
    after = rows.back().hash;
  }
}

Status Replica::CheckAuthority(const ChangesetContent& content, const char** reason) {
  *reason = kMalformed;
  RETURN_IF_ERROR(ValidateScope(content.scope));
  ASSIGN_OR_RETURN(std::optional<Certificate> cert, CertificateByKey(content.author));
  *reason = kUnknownAuthor;
  if (!cert)
    return Status::Unauthorized("author " + content.author.Hex().substr(0, 16) + " has no certificate here");
  const CertificateFields& f = cert->fields();
  *reason = kRevokedAuthor;
  RETURN_IF_ERROR(CheckNotRevoked(content));
  *reason = kOutOfScope;
  if (!ScopeContains(f.scope, content.scope))
    return Status::Unauthorized(f.name + " (scope " + f.scope + ") wrote outside its jurisdiction, in " +
                                content.scope);
  *reason = kUnauthorizedTable;
  if (content.cls == TableClass::kReference && f.role != Role::kHub)
    return Status::Unauthorized(f.name + " is a station and wrote reference data, which only the hub writes");
  // A case changeset smuggling in a reference table (or the reverse): the
  // applier refuses it too, but this is the reason to count it under.
  for (const auto& table : content.tables) {
    const TableDef* def = schema_.FindTable(table.name);
    if (def != nullptr && def->cls != content.cls)
      return Status::Unauthorized(f.name + " wrote the " + TableClassName(def->cls) + " table '" + def->name +
                                  "' in a " + TableClassName(content.cls) + " changeset");
  }
  // A node stores only what its jurisdiction may see (DESIGN 3): a village
  // keeps no other village's case records, whoever sends them.
  *reason = kNotForThisNode;
  if (!ChangesetVisibleTo(identity_.scope, content.scope, content.cls))
    return Status::Unauthorized(std::string(TableClassName(content.cls)) + " changeset of scope " + content.scope +
                                " is not for a node of scope " + identity_.scope);
  return Status::OK();
}

Status Replica::ApplyOneRemote(std::string_view envelope, ApplyReport* report,
                               std::optional<Digest>* applied_id) {
  Digest id;
  Result<ChangesetContent> decoded = DecodeChangeset(envelope, &id);
  return ApplyDecoded(envelope, id, decoded, report, applied_id);
}

Status Replica::ApplyDecoded(std::string_view envelope, const Digest& id, const Result<ChangesetContent>& decoded,
                             ApplyReport* report, std::optional<Digest>* applied_id, const std::string* stored) {
  if (!decoded.ok()) {
    Digest raw = ComputeDigest("aidsync rejected bytes", envelope);
    return Reject(envelope, raw, nullptr, ReasonFor(decoded.status()), decoded.status().message(), report);
  }
  const ChangesetContent& content = *decoded;
  {
    auto seen = db_->Cached("SELECT 1 FROM aidsync_log WHERE hash = ?");
    seen->BindBlob(1, id.view());
    ASSIGN_OR_RETURN(bool found, seen->Step());
    if (found) {
      ++report->duplicates;
      return Status::OK();
    }
  }
  const char* reason = nullptr;
  Status authority = CheckAuthority(content, &reason);
  if (!authority.ok()) {
    if (!IsRefusal(authority)) return authority;
    return Reject(envelope, id, &content, reason, authority.message(), report);
  }
  if (content.prev) {
    auto prev = db_->Cached("SELECT author, scope, class, seq FROM aidsync_log WHERE hash = ?");
    prev->BindBlob(1, content.prev->view());
    ASSIGN_OR_RETURN(bool found, prev->Step());
    if (!found) {
      // Never skip: hold until the predecessor arrives (DESIGN 4).
      auto hold = db_->Cached(
          "INSERT OR IGNORE INTO aidsync_held(hash, prev, envelope, received_at) VALUES (?, ?, ?, ?)");
      hold->BindBlob(1, id.view()).BindBlob(2, content.prev->view()).BindBlob(3, envelope);
      hold->Bind(4, env_.clock->NowMillis());
      RETURN_IF_ERROR(hold->Run());
      report->held_ids.push_back(id);
      return Status::OK();
    }
    bool same_chain = prev->ColumnBlob(0) == content.author.view() && prev->ColumnText(1) == content.scope &&
                      prev->ColumnInt(2) == static_cast<int64_t>(content.cls) &&
                      static_cast<uint64_t>(prev->ColumnInt(3)) + 1 == content.seq;
    if (!same_chain)
      return Reject(envelope, id, &content, kBrokenChain, "its predecessor is not the previous changeset of its chain",
                    report);
  }
  ASSIGN_OR_RETURN(auto savepoint, Savepoint::Begin(*db_));
  SignedChangeset signed_cs{id, std::string(envelope)};
  std::vector<TouchedRow> touched;
  Status applied = AppendAndApply(content, signed_cs, &touched, stored);
  if (!applied.ok()) {
    if (!IsRefusal(applied)) return applied;
    savepoint.reset();  // rolls back everything of this changeset
    return Reject(envelope, id, &content, ReasonFor(applied), applied.message(), report);
  }
  RETURN_IF_ERROR(RecordForks(content, id));
  RETURN_IF_ERROR(ForgetRejection(id));
  RETURN_IF_ERROR(ObserveRemoteClock(content));
  RETURN_IF_ERROR(TrustStationRows(touched, report));
  RETURN_IF_ERROR(AdvanceNoticeCounters(content));
  RETURN_IF_ERROR(RecordNoticeNumbers(touched));
  RETURN_IF_ERROR(savepoint->Release());
  auto unhold = db_->Cached("DELETE FROM aidsync_held WHERE hash = ?");
  unhold->BindBlob(1, id.view());
  RETURN_IF_ERROR(unhold->Run());
  ++report->applied;
  *applied_id = id;
  return Status::OK();
}

Status Replica::ForgetRejection(const Digest& id) {
  // Refused once (say, before its author's certificate arrived), accepted
  // now: it no longer counts as rejected.
  std::string reason;
  {
    auto find = db_->Cached("SELECT reason FROM aidsync_rejected WHERE hash = ?");
    find->BindBlob(1, id.view());
    ASSIGN_OR_RETURN(bool was_rejected, find->Step());
    if (!was_rejected) return Status::OK();
    reason = std::string(find->ColumnText(0));
  }
  auto forget = db_->Cached("DELETE FROM aidsync_rejected WHERE hash = ?");
  forget->BindBlob(1, id.view());
  RETURN_IF_ERROR(forget->Run());
  auto count = db_->Cached("UPDATE aidsync_rejected_counts SET n = n - 1 WHERE reason = ?");
  count->BindText(1, reason);
  RETURN_IF_ERROR(count->Run());
  return db_->Exec("DELETE FROM aidsync_rejected_counts WHERE n <= 0");
}

Status Replica::TrustStationRows(const std::vector<TouchedRow>& touched, ApplyReport* report) {
  for (const auto& row : touched) {
    if (row.table->name != "stations") continue;
    auto stmt = db_->Cached("SELECT certificate FROM stations WHERE id = ?");
    stmt->BindText(1, row.id);
    ASSIGN_OR_RETURN(bool found, stmt->Step());
    if (!found || stmt->IsNull(0)) continue;
    auto bytes = FromHex(stmt->ColumnText(0));
    if (!bytes.ok()) continue;  // not a certificate: nothing to trust
    auto added = AddCertificate(*bytes);
    if (added.ok() && *added) ++report->certificates;
  }
  return Status::OK();
}

Status Replica::RecordForks(const ChangesetContent& content, const Digest& id) {
  auto same = db_->Cached(
      "SELECT hash FROM aidsync_log WHERE author = ? AND scope = ? AND class = ? AND seq = ? AND hash <> ?");
  same->BindBlob(1, content.author.view()).BindText(2, content.scope);
  same->Bind(3, static_cast<int64_t>(content.cls)).Bind(4, static_cast<int64_t>(content.seq));
  same->BindBlob(5, id.view());
  std::vector<std::string> others;
  while (true) {
    ASSIGN_OR_RETURN(bool row, same->Step());
    if (!row) break;
    others.emplace_back(same->ColumnBlob(0));
  }
  for (const auto& other : others) {
    // Both branches are signed records and are kept (DESIGN 4); the pair is
    // stored in a canonical order so every node records the same evidence.
    std::string a(id.view()), b = other;
    if (b < a) std::swap(a, b);
    auto fork = db_->Cached(
        "INSERT OR IGNORE INTO aidsync_forks(author, scope, class, seq, hash_a, hash_b, detected_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)");
    fork->BindBlob(1, content.author.view()).BindText(2, content.scope);
    fork->Bind(3, static_cast<int64_t>(content.cls)).Bind(4, static_cast<int64_t>(content.seq));
    fork->BindBlob(5, a).BindBlob(6, b).Bind(7, env_.clock->NowMillis());
    RETURN_IF_ERROR(fork->Run());
  }
  return Status::OK();
}

Status Replica::ObserveRemoteClock(const ChangesetContent& content) {
  auto read = db_->Cached("SELECT value FROM aidsync_node WHERE key = 'hlc'");
  ASSIGN_OR_RETURN(bool row, read->Step());
  uint64_t last = row ? static_cast<uint64_t>(read->ColumnInt(0)) : 0;
  HybridClock::Observation seen = clock_.Observe(last, content.hlc);
  if (seen.too_far_ahead) {
    ASSIGN_OR_RETURN(std::string author, AuthorName(std::string(content.author.view())));
    auto alert = db_->Cached("INSERT OR REPLACE INTO aidsync_alerts(key, message, raised_at) VALUES (?, ?, ?)");
    alert->BindText(1, "clock:" + content.author.Hex());
    alert->BindText(2, "clock: " + author + " wrote with a clock " + std::to_string(seen.ahead_ms / 60000) +
                           " minutes ahead of this node's; its clock was not adopted");
    alert->Bind(3, env_.clock->NowMillis());
    return alert->Run();
  }
  if (seen.last == last) return Status::OK();
  auto write = db_->Cached("INSERT OR REPLACE INTO aidsync_node(key, value) VALUES ('hlc', ?)");
  write->Bind(1, static_cast<int64_t>(seen.last));
  return write->Run();
}

Status Replica::ReleaseHeld(const Digest& applied, ApplyReport* report) {
  // Iterative, not recursive: a long chain that arrived backwards must not
  // exhaust the stack.
  std::vector<Digest> frontier{applied};
  while (!frontier.empty()) {
    Digest prev = frontier.back();
    frontier.pop_back();
    auto next = db_->Cached("SELECT envelope FROM aidsync_held WHERE prev = ?");
    next->BindBlob(1, prev.view());
    std::vector<std::string> waiting;
    while (true) {
      ASSIGN_OR_RETURN(bool row, next->Step());
      if (!row) break;
      waiting.emplace_back(next->ColumnBlob(0));
    }
    for (const auto& envelope : waiting) {
      std::optional<Digest> released;
      RETURN_IF_ERROR(ApplyOneRemote(envelope, report, &released));
      if (released) frontier.push_back(*released);
    }
  }
  return Status::OK();
}

}  // namespace aidsync
