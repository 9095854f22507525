#include "tests/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

extern char** environ;

namespace aidsync::proc {
namespace {

[[noreturn]] void Fail(const std::string& what, int err = errno) {
  throw std::runtime_error(what + ": " + std::strerror(err));
}

// An anonymous in-memory file (close-on-exec in this process).
int MemFile(const char* name) {
  int fd = ::memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) Fail("memfd_create");
  return fd;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[1 << 16];
  off_t offset = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      Fail("reading child output");
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    offset += n;
  }
  return out;
}

void WriteAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      Fail("writing child input");
    }
    done += static_cast<size_t>(n);
  }
}

// Closes the fd on scope exit.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

// posix_spawn_file_actions_t with RAII destruction.
struct FileActions {
  posix_spawn_file_actions_t actions;
  FileActions() {
    if (int e = posix_spawn_file_actions_init(&actions); e != 0) Fail("posix_spawn_file_actions_init", e);
  }
  ~FileActions() { posix_spawn_file_actions_destroy(&actions); }
  void Check(int e, const char* what) {
    if (e != 0) Fail(what, e);
  }
};

// posix_spawnattr_t with RAII destruction.
struct SpawnAttr {
  posix_spawnattr_t attr;
  SpawnAttr() {
    if (int e = posix_spawnattr_init(&attr); e != 0) Fail("posix_spawnattr_init", e);
  }
  ~SpawnAttr() { posix_spawnattr_destroy(&attr); }
};

// Exit status of a confined child whose confinement could not be set up.
constexpr int kConfineFailed = 125;

// In a forked child: writes "process.cc: <what>: <errno text>" to stderr and
// exits. Only async-signal-safe calls, as after fork in a threaded process.
[[noreturn]] void ChildFail(const char* what, const char* path) {
  const int err = errno;
  auto put = [](const char* s) {
    if (::write(STDERR_FILENO, s, std::strlen(s)) < 0) {
    }
  };
  put("process.cc: ");
  put(what);
  if (path != nullptr) {
    put(" ");
    put(path);
  }
  put(": ");
  put(std::strerror(err));
  put("\n");
  ::_exit(kConfineFailed);
}

// Starts a child with the limits of Options::file_size_limit and
// read_only_paths, which posix_spawn cannot set: fork, set up, execve.
pid_t SpawnConfined(std::vector<char*>& argv, int stdin_fd, int out_fd, int err_fd, const Options& options) {
  // Everything the child needs is made before fork: it may not allocate.
  std::vector<const char*> ro;
  for (const auto& p : options.read_only_paths) ro.push_back(p.c_str());
  const char* cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();
  pid_t pid = ::fork();
  if (pid < 0) Fail("fork");
  if (pid > 0) return pid;
  // The child.
  if (options.close_stdin) {
    ::close(STDIN_FILENO);
  } else if (stdin_fd >= 0) {
    if (::dup2(stdin_fd, STDIN_FILENO) < 0) ChildFail("dup2 stdin", nullptr);
  } else {
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd < 0 || ::dup2(null_fd, STDIN_FILENO) < 0) ChildFail("open /dev/null", nullptr);
    if (null_fd != STDIN_FILENO) ::close(null_fd);
  }
  if (::dup2(out_fd, STDOUT_FILENO) < 0 || ::dup2(err_fd, STDERR_FILENO) < 0) ChildFail("dup2", nullptr);
  if (cwd != nullptr && ::chdir(cwd) != 0) ChildFail("chdir", cwd);
  if (options.new_process_group && ::setpgid(0, 0) != 0) ChildFail("setpgid", nullptr);
  if (!ro.empty()) {
    if (::unshare(CLONE_NEWNS) != 0) ChildFail("unshare(CLONE_NEWNS)", nullptr);
    // Private first, so that the read-only mounts below stay in this namespace.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ChildFail("make / private", nullptr);
    for (const char* path : ro) {
      if (::mount(path, path, nullptr, MS_BIND | MS_REC, nullptr) != 0) ChildFail("bind-mount", path);
      if (::mount(nullptr, path, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0)
        ChildFail("remount read-only", path);
    }
  }
  if (options.file_size_limit) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    if (::sigaction(SIGXFSZ, &ignore, nullptr) != 0) ChildFail("ignore SIGXFSZ", nullptr);
    struct rlimit limit {};
    if (::getrlimit(RLIMIT_FSIZE, &limit) != 0) ChildFail("getrlimit", nullptr);
    limit.rlim_cur = static_cast<rlim_t>(*options.file_size_limit);
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_cur > limit.rlim_max) limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ChildFail("setrlimit(RLIMIT_FSIZE)", nullptr);
  }
  ::execve(argv[0], argv.data(), environ);
  ChildFail("cannot start", argv[0]);
}

std::string Quote(const std::string& arg) {
  if (!arg.empty() && arg.find_first_of(" \t\n'\"\\$`;&|<>()*?[]#~") == std::string::npos) return arg;
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace

std::string AidsyncBinary() {
  const char* override_path = std::getenv("AIDSYNC_TEST_BINARY");
  return override_path != nullptr && *override_path != '\0' ? override_path : AIDSYNC_BINARY;
}

std::string Result::Out() const {
  std::string s = out;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::vector<std::string> Result::ErrLines() const {
  std::vector<std::string> lines;
  std::string line;
  std::istringstream in(err);
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

std::string Result::Describe() const {
  std::ostringstream s;
  s << "$";
  for (const auto& a : argv) s << " " << Quote(a);
  s << "\n";
  if (term_signal != 0) {
    s << "killed by signal " << term_signal << "\n";
  } else {
    s << "exit " << exit_code << "\n";
  }
  constexpr size_t kShow = 4000;
  auto show = [&](const char* name, const std::string& text) {
    s << name << " (" << text.size() << " bytes):\n";
    if (text.size() > kShow) {
      s << text.substr(0, kShow) << "\n...[truncated]\n";
    } else {
      s << text;
      if (!text.empty() && text.back() != '\n') s << "\n";
    }
  };
  show("stdout", out);
  show("stderr", err);
  return s.str();
}

Process Process::Start(std::vector<std::string> argv, const Options& options) {
  if (argv.empty()) throw std::invalid_argument("Process::Start: empty argv");
  Process p;
  p.argv_ = std::move(argv);
  p.out_fd_ = MemFile("stdout");
  p.err_fd_ = MemFile("stderr");
  FdGuard in{-1};
  if (options.stdin_data) {
    in.fd = MemFile("stdin");
    WriteAll(in.fd, *options.stdin_data);
    if (::lseek(in.fd, 0, SEEK_SET) != 0) Fail("lseek");
  }

  std::vector<char*> cargv;
  for (auto& a : p.argv_) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  if (options.file_size_limit || !options.read_only_paths.empty()) {
    p.pid_ = SpawnConfined(cargv, in.fd, p.out_fd_, p.err_fd_, options);
    p.group_leader_ = options.new_process_group;
    return p;
  }

  FileActions fa;
  if (options.close_stdin) {
    fa.Check(posix_spawn_file_actions_addclose(&fa.actions, STDIN_FILENO), "addclose");
  } else if (in.fd >= 0) {
    fa.Check(posix_spawn_file_actions_adddup2(&fa.actions, in.fd, STDIN_FILENO), "adddup2 stdin");
  } else {
    fa.Check(posix_spawn_file_actions_addopen(&fa.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0),
             "addopen /dev/null");
  }
  // dup2 onto another descriptor clears close-on-exec on the copy.
  fa.Check(posix_spawn_file_actions_adddup2(&fa.actions, p.out_fd_, STDOUT_FILENO), "adddup2 stdout");
  fa.Check(posix_spawn_file_actions_adddup2(&fa.actions, p.err_fd_, STDERR_FILENO), "adddup2 stderr");
  if (!options.cwd.empty())
    fa.Check(posix_spawn_file_actions_addchdir_np(&fa.actions, options.cwd.c_str()), "addchdir");

  SpawnAttr attr;
  if (options.new_process_group) {
    // Group id 0: the child's own pid.
    if (int e = posix_spawnattr_setflags(&attr.attr, POSIX_SPAWN_SETPGROUP); e != 0) Fail("setflags SETPGROUP", e);
    if (int e = posix_spawnattr_setpgroup(&attr.attr, 0); e != 0) Fail("setpgroup", e);
  }

  pid_t pid = -1;
  if (int e = ::posix_spawn(&pid, cargv[0], &fa.actions, &attr.attr, cargv.data(), environ); e != 0)
    Fail("cannot start " + p.argv_[0], e);
  p.pid_ = pid;
  p.group_leader_ = options.new_process_group;
  return p;
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      group_leader_(std::exchange(other.group_leader_, false)),
      out_fd_(std::exchange(other.out_fd_, -1)),
      err_fd_(std::exchange(other.err_fd_, -1)),
      argv_(std::move(other.argv_)) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    if (running()) {
      if (group_leader_) SignalGroup(SIGKILL);
      Wait();
    }
    Close();
    pid_ = std::exchange(other.pid_, -1);
    group_leader_ = std::exchange(other.group_leader_, false);
    out_fd_ = std::exchange(other.out_fd_, -1);
    err_fd_ = std::exchange(other.err_fd_, -1);
    argv_ = std::move(other.argv_);
  }
  return *this;
}

Process::~Process() {
  if (running()) {
    if (group_leader_) SignalGroup(SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  Close();
}

void Process::Close() {
  if (out_fd_ >= 0) ::close(out_fd_);
  if (err_fd_ >= 0) ::close(err_fd_);
  out_fd_ = err_fd_ = -1;
}

Result Process::Wait() {
  if (!running()) throw std::logic_error("Process::Wait: not running");
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) Fail("waitpid");
  }
  return Finish(status);
}

bool Process::Ended(std::chrono::milliseconds timeout) {
  if (!running()) throw std::logic_error("Process::Ended: not running");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) < 0) {
      if (errno != EINTR) Fail("waitid");
    } else if (info.si_pid == pid_) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool Process::SignalGroup(int sig) { return running() && group_leader_ && ::kill(-pid_, sig) == 0; }

Result Process::Finish(int status) {
  Result r;
  r.argv = argv_;
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.term_signal = WTERMSIG(status);
  }
  pid_ = -1;
  r.out = ReadAll(out_fd_);
  r.err = ReadAll(err_fd_);
  Close();
  return r;
}

bool ReadOnlyMountsWork() {
  Options options;
  options.read_only_paths = {"/tmp"};
  return Run({"/bin/true"}, options).ok();
}

Result Run(std::vector<std::string> argv, const Options& options) {
  return Process::Start(std::move(argv), options).Wait();
}

Result Aidsync(std::vector<std::string> args, const Options& options) {
  args.insert(args.begin(), AidsyncBinary());
  return Run(std::move(args), options);
}

std::vector<std::vector<Result>> RunLanes(const std::vector<std::vector<std::vector<std::string>>>& lanes) {
  std::vector<std::vector<Result>> results(lanes.size());
  std::vector<size_t> next(lanes.size(), 0);
  std::map<pid_t, std::pair<size_t, Process>> running;
  auto start_next = [&](size_t lane) {
    if (next[lane] >= lanes[lane].size()) return;
    std::vector<std::string> argv = lanes[lane][next[lane]++];
    argv.insert(argv.begin(), AidsyncBinary());
    Process p = Process::Start(std::move(argv));
    pid_t pid = p.pid();
    running.emplace(pid, std::make_pair(lane, std::move(p)));
  };
  // Every lane's first command starts before any is waited for.
  for (size_t lane = 0; lane < lanes.size(); ++lane) start_next(lane);
  while (!running.empty()) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      Fail("waitpid");
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;  // not one of ours
    size_t lane = it->second.first;
    results[lane].push_back(it->second.second.Finish(status));
    running.erase(it);
    start_next(lane);
  }
  return results;
}

unsigned FileMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) Fail("stat " + path);
  return static_cast<unsigned>(st.st_mode & 07777);
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

pid_t StartBackground(std::vector<std::string> args, const std::string& log_path) {
  args.insert(args.begin(), AidsyncBinary());
  FileActions fa;
  fa.Check(posix_spawn_file_actions_addopen(&fa.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0),
           "addopen /dev/null");
  fa.Check(posix_spawn_file_actions_addopen(&fa.actions, STDOUT_FILENO, log_path.c_str(),
                                            O_WRONLY | O_CREAT | O_APPEND, 0600),
           "addopen log");
  fa.Check(posix_spawn_file_actions_adddup2(&fa.actions, STDOUT_FILENO, STDERR_FILENO), "adddup2 stderr");
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = -1;
  if (int e = ::posix_spawn(&pid, cargv[0], &fa.actions, nullptr, cargv.data(), environ); e != 0)
    Fail("cannot start " + args[0], e);
  return pid;
}

bool Signal(pid_t pid, int sig) { return pid > 0 && ::kill(pid, sig) == 0; }

std::optional<Exit> WaitExit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r < 0 && errno != EINTR) Fail("waitpid");
    if (r == pid) {
      Exit e;
      if (WIFEXITED(status)) e.exit_code = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) e.term_signal = WTERMSIG(status);
      return e;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Fail("socket");
  FdGuard guard{fd};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) Fail("bind 127.0.0.1:0");
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) Fail("getsockname");
  return ntohs(addr.sin_port);
}

}  // namespace aidsync::proc
