#include "dnsmon/capture/dnstap.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "dnsmon/common/bytes.hpp"

#include "dnstap.pb-c.h"

namespace dnsmon::dnstap {
namespace {

constexpr std::uint32_t kFieldContentType = 1;
constexpr std::uint32_t kMaxMessageType = 14;  // UPDATE_RESPONSE
constexpr std::uint64_t kMaxSeconds =
    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() / 1'000'000'000) - 1;

void append_be32(std::vector<std::byte>& out, std::uint32_t v) {
  for (const unsigned shift : {24U, 16U, 8U, 0U}) {
    out.push_back(static_cast<std::byte>((v >> shift) & 0xFFU));
  }
}

// An enum field as the number libprotobuf-c stored: it does not check the value against the
// enum's, and reading an out-of-range value through the C++ enum type is undefined.
template <typename E>
std::uint32_t raw(const E& e) noexcept {
  static_assert(sizeof(E) == sizeof(std::uint32_t));
  std::uint32_t v = 0;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

std::span<const std::byte> bytes_of(const ProtobufCBinaryData& d) noexcept {
  return {reinterpret_cast<const std::byte*>(d.data), d.len};  // NOLINT: octets as bytes
}

// The protobuf's time, or -1 when it has none or one that nanoseconds cannot hold.
std::int64_t time_ns(protobuf_c_boolean has_sec, std::uint64_t sec, protobuf_c_boolean has_nsec,
                     std::uint32_t nsec, bool& bad) noexcept {
  if (has_sec == 0) {
    return -1;
  }
  if (sec > kMaxSeconds || (has_nsec != 0 && nsec >= 1'000'000'000)) {
    bad = true;
    return -1;
  }
  return static_cast<std::int64_t>(sec) * 1'000'000'000 +
         (has_nsec != 0 ? static_cast<std::int64_t>(nsec) : 0);
}

// Copies an address field of the given family into out; false when its length is not the
// family's.
bool copy_address(protobuf_c_boolean has, const ProtobufCBinaryData& d, std::uint8_t family,
                  std::array<std::uint8_t, 16>& out) noexcept {
  out.fill(0);
  if (has == 0) {
    return true;
  }
  const std::size_t want = family == 4 ? 4 : 16;
  if (d.len != want) {
    return false;
  }
  std::memcpy(out.data(), d.data, want);
  return true;
}

FrameResult map_message(const Dnstap__Message& m, Message& out,
                        std::int64_t fallback_ts_ns) noexcept {
  const std::uint32_t type = raw(m.type);
  if (type < 1 || type > kMaxMessageType) {
    return FrameResult::Malformed;
  }
  const bool query = (type % 2) == 1;
  out.type = type;

  // The family: as the frame says, else from an address's length; without either, IPv4 zeros.
  std::uint8_t family = 4;
  if (m.has_socket_family != 0) {
    const std::uint32_t f = raw(m.socket_family);
    if (f == DNSTAP__SOCKET_FAMILY__INET) {
      family = 4;
    } else if (f == DNSTAP__SOCKET_FAMILY__INET6) {
      family = 6;
    } else {
      return FrameResult::Malformed;
    }
  } else if ((m.has_query_address != 0 && m.query_address.len == 16) ||
             (m.has_response_address != 0 && m.response_address.len == 16)) {
    family = 6;
  }
  std::array<std::uint8_t, 16> initiator{}, responder{};
  if (!copy_address(m.has_query_address, m.query_address, family, initiator) ||
      !copy_address(m.has_response_address, m.response_address, family, responder)) {
    return FrameResult::Malformed;
  }
  if ((m.has_query_port != 0 && m.query_port > 0xFFFFU) ||
      (m.has_response_port != 0 && m.response_port > 0xFFFFU)) {
    return FrameResult::Malformed;
  }
  const auto initiator_port = static_cast<std::uint16_t>(m.has_query_port != 0 ? m.query_port : 0);
  const auto responder_port =
      static_cast<std::uint16_t>(m.has_response_port != 0 ? m.response_port : 0);

  bool bad_time = false;
  const std::int64_t query_ns = time_ns(m.has_query_time_sec, m.query_time_sec,
                                        m.has_query_time_nsec, m.query_time_nsec, bad_time);
  const std::int64_t response_ns =
      time_ns(m.has_response_time_sec, m.response_time_sec, m.has_response_time_nsec,
              m.response_time_nsec, bad_time);
  if (bad_time) {
    return FrameResult::Malformed;
  }

  const bool has_wire = query ? m.has_query_message != 0 : m.has_response_message != 0;
  const auto wire = bytes_of(query ? m.query_message : m.response_message);
  if (wire.size() > record::kMaxMessageBytes) {
    return FrameResult::Malformed;
  }
  if (!has_wire) {
    return FrameResult::Ignored;
  }

  auto& h = out.header;
  h = record::Header{};
  h.family = family;
  out.socket_protocol = m.has_socket_protocol != 0 ? raw(m.socket_protocol) : 0;
  switch (out.socket_protocol) {
    case DNSTAP__SOCKET_PROTOCOL__TCP:
    case DNSTAP__SOCKET_PROTOCOL__DNSCryptTCP:
      h.transport = record::kTransportTcp;
      break;
    case DNSTAP__SOCKET_PROTOCOL__DOT:
      h.transport = record::kTransportDot;
      break;
    case DNSTAP__SOCKET_PROTOCOL__DOH:
      h.transport = record::kTransportDoh;
      break;
    default:  // UDP, DNSCrypt over UDP, QUIC, or not said
      h.transport = record::kTransportUdp;
      break;
  }
  if (query) {
    h.src = initiator;
    h.sport = initiator_port;
    h.dst = responder;
    h.dport = responder_port;
  } else {
    h.src = responder;
    h.sport = responder_port;
    h.dst = initiator;
    h.dport = initiator_port;
  }
  const std::int64_t own = query ? query_ns : response_ns;
  out.ts_ns = own >= 0 ? own : fallback_ts_ns;
  out.wire.assign(wire.begin(), wire.end());
  return FrameResult::Message;
}

}  // namespace

std::string_view frame_result_name(FrameResult r) noexcept {
  switch (r) {
    case FrameResult::Message:
      return "message";
    case FrameResult::Ignored:
      return "ignored";
    case FrameResult::Malformed:
    case FrameResult::Count:
      break;
  }
  return "malformed";
}

void append_control_frame(std::vector<std::byte>& out, ControlType type,
                          std::string_view content_type) {
  const std::size_t field = content_type.empty() ? 0 : 8 + content_type.size();
  append_be32(out, 0);  // the escape
  append_be32(out, static_cast<std::uint32_t>(4 + field));
  append_be32(out, static_cast<std::uint32_t>(type));
  if (!content_type.empty()) {
    append_be32(out, kFieldContentType);
    append_be32(out, static_cast<std::uint32_t>(content_type.size()));
    const auto* p = reinterpret_cast<const std::byte*>(content_type.data());  // NOLINT: octets
    out.insert(out.end(), p, p + content_type.size());
  }
}

void append_data_frame(std::vector<std::byte>& out, std::span<const std::byte> payload) {
  append_be32(out, static_cast<std::uint32_t>(payload.size()));
  out.insert(out.end(), payload.begin(), payload.end());
}

FrameResult decode_message(std::span<const std::byte> payload, Message& out,
                           std::int64_t fallback_ts_ns) noexcept {
  if (payload.size() > kMaxDataFrameBytes) {
    return FrameResult::Malformed;
  }
  // libprotobuf-c reports a failed allocation as a failed decode: counted as malformed.
  Dnstap__Dnstap* d = dnstap__dnstap__unpack(
      nullptr, payload.size(), reinterpret_cast<const std::uint8_t*>(payload.data()));  // NOLINT
  if (d == nullptr) {
    return FrameResult::Malformed;
  }
  FrameResult result = FrameResult::Ignored;
  // A payload of another type (none is defined yet) is ignored, as is MESSAGE without a message.
  if (raw(d->type) == DNSTAP__DNSTAP__TYPE__MESSAGE && d->message != nullptr) {
    try {
      result = map_message(*d->message, out, fallback_ts_ns);
    } catch (...) {  // out.wire could not grow
      result = FrameResult::Malformed;
    }
  }
  dnstap__dnstap__free_unpacked(d, nullptr);
  return result;
}

bool Session::fail(std::string_view why) noexcept {
  state_ = State::Failed;
  error_ = why;
  buffer_.clear();
  return false;
}

bool Session::control(std::span<const std::byte> frame, std::vector<std::byte>& replies) {
  if (frame.size() < 4) {
    return fail("a control frame shorter than its type");
  }
  const std::uint32_t type = bytes::load_be32(frame, 0);
  // The content types the frame names (a READY may offer several; the others name one at most).
  bool has_ours = false;
  std::size_t types = 0;
  for (std::size_t at = 4; at < frame.size();) {
    if (frame.size() - at < 8) {
      return fail("a control field cut short");
    }
    const std::uint32_t field = bytes::load_be32(frame, at);
    const std::uint32_t len = bytes::load_be32(frame, at + 4);
    at += 8;
    if (field != kFieldContentType || len > kMaxContentTypeBytes || len > frame.size() - at) {
      return fail("a control field of an unknown type or length");
    }
    const auto* p = reinterpret_cast<const char*>(frame.data() + at);  // NOLINT: bytes as chars
    has_ours = has_ours || std::string_view(p, len) == kContentType;
    ++types;
    at += len;
  }
  const bool content_ok = types == 0 || has_ours;
  switch (static_cast<ControlType>(type)) {
    case ControlType::Ready:
      if (state_ != State::Handshake) {
        return fail("READY after the handshake");
      }
      if (!content_ok) {
        return fail("the writer does not offer protobuf:dnstap.Dnstap");
      }
      append_control_frame(replies, ControlType::Accept, kContentType);
      state_ = State::Accepted;
      return true;
    case ControlType::Start:
      if (state_ != State::Handshake && state_ != State::Accepted) {
        return fail("START twice");
      }
      if (!content_ok || types > 1) {
        return fail("START for a content type other than protobuf:dnstap.Dnstap");
      }
      state_ = State::Started;
      return true;
    case ControlType::Stop:
      if (state_ != State::Started) {
        return fail("STOP before START");
      }
      // FINISH answers a bidirectional writer; one that never sent READY expects nothing.
      append_control_frame(replies, ControlType::Finish);
      state_ = State::Finished;
      buffer_.clear();
      return false;
    case ControlType::Accept:
    case ControlType::Finish:
      break;
  }
  return fail("a control frame a writer does not send");
}

bool Session::feed(std::span<const std::byte> bytes, std::vector<std::byte>& replies,
                   SessionSink& sink) {
  if (state_ == State::Finished || state_ == State::Failed) {
    return false;
  }
  if (skip_ > 0) {
    const std::size_t n = std::min(skip_, bytes.size());
    skip_ -= n;
    bytes = bytes.subspan(n);
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  std::size_t at = 0;
  const std::span<const std::byte> b(buffer_);
  bool open = true;
  while (open) {
    if (skip_ > 0) {  // an oversized frame seen in this call: skip what is buffered of it
      const std::size_t n = std::min(skip_, b.size() - at);
      skip_ -= n;
      at += n;
      if (skip_ > 0) {
        break;
      }
    }
    if (b.size() - at < 4) {
      break;
    }
    const std::uint32_t len = bytes::load_be32(b, at);
    if (len != 0) {
      if (state_ != State::Started) {
        open = fail("a data frame before START");
        break;
      }
      if (len > kMaxDataFrameBytes) {
        sink.on_oversized();
        at += 4;
        skip_ = len;
        continue;
      }
      if (b.size() - at - 4 < len) {
        break;
      }
      sink.on_data(b.subspan(at + 4, len));
      at += 4 + std::size_t{len};
      continue;
    }
    if (b.size() - at < 8) {
      break;
    }
    const std::uint32_t clen = bytes::load_be32(b, at + 4);
    if (clen > kMaxControlFrameBytes) {
      open = fail("a control frame longer than 512 bytes");
      break;
    }
    if (b.size() - at - 8 < clen) {
      break;
    }
    const auto frame = b.subspan(at + 8, clen);
    at += 8 + std::size_t{clen};
    open = control(frame, replies);
  }
  if (!open) {
    buffer_.clear();
    return false;
  }
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(at));
  return true;
}

}  // namespace dnsmon::dnstap
