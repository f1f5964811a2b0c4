#include <stdexcept>
#include <utility>

#include "dnsmon/capture.hpp"
#include "dnsmon/common/message_record.hpp"

#include "dispatch.hpp"

namespace dnsmon {

MessageSource::MessageSource(std::vector<SourceMessage> messages, std::string name,
                             std::uint16_t index)
    : Source(std::move(name), false, index),
      messages_(std::move(messages)),
      record_(record::kMaxRecordBytes) {
}

std::unique_ptr<MessageSource> MessageSource::open_memory(std::vector<SourceMessage> messages,
                                                          std::string name, std::uint16_t index) {
  for (const auto& m : messages) {
    if (m.wire.size() > record::kMaxMessageBytes) {
      throw CaptureError(name + ": a DNS message longer than 65,535 bytes");
    }
    if (m.header.family != 4 && m.header.family != 6) {
      throw CaptureError(name + ": an address family other than 4 and 6");
    }
  }
  return std::unique_ptr<MessageSource>(
      new MessageSource(std::move(messages), std::move(name), index));
}

std::string MessageSource::run(std::stop_token stop, std::span<FrameRing* const> rings) {
  return run_with(stop, rings, nullptr);
}

std::string MessageSource::run_inline(std::stop_token stop, std::span<FrameRing* const> rings,
                                      const std::function<void()>& consume) {
  return run_with(stop, rings, &consume);
}

std::string MessageSource::run_with(const std::stop_token& stop, std::span<FrameRing* const> rings,
                                    const std::function<void()>* consume) {
  detail::DispatchContext ctx;
  ctx.consume = consume;
  ctx.rings = rings;
  ctx.stats = &stats_;
  ctx.stop = &stop;
  ctx.live = false;
  ctx.index = index_;
  ctx.link_type = record::kLinkType;
  stats_.up.store(true, std::memory_order_relaxed);
  for (const auto& m : messages_) {
    if (stop.stop_requested()) {
      break;
    }
    const std::size_t n = record::encode(m.header, m.wire, record_);
    detail::deliver(ctx, m.ts_ns, static_cast<std::uint32_t>(n),
                    std::span<const std::byte>(record_).first(n));
  }
  detail::flush_rings(ctx);
  stats_.up.store(false, std::memory_order_relaxed);
  return {};
}

}  // namespace dnsmon
