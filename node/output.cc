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

std::string DisplayText(std::string_view text) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  auto hex = [&](unsigned char b) {
    out += "\\x";
    out += kHex[b >> 4];
    out += kHex[b & 15];
  };
  for (size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      if (b == '\\') {
        out += "\\\\";
      } else if (b == '\n') {
        out += "\\n";
      } else if (b == '\t') {
        out += "\\t";
      } else if (b == '\r') {
        out += "\\r";
      } else if (b < 0x20 || b == 0x7f) {
        hex(b);
      } else {
        out += static_cast<char>(b);
      }
      ++i;
      continue;
    }
    size_t len = Utf8SequenceLength(text.substr(i));
    if (len == 0) {  // not UTF-8: each byte shown as \xHH
      hex(b);
      ++i;
      continue;
    }
    // C1 controls (U+0080-U+009F, C2 80-C2 9F): some terminals obey them as ESC sequences.
    if (len == 2 && b == 0xc2 && static_cast<unsigned char>(text[i + 1]) < 0xa0) {
      out += "\\u00";
      out += kHex[(static_cast<unsigned char>(text[i + 1]) >> 4) & 15];
      out += kHex[static_cast<unsigned char>(text[i + 1]) & 15];
    } else {
      out.append(text.substr(i, len));
    }
    i += len;
  }
  return out;
}

void PrintTable(const std::vector<std::string>& columns, const std::vector<std::vector<Value>>& rows) {
  for (size_t i = 0; i < columns.size(); ++i) std::cout << (i ? "\t" : "") << DisplayText(columns[i]);
  std::cout << "\n";
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) std::cout << (i ? "\t" : "") << DisplayText(row[i].ToDisplay());
    std::cout << "\n";
  }
}

std::string JsonText(const nlohmann::json& doc) {
  // Invalid UTF-8 in stored text must not abort the dump: replace it.
  std::string text = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // The encoder escapes U+0000-U+001F but writes DEL and the C1 controls
  // as they are; they can only occur inside strings, where \u escapes mean
  // the same characters.
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b == 0x7f) {
      out += "\\u007f";
    } else if (b == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) < 0xa0) {
      static const char kHex[] = "0123456789abcdef";
      const auto c = static_cast<unsigned char>(text[++i]);
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(b);
    }
  }
  return out;
}

void PrintJson(const nlohmann::json& doc) { std::cout << JsonText(doc) << "\n"; }

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
