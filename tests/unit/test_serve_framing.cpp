#include "serve/framing.hpp"

#include <gtest/gtest.h>

namespace {

using serve::FrameHeader;
using serve::FrameKind;

TEST(ServeFraming, RoundTripsEveryField)
{
  const FrameHeader in{FrameKind::response, 415, 0x0102030405060708ULL, 17, 0x1122334455ULL};
  const auto bytes = serve::encode_header(in);
  const FrameHeader out = serve::decode_header(bytes, 1ULL << 40);
  EXPECT_EQ(out.kind, FrameKind::response);
  EXPECT_EQ(out.status, 415);
  EXPECT_EQ(out.id, 0x0102030405060708ULL);
  EXPECT_EQ(out.meta_size, 17U);
  EXPECT_EQ(out.body_size, 0x1122334455ULL);
}

TEST(ServeFraming, LittleEndianLayoutAsPythonStructPacksIt)
{
  // struct.pack("<IHHQIIQ", 0x534C4D53, 1, 0, 7, 3, 0, 258) in worker.py.
  const auto bytes = serve::encode_header(FrameHeader{FrameKind::request, 0, 7, 3, 258});
  const std::string expected("SMLS\x01\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x02\x01\x00\x00\x00\x00\x00\x00",
                             32);
  EXPECT_EQ(std::string(bytes.data(), bytes.size()), expected);
}

TEST(ServeFraming, RefusesWhatIsNotAFrame)
{
  struct Case
  {
    const char* name;
    FrameHeader header;
    int patch_offset; // -1: none
    char patch;
    std::uint64_t max_body;
    const char* message;
  };
  const Case cases[] = {
    {"bad magic", FrameHeader{FrameKind::ready, 0, 0, 0, 0}, 0, 'X', 100, "magic"},
    {"kind 0", FrameHeader{FrameKind::ready, 0, 0, 0, 0}, 4, 0, 100, "unknown kind 0"},
    {"kind 9", FrameHeader{FrameKind::ready, 0, 0, 0, 0}, 4, 9, 100, "unknown kind 9"},
    {"meta too large", FrameHeader{FrameKind::ready, 0, 0, serve::k_max_meta_size + 1, 0}, -1, 0, 100, "metadata"},
    {"body too large", FrameHeader{FrameKind::response, 200, 0, 0, 101}, -1, 0, 100, "body of 101 bytes"},
    {"status 99", FrameHeader{FrameKind::response, 99, 0, 0, 0}, -1, 0, 100, "status 99"},
    {"status 600", FrameHeader{FrameKind::response, 600, 0, 0, 0}, -1, 0, 100, "status 600"},
  };
  for (const auto& c : cases) {
    auto bytes = serve::encode_header(c.header);
    if (c.patch_offset >= 0) {
      bytes[static_cast<std::size_t>(c.patch_offset)] = c.patch;
    }
    try {
      serve::decode_header(bytes, c.max_body);
      ADD_FAILURE() << c.name << ": accepted";
    } catch (const serve::FramingError& e) {
      EXPECT_NE(std::string(e.what()).find(c.message), std::string::npos) << c.name << ": " << e.what();
    }
  }
}

TEST(ServeFraming, BodyAtTheLimitIsAccepted)
{
  EXPECT_EQ(serve::decode_header(serve::encode_header(FrameHeader{FrameKind::response, 200, 1, 0, 100}), 100).body_size, 100U);
}

TEST(ServeFraming, RequestMetaIsContentTypeNewlineAccept)
{
  EXPECT_EQ(serve::request_meta("text/csv", "application/json"), "text/csv\napplication/json");
  EXPECT_EQ(serve::request_meta("", ""), "\n");
}

} // namespace
