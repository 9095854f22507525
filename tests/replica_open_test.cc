// Tests for creating a node (sync/replica_open.cc): what init does with files
// it finds in the data dir.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "tests/cluster_fixture.h"

namespace aidsync {
namespace {

using testing::ReadFile;
using testing::WriteFile;

struct HubSetup {
  testing::TempDir tmp;
  testing::TestClock clock;
  testing::SeededRandom random{11};
  Env env;
  SigningKey authority = SigningKey::Generate(random);
  NodeConfig config;

  HubSetup() {
    env.clock = &clock;
    env.random = &random;
    config.name = testing::kHubName;
    config.code = testing::kHubCode;
    config.scope = testing::kCountyScope;
    config.role = Role::kHub;
    config.authority = authority.public_key();
  }
};

}  // namespace

// Regression: init used to delete dir/authority.key before writing its copy,
// so `--authority-key DIR/authority.key` (the user's only copy) could be lost.
TEST_CASE("replica: a hub init never deletes an authority.key it finds in the data dir", "[replica][init]") {
  HubSetup s;
  const std::string dir = s.tmp.path() + "/hub";
  REQUIRE(::mkdir(dir.c_str(), 0700) == 0);

  SECTION("another authority's key is refused and left as it was") {
    testing::SeededRandom other_random(99);
    SigningKey other = SigningKey::Generate(other_random);
    REQUIRE_OK(other.Save(AuthorityKeyPath(dir)));
    const std::string before = ReadFile(AuthorityKeyPath(dir));
    REQUIRE_CODE(Replica::Create(dir, s.config, s.env, &s.authority), Status::Code::kAlreadyExists);
    CHECK(ReadFile(AuthorityKeyPath(dir)) == before);
    REQUIRE_CODE(Replica::Open(dir, s.env), Status::Code::kNotFound);  // no node was made
  }
  SECTION("the same authority's key is kept and the hub can enrol") {
    REQUIRE_OK(s.authority.Save(AuthorityKeyPath(dir)));
    const std::string before = ReadFile(AuthorityKeyPath(dir));
    REQUIRE_OK(Replica::Create(dir, s.config, s.env, &s.authority));
    CHECK(ReadFile(AuthorityKeyPath(dir)) == before);
    auto loaded = SigningKey::Load(AuthorityKeyPath(dir));
    REQUIRE_OK(loaded);
    CHECK(loaded->public_key() == s.authority.public_key());
  }
  SECTION("without one, init writes a 0600 copy") {
    REQUIRE_OK(Replica::Create(dir, s.config, s.env, &s.authority));
    struct stat st;
    REQUIRE(::stat(AuthorityKeyPath(dir).c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
}

}  // namespace aidsync
