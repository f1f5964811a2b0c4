// The metric-family table (dnsmon/export/families.hpp) against the README's metric table, and the
// exposition against the table: every family is documented with its labels, and nothing else is.
#include "dnsmon/export/families.hpp"

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "dnsmon/metrics.hpp"

namespace {

std::vector<std::string> backticked(const std::string& text) {
  std::vector<std::string> out;
  static const std::regex tick("`([^`]*)`");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), tick); it != std::sregex_iterator();
       ++it) {
    out.push_back((*it)[1]);
  }
  return out;
}

std::vector<std::string> split(const std::string& s, const std::string& sep) {
  std::vector<std::string> out;
  std::size_t from = 0;
  for (std::size_t at = s.find(sep); at != std::string::npos; at = s.find(sep, from)) {
    out.push_back(s.substr(from, at - from));
    from = at + sep.size();
  }
  out.push_back(s.substr(from));
  return out;
}

// The README's metric table: family name -> label names, as the rows document them. A row may
// name several families; its label cell then holds one set for all, or one per family split by
// " / ".
std::map<std::string, std::vector<std::string>> readme_families() {
  std::ifstream in(std::string(DNSMON_SOURCE_DIR) + "/README.md");
  REQUIRE(in);
  std::map<std::string, std::vector<std::string>> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("| `dnsmon_", 0) != 0) {
      continue;
    }
    const auto cells = split(line, "|");  // "", names, labels, meaning, ""
    REQUIRE(cells.size() >= 4);
    const auto names = backticked(cells[1]);
    const auto per_family = split(cells[2], " / ");
    for (std::size_t i = 0; i < names.size(); ++i) {
      const std::string& cell = per_family.size() == names.size() ? per_family[i] : cells[2];
      INFO(line);
      CHECK(out.count(names[i]) == 0);  // documented once
      out[names[i]] = backticked(cell);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("the README documents every metric family with its labels, and no other",
          "[metrics][families]") {
  const auto readme = readme_families();
  std::set<std::string> table;
  for (const auto& spec : dnsmon::kMetricFamilies) {
    const std::string name(spec.name);
    table.insert(name);
    INFO(name);
    REQUIRE(readme.count(name) == 1);
    std::vector<std::string> labels;
    for (const auto l : spec.labels) {
      if (!l.empty()) {
        labels.emplace_back(l);
      }
    }
    CHECK(readme.at(name) == labels);
  }
  for (const auto& [name, labels] : readme) {
    INFO(name);
    CHECK(table.count(name) == 1);
  }
}

TEST_CASE("the exposition holds only families of the table, in its order", "[metrics][families]") {
  dnsmon::MetricsHub hub(dnsmon::BuildInfo{"test", "ldns", "libpcap"});
  (void)hub.add_worker();
  const std::string text = hub.render_text();
  std::istringstream lines(text);
  std::string line;
  std::size_t next = 0;  // families appear in table order
  std::size_t seen = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("# TYPE ", 0) != 0) {
      continue;
    }
    const std::string name = split(line.substr(7), " ")[0];
    INFO(name);
    std::size_t i = next;
    while (i < dnsmon::kMetricFamilies.size() && dnsmon::kMetricFamilies[i].name != name) {
      ++i;
    }
    REQUIRE(i < dnsmon::kMetricFamilies.size());
    next = i + 1;
    ++seen;
  }
  CHECK(seen > 30);
}
