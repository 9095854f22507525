// Shared plumbing of the `aidsync` command line: the options every command
// takes, how a command opens its node, and how results are printed.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/env.h"
#include "base/status.h"
#include "sync/replica.h"

namespace aidsync::cli {

// What the parsed command line asks for. A subcommand's callback stores its
// work in `run`; main() runs it after parsing and reports its Status.
struct Context {
  std::string data_dir = "./aidsync-data";
  Env env = Env::Default();
  std::function<Status()> run;

  // Opens the node in data_dir.
  Result<std::unique_ptr<Replica>> OpenNode(const OpenOptions& options = {}) const {
    return Replica::Open(data_dir, env, options);
  }
};

// Adds subcommand `name` to `parent`. Its options bind to fields of a fresh
// Args object, and when it is chosen, ctx.run becomes run(ctx, args).
template <typename Args>
std::pair<CLI::App*, std::shared_ptr<Args>> AddCommand(CLI::App& parent, Context& ctx, const std::string& name,
                                                       const std::string& help,
                                                       Status (*run)(Context&, const Args&)) {
  auto args = std::make_shared<Args>();
  CLI::App* cmd = parent.add_subcommand(name, help);
  cmd->callback([&ctx, args, run] { ctx.run = [&ctx, args, run] { return run(ctx, *args); }; });
  return {cmd, args};
}

void RegisterTrustCommands(CLI::App& app, Context& ctx);
void RegisterRecordCommands(CLI::App& app, Context& ctx);
void RegisterInspectCommands(CLI::App& app, Context& ctx);
void RegisterSyncCommands(CLI::App& app, Context& ctx);
void RegisterEnrolmentCommands(CLI::App& app, Context& ctx);
void RegisterReportCommands(CLI::App& app, Context& ctx);

// ---- output (output.cc) ----------------------------------------------------
// A value as JSON: numbers as numbers, text as strings, NULL as null.
nlohmann::json ValueToJson(const Value& value);
// A row as one JSON object {column: value}.
nlohmann::json RowToJson(const Row& row);
// Text as every human-readable output shows it (tables, rows, conflicts,
// status, reports, logs, error messages): printable UTF-8 as it is; a
// backslash, newline, tab and CR as \\, \n, \t, \r; other control
// characters (C0, DEL) and bytes that are not UTF-8 as \xHH; C1 controls as
// \u0080-\u009f. A stored value can thus neither drive the terminal
// (escape sequences) nor forge output lines.
std::string DisplayText(std::string_view text);
// Prints rows as tab-separated text with a header line, every field through
// DisplayText, so every row stays one line.
void PrintTable(const std::vector<std::string>& columns, const std::vector<std::vector<Value>>& rows);
// A JSON document on one line: invalid UTF-8 replaced, and DEL and the C1
// controls written as \u escapes too (the encoder leaves them raw).
std::string JsonText(const nlohmann::json& doc);
// Prints JsonText(doc) and a newline to stdout.
void PrintJson(const nlohmann::json& doc);
// True if stderr is a terminal (progress is shown only then).
bool StderrIsTerminal();

}  // namespace aidsync::cli

namespace aidsync::cli {
// Reads a whole file of at most `max_bytes`. NotFound if missing;
// InvalidArgument if larger (an input file is untrusted).
Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes);
// Writes `bytes` to a new file `path`, whole or not at all (a fsynced
// temporary file linked into place). AlreadyExists if `path` exists.
Status WriteFileAtomically(const std::string& path, std::string_view bytes);
}  // namespace aidsync::cli
