#include "transport/uds/frame.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "testing.h"
#include "transport/uds/wire.pb.h"

namespace packice {
namespace {

// A Request whose encoding is `n` bytes long or a little more (a key of `n` bytes).
wire::Request StatRequest(uint64_t id, size_t key_bytes) {
  wire::Request req;
  req.set_id(id);
  req.mutable_stat()->set_key(std::string(key_bytes, 'k'));
  return req;
}

std::string Frame(const google::protobuf::MessageLite& m) {
  std::string out;
  AppendFrame(m, &out);
  return out;
}

std::string Header(uint32_t len) {
  return std::string{static_cast<char>(len), static_cast<char>(len >> 8),
                     static_cast<char>(len >> 16), static_cast<char>(len >> 24)};
}

// Every complete payload `reader` holds now; fails the test on an error.
std::vector<std::string> Drain(FrameReader& reader) {
  std::vector<std::string> out;
  while (true) {
    auto next = reader.Next();
    EXPECT_OK(next.status());
    if (!next.ok() || !next->has_value()) return out;
    out.emplace_back(**next);
  }
}

TEST(AppendFrameTest, HeaderIsLittleEndianPayloadLength) {
  wire::Request req = StatRequest(7, 300);
  std::string frame = Frame(req);
  ASSERT_EQ(frame.size(), kFrameHeaderBytes + req.ByteSizeLong());
  EXPECT_EQ(frame.substr(0, 4), Header(static_cast<uint32_t>(req.ByteSizeLong())));
  wire::Request back;
  ASSERT_TRUE(back.ParseFromString(frame.substr(4)));
  EXPECT_EQ(back.id(), 7u);
  EXPECT_EQ(back.stat().key(), std::string(300, 'k'));
}

TEST(AppendFrameTest, AppendsAfterExistingBytes) {
  std::string out = "xyz";
  AppendFrame(StatRequest(1, 3), &out);
  AppendFrame(StatRequest(2, 4), &out);
  EXPECT_EQ(out.substr(0, 3), "xyz");
  FrameReader reader;
  reader.Append(std::string_view(out).substr(3));
  std::vector<std::string> payloads = Drain(reader);
  ASSERT_EQ(payloads.size(), 2u);
  wire::Request a, b;
  ASSERT_TRUE(a.ParseFromString(payloads[0]));
  ASSERT_TRUE(b.ParseFromString(payloads[1]));
  EXPECT_EQ(a.id(), 1u);
  EXPECT_EQ(b.stat().key(), "kkkk");
}

TEST(FrameReaderTest, RoundTripOfManyMessages) {
  std::string stream;
  std::vector<wire::Request> sent;
  for (uint64_t i = 0; i < 50; ++i) {
    sent.push_back(StatRequest(i + 1, i * 37));
    AppendFrame(sent.back(), &stream);
  }
  FrameReader reader;
  reader.Append(stream);
  std::vector<std::string> payloads = Drain(reader);
  ASSERT_EQ(payloads.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    wire::Request got;
    ASSERT_TRUE(got.ParseFromString(payloads[i]));
    EXPECT_EQ(got.SerializeAsString(), sent[i].SerializeAsString()) << "frame " << i;
  }
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(FrameReaderTest, FramesSplitAtEveryByteBoundary) {
  // Three frames, one of them empty; the stream is cut in two at every position, and also fed
  // one byte at a time.
  std::string stream = Frame(StatRequest(1, 5)) + Header(0) + Frame(StatRequest(3, 200));
  const std::vector<std::string> want = {Frame(StatRequest(1, 5)).substr(4), "",
                                         Frame(StatRequest(3, 200)).substr(4)};
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    FrameReader reader;
    std::vector<std::string> got;
    reader.Append(std::string_view(stream).substr(0, cut));
    for (auto& p : Drain(reader)) got.push_back(p);
    reader.Append(std::string_view(stream).substr(cut));
    for (auto& p : Drain(reader)) got.push_back(p);
    EXPECT_EQ(got, want) << "cut at " << cut;
    EXPECT_EQ(reader.buffered(), 0u);
  }
  FrameReader reader;
  std::vector<std::string> got;
  for (char c : stream) {
    reader.Append(std::string_view(&c, 1));
    for (auto& p : Drain(reader)) got.push_back(p);
  }
  EXPECT_EQ(got, want);
}

TEST(FrameReaderTest, PartialFrameIsNotReturned) {
  std::string frame = Frame(StatRequest(9, 100));
  FrameReader reader;
  reader.Append(std::string_view(frame).substr(0, 2));  // half a header
  auto next = reader.Next();
  ASSERT_OK(next.status());
  EXPECT_FALSE(next->has_value());
  reader.Append(std::string_view(frame).substr(2, frame.size() - 3));  // all but one byte
  next = reader.Next();
  ASSERT_OK(next.status());
  EXPECT_FALSE(next->has_value());
  EXPECT_EQ(reader.buffered(), frame.size() - 1);
  reader.Append(std::string_view(frame).substr(frame.size() - 1));
  next = reader.Next();
  ASSERT_OK(next.status());
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ(**next, std::string_view(frame).substr(4));
}

TEST(FrameReaderTest, SeveralFramesInOneChunkViaWritableTail) {
  std::string stream;
  for (uint64_t i = 1; i <= 5; ++i) AppendFrame(StatRequest(i, 10), &stream);
  FrameReader reader;
  std::span<char> tail = reader.WritableTail(stream.size());
  ASSERT_GE(tail.size(), stream.size());
  std::copy(stream.begin(), stream.end(), tail.begin());
  reader.Commit(stream.size());
  std::vector<std::string> payloads = Drain(reader);
  ASSERT_EQ(payloads.size(), 5u);
  for (uint64_t i = 0; i < 5; ++i) {
    wire::Request r;
    ASSERT_TRUE(r.ParseFromString(payloads[i]));
    EXPECT_EQ(r.id(), i + 1);
  }
}

TEST(FrameReaderTest, ZeroLengthFrame) {
  FrameReader reader;
  reader.Append(Header(0) + Header(0));
  std::vector<std::string> payloads = Drain(reader);
  EXPECT_EQ(payloads, (std::vector<std::string>{"", ""}));
  // An empty payload parses as an empty Request (no body): the session rejects it, not framing.
  wire::Request r;
  EXPECT_TRUE(r.ParseFromString(payloads[0]));
  EXPECT_EQ(r.body_case(), wire::Request::BODY_NOT_SET);
}

TEST(FrameReaderTest, OversizeLengthIsProtocolError) {
  FrameReader reader(/*max_frame_bytes=*/100);
  reader.Append(Header(101));
  EXPECT_CODE(reader.Next(), kProtocolError);
  // The stream cannot be resynchronised: it stays in error.
  EXPECT_CODE(reader.Next(), kProtocolError);

  FrameReader huge;  // default limit
  huge.Append(Header(0xffffffffu));
  EXPECT_CODE(huge.Next(), kProtocolError);
  FrameReader just_over;
  just_over.Append(Header(kDefaultMaxFrameBytes + 1));
  EXPECT_CODE(just_over.Next(), kProtocolError);
}

TEST(FrameReaderTest, FrameAtTheLimitIsAccepted) {
  FrameReader reader(/*max_frame_bytes=*/100);
  std::string payload(100, 'p');
  reader.Append(Header(100) + payload);
  auto next = reader.Next();
  ASSERT_OK(next.status());
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ(**next, payload);
}

TEST(FrameReaderTest, OversizeAfterValidFramesReturnsTheValidOnesFirst) {
  FrameReader reader(/*max_frame_bytes=*/1000);
  reader.Append(Frame(StatRequest(1, 10)) + Header(5000) + "junk");
  auto first = reader.Next();
  ASSERT_OK(first.status());
  ASSERT_TRUE(first->has_value());
  EXPECT_CODE(reader.Next(), kProtocolError);
}

TEST(FrameReaderTest, MemoryStaysBoundedAcrossManyFrames) {
  // Chunks that cut frames anywhere: the buffer compacts instead of growing with the stream.
  FrameReader reader(/*max_frame_bytes=*/4096);
  std::string stream;
  for (int i = 0; i < 2000; ++i) AppendFrame(StatRequest(i, 1000), &stream);
  size_t frames = 0;
  size_t max_capacity = 0;
  for (size_t at = 0; at < stream.size(); at += 700) {
    reader.Append(std::string_view(stream).substr(at, 700));
    frames += Drain(reader).size();
    // The free space plus what is buffered is the buffer's size.
    max_capacity = std::max(max_capacity, reader.WritableTail(1).size() + reader.buffered());
  }
  EXPECT_EQ(frames, 2000u);
  EXPECT_EQ(reader.buffered(), 0u);
  EXPECT_LE(max_capacity, 4u * 1100);
}

}  // namespace
}  // namespace packice
