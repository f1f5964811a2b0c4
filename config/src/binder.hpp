// The binder behind config.cpp's table of keys: the row type (Key) with its kinds of value, the
// reading of one YAML mapping through a table of rows, and the text of a row's default and range.
//
// A row binds a dotted key path ("analytics.clients.ipv4_prefix") to a field of Config through a
// chain of pointers to members; nested sections are rows of their own, so mappings nest to any
// depth, and a list of strings (interface names, CIDR prefixes) is one row with a check run on
// the stored list.
// Thread-safety: functions are pure; call them from the control thread.
// Allocation: at startup and reload only.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "dnsmon/config.hpp"

namespace dnsmon::detail {

// Refuses a value with FILE:LINE:COL: key.path: what is wrong.
class FileContext {
 public:
  explicit FileContext(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& path,
                         const std::string& what) const {
    std::ostringstream s;
    s << file_;
    if (mark.line >= 0) {
      s << ':' << mark.line + 1 << ':' << mark.column + 1;
    }
    s << ": " << (path.empty() ? std::string("(top level)") : path) << ": " << what;
    throw ConfigError(s.str());
  }

  void expect_map(const YAML::Node& node, const std::string& path) const {
    if (!node.IsMap()) {
      fail(node.Mark(), path, "expected a mapping of keys to values");
    }
  }

  void check_keys(const YAML::Node& map, const std::string& path,
                  std::span<const std::string_view> allowed) const {
    std::vector<std::string> seen;  // yaml-cpp keeps duplicate keys, and lookups find the first
    for (const auto& kv : map) {
      const auto& key = kv.first;
      if (!key.IsScalar()) {
        fail(key.Mark(), path, "keys must be plain words");
      }
      const std::string& k = key.Scalar();
      if (std::find(seen.begin(), seen.end(), k) != seen.end()) {
        fail(key.Mark(), join(path, k), "duplicate key");
      }
      seen.push_back(k);
      if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
        std::string list;
        for (auto a : allowed) {
          list += list.empty() ? "" : ", ";
          list += a;
        }
        fail(key.Mark(), join(path, k), "unknown key (allowed here: " + list + ")");
      }
    }
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  std::string scalar(const YAML::Node& n, const std::string& path, const char* expected) const {
    if (!n.IsScalar()) {
      fail(n.Mark(), path, std::string("expected ") + expected);
    }
    return n.Scalar();
  }

  [[nodiscard]] std::uint64_t integer(const YAML::Node& n, const std::string& path,
                                      std::uint64_t lo, std::uint64_t hi) const {
    const std::string range = "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
    const std::string s = scalar(n, path, range.c_str());
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) {
      fail(n.Mark(), path, "expected " + range + ", got \"" + s + "\"");
    }
    if (v < lo || v > hi) {
      fail(n.Mark(), path, "out of range: expected " + range + ", got " + s);
    }
    return v;
  }

  // A decimal number ("0.95", "3", "1e-3"), finite, from lo to hi.
  [[nodiscard]] double real(const YAML::Node& n, const std::string& path, double lo,
                            double hi) const;

  [[nodiscard]] bool boolean(const YAML::Node& n, const std::string& path) const {
    const std::string s = scalar(n, path, "true or false");
    if (s == "true") {
      return true;
    }
    if (s == "false") {
      return false;
    }
    fail(n.Mark(), path, "expected true or false, got \"" + s + "\"");
  }

  [[nodiscard]] std::string string(const YAML::Node& n, const std::string& path) const {
    return scalar(n, path, "a string");
  }

  [[nodiscard]] std::vector<std::string> string_list(const YAML::Node& n, const std::string& path,
                                                     std::size_t max) const {
    if (!n.IsSequence()) {
      fail(n.Mark(), path, "expected a list of strings");
    }
    if (n.size() > max) {
      fail(n.Mark(), path, "at most " + std::to_string(max) + " entries");
    }
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n.size(); ++i) {
      out.push_back(scalar(n[i], path + "[" + std::to_string(i) + "]", "a string"));
    }
    return out;
  }

 private:
  std::string file_;
};

// The shortest text that reads back as v: 0.95, 3, 1e-06.
std::string format_real(double v);

// "30s", "5m" or "1h": the largest unit that divides s.
std::string format_duration(std::uint64_t s);

// "90s", "5m", "1h" or a plain number of seconds, from lo to hi seconds.
std::uint64_t duration_s(const FileContext& ctx, const YAML::Node& n, const std::string& path,
                         std::uint64_t lo, std::uint64_t hi);

enum class Kind : std::uint8_t {
  Section,      // a mapping of further keys
  Bool,         // true or false
  Integer,      // lo to hi; the field holds value × scale (MiB → bytes, s → ns)
  Real,         // a decimal number from real_lo to real_hi
  String,       // any text
  Enum,         // one of names
  StringList,   // at most max_items strings
  IntegerList,  // min_items to max_items integers, each lo to hi
  Durations,    // min_items to max_items durations (30s, 5m, 1h), each lo to hi seconds
};

// A value as the file writes it, before it is stored in its field.
using Value = std::variant<bool, std::uint64_t, std::string, std::vector<std::string>,
                           std::vector<std::uint64_t>, double>;

// The field a key sets, reached from Config through a chain of pointers to members.
template <auto... Members>
auto& field(auto& config) {
  return (config.*....*Members);  // a fold: ((config.*m1).*m2).*m3
}

template <typename T>
void store_value(T& field, const Value& v, std::uint64_t scale) {
  if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, std::string> ||
                std::is_same_v<T, std::vector<std::string>> || std::is_same_v<T, double>) {
    field = std::get<T>(v);
  } else if constexpr (std::is_integral_v<T>) {
    field = static_cast<T>(std::get<std::uint64_t>(v) * scale);
  } else {  // a vector of integers
    field.clear();
    for (const auto x : std::get<std::vector<std::uint64_t>>(v)) {
      field.push_back(static_cast<typename T::value_type>(x * scale));
    }
  }
}

template <typename T>
Value load_value(const T& field, std::uint64_t scale) {
  if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, std::string> ||
                std::is_same_v<T, std::vector<std::string>> || std::is_same_v<T, double>) {
    return field;
  } else if constexpr (std::is_integral_v<T>) {
    return static_cast<std::uint64_t>(field) / scale;
  } else {
    std::vector<std::uint64_t> out;
    out.reserve(field.size());
    for (const auto x : field) {
      out.push_back(static_cast<std::uint64_t>(x) / scale);
    }
    return out;
  }
}

// Stores a value into its field and reads it back (for defaults).
struct Binding {
  void (*store)(Config& config, const Value& value, std::uint64_t scale) = nullptr;
  Value (*load)(const Config& config, std::uint64_t scale) = nullptr;
};

template <auto... Members>
constexpr Binding bind() {
  return {
      [](Config& c, const Value& v, std::uint64_t scale) {
        store_value(field<Members...>(c), v, scale);
      },
      [](const Config& c, std::uint64_t scale) { return load_value(field<Members...>(c), scale); }};
}

// A key's value in the file, for the checks that run once it is stored.
struct Site {
  const FileContext& ctx;
  const YAML::Node& node;
  const std::string& path;

  [[noreturn]] void fail(const std::string& what) const { ctx.fail(node.Mark(), path, what); }

  [[noreturn]] void fail_item(std::size_t i, const std::string& what) const {
    ctx.fail(node[i].Mark(), path + "[" + std::to_string(i) + "]", what);
  }
};

// Runs after the key's value is stored: refuses what its kind and range cannot express, or notes
// that the file set the key.
using After = void (*)(const Site& site, Config& config);

struct Key {
  std::string_view path{};
  Kind kind = Kind::Section;
  Binding bind{};
  std::uint64_t lo = 0;  // Integer, and each item of IntegerList and Durations
  std::uint64_t hi = 0;
  std::uint64_t scale = 1;
  double real_lo = 0;  // Real
  double real_hi = 0;
  std::size_t min_items = 0;  // lists
  std::size_t max_items = 0;
  std::string_view items{};                   // lists: what the items are ("port numbers")
  std::span<const std::string_view> names{};  // Enum
  Reload reload = Reload::Restart;
  After after = nullptr;
  std::string_view help{};

  // The field holds the value times s (MiB → bytes, s → ns).
  [[nodiscard]] constexpr Key scaled(std::uint64_t s) const {
    Key k = *this;
    k.scale = s;
    return k;
  }

  // A running dnsmon could apply a change of this key.
  [[nodiscard]] constexpr Key live() const {
    Key k = *this;
    k.reload = Reload::Live;
    return k;
  }

  [[nodiscard]] constexpr Key then(After check) const {
    Key k = *this;
    k.after = check;
    return k;
  }
};

constexpr Key section(std::string_view path, std::string_view help) {
  return {.path = path, .help = help};
}

constexpr Key boolean(std::string_view path, Binding b, std::string_view help) {
  return {.path = path, .kind = Kind::Bool, .bind = b, .help = help};
}

constexpr Key integer(std::string_view path, Binding b, std::uint64_t lo, std::uint64_t hi,
                      std::string_view help) {
  return {.path = path, .kind = Kind::Integer, .bind = b, .lo = lo, .hi = hi, .help = help};
}

constexpr Key real(std::string_view path, Binding b, double lo, double hi, std::string_view help) {
  return {.path = path, .kind = Kind::Real, .bind = b, .real_lo = lo, .real_hi = hi, .help = help};
}

constexpr Key text(std::string_view path, Binding b, std::string_view help) {
  return {.path = path, .kind = Kind::String, .bind = b, .help = help};
}

constexpr Key one_of(std::string_view path, Binding b, std::span<const std::string_view> names,
                     std::string_view help) {
  return {.path = path, .kind = Kind::Enum, .bind = b, .names = names, .help = help};
}

constexpr Key strings(std::string_view path, Binding b, std::size_t max_items,
                      std::string_view items, std::string_view help) {
  return {.path = path,
          .kind = Kind::StringList,
          .bind = b,
          .max_items = max_items,
          .items = items,
          .help = help};
}

constexpr Key integers(std::string_view path, Binding b, std::size_t min_items,
                       std::size_t max_items, std::uint64_t lo, std::uint64_t hi,
                       std::string_view items, std::string_view help) {
  return {.path = path,
          .kind = Kind::IntegerList,
          .bind = b,
          .lo = lo,
          .hi = hi,
          .min_items = min_items,
          .max_items = max_items,
          .items = items,
          .help = help};
}

// Durations such as 30s, 5m, 1h; lo and hi in seconds.
constexpr Key durations(std::string_view path, Binding b, std::size_t min_items,
                        std::size_t max_items, std::uint64_t lo, std::uint64_t hi,
                        std::string_view help) {
  return {.path = path,
          .kind = Kind::Durations,
          .bind = b,
          .lo = lo,
          .hi = hi,
          .min_items = min_items,
          .max_items = max_items,
          .items = "durations",
          .help = help};
}

// "analytics.clients" for "analytics.clients.ipv4_prefix", "" for a top-level key.
std::string_view parent_of(std::string_view path);

// "ipv4_prefix" for "analytics.clients.ipv4_prefix".
std::string_view name_of(std::string_view path);

// The row of path; std::logic_error if there is none.
const Key& key_at(std::span<const Key> keys, std::string_view path);

// Reads the mapping `node` of the section at `path` ("" for the whole file) into config, key by
// key in table order, and records where each key and list item is written (config.positions).
// Throws ConfigError.
void bind_section(const FileContext& ctx, const YAML::Node& node, std::string_view path,
                  std::span<const Key> keys, Config& config);

// A value in YAML syntax: 10, true, "", [53], [1m, 5m].
std::string format_value(const Key& k, const Value& v);

// "Range: 1 to 1000", "Values: true or false", "One of: ...", "A list of 1 to 16 port numbers,
// each 1 to 65535"; "" for free text and sections.
std::string range_text(const Key& k);

}  // namespace dnsmon::detail
