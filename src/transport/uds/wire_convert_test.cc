#include "transport/uds/wire_convert.h"

#include <gtest/gtest.h>

#include <limits>

#include "testing.h"

namespace packice {
namespace {

// Encodes `m` and parses it back, as a peer across a socket would see it.
template <typename M>
M OverTheWire(const M& m) {
  M back;
  EXPECT_TRUE(back.ParseFromString(m.SerializeAsString()));
  return back;
}

void ExpectSameInfo(const ObjectInfo& a, const ObjectInfo& b) {
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.meta, b.meta);
  EXPECT_EQ(a.ttl, b.ttl);
  EXPECT_EQ(a.created_unix_ms, b.created_unix_ms);
  EXPECT_EQ(a.expires_unix_ms, b.expires_unix_ms);
  EXPECT_EQ(a.tier, b.tier);
}

TEST(WireConvertTest, ObjectInfoRoundTrip) {
  ObjectInfo info;
  info.key = "team/model/layer0";
  info.version = std::numeric_limits<uint64_t>::max();
  info.size = (1ull << 40) + 3;
  info.state = ObjectState::kSealed;
  info.meta = {{"author", "a"}, {"", "empty name is the peer's business"}, {"bin", "\x01\xff"}};
  info.ttl = Duration(3'600'000);
  info.created_unix_ms = 1'700'000'000'123;
  info.expires_unix_ms = 1'700'003'600'123;
  info.tier = "memory";
  wire::ObjectInfo w;
  ToWire(info, &w);
  ExpectSameInfo(FromWire(OverTheWire(w)), info);
}

TEST(WireConvertTest, ObjectInfoDefaultsRoundTrip) {
  ObjectInfo info;  // CREATING, empty
  wire::ObjectInfo w;
  ToWire(info, &w);
  EXPECT_EQ(w.ByteSizeLong(), 0u) << "defaults cost nothing on the wire";
  ExpectSameInfo(FromWire(OverTheWire(w)), info);
}

TEST(WireConvertTest, ObjectInfoUnknownStateIsCreating) {
  wire::ObjectInfo w;
  w.set_state(42);
  EXPECT_EQ(FromWire(w).state, ObjectState::kCreating);
  w.set_state(1);
  EXPECT_EQ(FromWire(w).state, ObjectState::kSealed);
}

TEST(WireConvertTest, CreateOptionsRoundTrip) {
  CreateOptions options;
  options.meta = {{"k1", "v1"}, {"k2", std::string(1000, 'x')}};
  options.ttl = Duration(90'000);
  options.exclusive = true;
  wire::CreateOptions w;
  ToWire(options, &w);
  auto back = FromWire(OverTheWire(w));
  ASSERT_OK(back.status());
  EXPECT_EQ(back->meta, options.meta);
  EXPECT_EQ(back->ttl, options.ttl);
  EXPECT_TRUE(back->exclusive);
}

TEST(WireConvertTest, CreateOptionsTtlPresenceIsKept) {
  // No TTL (take the peer's default) and a zero TTL (live forever) differ.
  CreateOptions none;
  wire::CreateOptions w;
  ToWire(none, &w);
  auto back = FromWire(OverTheWire(w));
  ASSERT_OK(back.status());
  EXPECT_FALSE(back->ttl.has_value());
  EXPECT_FALSE(back->exclusive);
  EXPECT_TRUE(back->meta.empty());

  CreateOptions zero;
  zero.ttl = Duration(0);
  wire::CreateOptions wz;
  ToWire(zero, &wz);
  back = FromWire(OverTheWire(wz));
  ASSERT_OK(back.status());
  ASSERT_TRUE(back->ttl.has_value());
  EXPECT_EQ(back->ttl->count(), 0);
}

TEST(WireConvertTest, NegativeTtlIsRejected) {
  wire::CreateOptions w;
  w.set_ttl_ms(-1);
  EXPECT_CODE(FromWire(w), kInvalidArgument);
  w.set_ttl_ms(std::numeric_limits<int64_t>::min());
  EXPECT_CODE(FromWire(w), kInvalidArgument);
}

TEST(WireConvertTest, StatusRoundTripForEveryCode) {
  for (int32_t c = 0; c <= static_cast<int32_t>(StatusCode::kDataLoss); ++c) {
    auto code = StatusCodeFromInt(c);
    ASSERT_TRUE(code.has_value()) << c;
    Status s = *code == StatusCode::kOk ? Status::Ok() : Status(*code, "why " + std::to_string(c));
    wire::Response r;
    ToWire(s, &r);
    Status back = StatusFromWire(OverTheWire(r));
    EXPECT_EQ(back, s) << back.ToString();
  }
}

TEST(WireConvertTest, BytesThatAreNotUtf8SurviveTheWire) {
  // Keys, metadata and messages may hold any bytes the peer accepts, not only UTF-8.
  const std::string odd = "k\xff\xfe/\xc3(";
  wire::Request req;
  req.mutable_get()->set_key(odd);
  EXPECT_EQ(OverTheWire(req).get().key(), odd);

  wire::Response resp;
  ToWire(NotFound("no object '" + odd + "'"), &resp);
  EXPECT_EQ(StatusFromWire(OverTheWire(resp)).message(), "no object '" + odd + "'");

  CreateOptions options;
  options.meta = {{odd, odd}};
  wire::CreateOptions w;
  ToWire(options, &w);
  auto back = FromWire(OverTheWire(w));
  ASSERT_OK(back.status());
  EXPECT_EQ(back->meta, options.meta);
}

TEST(WireConvertTest, RepeatedMetaNameKeepsTheLastValue) {
  wire::CreateOptions w;
  for (const char* v : {"first", "second"}) {
    wire::MetaEntry* e = w.add_meta();
    e->set_name("dup");
    e->set_value(v);
  }
  auto back = FromWire(w);
  ASSERT_OK(back.status());
  EXPECT_EQ(back->meta, (Meta{{"dup", "second"}}));
}

TEST(WireConvertTest, OkStatusCarriesNoMessage) {
  wire::Response r;
  ToWire(Status::Ok(), &r);
  EXPECT_EQ(r.code(), 0);
  EXPECT_TRUE(r.message().empty());
  EXPECT_TRUE(StatusFromWire(r).ok());
}

TEST(WireConvertTest, UnknownStatusCodeIsProtocolError) {
  for (int32_t bad : {17, 1000, -1, std::numeric_limits<int32_t>::max()}) {
    wire::Response r;
    r.set_code(bad);
    r.set_message("from the future");
    Status s = StatusFromWire(r);
    EXPECT_EQ(s.code(), StatusCode::kProtocolError) << bad;
    EXPECT_NE(s.message().find(std::to_string(bad)), std::string_view::npos) << s.ToString();
    EXPECT_NE(s.message().find("from the future"), std::string_view::npos) << s.ToString();
  }
}

}  // namespace
}  // namespace packice
