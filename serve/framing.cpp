#include "serve/framing.hpp"

namespace serve {

namespace {

template <typename T>
void
put_le(char* out, T value)
{
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out[i] = static_cast<char>(static_cast<unsigned char>((static_cast<std::uint64_t>(value) >> (8 * i)) & 0xffU));
  }
}

template <typename T>
T
get_le(const char* in)
{
  T value = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    value |= static_cast<T>(static_cast<T>(static_cast<unsigned char>(in[i])) << (8 * i));
  }
  return value;
}

} // namespace

std::array<char, k_frame_header_size>
encode_header(const FrameHeader& header)
{
  std::array<char, k_frame_header_size> out{};
  put_le<std::uint32_t>(out.data(), k_frame_magic);
  put_le<std::uint16_t>(out.data() + 4, static_cast<std::uint16_t>(header.kind));
  put_le<std::uint16_t>(out.data() + 6, header.status);
  put_le<std::uint64_t>(out.data() + 8, header.id);
  put_le<std::uint32_t>(out.data() + 16, header.meta_size);
  put_le<std::uint32_t>(out.data() + 20, 0);
  put_le<std::uint64_t>(out.data() + 24, header.body_size);
  return out;
}

FrameHeader
decode_header(const std::array<char, k_frame_header_size>& bytes, std::uint64_t max_body)
{
  const char* p = bytes.data();
  if (get_le<std::uint32_t>(p) != k_frame_magic) {
    throw FramingError("bad frame: the magic is not \"SMLS\" (a worker wrote something that is not a frame)");
  }
  FrameHeader h;
  const auto kind = get_le<std::uint16_t>(p + 4);
  if (kind < static_cast<std::uint16_t>(FrameKind::request) || kind > static_cast<std::uint16_t>(FrameKind::fatal)) {
    throw FramingError("bad frame: unknown kind " + std::to_string(kind));
  }
  h.kind = static_cast<FrameKind>(kind);
  h.status = get_le<std::uint16_t>(p + 6);
  h.id = get_le<std::uint64_t>(p + 8);
  h.meta_size = get_le<std::uint32_t>(p + 16);
  h.body_size = get_le<std::uint64_t>(p + 24);
  if (h.meta_size > k_max_meta_size) {
    throw FramingError("bad frame: metadata of " + std::to_string(h.meta_size) + " bytes (at most " +
                       std::to_string(k_max_meta_size) + ")");
  }
  if (h.kind == FrameKind::response && h.meta_size > k_max_response_meta_size) {
    throw FramingError("bad frame: a content type of " + std::to_string(h.meta_size) + " bytes (at most " +
                       std::to_string(k_max_response_meta_size) + ")");
  }
  if (h.body_size > max_body) {
    throw FramingError("bad frame: body of " + std::to_string(h.body_size) + " bytes (at most " +
                       std::to_string(max_body) + ")");
  }
  if (h.kind == FrameKind::response && (h.status < 100 || h.status > 599)) {
    throw FramingError("bad frame: response status " + std::to_string(h.status));
  }
  return h;
}

bool
response_status_allowed(unsigned status)
{
  return status >= 200 && status <= 599 && status != 204 && status != 304;
}

std::string
request_meta(std::string_view content_type, std::string_view accept)
{
  std::string meta;
  meta.reserve(content_type.size() + accept.size() + 1);
  meta.append(content_type);
  meta += '\n';
  meta.append(accept);
  return meta;
}

const char*
to_string(FrameKind kind)
{
  switch (kind) {
  case FrameKind::request:
    return "request";
  case FrameKind::response:
    return "response";
  case FrameKind::ready:
    return "ready";
  case FrameKind::fatal:
    return "fatal";
  }
  return "?";
}

} // namespace serve
