// chunk_codec.h: the framing the node sends is protobuf's, and the client's split of received
// slices agrees with protobuf's parse wherever the slices are cut, refusing what is malformed.
#include "transport/grpc/chunk_codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "testing.h"
#include "transport/grpc/objects.pb.h"

namespace packice::rpc {
namespace {

std::span<const std::byte> Bytes(std::string_view s) { return std::as_bytes(std::span(s)); }

// Splits `wire` cut into the pieces [0, a), [a, b), [b, end).
Status Split(const std::string& wire, size_t a, size_t b, std::string* rest, std::string* data) {
  const std::span<const std::byte> all = Bytes(wire);
  const std::span<const std::byte> pieces[] = {all.subspan(0, a), all.subspan(a, b - a),
                                               all.subspan(b)};
  return SplitBytesField(pieces, GetChunk::kDataFieldNumber, rest,
                         [data](std::span<const std::byte> d) {
                           data->append(reinterpret_cast<const char*>(d.data()), d.size());
                           return Status::Ok();
                         });
}

GetChunk FirstChunk() {
  GetChunk m;
  m.mutable_info()->set_key("users/42");
  m.mutable_info()->set_size(300);
  m.set_lease(1234567890123ull);
  m.set_lease_ttl_ms(30000);
  return m;
}

TEST(ChunkCodecTest, TheNodesFramingIsAMessageProtobufParses) {
  const GetChunk fields = FirstChunk();
  const std::string data(300, 'd');
  const std::string wire =
      ChunkPrefix(fields.SerializeAsString(), GetChunk::kDataFieldNumber, data.size()) + data;
  GetChunk parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.data(), data);
  EXPECT_EQ(parsed.info().key(), "users/42");
  EXPECT_EQ(parsed.lease(), 1234567890123ull);
  EXPECT_EQ(parsed.lease_ttl_ms(), 30000);
}

TEST(ChunkCodecTest, SplitAgreesWithProtobufWhereverTheSlicesAreCut) {
  GetChunk whole = FirstChunk();
  whole.set_data(std::string(200, 'x') + std::string(100, 'y'));
  const std::string wire = whole.SerializeAsString();  // protobuf's order: data before lease
  for (size_t a = 0; a <= wire.size(); a += 7) {
    for (size_t b = a; b <= wire.size(); b += 13) {
      std::string rest, data;
      const Status split = Split(wire, a, b, &rest, &data);
      ASSERT_TRUE(split.ok()) << a << " " << b << ": " << split.ToString();
      EXPECT_EQ(data, whole.data()) << a << " " << b;
      GetChunk fields;
      ASSERT_TRUE(fields.ParseFromString(rest));
      EXPECT_EQ(fields.info().key(), "users/42");
      EXPECT_EQ(fields.lease(), whole.lease());
      EXPECT_EQ(fields.lease_ttl_ms(), whole.lease_ttl_ms());
      EXPECT_TRUE(fields.data().empty());
    }
  }
}

TEST(ChunkCodecTest, AMessageWithoutTheBytesFieldHandsNothing) {
  std::string rest, data;
  ASSERT_OK(Split(FirstChunk().SerializeAsString(), 1, 2, &rest, &data));
  EXPECT_TRUE(data.empty());
  EXPECT_EQ(rest, FirstChunk().SerializeAsString());
  rest.clear();
  ASSERT_OK(Split("", 0, 0, &rest, &data));  // an empty message is a message
  EXPECT_TRUE(rest.empty());
}

TEST(ChunkCodecTest, MalformedMessagesAreProtocolErrors) {
  const std::string data_tag = "\x12";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"\x80", "a tag cut short"},
      {data_tag + "\x05" + "abc", "the bytes field cut short"},
      {data_tag + "\x80", "its length cut short"},
      {data_tag + "\x01" + "a" + data_tag + "\x01" + "b", "the bytes field twice"},
      {std::string("\x10\x01", 2), "the bytes field as a varint"},
      {std::string("\x00\x01", 2), "field number 0"},
      {"\x0b", "a group's start"},
      {"\x0e", "wire type 6"},
      {"\x0a\x09" + std::string(3, 'i'), "an info field cut short"},
      {"\x19\x01\x02", "a fixed64 cut short"},
      {"\x18" + std::string(10, '\xff') + "\x01", "a varint of 11 bytes"},
      {"\x18" + std::string(9, '\xff') + "\x02", "a varint over 64 bits"},
  };
  for (const auto& [wire, what] : bad) {
    std::string rest, data;
    EXPECT_CODE(Split(wire, wire.size() / 2, wire.size(), &rest, &data), kProtocolError) << what;
  }
}

TEST(ChunkCodecTest, TheSinksErrorStopsTheSplit) {
  GetChunk whole = FirstChunk();
  whole.set_data("payload");
  const std::string wire = whole.SerializeAsString();
  const std::span<const std::byte> pieces[] = {Bytes(wire)};
  std::string rest;
  EXPECT_CODE(SplitBytesField(pieces, GetChunk::kDataFieldNumber, &rest,
                              [](std::span<const std::byte>) { return OutOfCapacity("full"); }),
              kOutOfCapacity);
}

}  // namespace
}  // namespace packice::rpc
