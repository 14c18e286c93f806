// The client library and the packice command against a real packiced over HTTP (docs/http.md):
// Connect("http://...") and Connect("https://..."), ObjectWriter and ObjectReader, bearer
// tokens, TLS, and the CLI's --url, --token and --ca-file.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "packice/client.h"
#include "testing.h"

namespace packice {
namespace {

using namespace std::chrono_literals;
using ::packice::testing::BinPath;
using ::packice::testing::Daemon;
using ::packice::testing::MakeSelfSignedCert;
using ::packice::testing::PatternString;
using ::packice::testing::ReadFile;
using ::packice::testing::RunProgram;
using ::packice::testing::TempDir;

constexpr uint64_t kMiB = 1 << 20;

std::vector<std::byte> Pattern(size_t n, uint8_t seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 131 + seed) & 0xff);
  return v;
}

bool Equal(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

std::span<const std::byte> Bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

void WriteFile(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::vector<std::string> Keys(const ListPage& page) {
  std::vector<std::string> out;
  for (const auto& o : page.objects) out.push_back(o.key);
  return out;
}

// Sets (or, with nullopt, unsets) an environment variable for its lifetime. The CLI inherits
// this process's environment.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// Runs the packice command against `url` with `args`.
int Cli(const std::string& url, std::vector<std::string> args, std::string* out,
        const std::string& in = "") {
  args.insert(args.begin(), {BinPath("packice"), "--url", url});
  return RunProgram(args, out, in);
}

// Exit status 1 and exactly one line starting "packice: <code>: ".
void ExpectCliFailure(int code, const std::string& out, const std::string& prefix) {
  EXPECT_EQ(code, 1) << out;
  EXPECT_EQ(out.rfind("packice: " + prefix, 0), 0u) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(daemon_.Start({"--http", "127.0.0.1:0", "--store", "memory"}));
    url_ = daemon_.http_url();
    ASSERT_TRUE(url_.starts_with("http://127.0.0.1:")) << url_ << "\n" << daemon_.log();
  }
  void TearDown() override { EXPECT_TRUE(daemon_.alive()) << daemon_.log(); }

  // No token, CA or URL from the environment this test runs in.
  ScopedEnv no_token_{"PACKICE_TOKEN", std::nullopt};
  ScopedEnv no_ca_{"PACKICE_CA_FILE", std::nullopt};
  ScopedEnv no_url_{"PACKICE_URL", std::nullopt};
  Daemon daemon_;
  std::string url_;
};

// --- the client library ----------------------------------------------------------------------

TEST_F(HttpClientTest, PutGetStatListDeleteRoundTrip) {
  ASSERT_OK_AND_ASSIGN(Client client, Connect(url_));
  // Keys with '/', and with bytes that must be percent-encoded in a URL path.
  const std::vector<std::string> keys = {"models/llama/7b/layer.0", "a/b/../c", "dir/with space",
                                         "100%/?#&=+", "one"};
  for (size_t i = 0; i < keys.size(); ++i) {
    SCOPED_TRACE("key '" + keys[i] + "'");
    const std::vector<std::byte> bytes = Pattern(1000 + i, static_cast<uint8_t>(i));
    CreateOptions options;
    options.meta = {{"Dtype", "bf16"}, {"layer", std::to_string(i)}};
    options.ttl = 1h;
    ASSERT_OK_AND_ASSIGN(ObjectInfo put, client.Put(keys[i], bytes, options));
    EXPECT_EQ(put.key, keys[i]);
    EXPECT_EQ(put.size, bytes.size());
    EXPECT_EQ(put.state, ObjectState::kSealed);
    // Metadata names travel as header names: they come back lower-cased.
    const Meta want_meta = {{"dtype", "bf16"}, {"layer", std::to_string(i)}};
    EXPECT_EQ(put.meta, want_meta);
    EXPECT_EQ(put.ttl, Duration(1h));

    ASSERT_OK_AND_ASSIGN(ObjectReader r, client.Get(keys[i]));
    EXPECT_EQ(r.key(), keys[i]);
    EXPECT_TRUE(Equal(r.data(), bytes));
    EXPECT_EQ(r.info().version, put.version);
    EXPECT_EQ(r.info().meta, want_meta);

    ASSERT_OK_AND_ASSIGN(ObjectInfo stat, client.Stat(keys[i]));
    EXPECT_EQ(stat.key, keys[i]);
    EXPECT_EQ(stat.size, bytes.size());
    EXPECT_EQ(stat.version, put.version);
    EXPECT_EQ(stat.state, ObjectState::kSealed);
    EXPECT_EQ(stat.tier, "memory");
    EXPECT_EQ(stat.meta, want_meta);
    EXPECT_EQ(stat.ttl, Duration(1h));
    EXPECT_GT(stat.created_unix_ms, 0);
    EXPECT_NEAR(static_cast<double>(stat.expires_unix_ms - stat.created_unix_ms), 3'600'000.0,
                1000.0);
  }

  ASSERT_OK_AND_ASSIGN(ListPage all, client.List());
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(Keys(all), sorted);
  EXPECT_FALSE(all.truncated);

  ListOptions models;
  models.prefix = "models/llama/";
  ASSERT_OK_AND_ASSIGN(ListPage page, client.List(models));
  ASSERT_EQ(Keys(page), std::vector<std::string>{"models/llama/7b/layer.0"});
  EXPECT_EQ(page.objects[0].size, 1000u);

  // Pages.
  for (int i = 0; i < 25; ++i) {
    const std::string key = "page/" + std::string(i < 10 ? "0" : "") + std::to_string(i);
    ASSERT_OK(client.Put(key, std::string_view("p")).status());
  }
  ListOptions paged;
  paged.prefix = "page/";
  paged.limit = 10;
  std::vector<std::string> listed;
  for (int pages = 1;; ++pages) {
    ASSERT_LE(pages, 3);
    ASSERT_OK_AND_ASSIGN(ListPage p, client.List(paged));
    for (const auto& o : p.objects) listed.push_back(o.key);
    if (!p.truncated) break;
    paged.start_after = p.objects.back().key;
  }
  ASSERT_EQ(listed.size(), 25u);
  EXPECT_EQ(listed.front(), "page/00");
  EXPECT_EQ(listed.back(), "page/24");

  for (const std::string& key : keys) {
    SCOPED_TRACE("key '" + key + "'");
    ASSERT_OK(client.Delete(key));
    EXPECT_CODE(client.Get(key), kNotFound);
    EXPECT_CODE(client.Stat(key), kNotFound);
    EXPECT_CODE(client.Delete(key), kNotFound);
  }
  EXPECT_CODE(client.Get("never/was"), kNotFound);
  EXPECT_CODE(client.Get(""), kInvalidArgument);
}

TEST_F(HttpClientTest, A64MiBObject) {
  ASSERT_OK_AND_ASSIGN(Client client, Connect(url_));
  const std::vector<std::byte> bytes = Pattern(64 * kMiB, 17);
  ASSERT_OK_AND_ASSIGN(ObjectInfo put, client.Put("big/64m", bytes));
  EXPECT_EQ(put.size, 64 * kMiB);
  ASSERT_OK_AND_ASSIGN(ObjectInfo stat, client.Stat("big/64m"));
  EXPECT_EQ(stat.size, 64 * kMiB);
  EXPECT_EQ(stat.version, put.version);
  ASSERT_OK_AND_ASSIGN(ObjectReader r, client.Get("big/64m"));
  EXPECT_EQ(r.info().size, 64 * kMiB);
  EXPECT_TRUE(Equal(r.data(), bytes));
  ASSERT_OK(r.Release());
  ASSERT_OK(client.Delete("big/64m"));
  EXPECT_CODE(client.Stat("big/64m"), kNotFound);
}

TEST_F(HttpClientTest, WriterAndReader) {
  ASSERT_OK_AND_ASSIGN(Client client, Connect(url_));
  const std::vector<std::byte> bytes = Pattern(64 * kMiB, 3);

  // A create is local until Seal uploads it.
  ASSERT_OK_AND_ASSIGN(ObjectWriter w,
                       client.Create("w/big", bytes.size(), {.meta = {{"k", "v"}}}));
  EXPECT_EQ(w.key(), "w/big");
  EXPECT_EQ(w.info().state, ObjectState::kCreating);
  ASSERT_EQ(w.data().size(), bytes.size());
  std::memcpy(w.data().data(), bytes.data(), bytes.size());
  EXPECT_CODE(client.Stat("w/big"), kNotFound) << "not sealed yet";
  EXPECT_CODE(w.Seal(bytes.size() + 1), kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(ObjectInfo sealed, w.Seal());
  EXPECT_EQ(sealed.key, "w/big");
  EXPECT_EQ(sealed.size, bytes.size());
  EXPECT_EQ(sealed.state, ObjectState::kSealed);
  EXPECT_EQ(sealed.meta, (Meta{{"k", "v"}}));
  EXPECT_TRUE(w.data().empty());
  EXPECT_CODE(w.Seal(), kWrongState);

  ASSERT_OK_AND_ASSIGN(ObjectReader r, client.Get("w/big"));
  EXPECT_EQ(r.info().version, sealed.version);
  EXPECT_EQ(r.info().meta, (Meta{{"k", "v"}}));
  EXPECT_TRUE(Equal(r.data(), bytes));

  // A replace: the reader keeps its copy of the old object.
  ASSERT_OK_AND_ASSIGN(ObjectWriter w2, client.Create("w/big", 1000));
  std::memcpy(w2.data().data(), bytes.data() + 1, 1000);
  ASSERT_OK_AND_ASSIGN(ObjectInfo truncated, w2.Seal(10));  // truncated
  EXPECT_EQ(truncated.size, 10u);
  EXPECT_NE(truncated.version, sealed.version);
  ASSERT_OK_AND_ASSIGN(ObjectReader r2, client.Get("w/big"));
  EXPECT_TRUE(Equal(r2.data(), std::span(bytes).subspan(1, 10)));
  EXPECT_TRUE(Equal(r.data(), bytes));

  // A generated id, known before the upload.
  ASSERT_OK_AND_ASSIGN(ObjectWriter anon, client.Create("", 5));
  EXPECT_EQ(anon.key().size(), 32u);
  std::memcpy(anon.data().data(), "hello", 5);
  ASSERT_OK_AND_ASSIGN(ObjectInfo anon_info, anon.Seal());
  EXPECT_EQ(anon_info.key, anon.key());
  ASSERT_OK_AND_ASSIGN(ObjectReader ar, client.Get(anon_info.key));
  EXPECT_TRUE(Equal(ar.data(), Bytes("hello")));

  // Aborted or dropped: nothing reaches the node.
  {
    ASSERT_OK_AND_ASSIGN(ObjectWriter dropped, client.Create("w/dropped", 100));
    ASSERT_OK_AND_ASSIGN(ObjectWriter aborted, client.Create("w/aborted", 100));
    ASSERT_OK(aborted.Abort());
    EXPECT_CODE(aborted.Seal(), kWrongState);
  }
  EXPECT_CODE(client.Stat("w/dropped"), kNotFound);
  EXPECT_CODE(client.Stat("w/aborted"), kNotFound);

  // An exclusive create of a taken key fails at Seal, with the node's code.
  CreateOptions exclusive;
  exclusive.exclusive = true;
  ASSERT_OK_AND_ASSIGN(ObjectWriter taken, client.Create("w/big", 4, exclusive));
  EXPECT_CODE(taken.Seal(), kAlreadyExists);
  EXPECT_CODE(client.Put("w/big", std::string_view("nope"), exclusive), kAlreadyExists);
  ASSERT_OK_AND_ASSIGN(ObjectInfo still, client.Stat("w/big"));
  EXPECT_EQ(still.version, truncated.version);
  ASSERT_OK(client.Put("w/new", std::string_view("yes"), exclusive).status());
}

TEST_F(HttpClientTest, ObjectsAreSharedWithTheSocketTransport) {
  ASSERT_OK_AND_ASSIGN(Client http, Connect(url_));
  ASSERT_OK_AND_ASSIGN(Client uds, Connect(daemon_.url()));
  const std::vector<std::byte> a = Pattern(3 * kMiB + 5, 1), b = Pattern(777, 2);

  ASSERT_OK_AND_ASSIGN(ObjectInfo over_http, http.Put("shared/a", a, {.meta = {{"via", "http"}}}));
  ASSERT_OK_AND_ASSIGN(ObjectReader ra, uds.Get("shared/a"));
  EXPECT_TRUE(Equal(ra.data(), a));
  EXPECT_EQ(ra.info().version, over_http.version);
  EXPECT_EQ(ra.info().meta, (Meta{{"via", "http"}}));

  ASSERT_OK_AND_ASSIGN(ObjectInfo over_uds, uds.Put("shared/b", b, {.meta = {{"via", "uds"}}}));
  ASSERT_OK_AND_ASSIGN(ObjectReader rb, http.Get("shared/b"));
  EXPECT_TRUE(Equal(rb.data(), b));
  EXPECT_EQ(rb.info().version, over_uds.version);
  EXPECT_EQ(rb.info().meta, (Meta{{"via", "uds"}}));

  ASSERT_OK(http.Delete("shared/b"));
  EXPECT_CODE(uds.Stat("shared/b"), kNotFound);
}

// --- bearer token ----------------------------------------------------------------------------

TEST_F(HttpClientTest, BearerToken) {
  Daemon secured;
  ASSERT_OK(
      secured.Start({"--http", "127.0.0.1:0", "--store", "memory", "--http-token", "s3cret"}));
  const std::string url = secured.http_url();
  ASSERT_TRUE(url.starts_with("http://127.0.0.1:")) << url << "\n" << secured.log();

  // The right token.
  ASSERT_OK_AND_ASSIGN(Client client, Connect(url, {.http_token = "s3cret"}));
  ASSERT_OK(client.Put("t/k", std::string_view("v")).status());
  ASSERT_OK_AND_ASSIGN(ObjectReader r, client.Get("t/k"));
  EXPECT_TRUE(Equal(r.data(), Bytes("v")));
  ASSERT_OK(client.Stat("t/k").status());
  ASSERT_OK(client.List().status());

  // No token: Connect asks only /healthz, which needs none; every object call is refused with a
  // message that says what to do.
  ASSERT_OK_AND_ASSIGN(Client anonymous, Connect(url));
  for (const Status& s :
       {anonymous.Get("t/k").status(), anonymous.Stat("t/k").status(), anonymous.List().status(),
        anonymous.Delete("t/k"), anonymous.Put("t/x", std::string_view("x")).status()}) {
    EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << s.ToString();
    EXPECT_NE(s.message().find("--token"), std::string_view::npos) << s.ToString();
    EXPECT_NE(s.message().find("PACKICE_TOKEN"), std::string_view::npos) << s.ToString();
  }
  // A refused Seal keeps the writer (and its bytes): it is not the object's fault.
  ASSERT_OK_AND_ASSIGN(ObjectWriter w, anonymous.Create("t/w", 3));
  std::memcpy(w.data().data(), "abc", 3);
  EXPECT_CODE(w.Seal(), kPermissionDenied);
  EXPECT_EQ(w.data().size(), 3u);

  // A wrong token.
  ASSERT_OK_AND_ASSIGN(Client wrong, Connect(url, {.http_token = "guess"}));
  auto refused = wrong.Get("t/k");
  EXPECT_CODE(refused, kPermissionDenied);
  EXPECT_NE(refused.status().message().find("refused the token"), std::string_view::npos)
      << refused.status().ToString();

  // $PACKICE_TOKEN when ClientOptions has none.
  {
    ScopedEnv token("PACKICE_TOKEN", "s3cret");
    ASSERT_OK_AND_ASSIGN(Client from_env, Connect(url));
    ASSERT_OK(from_env.Stat("t/k").status());
  }
  // A token that cannot be a header value.
  EXPECT_CODE(Connect(url, {.http_token = "two words"}), kInvalidArgument);
  EXPECT_CODE(client.Stat("t/x"), kNotFound) << "nothing got through";

  // And the CLI.
  std::string out;
  ASSERT_EQ(Cli(url, {"--token", "s3cret", "put", "t/cli", "-"}, &out, "from the cli"), 0) << out;
  ASSERT_EQ(Cli(url, {"--token", "s3cret", "get", "t/cli"}, &out), 0) << out;
  EXPECT_EQ(out, "from the cli");
  ExpectCliFailure(Cli(url, {"get", "t/cli"}, &out), out, "permission_denied: ");
  EXPECT_NE(out.find("--token"), std::string::npos) << out;
  ExpectCliFailure(Cli(url, {"--token", "guess", "ls"}, &out), out, "permission_denied: ");
  {
    ScopedEnv token("PACKICE_TOKEN", "s3cret");
    ASSERT_EQ(Cli(url, {"stat", "t/cli"}, &out), 0) << out;
    EXPECT_NE(out.find("size: 12\n"), std::string::npos) << out;
  }
  EXPECT_TRUE(secured.alive()) << secured.log();
}

// --- the command line ------------------------------------------------------------------------

TEST_F(HttpClientTest, Cli) {
  TempDir dir;
  std::string out;
  for (size_t size : {size_t{0}, size_t{11}, size_t{5 * kMiB + 17}}) {
    SCOPED_TRACE("size " + std::to_string(size));
    const std::string data = PatternString(size, 7);
    const std::string in = dir.path() + "/in", got = dir.path() + "/got";
    WriteFile(in, data);
    ASSERT_EQ(Cli(url_, {"put", "dir/obj", in, "--meta", "owner=cli", "--ttl", "1h"}, &out), 0)
        << out;
    EXPECT_NE(out.find("stored dir/obj (" + std::to_string(size) + " bytes"), std::string::npos)
        << out;
    ASSERT_EQ(Cli(url_, {"get", "dir/obj", "-o", got}, &out), 0) << out;
    EXPECT_TRUE(ReadFile(got) == data);
    ASSERT_EQ(Cli(url_, {"get", "dir/obj"}, &out), 0);  // to stdout
    EXPECT_TRUE(out == data);
    ASSERT_EQ(Cli(url_, {"stat", "dir/obj"}, &out), 0) << out;
    EXPECT_NE(out.find("key: dir/obj\n"), std::string::npos) << out;
    EXPECT_NE(out.find("size: " + std::to_string(size) + "\n"), std::string::npos) << out;
    EXPECT_NE(out.find("state: sealed\n"), std::string::npos) << out;
    EXPECT_NE(out.find("tier: memory\n"), std::string::npos) << out;
    EXPECT_NE(out.find("ttl_ms: 3600000\n"), std::string::npos) << out;
    EXPECT_NE(out.find("meta.owner: cli\n"), std::string::npos) << out;
  }
  ASSERT_EQ(Cli(url_, {"put", "dir/stdin", "-"}, &out, "from stdin"), 0) << out;
  ASSERT_EQ(Cli(url_, {"get", "dir/stdin"}, &out), 0);
  EXPECT_EQ(out, "from stdin");
  ASSERT_EQ(Cli(url_, {"put", "other", "-"}, &out, "x"), 0) << out;

  // What the CLI stored over HTTP, the library reads over the socket.
  ASSERT_OK_AND_ASSIGN(Client uds, Connect(daemon_.url()));
  ASSERT_OK_AND_ASSIGN(ObjectReader r, uds.Get("dir/obj"));
  EXPECT_TRUE(Equal(r.data(), Bytes(PatternString(5 * kMiB + 17, 7))));

  const std::string big = std::to_string(5 * kMiB + 17);
  ASSERT_EQ(Cli(url_, {"ls"}, &out), 0) << out;
  EXPECT_EQ(out, big + "\tdir/obj\n10\tdir/stdin\n1\tother\n");
  ASSERT_EQ(Cli(url_, {"ls", "dir/"}, &out), 0) << out;
  EXPECT_EQ(out, big + "\tdir/obj\n10\tdir/stdin\n");
  ASSERT_EQ(Cli(url_, {"ls", "--limit", "1"}, &out), 0) << out;
  EXPECT_EQ(out, big + "\tdir/obj\n");

  ExpectCliFailure(Cli(url_, {"put", "other", "-", "--exclusive"}, &out, "y"), out,
                   "already_exists: ");
  ExpectCliFailure(Cli(url_, {"put", "meta", "-", "--meta", "bad name=v"}, &out, "y"), out,
                   "invalid_argument: ");

  ASSERT_EQ(Cli(url_, {"rm", "dir/obj"}, &out), 0) << out;
  ASSERT_EQ(Cli(url_, {"ls", "dir/"}, &out), 0) << out;
  EXPECT_EQ(out, "10\tdir/stdin\n");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"get", "dir/obj"}, {"stat", "dir/obj"}, {"rm", "dir/obj"}}) {
    SCOPED_TRACE(args[0]);
    ExpectCliFailure(Cli(url_, args, &out), out, "not_found: ");
  }

  // $PACKICE_URL instead of --url.
  {
    ScopedEnv url("PACKICE_URL", url_);
    ASSERT_EQ(RunProgram({BinPath("packice"), "get", "other"}, &out), 0) << out;
    EXPECT_EQ(out, "x");
  }
}

// --- TLS -------------------------------------------------------------------------------------

TEST_F(HttpClientTest, Tls) {
  TempDir dir;
  std::string cert, key, out;
  ASSERT_OK(MakeSelfSignedCert(dir.path(), &cert, &key));
  Daemon tls;
  ASSERT_OK(tls.Start(
      {"--http", "127.0.0.1:0", "--store", "memory", "--tls-cert", cert, "--tls-key", key}));
  const std::string url = tls.http_url();
  ASSERT_TRUE(url.starts_with("https://127.0.0.1:")) << url << "\n" << tls.log();

  // With the certificate as the CA.
  ASSERT_OK_AND_ASSIGN(Client client, Connect(url, {.http_ca_file = cert}));
  const std::vector<std::byte> bytes = Pattern(9 * kMiB + 3, 5);
  ASSERT_OK_AND_ASSIGN(ObjectInfo put, client.Put("tls/obj", bytes));
  ASSERT_OK_AND_ASSIGN(ObjectReader r, client.Get("tls/obj"));
  EXPECT_TRUE(Equal(r.data(), bytes));
  ASSERT_OK_AND_ASSIGN(ObjectInfo stat, client.Stat("tls/obj"));
  EXPECT_EQ(stat.version, put.version);
  ASSERT_OK_AND_ASSIGN(ObjectWriter w, client.Create("tls/w", 4));
  std::memcpy(w.data().data(), "abcd", 4);
  ASSERT_OK(w.Seal().status());
  ASSERT_OK_AND_ASSIGN(ListPage page, client.List({"tls/"}));
  EXPECT_EQ(Keys(page), (std::vector<std::string>{"tls/obj", "tls/w"}));
  ASSERT_OK(client.Delete("tls/w"));
  EXPECT_CODE(client.Get("tls/w"), kNotFound);

  // Without the CA the certificate cannot be verified: no node there as far as the client knows.
  EXPECT_CODE(Connect(url), kUnavailable);
  // Plain HTTP to the TLS port gets no HTTP answer.
  EXPECT_CODE(Connect("http" + url.substr(5)), kUnavailable);
  // $PACKICE_CA_FILE when ClientOptions has none.
  {
    ScopedEnv ca("PACKICE_CA_FILE", cert);
    ASSERT_OK_AND_ASSIGN(Client from_env, Connect(url));
    ASSERT_OK(from_env.Stat("tls/obj").status());
  }

  // And the CLI.
  const std::string in = dir.path() + "/in", got = dir.path() + "/got";
  const std::string data = PatternString(2 * kMiB + 1, 9);
  WriteFile(in, data);
  ASSERT_EQ(Cli(url, {"--ca-file", cert, "put", "tls/cli", in}, &out), 0) << out;
  ASSERT_EQ(Cli(url, {"--ca-file", cert, "get", "tls/cli", "-o", got}, &out), 0) << out;
  EXPECT_TRUE(ReadFile(got) == data);
  ASSERT_EQ(Cli(url, {"--ca-file", cert, "ls", "tls/"}, &out), 0) << out;
  EXPECT_EQ(out, std::to_string(data.size()) + "\ttls/cli\n" + std::to_string(9 * kMiB + 3) +
                     "\ttls/obj\n");
  ASSERT_EQ(Cli(url, {"--ca-file", cert, "rm", "tls/cli"}, &out), 0) << out;
  ExpectCliFailure(Cli(url, {"ls"}, &out), out, "unavailable: ");
  EXPECT_TRUE(tls.alive()) << tls.log();
}

TEST_F(HttpClientTest, TlsWithAToken) {
  TempDir dir;
  std::string cert, key, out;
  ASSERT_OK(MakeSelfSignedCert(dir.path(), &cert, &key));
  Daemon node;
  ASSERT_OK(node.Start({"--http", "127.0.0.1:0", "--store", "memory", "--tls-cert", cert,
                        "--tls-key", key, "--http-token", "s3cret"}));
  const std::string url = node.http_url();
  ASSERT_TRUE(url.starts_with("https://127.0.0.1:")) << url << "\n" << node.log();
  ASSERT_OK_AND_ASSIGN(Client client, Connect(url, {.http_token = "s3cret", .http_ca_file = cert}));
  ASSERT_OK(client.Put("k", std::string_view("v")).status());
  ASSERT_OK_AND_ASSIGN(Client anonymous, Connect(url, {.http_ca_file = cert}));
  EXPECT_CODE(anonymous.Get("k"), kPermissionDenied);
  ASSERT_EQ(Cli(url, {"--token", "s3cret", "--ca-file", cert, "get", "k"}, &out), 0) << out;
  EXPECT_EQ(out, "v");
  ExpectCliFailure(Cli(url, {"--ca-file", cert, "get", "k"}, &out), out, "permission_denied: ");
}

// --- what a PUT reports --------------------------------------------------------------------

// The ObjectInfo of a Put or a Seal is the node's: with no TTL given, the node's --default-ttl
// and the expiry it set (docs/http.md: a PUT's response carries the object headers).
TEST(HttpClientDefaultTtlTest, PutReportsTheNodesTtlAndExpiry) {
  Daemon node;
  ASSERT_OK(node.Start({"--http", "127.0.0.1:0", "--store", "memory", "--default-ttl", "1h"}));
  ASSERT_OK_AND_ASSIGN(Client client, Connect(node.http_url()));
  for (int replace = 0; replace < 2; ++replace) {  // 201 Created, then 204 No Content
    SCOPED_TRACE(replace ? "replace" : "create");
    ASSERT_OK_AND_ASSIGN(ObjectInfo put, client.Put("k", std::string_view("v")));
    ASSERT_OK_AND_ASSIGN(ObjectInfo stat, client.Stat("k"));
    EXPECT_EQ(put.ttl, Duration(1h));
    EXPECT_EQ(put.expires_unix_ms, stat.expires_unix_ms);
    EXPECT_EQ(put.created_unix_ms, stat.created_unix_ms);
    EXPECT_EQ(put.tier, stat.tier);
    ASSERT_OK_AND_ASSIGN(ObjectWriter w, client.Create("k", 1));
    ASSERT_OK_AND_ASSIGN(ObjectInfo sealed, w.Seal());
    ASSERT_OK_AND_ASSIGN(ObjectInfo resealed, client.Stat("k"));
    EXPECT_EQ(sealed.ttl, Duration(1h));
    EXPECT_EQ(sealed.expires_unix_ms, resealed.expires_unix_ms);
  }
}

// --- no node ---------------------------------------------------------------------------------

TEST(HttpClientNoNodeTest, NobodyListeningIsUnavailable) {
  // A port bound but not listening: connections to it are refused, and nobody else can take it.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string port = std::to_string(ntohs(addr.sin_port));

  for (const std::string& url : {"http://127.0.0.1:" + port, "https://127.0.0.1:" + port}) {
    SCOPED_TRACE(url);
    auto client = Connect(url);
    EXPECT_CODE(client, kUnavailable);
    EXPECT_NE(client.status().message().find("127.0.0.1:" + port), std::string_view::npos)
        << client.status().ToString();
    std::string out;
    ExpectCliFailure(Cli(url, {"ls"}, &out), out, "unavailable: ");
  }
  EXPECT_CODE(Connect("http://127.0.0.1:0"), kInvalidArgument);
  EXPECT_CODE(Connect("http://user:pw@127.0.0.1:" + port), kInvalidArgument);
  close(fd);
}

}  // namespace
}  // namespace packice
