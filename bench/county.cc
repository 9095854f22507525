#include "bench/county.h"

#include <csignal>
#include <filesystem>
#include <chrono>
#include <fstream>
#include <regex>
#include <thread>
#include <utility>

#include "tests/process.h"

namespace aidsync::bench {
namespace {

using Seconds = std::chrono::duration<double>;

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

// Polls `path` until it contains `needle` or `timeout` passes.
bool WaitForText(const std::string& path, const std::string& needle, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace

Result<CommandRun> RunAidsync(const std::vector<std::string>& args) {
  // GNU time measures the peak: it forks the command from its own small
  // process. The bench cannot read it from wait4 itself, because a child it
  // spawns (vfork) carries the bench's own peak into its ru_maxrss at exec.
  proc::TempDir scratch;
  std::vector<std::string> argv = {"/usr/bin/time", "-q", "-f", "%M", "-o", scratch / "peak", proc::AidsyncBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto start = std::chrono::steady_clock::now();
  proc::Result r = proc::Run(argv);
  CommandRun run;
  run.seconds = Seconds(std::chrono::steady_clock::now() - start).count();
  if (!r.ok()) {
    std::string command = "aidsync";
    for (const auto& a : args) command += " " + (a.size() > 80 ? a.substr(0, 40) + "…" : a);
    return Status::IOError(command + " failed: " + FirstLine(r.err));
  }
  try {
    run.peak_rss_kib = std::stoll(proc::ReadFile(scratch / "peak"));
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("cannot read the peak memory GNU time measured: ") + e.what());
  }
  run.out = r.Out();
  return run;
}

Result<County> County::Create(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create " + dir + ": " + ec.message());
  ASSIGN_OR_RETURN(CommandRun authority, RunAidsync({"authority", "init", "--out", dir + "/authority.key"}));
  County county(dir, dir + "/hub");
  RETURN_IF_ERROR(RunAidsync({"init", "--data", county.hub_dir_, "--name", "县法律援助中心", "--code", "0500",
                              "--scope", "430123", "--authority", authority.out, "--hub", "--authority-key",
                              dir + "/authority.key"})
                      .status());
  return county;
}

County::County(County&& other) noexcept
    : dir_(std::move(other.dir_)),
      hub_dir_(std::move(other.hub_dir_)),
      hub_pid_(std::exchange(other.hub_pid_, -1)),
      hub_port_(other.hub_port_) {}

County::~County() {
  if (hub_pid_ > 0) (void)StopHub();
}

Result<CommandRun> County::AtHub(std::vector<std::string> args) {
  args.insert(args.begin() + 1, {"--data", hub_dir_});
  return RunAidsync(args);
}

Result<CommandRun> County::ImportAtHub(const std::string& csv) { return AtHub({"import", kTableName, csv}); }

Status County::StartHub() {
  if (hub_pid_ > 0) return Status::InvalidArgument("the hub is already serving");
  hub_port_ = proc::FreePort();
  const std::string log = dir_ + "/hub.log";
  hub_pid_ = proc::StartBackground(
      {"serve", "--data", hub_dir_, "--listen", "tcp://127.0.0.1:" + std::to_string(hub_port_)}, log);
  if (!WaitForText(log, "listening on", std::chrono::seconds(30)))
    return Status::Unavailable("the hub did not start listening within 30 s (see " + log + ")");
  return Status::OK();
}

Result<int64_t> County::HubPeakRssKib() const {
  std::ifstream in("/proc/" + std::to_string(hub_pid_) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  }
  return Status::NotFound("no VmHWM for the hub (pid " + std::to_string(hub_pid_) + ")");
}

Status County::StopHub() {
  if (hub_pid_ <= 0) return Status::OK();
  proc::Signal(hub_pid_, SIGTERM);
  auto exit = proc::WaitExit(hub_pid_, std::chrono::seconds(30));
  if (!exit) {
    proc::Signal(hub_pid_, SIGKILL);
    exit = proc::WaitExit(hub_pid_, std::chrono::seconds(30));
  }
  hub_pid_ = -1;
  if (!exit || exit->exit_code != 0)
    return Status::IOError("the hub did not stop cleanly (see " + dir_ + "/hub.log)");
  return Status::OK();
}

Result<std::string> County::EnrolStation(const std::string& name, const std::string& code,
                                         const std::string& scope) {
  const std::string address = "tcp://127.0.0.1:" + std::to_string(hub_port_);
  ASSIGN_OR_RETURN(CommandRun token,
                   AtHub({"invite", "--name", name, "--code", code, "--scope", scope, "--address", address}));
  const std::string station = dir_ + "/" + code;
  RETURN_IF_ERROR(RunAidsync({"join", "--data", station, token.out}).status());
  return station;
}

Result<SyncRun> County::Sync(const std::string& station_dir, int port) {
  SyncRun run;
  ASSIGN_OR_RETURN(run.command, RunAidsync({"sync", "--data", station_dir, "--peer",
                                            "tcp://127.0.0.1:" + std::to_string(port), "--timeout", "600"}));
  // "sent S, received R, T round trips, B bytes"
  static const std::regex summary(R"(sent (\d+), received (\d+), (\d+) round trips)");
  std::smatch m;
  if (!std::regex_search(run.command.out, m, summary))
    return Status::Corruption("unexpected output of aidsync sync: " + run.command.out);
  run.received = std::stoll(m[2]);
  run.round_trips = std::stoll(m[3]);
  return run;
}

Status County::CheckRecords(const std::string& data_dir, int64_t count, const std::string& what) {
  ASSIGN_OR_RETURN(CommandRun run, RunAidsync({"query", "--data", data_dir, RecordsCheckSql()}));
  // The last line holds the two numbers, tab-separated.
  const std::string& out = run.out;
  const size_t last = out.find_last_of('\n');
  const std::string line = last == std::string::npos ? out : out.substr(last + 1);
  const std::string want = std::to_string(count) + "\t" + std::to_string(TotalValueBytes(count));
  if (line != want)
    return Status::Corruption(what + ": the replica answers " + line + " (rows, value bytes) where " + want +
                              " was expected");
  return Status::OK();
}

}  // namespace aidsync::bench
