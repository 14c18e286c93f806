// The queue record encoding (record_codec.h): round trips, and every cut or corrupt form is
// refused with kDataLoss, not read past or over-allocated.
#include "backends/queue/record_codec.h"

#include <gtest/gtest.h>

#include "testing.h"

namespace packice {
namespace {

std::span<const std::byte> B(const std::string& s) { return std::as_bytes(std::span(s)); }

QueueRecord Sample() {
  QueueRecord r;
  r.key = "user-42";
  r.headers = {{"content-type", "application/json"}, {"trace", ""}, {"trace", "2"}};
  r.value = "{\"clicks\": 3}";
  r.timestamp_unix_ms = -5;  // any value round-trips
  return r;
}

TEST(QueueRecordCodecTest, RoundTripsWithAndWithoutKeyAndHeaders) {
  QueueRecord bare;
  bare.value = std::string(1 << 16, '\0');
  for (const QueueRecord& r : {Sample(), bare, QueueRecord{}}) {
    std::string bytes;
    EncodeRecord(r, &bytes);
    EXPECT_EQ(bytes.size(), EncodedRecordBytes(r));
    ASSERT_OK_AND_ASSIGN(QueueRecord back, DecodeRecord(B(bytes)));
    EXPECT_EQ(back, r);
  }
}

TEST(QueueRecordCodecTest, EveryCutIsDataLoss) {
  std::string bytes;
  EncodeRecord(Sample(), &bytes);
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_EQ(DecodeRecord(B(bytes.substr(0, n))).status().code(), StatusCode::kDataLoss) << n;
  }
  EXPECT_EQ(DecodeRecord(B(bytes + "x")).status().code(), StatusCode::kDataLoss);
}

TEST(QueueRecordCodecTest, UnknownFormatsFlagsAndImpossibleCountsAreDataLoss) {
  std::string bytes;
  EncodeRecord(Sample(), &bytes);
  std::string format = bytes;
  format[0] = 2;
  EXPECT_EQ(DecodeRecord(B(format)).status().code(), StatusCode::kDataLoss);
  std::string flags = bytes;
  flags[1] = 3;
  EXPECT_EQ(DecodeRecord(B(flags)).status().code(), StatusCode::kDataLoss);
  // A header count of 2^32 - 1 in a small record: refused before anything is sized by it.
  QueueRecord none;
  std::string small;
  EncodeRecord(none, &small);
  small[10] = small[11] = small[12] = small[13] = '\xff';
  auto r = DecodeRecord(B(small));
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("headers"), std::string_view::npos) << r.status().ToString();
  // A value length past the end.
  std::string longer = bytes;
  longer[longer.size() - Sample().value.size() - 1] = '\x7f';
  EXPECT_EQ(DecodeRecord(B(longer)).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace packice
