// aidsync: offline-first replication of legal-aid records between a county
// legal-aid centre and its township and village workstations.
//
// Exit codes: 0 success; 1 the command failed (one line on stderr says why);
// 2 the command line itself is wrong.
#include <csignal>
#include <iostream>
#include <string>

#include "node/cli.h"

namespace {

// When the command line lacks a required subcommand, the first word that is
// not an option and not a subcommand is a mistyped command: name it, rather
// than CLI11's bare "A subcommand is required". Empty if there is no such word.
std::string UnknownCommand(const CLI::App& app, int argc, char** argv) {
  const CLI::App* at = &app;
  std::string path;
  for (int i = 1; i < argc; ++i) {
    std::string word = argv[i];
    if (word == "--data") {
      ++i;  // its value
      continue;
    }
    if (!word.empty() && word[0] == '-') continue;
    const CLI::App* next = nullptr;
    for (const CLI::App* sub : at->get_subcommands([](const CLI::App*) { return true; }))
      if (sub->check_name(word)) next = sub;
    if (next == nullptr) {
      if (at->get_require_subcommand_min() == 0) return "";  // a positional argument of a command
      return "unknown command '" + path + word + "'";
    }
    path += word + " ";
    at = next;
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  // Past a file size limit (ulimit -f) a write must fail with EFBIG, which
  // SQLite turns into a failed transaction and a clear error, rather than
  // SIGXFSZ killing the process (tests/io_fault_test.cc).
  std::signal(SIGXFSZ, SIG_IGN);
  aidsync::cli::Context ctx;
  CLI::App app{"aidsync: offline-first sync of legal-aid records between a county hub and its stations",
               "aidsync"};
  app.set_version_flag("--version", "aidsync 0.1.0");
  app.add_option("--data", ctx.data_dir, "the node's data dir (default ./aidsync-data)");
  app.require_subcommand(1);
  app.fallthrough();
  aidsync::cli::RegisterTrustCommands(app, ctx);
  aidsync::cli::RegisterRecordCommands(app, ctx);
  aidsync::cli::RegisterInspectCommands(app, ctx);
  aidsync::cli::RegisterSyncCommands(app, ctx);
  aidsync::cli::RegisterEnrolmentCommands(app, ctx);
  aidsync::cli::RegisterReportCommands(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    if (std::string unknown = UnknownCommand(app, argc, argv); !unknown.empty()) what = unknown;
    if (app.get_subcommands().empty() && !app.remaining().empty())
      what = "unknown command '" + app.remaining().front() + "'";
    for (char& c : what)
      if (c == '\n') c = ' ';
    std::cerr << "aidsync: " << aidsync::cli::DisplayText(what) << " (see `aidsync --help`)\n";
    return 2;
  }
  if (!ctx.run) return 2;
  aidsync::Status st = ctx.run();
  std::cout.flush();
  if (!st.ok()) {
    // Messages may quote values, names and file contents: one line, no controls.
    std::cerr << "aidsync: " << aidsync::cli::DisplayText(st.message()) << "\n";
    return 1;
  }
  return 0;
}
