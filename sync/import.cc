#include "sync/import.h"

#include <csv.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sync/local_write.h"

namespace aidsync {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

// Splits the optional `id` and `scope` columns off a record and puts the rest.
Status PutRecord(LocalTransaction& tx, const std::string& table, Fields fields) {
  std::optional<std::string> id, scope;
  Fields columns;
  for (auto& [name, value] : fields) {
    if (name == "id") {
      if (!value.empty()) id = std::move(value);
    } else if (name == "scope") {
      if (!value.empty()) scope = std::move(value);
    } else {
      columns.emplace_back(std::move(name), std::move(value));
    }
  }
  return tx.Put(table, std::move(id), std::move(scope), columns).status();
}

// libcsv calls back per field and per record; this gathers them.
// Reports progress every this many rows.
constexpr int64_t kProgressEvery = 5000;

void ReportProgress(const ImportOptions& options, int64_t rows, std::FILE* in, int64_t total) {
  if (options.progress && rows % kProgressEvery == 0) options.progress(rows, std::ftell(in), total);
}

struct CsvState {
  std::FILE* in;
  int64_t total_bytes;
  LocalTransaction* tx;
  const std::string* table;
  const ImportOptions* options;
  std::vector<std::string> header;
  std::vector<std::string> record;
  int64_t line = 0;   // records seen, header included
  int64_t rows = 0;
  Status error;
};

void OnCsvField(void* data, size_t len, void* user) {
  auto* st = static_cast<CsvState*>(user);
  if (!st->error.ok()) return;
  if (len > st->options->max_record_bytes) {
    st->error = Status::InvalidArgument("record " + std::to_string(st->line + 1) + ": a field is over 1 MiB");
    return;
  }
  st->record.emplace_back(data ? static_cast<const char*>(data) : "", data ? len : 0);
}

void OnCsvRecord(int /*terminator*/, void* user) {
  auto* st = static_cast<CsvState*>(user);
  ++st->line;
  std::vector<std::string> record = std::move(st->record);
  st->record.clear();
  if (!st->error.ok()) return;
  if (st->header.empty()) {
    if (record.size() > st->options->max_columns) {
      st->error = Status::InvalidArgument("the header has more than 256 columns");
      return;
    }
    for (auto& h : record) {
      // A UTF-8 byte-order mark, as spreadsheet programs write, is not part of the name.
      if (st->header.empty() && h.rfind("\xEF\xBB\xBF", 0) == 0) h.erase(0, 3);
      st->header.push_back(h);
    }
    return;
  }
  if (record.size() == 1 && record[0].empty()) return;  // blank line
  if (record.size() != st->header.size()) {
    st->error = Status::InvalidArgument("line " + std::to_string(st->line) + ": " + std::to_string(record.size()) +
                                        " fields, but the header has " + std::to_string(st->header.size()));
    return;
  }
  Fields fields;
  for (size_t i = 0; i < record.size(); ++i) fields.emplace_back(st->header[i], std::move(record[i]));
  Status put = PutRecord(*st->tx, *st->table, std::move(fields));
  if (!put.ok()) {
    st->error = put.WithContext("line " + std::to_string(st->line));
    return;
  }
  ++st->rows;
  ReportProgress(*st->options, st->rows, st->in, st->total_bytes);
}

Result<int64_t> ImportCsv(LocalTransaction& tx, const std::string& table, std::FILE* in, int64_t total,
                          const ImportOptions& options) {
  csv_parser parser;
  if (csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
    return Status::IOError("cannot start the CSV parser");
  CsvState st{in, total, &tx, &table, &options, {}, {}, 0, 0, Status::OK()};
  char buf[1 << 16];
  size_t n;
  Status failure;
  while (failure.ok() && st.error.ok() && (n = std::fread(buf, 1, sizeof buf, in)) > 0) {
    if (csv_parse(&parser, buf, n, OnCsvField, OnCsvRecord, &st) != n)
      failure = Status::InvalidArgument("line " + std::to_string(st.line + 1) + ": malformed CSV (" +
                                        csv_strerror(csv_error(&parser)) + ")");
  }
  if (failure.ok() && st.error.ok() && std::ferror(in)) failure = Status::IOError("cannot read the import file");
  if (failure.ok() && st.error.ok() && csv_fini(&parser, OnCsvField, OnCsvRecord, &st) != 0)
    failure = Status::InvalidArgument("malformed CSV at the end of the file (an unclosed quote?)");
  csv_free(&parser);
  RETURN_IF_ERROR(failure);
  RETURN_IF_ERROR(st.error);
  if (st.header.empty()) return Status::InvalidArgument("the CSV file has no header row");
  return st.rows;
}

Result<std::string> JsonFieldText(const nlohmann::json& value) {
  if (value.is_null()) return std::string();
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer()) return std::to_string(value.get<int64_t>());
  if (value.is_number()) return value.dump();
  if (value.is_boolean()) return std::string(value.get<bool>() ? "1" : "0");
  return Status::InvalidArgument("values must be strings, numbers, booleans or null");
}

Result<int64_t> ImportJsonLines(LocalTransaction& tx, const std::string& table, std::FILE* in, int64_t total,
                                const ImportOptions& options) {
  int64_t line = 0, rows = 0;
  char* buf = nullptr;
  size_t cap = 0;
  ssize_t len;
  Status st;
  while (st.ok() && (len = ::getline(&buf, &cap, in)) >= 0) {
    ++line;
    if (static_cast<size_t>(len) > options.max_record_bytes) {
      st = Status::InvalidArgument("line " + std::to_string(line) + " is over 1 MiB");
      break;
    }
    std::string_view view(buf, static_cast<size_t>(len));
    if (view.find_first_not_of(" \t\r\n") == std::string_view::npos) continue;
    nlohmann::json obj = nlohmann::json::parse(view, nullptr, /*allow_exceptions=*/false);
    if (obj.is_discarded() || !obj.is_object()) {
      st = Status::InvalidArgument("line " + std::to_string(line) + ": not a JSON object");
      break;
    }
    Fields fields;
    for (auto it = obj.begin(); it != obj.end() && st.ok(); ++it) {
      auto text_value = JsonFieldText(it.value());
      if (!text_value.ok()) {
        st = text_value.status().WithContext("line " + std::to_string(line) + ", column " + it.key());
      } else {
        fields.emplace_back(it.key(), std::move(text_value).value());
      }
    }
    if (!st.ok()) break;
    st = PutRecord(tx, table, std::move(fields));
    if (!st.ok()) {
      st = st.WithContext("line " + std::to_string(line));
      break;
    }
    ++rows;
    ReportProgress(options, rows, in, total);
  }
  std::free(buf);
  RETURN_IF_ERROR(st);
  if (std::ferror(in)) return Status::IOError("cannot read the import file");
  return rows;
}

}  // namespace

Result<int64_t> ImportFile(Replica& replica, const std::string& table, const std::string& path,
                           const ImportOptions& options) {
  if (replica.schema().FindTable(table) == nullptr)
    return Status::NotFound("table '" + table + "' is not in the schema");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!in) {
    if (errno == ENOENT) return Status::NotFound("no import file at " + path);
    return Status::IOError("cannot open " + path + ": " + std::strerror(errno));
  }
  ImportFormat format = options.format;
  if (format == ImportFormat::kAuto) {
    int c;
    while ((c = std::fgetc(in.get())) != EOF && std::isspace(c)) {
    }
    format = c == '{' ? ImportFormat::kJsonLines : ImportFormat::kCsv;
    std::rewind(in.get());
  }
  std::fseek(in.get(), 0, SEEK_END);
  const int64_t total = std::ftell(in.get());
  std::rewind(in.get());
  ASSIGN_OR_RETURN(auto tx, replica.BeginLocal());
  Result<int64_t> rows = format == ImportFormat::kJsonLines ? ImportJsonLines(*tx, table, in.get(), total, options)
                                                            : ImportCsv(*tx, table, in.get(), total, options);
  if (!rows.ok()) return rows.status().WithContext(path);
  auto committed = tx->Commit();
  if (!committed.ok()) return committed.status().WithContext(path);
  return rows;
}

}  // namespace aidsync
