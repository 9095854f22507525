// Record commands: put, get, list, delete, query, import, resolve.
#include <chrono>
#include <iostream>

#include "node/cli.h"
#include "sync/import.h"
#include "sync/local_write.h"

namespace aidsync::cli {
namespace {

struct PutArgs {
  std::vector<std::string> args;  // TABLE ID|new col=value ...
  std::string scope;
};

Status RunPut(Context& ctx, const PutArgs& a) {
  if (a.args.size() < 2) return Status::InvalidArgument("usage: aidsync put TABLE ID|new column=value ...");
  const std::string& table = a.args[0];
  std::optional<std::string> id;
  if (a.args[1] != "new") id = a.args[1];
  if (id && id->find('=') != std::string::npos)
    return Status::InvalidArgument("the second argument is the row id or `new`, got '" + *id +
                                   "' (usage: aidsync put TABLE ID|new column=value ...)");
  std::optional<std::string> scope;
  if (!a.scope.empty()) scope = a.scope;
  std::vector<std::pair<std::string, std::string>> values;
  for (size_t i = 2; i < a.args.size(); ++i) {
    const std::string& pair = a.args[i];
    size_t eq = pair.find('=');
    if (eq == std::string::npos || eq == 0)
      return Status::InvalidArgument("expected column=value, got '" + pair + "'");
    std::string column = pair.substr(0, eq), value = pair.substr(eq + 1);
    if (column == "scope") {
      scope = value;
    } else if (column == "id") {
      return Status::InvalidArgument("the id is the second argument, not a column=value pair");
    } else {
      values.emplace_back(std::move(column), std::move(value));
    }
  }
  ASSIGN_OR_RETURN(auto replica, ctx.OpenNode());
  ASSIGN_OR_RETURN(auto tx, replica->BeginLocal());
  ASSIGN_OR_RETURN(std::string row_id, tx->Put(table, id, scope, values));
  ASSIGN_OR_RETURN(CommitSummary summary, tx->Commit());
  for (const auto& alert : summary.alerts) std::cerr << "aidsync: alert: " << DisplayText(alert) << "\n";
  std::cout << row_id << "\n";
  return Status::OK();
}

struct RowArgs {
  std::string table, id;
  bool json = false;
};

Status RunGet(Context& ctx, const RowArgs& a) {
  ASSIGN_OR_RETURN(auto replica, ctx.OpenNode({.quick_check = false, .read_only = true}));
  ASSIGN_OR_RETURN(std::optional<Row> row, replica->Get(a.table, a.id));
  if (!row) return Status::NotFound("no row " + a.table + "/" + a.id);
  if (a.json) {
    PrintJson(RowToJson(*row));
  } else {
    for (const auto& [column, value] : *row)
      std::cout << DisplayText(column) << "\t" << DisplayText(value.ToDisplay()) << "\n";
  }
  return Status::OK();
}

Status RunList(Context& ctx, const RowArgs& a) {
  ASSIGN_OR_RETURN(auto replica, ctx.OpenNode({.quick_check = false, .read_only = true}));
  ASSIGN_OR_RETURN(std::vector<Row> rows, replica->List(a.table));
  if (a.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& row : rows) out.push_back(RowToJson(row));
    PrintJson(out);
    return Status::OK();
  }
  const TableDef* def = replica->schema().FindTable(a.table);
  std::vector<std::string> columns{"id", "scope"};
  for (const auto& c : def->columns) columns.push_back(c.name);
  std::vector<std::vector<Value>> values;
  for (const auto& row : rows) {
    values.emplace_back();
    for (const auto& [column, value] : row) values.back().push_back(value);
  }
  PrintTable(columns, values);
  return Status::OK();
}

Status RunDelete(Context& ctx, const RowArgs& a) {
  ASSIGN_OR_RETURN(auto replica, ctx.OpenNode());
  ASSIGN_OR_RETURN(auto tx, replica->BeginLocal());
  RETURN_IF_ERROR(tx->Delete(a.table, a.id));
  return tx->Commit().status();
}

struct QueryArgs {
  std::string sql;
  bool json = false;
};

Status RunQuery(Context& ctx, const QueryArgs& a) {
  ASSIGN_OR_RETURN(auto replica, ctx.OpenNode({.quick_check = false, .read_only = true}));
  ASSIGN_OR_RETURN(QueryResult result, replica->Query(a.sql));
  if (!a.json) {
    PrintTable(result.columns, result.rows);
    return Status::OK();
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& row : result.rows) {
    nlohmann::json obj = nlohmann::json::object();
    for (size_t i = 0; i < row.size(); ++i) obj[result.columns[i]] = ValueToJson(row[i]);
    out.push_back(std::move(obj));
  }
  PrintJson(out);
  return Status::OK();
}

struct ImportArgs {
  std::string table, file;
};

Status RunImport(Context& ctx, const ImportArgs& a) {
  ASSIGN_OR_RETURN(auto replica, ctx.OpenNode());
  ImportOptions options;
  auto start = std::chrono::steady_clock::now();
  if (StderrIsTerminal()) {
    options.progress = [start](int64_t rows, int64_t bytes_read, int64_t bytes_total) {
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      double left = bytes_read > 0 ? secs * static_cast<double>(bytes_total - bytes_read) / bytes_read : 0;
      std::cerr << "\rimported " << rows << " rows, " << static_cast<int64_t>(rows / (secs > 0 ? secs : 1))
                << " rows/s, " << static_cast<int64_t>(secs) << " s so far, about "
                << static_cast<int64_t>(left + 0.5) << " s left   " << std::flush;
    };
  }
  auto rows = ImportFile(*replica, a.table, a.file, options);
  if (options.progress) std::cerr << "\n";
  if (!rows.ok()) return rows.status();
  std::cout << *rows << "\n";
  return Status::OK();
}

struct ResolveArgs {
  std::string table, id, column, value;
};

Status RunResolve(Context& ctx, const ResolveArgs& a) {
  ASSIGN_OR_RETURN(auto replica, ctx.OpenNode());
  ASSIGN_OR_RETURN(auto tx, replica->BeginLocal());
  RETURN_IF_ERROR(tx->Resolve(a.table, a.id, a.column, a.value));
  return tx->Commit().status();
}

}  // namespace

void RegisterRecordCommands(CLI::App& app, Context& ctx) {
  {
    auto [cmd, a] = AddCommand<PutArgs>(app, ctx, "put", "create or update a row; prints its id", RunPut);
    cmd->add_option("TABLE ID|new column=value", a->args, "table, row id (or `new`), column=value pairs")
        ->required()
        ->allow_extra_args();
    cmd->add_option("--scope", a->scope, "jurisdiction of a new row (default: this node's)");
  }
  {
    auto [cmd, a] = AddCommand<RowArgs>(app, ctx, "get", "print one row", RunGet);
    cmd->add_option("TABLE", a->table)->required();
    cmd->add_option("ID", a->id)->required();
    cmd->add_flag("--json", a->json, "one JSON object");
  }
  {
    auto [cmd, a] = AddCommand<RowArgs>(app, ctx, "list", "print every row of a table", RunList);
    cmd->add_option("TABLE", a->table)->required();
    cmd->add_flag("--json", a->json, "a JSON array ordered by id");
  }
  {
    auto [cmd, a] = AddCommand<RowArgs>(app, ctx, "delete", "delete a row for good", RunDelete);
    cmd->add_option("TABLE", a->table)->required();
    cmd->add_option("ID", a->id)->required();
  }
  {
    auto [cmd, a] = AddCommand<QueryArgs>(app, ctx, "query", "run one read-only SQL statement", RunQuery);
    cmd->add_option("SQL", a->sql)->required();
    cmd->add_flag("--json", a->json, "a JSON array of objects");
  }
  {
    auto [cmd, a] = AddCommand<ImportArgs>(app, ctx, "import", "bulk-load CSV or JSON lines; prints the count",
                                        RunImport);
    cmd->add_option("TABLE", a->table)->required();
    cmd->add_option("FILE", a->file)->required();
  }
  {
    auto [cmd, a] = AddCommand<ResolveArgs>(app, ctx, "resolve", "close a conflict with a new write", RunResolve);
    cmd->add_option("TABLE", a->table)->required();
    cmd->add_option("ID", a->id)->required();
    cmd->add_option("COLUMN", a->column)->required();
    cmd->add_option("VALUE", a->value)->required();
  }
}

}  // namespace aidsync::cli
