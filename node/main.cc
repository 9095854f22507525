// aidsync: offline-first replication of legal-aid records between a county
// legal-aid centre and its township and village workstations.
//
// Exit codes: 0 success; 1 the command failed (one line on stderr says why);
// 2 the command line itself is wrong.
#include <iostream>

#include "node/cli.h"

int main(int argc, char** argv) {
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
    if (app.get_subcommands().empty() && !app.remaining().empty())
      what = "unknown command '" + app.remaining().front() + "'";
    for (char& c : what)
      if (c == '\n') c = ' ';
    std::cerr << "aidsync: " << what << " (see `aidsync --help`)\n";
    return 2;
  }
  if (!ctx.run) return 2;
  aidsync::Status st = ctx.run();
  std::cout.flush();
  if (!st.ok()) {
    std::string message = st.message();
    for (char& c : message)
      if (c == '\n') c = ' ';
    std::cerr << "aidsync: " << message << "\n";
    return 1;
  }
  return 0;
}
