// Shared helpers for the process-level tests of the `aidsync` command line
// (cli_test.cc, cli_bad_input_test.cc): running the real binary on a data
// dir, the contract for refused commands, JSON output, snapshots of a data
// dir, and a county (authority, hub and stations) made through the CLI.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tests/process.h"

namespace aidsync::clitest {

extern const std::vector<std::string> kReferenceTables;
extern const std::vector<std::string> kCaseTables;

// kReferenceTables followed by kCaseTables.
std::vector<std::string> AllTables();

// `aidsync --data DIR args...`
proc::Result On(const std::string& data, std::vector<std::string> args);

// REQUIREs that the command succeeded; returns its stdout without the trailing newline.
std::string Ok(const proc::Result& r);
std::string Ok(const std::string& data, std::vector<std::string> args);

// The contract for a refused command: non-zero exit, stdout empty, exactly one
// line on stderr (optionally mentioning `mention`, case-insensitively).
void RequireRefused(const proc::Result& r, const std::string& mention = "");

nlohmann::json ParseJson(const std::string& text);

// A JSON document printed as the CLI prints it (compact, keys sorted).
std::string Dump(const nlohmann::json& doc);

std::string Query(const std::string& data, const std::string& sql);
// What Query(data, "PRAGMA integrity_check") prints for a sound database.
inline constexpr const char* kIntegrityOk = R"([{"integrity_check":"ok"}])";
int64_t Count(const std::string& data, const std::string& table);
std::string ListJson(const std::string& data, const std::string& table);
std::string ListAll(const std::string& data);

// Everything a refused command must leave as it was: every table, the log's
// counts, the last log entry, the notice counters, conflicts and forks.
std::string Snapshot(const std::string& data);

bool IsHex64(const std::string& s);
bool IsRowId(const std::string& s);

struct Station {
  std::string name, code, scope, dir, key;
};

// A county made through the command line: authority key, hub (code 0500,
// scope 430123) and stations enrolled offline with certificate files.
class County {
 public:
  explicit County(int stations = 1);

  Station& AddStation(const std::string& name, const std::string& code, const std::string& scope);

  // A bundle from `from` for station `code`, applied at `to`.
  proc::Result Carry(const std::string& from, const std::string& code, const std::string& to);
  void Down(const Station& s);
  void Up(const Station& s);

  std::string NewBundlePath();

  // The hub's roster: a senior lawyer, a junior one (2 years) and an intern.
  void SeedRoster();

  // An approved application and a civil case assigned to the senior lawyer at station `s`.
  std::pair<std::string, std::string> SeedCase(const Station& s);

  proc::TempDir tmp;
  std::string authority, authority_key, hub, hub_key;
  std::vector<Station> st;
  std::string senior, junior, intern;

 private:
  int bundles_ = 0;
};

// A hub and one station with a roster, an application and a case.
struct Seeded : County {
  Seeded();
  std::string app, case_id;
};

// Deterministic garbage.
std::string Garbage(size_t n, uint64_t seed);

}  // namespace aidsync::clitest
