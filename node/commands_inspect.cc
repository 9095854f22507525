// Inspection and exchange commands: status, conflicts, rebuild, bundle.
#include <ctime>
#include <iostream>

#include "node/cli.h"
#include "node/status_json.h"
#include "sync/bundle.h"

namespace aidsync::cli {
namespace {

void PrintStatus(const ReplicaStatus& s) {
  // Names, codes, addresses and errors come from certificates and peers:
  // every one is shown through DisplayText.
  std::cout << "node       " << DisplayText(s.node.name) << " (" << DisplayText(s.node.code) << "), "
            << RoleName(s.node.role) << ", scope " << DisplayText(s.node.scope) << (s.node.enrolled ? "" : ", NOT ENROLLED") << "\n";
  std::cout << "key        " << s.node.key.Hex() << "\n";
  std::cout << "log        " << s.own_changesets << " own changesets, " << s.total_changesets << " in all, "
            << s.held_changesets << " held\n";
  std::cout << "conflicts  " << s.conflicts_open << " open\n";
  std::cout << "forks      " << s.forks.size() << "\n";
  std::cout << "revoked    " << s.revoked.size() << (s.self_revoked ? " (THIS NODE IS REVOKED)" : "") << "\n";
  std::cout << "rejected   ";
  if (s.rejected.empty()) std::cout << "none";
  for (const auto& [reason, n] : s.rejected) std::cout << DisplayText(reason) << "=" << n << " ";
  std::cout << "\n";
  std::cout << "peers      " << s.peers.size() << "\n";
  for (const auto& p : s.peers) {
    std::cout << "  - " << DisplayText(p.name) << " (" << DisplayText(p.code) << ") " << DisplayText(p.address)
              << " last sync "
              << (p.last_sync_ms ? IsoTime(p.last_sync_ms) : "never") << ", " << p.pending_out << " out / "
              << p.pending_in << " in pending, clock " << p.clock_offset_ms << " ms"
              << (p.last_error.empty() ? "" : ", last error: " + DisplayText(p.last_error)) << "\n";
  }
  std::cout << "alerts     " << (s.alerts.empty() ? "none" : std::to_string(s.alerts.size())) << "\n";
  for (const auto& a : s.alerts) std::cout << "  - " << DisplayText(a) << "\n";
}

struct JsonFlag {
  bool json = false;
};

Status RunStatus(Context& ctx, const JsonFlag& a) {
  ASSIGN_OR_RETURN(auto replica, ctx.OpenNode({.quick_check = true, .read_only = false}));
  ASSIGN_OR_RETURN(ReplicaStatus s, replica->GetStatus());
  if (a.json) {
    PrintJson(StatusToJson(s));
  } else {
    PrintStatus(s);
  }
  return Status::OK();
}

Status RunConflicts(Context& ctx, const JsonFlag& a) {
  ASSIGN_OR_RETURN(auto replica, ctx.OpenNode({.quick_check = false, .read_only = true}));
  ASSIGN_OR_RETURN(std::vector<Conflict> conflicts, replica->Conflicts());
  if (a.json) {
    PrintJson(ConflictsToJson(conflicts));
    return Status::OK();
  }
  for (const auto& c : conflicts) {
    std::cout << DisplayText(c.table) << " " << DisplayText(c.id) << " " << DisplayText(c.column)
              << (c.row_deleted ? " (row deleted)" : "") << "\n";
    auto line = [](const char* label, const ConflictVersion& v) {
      std::cout << "  " << label << " " << DisplayText(v.value.ToDisplay()) << "\t" << DisplayText(v.author) << "\t"
                << IsoTime(v.time_ms) << "\n";
    };
    if (c.winner) line("shown", *c.winner);
    for (const auto& l : c.losers) line("other", l);
  }
  return Status::OK();
}

Status RunRebuild(Context& ctx, const JsonFlag&) {
  ASSIGN_OR_RETURN(auto replica, ctx.OpenNode({.quick_check = true, .read_only = false}));
  std::function<void(int64_t, int64_t)> progress;
  if (StderrIsTerminal()) {
    progress = [](int64_t done, int64_t total) {
      std::cerr << "\rrebuilt " << done << " of " << total << " changesets" << std::flush;
    };
  }
  Status st = replica->Rebuild(progress);
  if (progress) std::cerr << "\n";
  return st;
}

struct BundleCreateArgs {
  std::string code, out;
};

Status RunBundleCreate(Context& ctx, const BundleCreateArgs& a) {
  ASSIGN_OR_RETURN(auto replica, ctx.OpenNode());
  ASSIGN_OR_RETURN(BundleCreateSummary s, CreateBundle(*replica, a.code, a.out));
  std::cout << s.changesets << " changesets and " << s.certificates << " certificates for station " << DisplayText(a.code)
            << " in " << a.out << "\n";
  return Status::OK();
}

struct BundleApplyArgs {
  std::string file;
};

Status RunBundleApply(Context& ctx, const BundleApplyArgs& a) {
  ASSIGN_OR_RETURN(auto replica, ctx.OpenNode());
  ASSIGN_OR_RETURN(BundleApplySummary s, ApplyBundle(*replica, a.file));
  const ApplyReport& r = s.report;
  std::cout << r.applied << " applied, " << r.duplicates << " already present, " << r.held << " held, "
            << r.rejected << " rejected\n";
  if (r.rejected > 0)
    return Status::InvalidArgument(std::to_string(r.rejected) + " changesets were rejected; the first: " +
                                   r.rejections.front());
  if (r.held > 0)
    return Status::Unavailable(std::to_string(r.held) +
                               " changesets wait for earlier changesets of their chains that the bundle lacks");
  return Status::OK();
}

}  // namespace

void RegisterInspectCommands(CLI::App& app, Context& ctx) {
  {
    auto [cmd, a] = AddCommand<JsonFlag>(app, ctx, "status", "this node: log, conflicts, forks, rejections, alerts",
                                      RunStatus);
    cmd->add_flag("--json", a->json, "one JSON document");
  }
  {
    auto [cmd, a] = AddCommand<JsonFlag>(app, ctx, "conflicts", "open conflicts with every version", RunConflicts);
    cmd->add_flag("--json", a->json, "a JSON array");
  }
  AddCommand<JsonFlag>(app, ctx, "rebuild", "re-materialize the tables from the log", RunRebuild);
  auto* bundle = app.add_subcommand("bundle", "changesets on a file, sealed to one station");
  bundle->require_subcommand(1);
  {
    auto [cmd, a] = AddCommand<BundleCreateArgs>(*bundle, ctx, "create", "write what station CODE may see",
                                              RunBundleCreate);
    cmd->add_option("--for", a->code, "recipient station code")->required();
    cmd->add_option("--out", a->out, "bundle file to create")->required();
  }
  {
    auto [cmd, a] = AddCommand<BundleApplyArgs>(*bundle, ctx, "apply", "apply a bundle made for this node",
                                             RunBundleApply);
    cmd->add_option("FILE", a->file)->required();
  }
}

}  // namespace aidsync::cli
