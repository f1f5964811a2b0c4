// Builds the Prometheus families of one scrape from the family table (dnsmon/export/families.hpp):
// a collector names the family and gives label values in the order the table declares them.
// Families come out in table order, each with its samples in the order they were added; a family
// that was opened or given a sample appears (even with no samples), the others do not.
//
// Thread-safety: one scrape's object, on the scraping thread. Allocation: per sample.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/metric_family.h>

#include "dnsmon/export/families.hpp"

namespace dnsmon::detail {

// The text exposition (format 0.0.4) of families. Bucket bounds are written with at most 15
// significant digits ("7e-05", "0.07"), as they are declared: 17-digit forms such as
// "6.999999999999999e-05" are artefacts of binary floating point that no one would write in a
// query.
std::string serialize_text(const std::vector<prometheus::MetricFamily>& families);

// The OpenMetrics text exposition (1.0.0) of families, every sample stamped with timestamp_s
// (Unix seconds), ending with "# EOF". A counter family is named without its "_total" suffix in
// "# HELP" and "# TYPE" and its samples keep it; histograms write _bucket, _count and _sum. No
// "# UNIT" lines (they are optional). Bucket bounds as in serialize_text().
std::string serialize_openmetrics(const std::vector<prometheus::MetricFamily>& families,
                                  double timestamp_s);

class Exposition {
 public:
  using Values = std::initializer_list<std::string_view>;

  // The family appears in the exposition even if it gets no sample.
  void open(Family f);
  // A help text known only at run time (it names configured limits), instead of the table's.
  void set_help(Family f, std::string help);
  // A counter or gauge sample; values follow the family's label names.
  void add(Family f, Values values, double value);
  // A histogram sample: counts per bucket (not cumulative), one per upper bound and +Inf last.
  void add_histogram(Family f, Values values, std::span<const double> upper_bounds,
                     std::span<const std::uint64_t> counts, double sum);

  [[nodiscard]] std::vector<prometheus::MetricFamily> take();

 private:
  prometheus::ClientMetric& sample(Family f, Values values);

  std::array<std::optional<prometheus::MetricFamily>, static_cast<std::size_t>(Family::Count)>
      families_;
};

}  // namespace dnsmon::detail
