// Bazel (Debian's bazel-bootstrap) building against a real packiced with
// --remote_cache=grpc://: after a clean, every action of the rebuild is a remote cache hit.

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "testing.h"

namespace packice {
namespace {

using testing::Daemon;
using testing::TempDir;

constexpr char kBazel[] = "/usr/bin/bazel";
constexpr int kActions = 6;  // the genrules below

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// A workspace of kActions genrules: a chain of text steps, and a C program compiled and run.
void MakeWorkspace(const std::string& dir) {
  WriteFile(dir + "/WORKSPACE", "");
  WriteFile(dir + "/main.c",
            "#include <stdio.h>\nint main(void) { printf(\"built by bazel\\n\"); return 0; }\n");
  WriteFile(dir + "/BUILD", R"(
genrule(name = "a", outs = ["a.txt"], cmd = "echo packice > $@")
genrule(name = "b", srcs = [":a"], outs = ["b.txt"], cmd = "tr a-z A-Z < $< > $@")
genrule(name = "c", srcs = [":b"], outs = ["c.txt"], cmd = "cat $< $< > $@")
genrule(name = "big", outs = ["big.bin"], cmd = "head -c 3000000 /dev/zero | tr '\\0' x > $@")
genrule(name = "prog", srcs = ["main.c"], outs = ["prog"], cmd = "cc -O0 -o $@ $<")
genrule(name = "ran", srcs = [":prog", ":c", ":big"], outs = ["ran.txt"],
        cmd = "./$(location :prog) > $@ && cat $(location :c) >> $@ && wc -c < $(location :big) >> $@")
)");
}

class BazelTest : public ::testing::Test {
 protected:
  // Runs bazel in the workspace with its own output root; returns its exit code.
  int Bazel(const std::vector<std::string>& args, std::string* out) {
    // The system rc stays: Debian's names the install base its bazel runs from.
    std::vector<std::string> argv = {kBazel, "--nohome_rc", "--noworkspace_rc", "--batch",
                                     "--output_user_root=" + dir_.path() + "/root"};
    argv.insert(argv.end(), args.begin(), args.end());
    // RunProgram runs in this directory; bazel works in the workspace it is started in.
    std::vector<std::string> shell = {"/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", ws_};
    shell.insert(shell.end(), argv.begin(), argv.end());
    return testing::RunProgram(shell, out, "", std::chrono::seconds(600));
  }

  TempDir dir_;
  std::string ws_ = dir_.path() + "/ws";
};

TEST_F(BazelTest, ACleanRebuildIsServedFromTheRemoteCache) {
  ASSERT_EQ(::access(kBazel, X_OK), 0)
      << "bazel-bootstrap is not installed (scripts/install-deps.sh)";
  Daemon node;
  ASSERT_OK(node.Start({"--grpc", "127.0.0.1:0"}));
  const std::string cache = "--remote_cache=" + node.grpc_url();
  ASSERT_EQ(::mkdir(ws_.c_str(), 0700), 0);
  MakeWorkspace(ws_);
  std::string out;
  ASSERT_EQ(Bazel({"build", cache, "//:ran"}, &out), 0) << out;
  EXPECT_EQ(testing::ReadFile(ws_ + "/bazel-bin/ran.txt"),
            "built by bazel\nPACKICE\nPACKICE\n3000000\n");
  ASSERT_EQ(Bazel({"clean"}, &out), 0) << out;
  ASSERT_EQ(Bazel({"build", cache, "//:ran"}, &out), 0) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("(\\d+) remote cache hit"))) << out;
  EXPECT_EQ(std::stoi(m[1]), kActions) << out;
  EXPECT_EQ(testing::ReadFile(ws_ + "/bazel-bin/ran.txt"),
            "built by bazel\nPACKICE\nPACKICE\n3000000\n");
}

}  // namespace
}  // namespace packice
