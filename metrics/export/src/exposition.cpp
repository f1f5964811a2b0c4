#include "exposition.hpp"

#include <array>
#include <cassert>
#include <charconv>
#include <cmath>
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

namespace {

// A sample value or timestamp: the shortest form that reads back the same, "NaN", "+Inf", "-Inf".
void append_number(std::string& out, double v, int precision = 0) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  std::array<char, 32> buf{};
  const auto r = precision > 0 ? std::to_chars(buf.data(), buf.data() + buf.size(), v,
                                               std::chars_format::general, precision)
                               : std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out.append(buf.data(), r.ptr);
}

void append_escaped(std::string& out, std::string_view s) {
  for (const char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

// name{labels[,le="bound"]} value timestamp
void append_sample(std::string& out, std::string_view name, const prometheus::ClientMetric& m,
                   const double* le, double value, std::string_view timestamp) {
  out += name;
  if (!m.label.empty() || le != nullptr) {
    out += '{';
    bool first = true;
    for (const auto& l : m.label) {
      out += first ? "" : ",";
      first = false;
      out += l.name;
      out += "=\"";
      append_escaped(out, l.value);
      out += '"';
    }
    if (le != nullptr) {
      out += first ? "le=\"" : ",le=\"";
      append_number(out, *le, 15);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  append_number(out, value);
  out += ' ';
  out += timestamp;
  out += '\n';
}

}  // namespace

std::string serialize_openmetrics(const std::vector<prometheus::MetricFamily>& families,
                                  double timestamp_s) {
  std::string timestamp;
  append_number(timestamp, timestamp_s);
  std::string out;
  constexpr std::string_view kTotal = "_total";
  for (const auto& f : families) {
    std::string_view base = f.name;
    const char* type = "gauge";
    if (f.type == prometheus::MetricType::Counter) {
      type = "counter";
      if (base.ends_with(kTotal)) {
        base.remove_suffix(kTotal.size());
      }
    } else if (f.type == prometheus::MetricType::Histogram) {
      type = "histogram";
    }
    out += "# HELP ";
    out += base;
    out += ' ';
    append_escaped(out, f.help);
    out += "\n# TYPE ";
    out += base;
    out += ' ';
    out += type;
    out += '\n';
    const std::string total = std::string(base) + std::string(kTotal);
    const std::string bucket = std::string(base) + "_bucket";
    const std::string count = std::string(base) + "_count";
    const std::string sum = std::string(base) + "_sum";
    for (const auto& m : f.metric) {
      switch (f.type) {
        case prometheus::MetricType::Counter:
          append_sample(out, total, m, nullptr, m.counter.value, timestamp);
          break;
        case prometheus::MetricType::Histogram:
          for (const auto& b : m.histogram.bucket) {
            append_sample(out, bucket, m, &b.upper_bound, static_cast<double>(b.cumulative_count),
                          timestamp);
          }
          append_sample(out, count, m, nullptr, static_cast<double>(m.histogram.sample_count),
                        timestamp);
          append_sample(out, sum, m, nullptr, m.histogram.sample_sum, timestamp);
          break;
        default:
          append_sample(out, base, m, nullptr, m.gauge.value, timestamp);
          break;
      }
    }
  }
  out += "# EOF\n";
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
