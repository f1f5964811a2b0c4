#include "exposition.hpp"

#include <array>
#include <cassert>
#include <charconv>
#include <limits>
#include <string_view>
#include <utility>

#include <prometheus/text_serializer.h>

namespace dnsmon::detail {

void Exposition::open(Family f) {
  auto& slot = families_[static_cast<std::size_t>(f)];
  if (slot) {
    return;
  }
  const MetricFamilySpec& spec = family_spec(f);
  slot.emplace();
  slot->name = std::string(spec.name);
  slot->help = std::string(spec.help);
  switch (spec.kind) {
    case MetricKind::Counter:
      slot->type = prometheus::MetricType::Counter;
      break;
    case MetricKind::Gauge:
      slot->type = prometheus::MetricType::Gauge;
      break;
    case MetricKind::Histogram:
      slot->type = prometheus::MetricType::Histogram;
      break;
  }
}

void Exposition::set_help(Family f, std::string help) {
  open(f);
  families_[static_cast<std::size_t>(f)]->help = std::move(help);
}

prometheus::ClientMetric& Exposition::sample(Family f, Values values) {
  open(f);
  const MetricFamilySpec& spec = family_spec(f);
  prometheus::ClientMetric m;
  std::size_t i = 0;
  for (const std::string_view v : values) {
    assert(i < spec.labels.size() && !spec.labels[i].empty());  // more values than labels
    m.label.push_back({std::string(spec.labels[i]), std::string(v)});
    ++i;
  }
  assert(i == spec.labels.size() || spec.labels[i].empty());  // fewer values than labels
  auto& metrics = families_[static_cast<std::size_t>(f)]->metric;
  metrics.push_back(std::move(m));
  return metrics.back();
}

void Exposition::add(Family f, Values values, double value) {
  assert(family_spec(f).kind != MetricKind::Histogram);
  prometheus::ClientMetric& m = sample(f, values);
  if (family_spec(f).kind == MetricKind::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
}

void Exposition::add_histogram(Family f, Values values, std::span<const double> upper_bounds,
                               std::span<const std::uint64_t> counts, double sum) {
  assert(family_spec(f).kind == MetricKind::Histogram);
  assert(counts.size() == upper_bounds.size() + 1);
  prometheus::ClientMetric& m = sample(f, values);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    prometheus::ClientMetric::Bucket b;
    b.cumulative_count = cumulative;
    b.upper_bound =
        i < upper_bounds.size() ? upper_bounds[i] : std::numeric_limits<double>::infinity();
    m.histogram.bucket.push_back(b);
  }
  m.histogram.sample_count = cumulative;
  m.histogram.sample_sum = sum;
}

std::string serialize_text(const std::vector<prometheus::MetricFamily>& families) {
  std::string text = prometheus::TextSerializer{}.Serialize(families);
  constexpr std::string_view kLe = "le=\"";
  std::string out;
  out.reserve(text.size());
  std::size_t from = 0;
  for (std::size_t at = text.find(kLe); at != std::string::npos; at = text.find(kLe, from)) {
    const std::size_t start = at + kLe.size();
    const std::size_t end = text.find('"', start);
    if (end == std::string::npos) {
      break;
    }
    out.append(text, from, start - from);
    const std::string_view written(text.data() + start, end - start);
    double value = 0;
    const auto parsed = std::from_chars(written.data(), written.data() + written.size(), value);
    std::array<char, 32> buf{};
    const auto formatted =
        std::to_chars(buf.data(), buf.data() + buf.size(), value, std::chars_format::general, 15);
    if (parsed.ec == std::errc() && parsed.ptr == written.data() + written.size() &&
        formatted.ec == std::errc()) {
      out.append(buf.data(), formatted.ptr);
    } else {
      out.append(written);  // +Inf
    }
    from = end;
  }
  out.append(text, from, std::string::npos);
  return out;
}

std::vector<prometheus::MetricFamily> Exposition::take() {
  std::vector<prometheus::MetricFamily> out;
  for (auto& f : families_) {
    if (f) {
      out.push_back(std::move(*f));
      f.reset();
    }
  }
  return out;
}

}  // namespace dnsmon::detail
