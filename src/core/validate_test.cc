#include "core/validate.h"

#include <gtest/gtest.h>

#include <set>

namespace packice {
namespace {

TEST(ValidateKeyTest, AcceptsPathLikeKeys) {
  EXPECT_TRUE(ValidateKey("builds/ab/cdef").ok());
  EXPECT_TRUE(ValidateKey(std::string(kMaxKeyBytes, 'k')).ok());
}

TEST(ValidateKeyTest, RejectsBadKeys) {
  EXPECT_EQ(ValidateKey("").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateKey(std::string(kMaxKeyBytes + 1, 'k')).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateKey(std::string("a\0b", 3)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateKey("a\nb").code(), StatusCode::kInvalidArgument);
}

TEST(ValidateMetaTest, Limits) {
  Meta m;
  EXPECT_TRUE(ValidateMeta(m).ok());
  for (size_t i = 0; i <= kMaxMetaEntries; ++i) m["k" + std::to_string(i)] = "v";
  EXPECT_EQ(ValidateMeta(m).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateMeta({{"", "v"}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateMeta({{"k", std::string(kMaxMetaBytes, 'v')}}).code(),
            StatusCode::kInvalidArgument);
}

TEST(GenerateObjectIdTest, UniqueAndValid) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    std::string id = GenerateObjectId();
    EXPECT_EQ(id.size(), 32u);
    EXPECT_TRUE(ValidateKey(id).ok());
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

}  // namespace
}  // namespace packice
