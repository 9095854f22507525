// Notice numbers in the replica: which numbers are this station's, the
// per-year counters they move, the registry of every number a case row
// holds, and the alert when two case rows hold one number.
#include <cstdio>
#include <cstdlib>
#include <set>

#include "sync/replica.h"
#include "sync/row_meta.h"

namespace aidsync {
namespace {

constexpr const char* kNoticeColumn = "notice_number";
constexpr const char* kDuplicateAlert = "notice:duplicate:";

}  // namespace

std::string FormatNoticeNumber(int64_t year, const std::string& code, int64_t number) {
  char counter[24];
  std::snprintf(counter, sizeof counter, "%04lld", static_cast<long long>(number));
  return "(" + std::to_string(year) + ")法援字第" + code + "-" + counter + "号";
}

std::optional<NoticeNumber> ParseNoticeNumber(const std::string& notice, const std::string& code) {
  // Exactly "(" 4 digits ")法援字第" CODE "-" digits "号". The bound on digits
  // keeps a hostile row from pushing a counter to overflow.
  const std::string prefix = "法援字第" + code + "-";
  const std::string suffix = "号";
  if (notice.size() <= 6 + prefix.size() + suffix.size() || notice[0] != '(' || notice[5] != ')' ||
      notice.compare(6, prefix.size(), prefix) != 0 ||
      notice.compare(notice.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  std::string year_text = notice.substr(1, 4);
  std::string number_text = notice.substr(6 + prefix.size(), notice.size() - 6 - prefix.size() - suffix.size());
  auto all_digits = [](const std::string& t) {
    return !t.empty() && t.size() <= 6 && t.find_first_not_of("0123456789") == std::string::npos;
  };
  if (!all_digits(year_text) || !all_digits(number_text)) return std::nullopt;
  NoticeNumber out{std::atoll(year_text.c_str()), std::atoll(number_text.c_str())};
  if (out.year <= 0 || out.number <= 0) return std::nullopt;
  return out;
}

Status Replica::AdvanceNoticeCounter(const std::string& notice) {
  // Numbers of this station received back (a restore from an old backup, a
  // re-enrolled machine) or typed in by hand must never be issued again.
  std::optional<NoticeNumber> parsed = ParseNoticeNumber(notice, identity_.code);
  if (!parsed) return Status::OK();
  auto advance = db_->Cached(
      "INSERT INTO aidsync_notice_counters(year, last) VALUES (?, ?) "
      "ON CONFLICT(year) DO UPDATE SET last = max(last, excluded.last)");
  advance->Bind(1, parsed->year).Bind(2, parsed->number);
  return advance->Run();
}

Status Replica::AdvanceNoticeCounters(const ChangesetContent& content) {
  // Only this station's own key (restored from a backup) or an earlier key
  // of its code (revoked, the machine re-enrolled) writes this station's
  // numbers. Anyone else's number under this code is refused at its author's
  // write; received anyway, it must not move the counter: one such row of
  // number 999999 would otherwise exhaust the year.
  ASSIGN_OR_RETURN(std::optional<Certificate> cert, CertificateByKey(content.author));
  if (!cert || cert->fields().code != identity_.code) return Status::OK();
  for (const auto& table : content.tables) {
    if (table.name != "cases") continue;
    for (size_t c = 0; c < table.columns.size(); ++c) {
      if (table.columns[c] != kNoticeColumn) continue;
      for (const auto& row : table.rows)
        for (const auto& field : row.fields)
          if (field.column == c && !field.tombstone && !field.value.is_null())
            RETURN_IF_ERROR(AdvanceNoticeCounter(field.value.ToDisplay()));
    }
  }
  return Status::OK();
}

Status Replica::CheckOwnNoticeNumber(const std::string& notice) {
  std::optional<NoticeNumber> parsed = ParseNoticeNumber(notice, identity_.code);
  // The exact form this station issues (at least four digits, no more
  // leading zeros): one number, one text, so "0037" and "037" cannot both
  // be used.
  if (!parsed || FormatNoticeNumber(parsed->year, identity_.code, parsed->number) != notice)
    return Status::InvalidArgument(
        "notice_number '" + notice + "' is not one of this station's numbers: a typed notice_number must read "
        "(YYYY)法援字第" + identity_.code + "-NNNN号 with this station's code " + identity_.code +
        " (at least four digits, e.g. " + FormatNoticeNumber(2015, identity_.code, 37) +
        "); leave it empty to be given the next one");
  return Status::OK();
}

Result<std::optional<std::string>> Replica::NoticeNumberHolder(const std::string& notice,
                                                               const std::string& except_case) {
  auto stmt = db_->Cached("SELECT case_id FROM aidsync_notice_numbers WHERE number = ? AND case_id <> ? LIMIT 1");
  stmt->BindText(1, notice).BindText(2, except_case);
  ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return std::optional<std::string>();
  std::string id(stmt->ColumnText(0));
  stmt->Reset();
  return std::optional<std::string>(std::move(id));
}

Status Replica::RegisterNoticeNumber(const std::string& notice, const std::string& case_id) {
  auto add = db_->Cached("INSERT OR IGNORE INTO aidsync_notice_numbers(number, case_id) VALUES (?, ?)");
  add->BindText(1, notice).BindText(2, case_id);
  return add->Run();
}

Status Replica::RecordNoticeNumbers(const std::vector<TouchedRow>& touched) {
  std::set<std::string> ids;
  for (const auto& row : touched)
    if (row.table->name == "cases") ids.insert(row.id);
  std::set<std::string> numbers;  // whose holders changed
  for (const auto& id : ids) {
    auto read = db_->Cached("SELECT notice_number FROM cases WHERE id = ?");
    read->BindText(1, id);
    ASSIGN_OR_RETURN(bool live, read->Step());
    // A deleted row keeps the number it held: an issued number is never
    // used again.
    if (!live) continue;
    std::string now = read->IsNull(0) ? std::string() : std::string(read->ColumnText(0));
    read->Reset();
    std::vector<std::string> before;
    {
      auto held = db_->Cached("SELECT number FROM aidsync_notice_numbers WHERE case_id = ?");
      held->BindText(1, id);
      while (true) {
        ASSIGN_OR_RETURN(bool row, held->Step());
        if (!row) break;
        before.emplace_back(held->ColumnText(0));
      }
    }
    for (const auto& old : before) {
      if (old == now) continue;
      auto drop = db_->Cached("DELETE FROM aidsync_notice_numbers WHERE number = ? AND case_id = ?");
      drop->BindText(1, old).BindText(2, id);
      RETURN_IF_ERROR(drop->Run());
      numbers.insert(old);
    }
    if (now.empty()) continue;
    RETURN_IF_ERROR(RegisterNoticeNumber(now, id));
    numbers.insert(now);
  }
  for (const auto& notice : numbers) RETURN_IF_ERROR(RefreshNoticeDuplicate(notice));
  return Status::OK();
}

Status Replica::RefreshNoticeDuplicate(const std::string& notice) {
  std::vector<std::string> holders;
  {
    auto stmt = db_->Cached("SELECT case_id FROM aidsync_notice_numbers WHERE number = ? ORDER BY case_id");
    stmt->BindText(1, notice);
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) break;
      holders.emplace_back(stmt->ColumnText(0));
    }
  }
  if (holders.size() < 2) {
    auto clear = db_->Cached("DELETE FROM aidsync_alerts WHERE key = ?");
    clear->BindText(1, kDuplicateAlert + notice);
    return clear->Run();
  }
  // A received changeset is a signed fact and stays applied; two cases under
  // one number are for the admin to sort out, so the alert names them all.
  constexpr size_t kNamed = 10;
  std::string named;
  for (size_t i = 0; i < holders.size() && i < kNamed; ++i) {
    auto live = db_->Cached("SELECT 1 FROM cases WHERE id = ?");
    live->BindText(1, holders[i]);
    ASSIGN_OR_RETURN(bool is_live, live->Step());
    live->Reset();
    named += (i == 0 ? "" : ", ") + holders[i] + (is_live ? "" : " (deleted)");
  }
  if (holders.size() > kNamed) named += " and " + std::to_string(holders.size() - kNamed) + " more";
  auto alert = db_->Cached("INSERT OR REPLACE INTO aidsync_alerts(key, message, raised_at) VALUES (?, ?, ?)");
  alert->BindText(1, kDuplicateAlert + notice);
  alert->BindText(2, "notice: notice number " + notice + " is held by " + std::to_string(holders.size()) +
                         " cases: " + named +
                         "; a notice number names one case (was it written under another station's code, or "
                         "by a machine restored or re-enrolled before it synced?)");
  alert->Bind(3, env_.clock->NowMillis());
  return alert->Run();
}

Status Replica::RebuildNoticeNumbers() {
  // Rows are only added: an issued number is never used again, and a deleted
  // case's number is not always left in its metadata (a delete overwrites
  // its field heads), so the registry itself is what remembers it.
  RETURN_IF_ERROR(db_->Exec(
      "INSERT OR IGNORE INTO aidsync_notice_numbers(number, case_id) "
      "SELECT notice_number, id FROM cases WHERE notice_number IS NOT NULL AND notice_number <> '';"));
  // Deleted cases whose metadata still holds the value they had.
  const TableDef* cases = schema_.FindTable("cases");
  const int column = cases == nullptr ? -1 : cases->ColumnIndex(kNoticeColumn);
  if (column >= 0) {
    std::vector<std::pair<std::string, std::string>> deleted;
    {
      ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(
          "SELECT m.id, m.meta FROM aidsync_row_meta m WHERE m.tbl = 'cases' "
          "AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.id = m.id)"));
      while (true) {
        ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        ASSIGN_OR_RETURN(RowMeta meta, DecodeRowMeta(stmt.ColumnBlob(1)));
        if (!meta.deleted) continue;
        for (const auto& field : meta.fields) {
          if (field.column != static_cast<uint32_t>(column) || field.heads.empty() || !field.heads[0].value) continue;
          const Value& v = *field.heads[0].value;
          if (!v.is_null() && !v.ToDisplay().empty()) deleted.emplace_back(v.ToDisplay(), stmt.ColumnText(0));
        }
      }
    }
    for (const auto& [notice, id] : deleted) RETURN_IF_ERROR(RegisterNoticeNumber(notice, id));
  }
  RETURN_IF_ERROR(db_->Exec("DELETE FROM aidsync_alerts WHERE substr(key, 1, 17) = 'notice:duplicate:'"));
  ASSIGN_OR_RETURN(std::vector<std::string> shared, FirstColumnOfEach(
      "SELECT number FROM aidsync_notice_numbers GROUP BY number HAVING count(*) > 1 ORDER BY number"));
  for (const auto& notice : shared) RETURN_IF_ERROR(RefreshNoticeDuplicate(notice));
  return Status::OK();
}

}  // namespace aidsync
