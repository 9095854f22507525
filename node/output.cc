#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>

#include "base/durable_file.h"
#include "node/cli.h"

namespace aidsync::cli {

nlohmann::json ValueToJson(const Value& value) {
  if (auto* i = std::get_if<int64_t>(&value.v)) return *i;
  if (auto* d = std::get_if<double>(&value.v)) return *d;
  if (auto* s = std::get_if<std::string>(&value.v)) return *s;
  return nullptr;
}

nlohmann::json RowToJson(const Row& row) {
  nlohmann::json obj = nlohmann::json::object();
  for (const auto& [column, value] : row) obj[column] = ValueToJson(value);
  return obj;
}

namespace {
std::string Escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\\') {
      out += "\\\\";
    } else {
      out += c;
    }
  }
  return out;
}
}  // namespace

void PrintTable(const std::vector<std::string>& columns, const std::vector<std::vector<Value>>& rows) {
  for (size_t i = 0; i < columns.size(); ++i) std::cout << (i ? "\t" : "") << Escape(columns[i]);
  std::cout << "\n";
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) std::cout << (i ? "\t" : "") << Escape(row[i].ToDisplay());
    std::cout << "\n";
  }
}

void PrintJson(const nlohmann::json& doc) {
  // Invalid UTF-8 in stored text must not abort the dump: replace it.
  std::cout << doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

bool StderrIsTerminal() { return ::isatty(STDERR_FILENO) == 1; }

}  // namespace aidsync::cli

namespace aidsync::cli {

Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return Status::NotFound("no file at " + path);
    return Status::IOError("cannot read " + path + ": " + std::strerror(errno));
  }
  std::string out;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.append(buf, static_cast<size_t>(in.gcount()));
    if (out.size() > max_bytes) return Status::InvalidArgument(path + " is too large to be what it claims");
  }
  return out;
}

Status WriteFileAtomically(const std::string& path, std::string_view bytes) {
  // A fresh temporary name: nothing that already exists is touched.
  std::string tmp = path + ".XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return Status::IOError("cannot create " + path + ": " + std::strerror(errno));
  ::fchmod(fd, 0644);
  bool ok = ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()) && ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  // link() never replaces: an existing file at `path` is left alone.
  if (!ok || ::link(tmp.c_str(), path.c_str()) != 0) {
    int link_err = ok ? errno : err;
    ::unlink(tmp.c_str());
    if (link_err == EEXIST) return Status::AlreadyExists(path + " already exists; choose another name");
    return Status::IOError("cannot write " + path + ": " + std::strerror(link_err));
  }
  ::unlink(tmp.c_str());
  return SyncParentDirectory(path);
}

}  // namespace aidsync::cli
