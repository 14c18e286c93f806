// UploadTable: appends in order, a resume after the writer let go, a takeover by a second
// writer, finishing (whole, short, mismatching), staging in a file, the bounds, expiry.
#include "services/cas/upload_table.h"

#include <gtest/gtest.h>

#include <string>

#include "testing.h"

namespace packice {
namespace {

using std::chrono::minutes;

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

Digest Sha(const std::string& s) { return Digest::Of(DigestAlgorithm::kSha256, Bytes(s)); }

// A store that keeps what it is given.
struct Sink {
  std::string got;
  int calls = 0;
  auto Fn() {
    return [this](std::span<const std::byte> b) {
      calls++;
      got.assign(reinterpret_cast<const char*>(b.data()), b.size());
      return Status::Ok();
    };
  }
};

class UploadTableTest : public ::testing::Test {
 protected:
  UploadTableOptions Options() {
    UploadTableOptions o;
    o.staging_dir = dir_.path();
    o.memory_threshold = 16;
    o.max_staged_bytes = 1000;
    o.max_uploads = 3;
    o.clock = clock_;
    return o;
  }
  testing::TempDir dir_;
  std::shared_ptr<testing::FakeClock> clock_ = std::make_shared<testing::FakeClock>();
};

TEST_F(UploadTableTest, AppendsResumesAndFinishes) {
  for (size_t size : {10, 100}) {  // in memory, in a file
    UploadTable table(Options());
    const std::string data = testing::PatternString(size, 3);
    const Digest d = Sha(data);
    {
      ASSERT_OK_AND_ASSIGN(auto w, table.Attach("u", d, 0));
      ASSERT_OK(w->Append(0, Bytes(data.substr(0, 4))));
      EXPECT_CODE(w->Append(2, Bytes(data.substr(4, 2))), kInvalidArgument);  // not at 4
      EXPECT_EQ(w->committed(), 4u);
    }  // the writer lets go: the upload stays
    ASSERT_OK_AND_ASSIGN(uint64_t committed, table.Query("u"));
    EXPECT_EQ(committed, 4u);
    EXPECT_CODE(table.Attach("u", d, 0), kInvalidArgument);  // not the committed size
    ASSERT_OK_AND_ASSIGN(auto w, table.Attach("u", d, 4));
    EXPECT_CODE(w->Finish(Sink().Fn()), kInvalidArgument);  // not all bytes yet
    ASSERT_OK(w->Append(4, Bytes(data.substr(4))));
    EXPECT_CODE(w->Append(size, Bytes(std::string("x"))), kInvalidArgument);  // past the size
    Sink sink;
    ASSERT_OK(w->Finish(sink.Fn()));
    EXPECT_EQ(sink.got, data);
    EXPECT_CODE(table.Query("u"), kNotFound);
    EXPECT_EQ(table.staged_bytes(), 0u);
  }
}

TEST_F(UploadTableTest, ASecondWriterTakesOver) {
  UploadTable table(Options());
  const std::string data = "0123456789";
  const Digest d = Sha(data);
  ASSERT_OK_AND_ASSIGN(auto old_writer, table.Attach("u", d, 0));
  ASSERT_OK(old_writer->Append(0, Bytes(data.substr(0, 3))));
  ASSERT_OK_AND_ASSIGN(auto new_writer, table.Attach("u", d, 3));
  EXPECT_CODE(old_writer->Append(3, Bytes(data.substr(3, 1))), kAborted);
  old_writer.reset();  // its detach leaves the new writer alone
  ASSERT_OK(new_writer->Append(3, Bytes(data.substr(3))));
  Sink sink;
  ASSERT_OK(new_writer->Finish(sink.Fn()));
  EXPECT_EQ(sink.got, data);
  EXPECT_CODE(table.Attach("u", Sha("other"), 0), kOk);  // the name is free again
}

TEST_F(UploadTableTest, MismatchingBytesAreNotStoredAndTheUploadIsDropped) {
  UploadTable table(Options());
  const Digest d = Sha("right bytes");
  ASSERT_OK_AND_ASSIGN(auto w, table.Attach("u", d, 0));
  ASSERT_OK(w->Append(0, Bytes("wrong bytes")));
  Sink sink;
  EXPECT_CODE(w->Finish(sink.Fn()), kDigestMismatch);
  EXPECT_EQ(sink.calls, 0);
  EXPECT_CODE(table.Query("u"), kNotFound);
}

TEST_F(UploadTableTest, BoundsDropIdleUploadsThenRefuse) {
  UploadTable table(Options());  // 3 uploads, 1000 bytes
  EXPECT_CODE(table.Attach("big", Sha(std::string(1001, 'x')), 0), kOutOfCapacity);
  ASSERT_OK_AND_ASSIGN(auto a, table.Attach("a", Sha(std::string(400, 'a')), 0));
  { ASSERT_OK_R(table.Attach("b", Sha(std::string(400, 'b')), 0)); }  // idle at once
  clock_->Advance(std::chrono::milliseconds(1));
  { ASSERT_OK_R(table.Attach("c", Sha(std::string(100, 'c')), 0)); }  // idle, newer
  // 300 more bytes: over 1000, so the oldest idle upload ("b") goes.
  ASSERT_OK_AND_ASSIGN(auto d, table.Attach("d", Sha(std::string(300, 'd')), 0));
  EXPECT_CODE(table.Query("b"), kNotFound);
  EXPECT_CODE(table.Query("c"), kOk);
  // A fourth upload: "c" is the only idle one left and goes; then only writers remain.
  ASSERT_OK_AND_ASSIGN(auto e, table.Attach("e", Sha(std::string(10, 'e')), 0));
  EXPECT_CODE(table.Query("c"), kNotFound);
  EXPECT_CODE(table.Attach("f", Sha(std::string(10, 'f')), 0), kOutOfCapacity);
  EXPECT_EQ(table.size(), 3u);
}

TEST_F(UploadTableTest, IdleUploadsExpire) {
  UploadTableOptions options = Options();
  options.keep_partial = minutes(10);
  UploadTable table(options);
  const Digest d = Sha("abcdef");
  ASSERT_OK_AND_ASSIGN(auto writing, table.Attach("writing", d, 0));
  {
    ASSERT_OK_AND_ASSIGN(auto w, table.Attach("idle", d, 0));
    ASSERT_OK(w->Append(0, Bytes("abc")));
  }
  clock_->Advance(minutes(9));
  EXPECT_CODE(table.Query("idle"), kOk);
  clock_->Advance(minutes(2));
  EXPECT_CODE(table.Query("idle"), kNotFound);
  EXPECT_CODE(table.Query("writing"), kOk);  // a writer holds it: it does not expire
}

TEST_F(UploadTableTest, DiscardAbortsTheWriter) {
  UploadTable table(Options());
  const Digest d = Sha("abcdef");
  ASSERT_OK_AND_ASSIGN(auto w, table.Attach("u", d, 0));
  table.Discard("u");
  EXPECT_CODE(w->Append(0, Bytes("abc")), kAborted);
  EXPECT_EQ(table.size(), 0u);
}

}  // namespace
}  // namespace packice
