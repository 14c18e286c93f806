// The configuration file: what it sets, how each kind of mistake is reported, and (through the
// real packiced) that flags win over the file.
#include "server/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "testing.h"

namespace packice {
namespace {

using ::packice::testing::BinPath;
using namespace std::chrono_literals;
using ::packice::testing::Daemon;
using ::packice::testing::PackicedArgv;
using ::packice::testing::RunProgram;
using ::packice::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::StartsWith;

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

// Applies `text` onto default options, as "cfg.toml".
Status Load(const std::string& text, DaemonOptions* out) {
  return LoadConfigString(text, "cfg.toml", out);
}

// The message of loading `text`, which must fail with kInvalidArgument.
std::string LoadError(const std::string& text) {
  DaemonOptions o;
  Status s = Load(text, &o);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << text << " -> " << s.ToString();
  return std::string(s.message());
}

TEST(ConfigTest, FullFileSetsEveryOption) {
  TempDir dir;
  WriteFile(dir.path() + "/token", "s3cret-token\n");
  const std::string text = R"(
log_level = "debug"
store = "sharedfs"
socket = "/run/p.sock"
io_threads = 4

[memory]
capacity = "2G"
pool = 1048576          # an integer is bytes

[disk]
dir = "/srv/packice"
capacity = "500G"

[tiered]
eviction = "lru"
promote_after = 0

[sharedfs]
gc_interval = "5m"
abandoned_after = 90    # an integer is seconds

[ttl]
default = "1d"
lease = "10s"
max_lease = "2h"

[http]
listen = "[::1]:8080"
token_file = ")" + dir.path() +
                           R"(/token"
tls_cert = "/etc/p/cert.pem"
tls_key = "/etc/p/key.pem"
max_connections = 64
max_header = "32K"
max_body = "64G"
idle_timeout = "2m"
io_timeout = "500ms"
)";
  DaemonOptions o;
  ASSERT_OK(Load(text, &o));
  EXPECT_EQ(o.log_level, "debug");
  EXPECT_EQ(o.store, "sharedfs");
  EXPECT_EQ(o.socket_path, "/run/p.sock");
  EXPECT_EQ(o.io_threads, 4u);
  EXPECT_EQ(o.memory.capacity_bytes, 2ull << 30);
  EXPECT_EQ(o.memory.pool_bytes, 1048576u);
  EXPECT_EQ(o.disk.dir, "/srv/packice");
  EXPECT_EQ(o.disk.capacity_bytes, 500ull << 30);
  EXPECT_EQ(o.tiered.policy, "lru");
  EXPECT_EQ(o.tiered.promote_after_hits, 0u);
  EXPECT_EQ(o.sharedfs.gc_interval, 5min);
  EXPECT_EQ(o.sharedfs.abandoned_after, 90s);
  EXPECT_EQ(o.memory.default_object_ttl, 24h);
  EXPECT_EQ(o.memory.default_lease_ttl, 10s);
  EXPECT_EQ(o.memory.max_lease_ttl, 2h);
  EXPECT_EQ(o.http.listen, "[::1]:8080");
  EXPECT_EQ(o.http.bearer_token, "s3cret-token");  // the newline is not part of it
  EXPECT_EQ(o.http.tls_cert_file, "/etc/p/cert.pem");
  EXPECT_EQ(o.http.tls_key_file, "/etc/p/key.pem");
  EXPECT_EQ(o.http.max_connections, 64u);
  EXPECT_EQ(o.http.max_header_bytes, 32u * 1024);
  EXPECT_EQ(o.http.max_body_bytes, 64ull << 30);
  EXPECT_EQ(o.http.idle_timeout, 2min);
  EXPECT_EQ(o.http.io_timeout, 500ms);
}

TEST(ConfigTest, KeysLeftOutKeepTheirValues) {
  DaemonOptions o;
  o.socket_path = "/from/before";
  ASSERT_OK(Load("[memory]\ncapacity = \"3G\"\n", &o));
  EXPECT_EQ(o.memory.capacity_bytes, 3ull << 30);
  EXPECT_EQ(o.socket_path, "/from/before");
  const DaemonOptions defaults;
  EXPECT_EQ(o.store, defaults.store);
  EXPECT_EQ(o.memory.pool_bytes, defaults.memory.pool_bytes);
  EXPECT_EQ(o.http.listen, "");

  DaemonOptions empty;
  ASSERT_OK(Load("# nothing\n", &empty));
  EXPECT_EQ(empty.store, defaults.store);
}

TEST(ConfigTest, DottedKeysAndInlineTablesAreTheSameKeys) {
  DaemonOptions o;
  ASSERT_OK(Load("memory.capacity = \"5M\"\nttl = { lease = \"7s\" }\n", &o));
  EXPECT_EQ(o.memory.capacity_bytes, 5u << 20);
  EXPECT_EQ(o.memory.default_lease_ttl, 7s);
}

TEST(ConfigTest, TheExampleFileLoads) {
  DaemonOptions o;
  ASSERT_OK(LoadConfigFile(std::string(PACKICE_SOURCE_DIR) + "/examples/packice.toml", &o));
  // It spells out the defaults.
  const DaemonOptions d;
  EXPECT_EQ(o.store, d.store);
  EXPECT_EQ(o.io_threads, d.io_threads);
  EXPECT_EQ(o.memory.capacity_bytes, d.memory.capacity_bytes);
  EXPECT_EQ(o.memory.pool_bytes, d.memory.pool_bytes);
  EXPECT_EQ(o.disk.capacity_bytes, d.disk.capacity_bytes);
  EXPECT_EQ(o.tiered.policy, d.tiered.policy);
  EXPECT_EQ(o.tiered.promote_after_hits, d.tiered.promote_after_hits);
  EXPECT_EQ(o.sharedfs.gc_interval, d.sharedfs.gc_interval);
  EXPECT_EQ(o.sharedfs.abandoned_after, d.sharedfs.abandoned_after);
  EXPECT_EQ(o.memory.default_object_ttl, d.memory.default_object_ttl);
  EXPECT_EQ(o.memory.default_lease_ttl, d.memory.default_lease_ttl);
  EXPECT_EQ(o.memory.max_lease_ttl, d.memory.max_lease_ttl);
  EXPECT_EQ(o.http.max_connections, d.http.max_connections);
  EXPECT_EQ(o.http.max_header_bytes, d.http.max_header_bytes);
  EXPECT_EQ(o.http.max_body_bytes, d.http.max_body_bytes);
  EXPECT_EQ(o.http.idle_timeout, d.http.idle_timeout);
  EXPECT_EQ(o.http.io_timeout, d.http.io_timeout);
}

TEST(ConfigTest, SyntaxErrorNamesLineAndColumn) {
  EXPECT_THAT(LoadError("store = \"memory\"\n[memory\ncapacity = 1\n"), StartsWith("cfg.toml:2:"));
  EXPECT_THAT(LoadError("a = 1\na = 2\n"), StartsWith("cfg.toml:2:"));  // a duplicate key
}

TEST(ConfigTest, UnknownKeysAndSectionsAreErrors) {
  EXPECT_EQ(LoadError("store = \"memory\"\n[memory]\ncapcity = \"1G\"\n"),
            "cfg.toml:3:1: memory.capcity: unknown key (did you mean memory.capacity?)");
  EXPECT_EQ(LoadError("[memroy]\ncapacity = \"1G\"\n"),
            "cfg.toml:1:2: memroy: unknown section (did you mean memory?)");
  EXPECT_EQ(LoadError("colour = \"blue\"\n"), "cfg.toml:1:1: colour: unknown key");
  EXPECT_THAT(LoadError("[http.tls]\ncert = \"x\"\n"), HasSubstr("http.tls: unknown section"));
  // A section given as a value is a wrong type.
  EXPECT_EQ(LoadError("memory = 5\n"), "cfg.toml:1:10: memory: expected a table ([memory]), got 5");
}

TEST(ConfigTest, WrongTypesAreErrors) {
  EXPECT_EQ(LoadError("io_threads = \"2\"\n"),
            "cfg.toml:1:14: io_threads: expected an integer from 1 to 64, got \"2\"");
  EXPECT_THAT(LoadError("socket = 7\n"), HasSubstr("socket: expected a string, got 7"));
  EXPECT_THAT(LoadError("store = [\"memory\"]\n"), HasSubstr("store: expected one of"));
  EXPECT_THAT(LoadError("[ttl]\nlease = 1.5\n"), HasSubstr("ttl.lease: expected a duration"));
  EXPECT_THAT(LoadError("[memory]\ncapacity = true\n"),
              HasSubstr("memory.capacity: expected a size"));
  EXPECT_THAT(LoadError("[http]\nmax_connections = \"10\"\n"),
              HasSubstr("http.max_connections: expected an integer"));
}

TEST(ConfigTest, BadSizesAreErrors) {
  EXPECT_EQ(LoadError("[memory]\ncapacity = \"lots\"\n"),
            "cfg.toml:2:12: memory.capacity: expected a size like \"512M\" (K, M, G, T) or an "
            "integer of bytes, got \"lots\"");
  EXPECT_THAT(LoadError("[disk]\ncapacity = \"12X\"\n"), HasSubstr("disk.capacity: expected"));
  EXPECT_THAT(LoadError("[memory]\npool = -1\n"), HasSubstr("memory.pool: expected a size"));
  EXPECT_THAT(LoadError("[memory]\npool = \"99999999999T\"\n"), HasSubstr("memory.pool:"));
}

TEST(ConfigTest, BadDurationsAreErrors) {
  EXPECT_THAT(LoadError("[ttl]\nlease = \"soon\"\n"),
              HasSubstr("cfg.toml:2:9: ttl.lease: expected a duration like \"30s\""));
  EXPECT_THAT(LoadError("[sharedfs]\ngc_interval = \"10y\"\n"),
              HasSubstr("sharedfs.gc_interval: expected a duration"));
  EXPECT_THAT(LoadError("[http]\nio_timeout = -5\n"), HasSubstr("http.io_timeout: expected"));
}

TEST(ConfigTest, BadChoicesAreErrors) {
  EXPECT_EQ(LoadError("store = \"tired\"\n"),
            "cfg.toml:1:9: store: expected one of tiered, memory, disk, sharedfs, got \"tired\"");
  EXPECT_THAT(LoadError("[tiered]\neviction = \"fifo\"\n"),
              HasSubstr("tiered.eviction: expected one of lru, lru2, got \"fifo\""));
  EXPECT_THAT(LoadError("log_level = \"loud\"\n"), HasSubstr("log_level: expected one of"));
}

TEST(ConfigTest, OutOfRangeValuesAreErrors) {
  EXPECT_EQ(LoadError("[memory]\ncapacity = 0\n"),
            "cfg.toml:2:12: memory.capacity: must be more than 0");
  EXPECT_THAT(LoadError("[disk]\ncapacity = \"0G\"\n"), HasSubstr("disk.capacity: must be"));
  EXPECT_THAT(LoadError("io_threads = 0\n"), HasSubstr("io_threads: expected an integer from 1"));
  EXPECT_THAT(LoadError("io_threads = 65\n"), HasSubstr("io_threads: expected an integer from"));
  EXPECT_THAT(LoadError("[tiered]\npromote_after = -1\n"), HasSubstr("tiered.promote_after:"));
  EXPECT_THAT(LoadError("[ttl]\nlease = \"0\"\n"), HasSubstr("ttl.lease: must be more than 0"));
  EXPECT_THAT(LoadError("[http]\nmax_connections = 0\n"), HasSubstr("http.max_connections:"));
  EXPECT_THAT(LoadError("[http]\nmax_header = 10\n"),
              HasSubstr("http.max_header: must be from 1024 to 1048576 bytes"));
  EXPECT_THAT(LoadError("socket = \"\"\n"), HasSubstr("socket: must not be empty"));
}

TEST(ConfigTest, GroupTables) {
  DaemonOptions o;
  ASSERT_OK(Load(R"([groups.users]
capacity = "128M"
policy = "lru"
ttl = "10m"
origin = "http://db:8000/users/{key}"
load_timeout = "3s"
max_value = "256K"

[groups."a.b-c_9"]      # a name with a dot is quoted

[groups.sessions]
capacity = 1048576
)",
                 &o));
  ASSERT_EQ(o.groups.size(), 3u);
  const GroupConfig& users = o.groups[0];
  EXPECT_EQ(users.name, "users");
  EXPECT_EQ(users.capacity_bytes, 128u << 20);
  EXPECT_EQ(users.policy, CachePolicy::kLru);
  EXPECT_EQ(users.ttl, std::chrono::minutes(10));
  EXPECT_EQ(users.origin, "http://db:8000/users/{key}");
  EXPECT_EQ(users.load_timeout, std::chrono::seconds(3));
  EXPECT_EQ(users.max_value_bytes, 256u << 10);
  EXPECT_EQ(o.groups[1].name, "a.b-c_9");  // declared by its table alone: the defaults
  EXPECT_EQ(o.groups[1].capacity_bytes, kDefaultGroupCapacityBytes);
  EXPECT_EQ(o.groups[1].origin, "");
  EXPECT_EQ(o.groups[2].capacity_bytes, 1u << 20);
  // Dotted keys name the same things.
  DaemonOptions d;
  ASSERT_OK(Load("groups.users.policy = \"lru\"\n", &d));
  ASSERT_EQ(d.groups.size(), 1u);
  EXPECT_EQ(d.groups[0].policy, CachePolicy::kLru);
}

TEST(ConfigTest, BadGroupTablesAreErrors) {
  EXPECT_EQ(LoadError("[groups.users]\ncapcity = \"1G\"\n"),
            "cfg.toml:2:1: groups.users.capcity: unknown key (did you mean capacity?); a group "
            "takes capacity, policy, ttl, origin, load_timeout, max_value");
  EXPECT_THAT(LoadError("[groups.users]\ncolour = 1\n"),
              HasSubstr("groups.users.colour: unknown key; a group takes capacity,"));
  EXPECT_THAT(LoadError("[groups.\"a/b\"]\n"),
              HasSubstr("groups.a/b: bad cache group name 'a/b': 1 to 64 characters"));
  EXPECT_THAT(LoadError("groups = 5\n"),
              HasSubstr("groups: expected a table of groups ([groups.NAME] tables), got 5"));
  EXPECT_THAT(LoadError("[groups]\ncapacity = \"1G\"\n"),
              HasSubstr("groups.capacity: expected a table ([groups.capacity]) of the group's"));
  EXPECT_THAT(LoadError("[groups.u]\norigin = \"http://o/users\"\n"),
              HasSubstr("cfg.toml:2:10: groups.u.origin: origin 'http://o/users': has no {key}"));
  EXPECT_THAT(LoadError("[groups.u]\npolicy = \"fifo\"\n"),
              HasSubstr("groups.u.policy: expected one of lru, lru2"));
  EXPECT_THAT(LoadError("[groups.u]\ncapacity = 0\n"),
              HasSubstr("groups.u.capacity: must be more than 0"));
  EXPECT_THAT(LoadError("[groups.u]\nmax_value = \"8M\"\n"),
              HasSubstr("groups.u.max_value: must be from 1 to"));
  EXPECT_THAT(LoadError("[groups.u]\nload_timeout = \"0\"\n"),
              HasSubstr("groups.u.load_timeout: must be more than 0"));
  EXPECT_EQ(LoadError("[grups.u]\ncapacity = 1\n"),
            "cfg.toml:1:2: grups: unknown section (did you mean groups?)");
}

TEST(ConfigTest, HttpListenAndToken) {
  for (const char* ok : {"127.0.0.1:8080", "[::1]:0", ":8080", "localhost:65535"}) {
    DaemonOptions o;
    EXPECT_OK(Load(std::string("[http]\nlisten = \"") + ok + "\"\n", &o));
  }
  for (const char* bad : {"8080", "::1:80", "host:", "host:65536", "host:http"}) {
    EXPECT_THAT(LoadError(std::string("[http]\nlisten = \"") + bad + "\"\n"),
                HasSubstr("http.listen: expected \"host:port\""))
        << bad;
  }
  EXPECT_THAT(LoadError("[http]\ntoken = \"two words\"\n"), HasSubstr("http.token: a token is"));
  // A rejected token is not echoed.
  EXPECT_THAT(LoadError("[http]\ntoken = \"two words\"\n"), ::testing::Not(HasSubstr("words")));

  TempDir dir;
  EXPECT_THAT(LoadError("[http]\ntoken_file = \"" + dir.path() + "/missing\"\n"),
              HasSubstr("http.token_file: cannot read"));
  WriteFile(dir.path() + "/empty", "\n");
  EXPECT_THAT(LoadError("[http]\ntoken_file = \"" + dir.path() + "/empty\"\n"),
              HasSubstr("http.token_file: the token is empty"));
  WriteFile(dir.path() + "/t", "abc\n");
  EXPECT_EQ(LoadError("[http]\ntoken = \"x\"\ntoken_file = \"" + dir.path() + "/t\"\n"),
            "cfg.toml:3:14: http.token_file: set http.token or http.token_file, not both");
  // The remote CAS tier's token file is read the same way.
  EXPECT_THAT(LoadError("[cas]\nremote_token_file = \"" + dir.path() + "/empty\"\n"),
              HasSubstr("cas.remote_token_file: the token is empty"));
  DaemonOptions o;
  ASSERT_OK(Load(
      "[cas]\nremote = \"grpc://10.0.0.2:9090\"\nremote_token_file = \"" + dir.path() + "/t\"\n",
      &o));
  EXPECT_EQ(o.cas.remote_token, "abc");
  EXPECT_EQ(o.cas.remote, "grpc://10.0.0.2:9090");
}

TEST(ConfigTest, TheFirstErrorInTheFileIsReported) {
  // toml++ keeps keys sorted; errors still come in the order they are written.
  EXPECT_THAT(LoadError("zz = 1\naa = 2\n"), StartsWith("cfg.toml:1:1: zz:"));
  EXPECT_THAT(LoadError("[ttl]\nlease = \"x\"\n[disk]\ncapacity = \"y\"\n"),
              HasSubstr("ttl.lease"));
}

TEST(ConfigTest, ErrorsLeaveTheOptionsUnchanged) {
  DaemonOptions o;
  EXPECT_CODE(Load("store = \"memory\"\nio_threads = 0\n", &o), kInvalidArgument);
  EXPECT_EQ(o.store, "tiered");
}

TEST(ConfigTest, FileErrors) {
  TempDir dir;
  DaemonOptions o;
  Status missing = LoadConfigFile(dir.path() + "/none.toml", &o);
  EXPECT_CODE(missing, kInvalidArgument);
  EXPECT_THAT(std::string(missing.message()), HasSubstr("none.toml"));
  EXPECT_CODE(LoadConfigFile(dir.path(), &o), kInvalidArgument);  // a directory

  // Messages name the file as it was given.
  WriteFile(dir.path() + "/p.toml", "\n\n[memory]\ncapacity = \"lots\"\n");
  Status bad = LoadConfigFile(dir.path() + "/p.toml", &o);
  EXPECT_THAT(std::string(bad.message()), StartsWith(dir.path() + "/p.toml:4:12: memory.capacity"));
}

// --- through the real packiced -------------------------------------------------------------

TEST(ConfigDaemonTest, InvalidFileExitsTwoWithOneLine) {
  TempDir dir;
  const std::string path = dir.path() + "/packice.toml";
  WriteFile(path, "store = \"memory\"\n[memory]\ncapacity = \"lots\"\n");
  std::string out;
  EXPECT_EQ(RunProgram(PackicedArgv(dir.path(), {"--config", path}), &out, "", 30s), 2);
  EXPECT_EQ(out, "packiced: " + path +
                     ":3:12: memory.capacity: expected a size like \"512M\" (K, M, G, T) or an "
                     "integer of bytes, got \"lots\"\n");

  EXPECT_EQ(RunProgram(PackicedArgv(dir.path(), {"--config", dir.path() + "/missing.toml"}), &out,
                       "", 30s),
            2);
  EXPECT_THAT(out, StartsWith("packiced: cannot read"));
}

TEST(ConfigDaemonTest, HelpShowsTheFlags) {
  std::string out;
  EXPECT_EQ(RunProgram({BinPath("packiced"), "--help"}, &out, "", 30s), 0);
  for (const char* flag : {"--config", "--http ", "--http-token", "--tls-cert", "--tls-key"}) {
    EXPECT_THAT(out, HasSubstr(flag));
  }
}

TEST(ConfigDaemonTest, TlsCertWithoutKeyExitsTwo) {
  TempDir dir;
  const std::string path = dir.path() + "/packice.toml";
  WriteFile(path, "[http]\ntls_cert = \"/etc/p/cert.pem\"\n");
  std::string out;
  EXPECT_EQ(RunProgram(PackicedArgv(dir.path(), {"--config", path}), &out, "", 30s), 2);
  EXPECT_THAT(out, StartsWith("packiced: a TLS certificate and key go together"));
}

// Defaults < file < flags: the file sets the store, the capacity, the threads and a socket; the
// flags set another capacity, and Daemon passes its own --socket. The node's "ready" log line
// shows what it runs with.
TEST(ConfigDaemonTest, FlagsOverrideTheFile) {
  TempDir dir;
  const std::string path = dir.path() + "/packice.toml";
  WriteFile(path,
            "store = \"memory\"\n"
            "socket = \"" +
                dir.path() +
                "/from-file.sock\"\n"
                "io_threads = 2\n"
                "[memory]\n"
                "capacity = \"2G\"\n"
                "pool = \"0\"\n");
  Daemon d;
  ASSERT_OK(d.Start({"--config", path, "--capacity", "512M"}));
  std::string log;
  for (int i = 0; i < 500 && log.find("event=ready") == std::string::npos; ++i) {
    std::this_thread::sleep_for(10ms);
    log = d.log();
  }
  EXPECT_THAT(log, HasSubstr("url=uds://" + d.socket() + " "));     // flag over file
  EXPECT_THAT(log, HasSubstr("store=memory "));                     // file over default
  EXPECT_THAT(log, HasSubstr("memory_capacity_bytes=536870912 "));  // flag over file
  EXPECT_THAT(log, HasSubstr("io_threads=2"));                      // file over default
  EXPECT_EQ(d.Stop(), 0);
}

}  // namespace
}  // namespace packice
