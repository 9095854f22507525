// Test helpers for process-level tests: run the real `aidsync` binary (or any
// program) without a shell, capturing stdout, stderr and the exit status; run
// several command sequences concurrently; background processes and free ports.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tests/test_support.h"

namespace aidsync::proc {

// The aidsync executable under test: the AIDSYNC_BINARY compile definition, or
// the AIDSYNC_TEST_BINARY environment variable when set (to test another build).
std::string AidsyncBinary();

// How a finished child ended and what it printed.
struct Result {
  int exit_code = -1;   // the exit status, or -1 if the child was killed by a signal
  int term_signal = 0;  // the signal that killed it, or 0
  std::string out;      // everything written to stdout
  std::string err;      // everything written to stderr

  bool ok() const { return exit_code == 0; }
  // stdout without its trailing newlines (what a shell's $(...) captures).
  std::string Out() const;
  // The lines of stderr (a last line without '\n' counts too).
  std::vector<std::string> ErrLines() const;
  // argv, exit status, stdout and stderr, for test failure messages.
  std::string Describe() const;

  std::vector<std::string> argv;
};

struct Options {
  // Bytes to feed on stdin; without them stdin is /dev/null (or closed).
  std::optional<std::string> stdin_data;
  bool close_stdin = false;  // start the child with fd 0 closed
  std::string cwd;           // working directory of the child; empty: the test's
  // Start the child as the leader of a new process group (its group id is its
  // pid), so that it and every process it starts can be signalled at once
  // (Process::SignalGroup): a browser starts helper processes of its own.
  bool new_process_group = false;
  // RLIMIT_FSIZE of the child, in bytes, with SIGXFSZ ignored: a write that
  // would take a file past it fails with EFBIG, as on a disk that is full.
  std::optional<uint64_t> file_size_limit;
  // Paths the child sees read-only: it runs in a mount namespace of its own
  // in which each is bind-mounted read-only, so not even root can write there
  // (EROFS), while the rest of the system sees them unchanged. Needs root
  // (CAP_SYS_ADMIN); see ReadOnlyMountsWork().
  std::vector<std::string> read_only_paths;
};

// A started child process. Its stdout and stderr go to anonymous in-memory
// files, so any number of children can run at once without pipe deadlocks.
class Process {
 public:
  // Starts argv[0] (an absolute or relative path; PATH is not searched).
  // Throws std::runtime_error if it cannot be started.
  static Process Start(std::vector<std::string> argv, const Options& options = {});

  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  // Waits for the child if Wait() was not called; a child started with
  // new_process_group is killed with its group (SIGKILL) first.
  ~Process();

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  // Waits for the child to end and collects its output.
  Result Wait();
  // Waits up to `timeout` for the child to end, looking every 10 ms, without
  // reaping it: true when it has ended (Wait() then returns at once), false if
  // it is still running at the deadline.
  bool Ended(std::chrono::milliseconds timeout);
  // Sends `sig` to the child's process group (Options::new_process_group):
  // the child and whatever it started and left in the group. Call it before
  // Wait(): until the child is reaped, its pid names no other group. False if
  // no process of the group is left (or the child was not started as leader).
  bool SignalGroup(int sig);
  // Collects the output of a child already reaped with wait status `status`.
  Result Finish(int status);

 private:
  Process() = default;
  void Close();

  pid_t pid_ = -1;
  bool group_leader_ = false;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::vector<std::string> argv_;
};

// Whether Options::read_only_paths can be honoured here (a child may make a
// mount namespace of its own). Runs /bin/true once to find out.
bool ReadOnlyMountsWork();

// Runs a program to completion.
Result Run(std::vector<std::string> argv, const Options& options = {});
// Runs the aidsync binary with `args` (the binary is prepended).
Result Aidsync(std::vector<std::string> args, const Options& options = {});

// Runs several lanes at once: the commands of one lane run one after another,
// the lanes concurrently. A command is argv without the program: each runs
// the aidsync binary. Returns each lane's results in order.
// It reaps with waitpid(-1): start no other child that is still running.
std::vector<std::vector<Result>> RunLanes(const std::vector<std::vector<std::vector<std::string>>>& lanes);

// The temporary directory and whole-file helpers of tests/test_support.h.
using ::aidsync::testing::ReadFile;
using ::aidsync::testing::TempDir;
using ::aidsync::testing::WriteFile;

// The permission bits of a file (st_mode & 07777); throws std::runtime_error
// if it cannot stat the file.
unsigned FileMode(const std::string& path);
bool Exists(const std::string& path);

// ---- Background processes (daemons) ----------------------------------------
// Unlike Process, these are not reaped by a destructor: the caller ends them
// with Signal and reaps them with WaitExit. RunLanes reaps with waitpid(-1), so
// do not mix it with background processes that are still running.

// Starts the aidsync binary with `args` in the background, stdout and stderr
// appended to `log_path` (created 0600 if missing), stdin /dev/null. Returns
// the pid. Throws std::runtime_error if it cannot be started.
pid_t StartBackground(std::vector<std::string> args, const std::string& log_path);

// Sends `sig` to `pid`; false if the process no longer exists.
bool Signal(pid_t pid, int sig);

// How a reaped background process ended.
struct Exit {
  int exit_code = -1;   // or -1 if killed by a signal
  int term_signal = 0;  // the signal that killed it, or 0
};

// Waits up to `timeout` for `pid` to end and reaps it, looking every 10 ms.
// nullopt if it is still running at the deadline.
std::optional<Exit> WaitExit(pid_t pid, std::chrono::milliseconds timeout);

// A TCP port on 127.0.0.1 that was free a moment ago: binds port 0, reads the
// port the kernel chose, and closes the socket.
int FreePort();

}  // namespace aidsync::proc
