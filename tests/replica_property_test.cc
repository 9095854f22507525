// Property test of the CRDT merge (DESIGN 3, 4): replicas that end up holding
// the same changesets show the same rows and the same open conflicts, whatever
// order (and however often) the changesets arrived in.
//
// Each round builds a county: a hub and 2-4 stations enrolled at the same
// township scope, so that every node may see every case row (case rows flow
// only up; stations at one scope see each other's). Random puts, updates and
// deletes over a small id pool make concurrent writes and delete/edit
// conflicts common; random partial syncs in between make later writes
// overwrite remote versions. Then every changeset is delivered to every
// replica in a random order with duplicates and the replicas are compared.
//
// Each run draws a new seed (tests/test_support.h, TestSeed); a failure prints
// it, and AIDSYNC_SEED=N replays that history.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "sync/local_write.h"
#include "sync/replica.h"
#include "tests/cluster_fixture.h"

namespace aidsync {
namespace {

using testing::Cluster;
using testing::Node;
using testing::SeededRandom;

constexpr const char* kTownship = "430123/05";
constexpr int kRounds = 20;
constexpr int kOpsPerRound = 50;

template <typename T>
void Shuffle(std::vector<T>& v, SeededRandom& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.Uniform(i)]);
}

const std::string& Pick(const std::vector<std::string>& options, SeededRandom& rng) {
  return options[rng.Uniform(options.size())];
}

// A random value for `column` that passes local validation.
std::string RandomValue(const ColumnDef& column, SeededRandom& rng) {
  if (!column.allowed.empty()) return Pick(column.allowed, rng);
  switch (column.type) {
    case ColumnType::kInteger:
      if (column.range) {
        auto [lo, hi] = *column.range;
        hi = std::min(hi, lo + 4);
        return std::to_string(lo + static_cast<int64_t>(rng.Uniform(static_cast<uint64_t>(hi - lo + 1))));
      }
      return std::to_string(static_cast<int64_t>(rng.Uniform(7)) - 3);
    case ColumnType::kReal:
      return std::to_string(static_cast<double>(rng.Uniform(5)) * 0.5 - 1.0);
    case ColumnType::kText:
      break;
  }
  static const std::vector<std::string> kTexts = {"甲", "乙", "丙", "", "alpha", "工资 拖欠"};
  return Pick(kTexts, rng);
}

// Tables and columns the random writer uses. Columns that domain rules look
// at (lawyer_id, kind, decision status) are left out so every write commits.
struct WriteTarget {
  std::string table;
  std::vector<std::string> columns;
};

const std::vector<WriteTarget>& CaseTargets() {
  static const std::vector<WriteTarget> kTargets = {
      {"consultations", {"channel", "topic", "summary", "consulted_at"}},
      {"complaints", {"case_id", "content", "status", "result"}},
      {"return_visits", {"case_id", "satisfaction", "fee_charged", "note"}},
      {"cases", {"category", "status", "funding", "outcome", "recovered_amount"}},
  };
  return kTargets;
}

const std::vector<WriteTarget>& ReferenceTargets() {
  static const std::vector<WriteTarget> kTargets = {
      {"lawyers", {"name", "firm", "practice_years", "phone", "active"}},
      {"notices", {"title", "body", "issued_at"}},
  };
  return kTargets;
}

struct Stats {
  int commits = 0;
  int puts = 0;
  int deletes = 0;
  int refused_as_expected = 0;
  int conflicts = 0;
  int deleted_conflicts = 0;
  int held_on_arrival = 0;
};

// One random local transaction of 1-3 operations on `node`.
void RandomTransaction(Node& node, SeededRandom& rng, Stats& stats, std::vector<std::string>& errors) {
  Replica& r = *node.replica;
  const bool is_hub = r.identity().role == Role::kHub;
  auto tx = r.BeginLocal();
  if (!tx.ok()) {
    errors.push_back("BeginLocal: " + tx.status().ToString());
    return;
  }
  int ops = 1 + static_cast<int>(rng.Uniform(3));
  for (int i = 0; i < ops; ++i) {
    const bool reference = is_hub && rng.Chance(0.25);
    const auto& targets = reference ? ReferenceTargets() : CaseTargets();
    const WriteTarget& target = targets[rng.Uniform(targets.size())];
    const TableDef* def = r.schema().FindTable(target.table);
    std::string id = target.table.substr(0, 3) + "-" + std::to_string(rng.Uniform(4));
    // The hub writes case rows at the township so that every node sees them.
    std::optional<std::string> scope;
    if (!reference && (is_hub || rng.Chance(0.5))) scope = kTownship;

    if (rng.Chance(0.12)) {
      Status st = (*tx)->Delete(target.table, id);
      if (st.ok()) {
        ++stats.deletes;
      } else if (st.code() == Status::Code::kNotFound) {
        ++stats.refused_as_expected;
      } else {
        errors.push_back("Delete " + target.table + "/" + id + ": " + st.ToString());
      }
      continue;
    }
    testing::TextValues values;
    for (const auto& column : target.columns) {
      if (!rng.Chance(0.5)) continue;
      values.emplace_back(column, RandomValue(def->columns[def->ColumnIndex(column)], rng));
    }
    if (values.empty()) values.emplace_back(target.columns[0], RandomValue(def->columns[def->ColumnIndex(target.columns[0])], rng));
    auto put = (*tx)->Put(target.table, id, scope, values);
    if (put.ok()) {
      ++stats.puts;
    } else if (put.status().code() == Status::Code::kInvalidArgument &&
               put.status().message().find("deleted") != std::string::npos) {
      ++stats.refused_as_expected;  // deletes are permanent
    } else {
      errors.push_back("Put " + target.table + "/" + id + ": " + put.status().ToString());
    }
  }
  auto commit = (*tx)->Commit();
  if (!commit.ok()) {
    errors.push_back("Commit: " + commit.status().ToString());
    return;
  }
  ++stats.commits;
}

// Delivers `envelopes` (after `from`'s certificates) to `to` in one batch.
void Deliver(Replica& from, Replica& to, std::vector<std::string> envelopes, Stats& stats) {
  auto certs = from.CertificatesVisibleTo(to.identity().scope);
  REQUIRE_OK(certs);
  for (const auto& cert : *certs) REQUIRE_OK(to.AddCertificate(cert));
  auto report = to.ApplyRemote(envelopes);
  REQUIRE_OK(report);
  INFO((report->rejections.empty() ? std::string() : report->rejections.front()));
  REQUIRE(report->rejected == 0);
  stats.held_on_arrival += static_cast<int>(report->held_ids.size());
}

// A partial sync: all, or a random subset in random order, of what `from` holds.
void RandomSync(Replica& from, Replica& to, SeededRandom& rng, Stats& stats) {
  std::vector<std::string> all = testing::EnvelopesVisibleTo(from, to.identity().scope);
  std::vector<std::string> batch;
  if (rng.Chance(0.5)) {
    batch = all;
  } else {
    for (const auto& e : all)
      if (rng.Chance(0.6)) batch.push_back(e);
    Shuffle(batch, rng);
  }
  Deliver(from, to, std::move(batch), stats);
}

void RunRound(uint64_t seed, Stats& stats) {
  SeededRandom rng(seed);
  Cluster cluster(seed);
  const int stations = 2 + static_cast<int>(rng.Uniform(3));
  for (int i = 0; i < stations; ++i)
    cluster.AddStation("城关镇工作站" + std::to_string(i + 1), "05" + std::to_string(11 + i), kTownship);
  auto& nodes = cluster.nodes();
  // Clocks a few minutes apart, some behind the hub, some ahead.
  for (auto& node : nodes) node->clock->Advance(static_cast<int64_t>(rng.Uniform(600001)) - 300000);

  std::vector<std::string> errors;
  for (int op = 0; op < kOpsPerRound; ++op) {
    Node& node = *nodes[rng.Uniform(nodes.size())];
    node.clock->Advance(static_cast<int64_t>(rng.Uniform(3)));  // 0 ms: equal clocks happen
    RandomTransaction(node, rng, stats, errors);
    if (rng.Chance(0.3)) {
      size_t from = rng.Uniform(nodes.size());
      size_t to = (from + 1 + rng.Uniform(nodes.size() - 1)) % nodes.size();
      RandomSync(*nodes[from]->replica, *nodes[to]->replica, rng, stats);
    }
  }
  INFO("first error: " << (errors.empty() ? "" : errors.front()));
  REQUIRE(errors.empty());

  // Every changeset any node holds, to every node, shuffled, with duplicates,
  // in random batches. Chains arrive out of order: held ones must catch up.
  std::set<std::string> union_set;
  for (auto& node : nodes)
    for (auto& e : testing::EnvelopesVisibleTo(*node->replica, kTownship)) union_set.insert(e);
  for (auto& node : nodes) {
    std::vector<std::string> all(union_set.begin(), union_set.end());
    size_t extra = all.size() / 5;
    for (size_t i = 0; i < extra; ++i) all.push_back(all[rng.Uniform(all.size())]);
    Shuffle(all, rng);
    size_t pos = 0;
    while (pos < all.size()) {
      size_t n = 1 + rng.Uniform(all.size() / 3 + 1);
      std::vector<std::string> batch(all.begin() + static_cast<long>(pos),
                                     all.begin() + static_cast<long>(std::min(all.size(), pos + n)));
      pos += batch.size();
      Deliver(*nodes.front()->replica, *node->replica, std::move(batch), stats);
    }
  }

  Replica& hub = *nodes.front()->replica;
  const std::string expected = testing::Dump(hub);
  auto hub_status = hub.GetStatus();
  REQUIRE_OK(hub_status);
  for (auto& node : nodes) {
    Replica& r = *node->replica;
    auto status = r.GetStatus();
    REQUIRE_OK(status);
    INFO("node " << r.identity().name);
    CHECK(status->held_changesets == 0);
    CHECK(status->total_changesets == static_cast<int64_t>(union_set.size()));
    CHECK(status->conflicts_open == hub_status->conflicts_open);
    CHECK(status->forks.empty());
    CHECK(testing::Dump(r) == expected);
  }
  auto conflicts = hub.Conflicts();
  REQUIRE_OK(conflicts);
  for (const auto& c : *conflicts) (c.row_deleted ? stats.deleted_conflicts : stats.conflicts)++;

  // The log is the truth: rebuilding gives the same view.
  REQUIRE_OK(hub.Rebuild());
  CHECK(testing::Dump(hub) == expected);
}

}  // namespace

TEST_CASE("property: replicas holding the same changesets show the same rows and conflicts",
          "[replica][property]") {
  const uint64_t base = testing::TestSeed();
  Stats stats;
  for (int round = 0; round < kRounds; ++round) {
    const uint64_t seed = testing::DerivedSeed(static_cast<uint64_t>(round));
    INFO("AIDSYNC_SEED=" << base << " round " << round << " (cluster seed " << seed << ")");
    RunRound(seed, stats);
  }
  INFO("commits " << stats.commits << ", puts " << stats.puts << ", deletes " << stats.deletes
                  << ", conflicts " << stats.conflicts << ", delete conflicts " << stats.deleted_conflicts
                  << ", held on arrival " << stats.held_on_arrival);
  // The histories must actually exercise what the property is about.
  CHECK(stats.commits >= kRounds * kOpsPerRound * 9 / 10);
  CHECK(stats.deletes > 0);
  CHECK(stats.refused_as_expected > 0);
  CHECK(stats.conflicts > 0);
  CHECK(stats.deleted_conflicts > 0);
  CHECK(stats.held_on_arrival > 0);
}

}  // namespace aidsync
