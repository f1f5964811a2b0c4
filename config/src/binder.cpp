#include "binder.hpp"

#include <array>
#include <cctype>
#include <cmath>
#include <stdexcept>

namespace dnsmon::detail {
namespace {

std::string join(std::span<const std::string_view> names) {
  std::string out;
  for (const auto n : names) {
    out += out.empty() ? "" : ", ";
    out += n;
  }
  return out;
}

Value read_value(const FileContext& ctx, const Key& k, const YAML::Node& n,
                 const std::string& path) {
  switch (k.kind) {
    case Kind::Bool:
      return ctx.boolean(n, path);
    case Kind::Integer:
      return ctx.integer(n, path, k.lo, k.hi);
    case Kind::Real:
      return ctx.real(n, path, k.real_lo, k.real_hi);
    case Kind::String:
      return ctx.string(n, path);
    case Kind::Enum: {
      std::string s = ctx.string(n, path);
      if (std::find(k.names.begin(), k.names.end(), s) == k.names.end()) {
        ctx.fail(n.Mark(), path, "expected one of " + join(k.names) + ", got \"" + s + "\"");
      }
      return s;
    }
    case Kind::StringList:
      return ctx.string_list(n, path, k.max_items);
    case Kind::IntegerList:
    case Kind::Durations: {
      if (!n.IsSequence() || n.size() < k.min_items || n.size() > k.max_items) {
        ctx.fail(n.Mark(), path,
                 "expected a list of " + std::to_string(k.min_items) + " to " +
                     std::to_string(k.max_items) + " " + std::string(k.items) +
                     (k.kind == Kind::Durations ? " such as 1m" : ""));
      }
      std::vector<std::uint64_t> out;
      for (std::size_t i = 0; i < n.size(); ++i) {
        const std::string item = path + "[" + std::to_string(i) + "]";
        out.push_back(k.kind == Kind::Durations ? duration_s(ctx, n[i], item, k.lo, k.hi)
                                                : ctx.integer(n[i], item, k.lo, k.hi));
      }
      return out;
    }
    case Kind::Section:
      break;
  }
  throw std::logic_error("config key " + path + " has no value");
}

FilePosition position_of(const YAML::Node& n) {
  return {n.Mark().line + 1, n.Mark().column + 1};
}

// A string as YAML reads it back: bare when that is unambiguous, else double-quoted.
std::string yaml_string(const std::string& s, bool bare_if_plain) {
  const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) != 0 || ch == '_' || ch == '-' || ch == '.';
  });
  if (bare_if_plain && plain) {
    return s;
  }
  std::string out = "\"";
  for (const char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
    }
    out += ch;
  }
  return out + "\"";
}

}  // namespace

double FileContext::real(const YAML::Node& n, const std::string& path, double lo, double hi) const {
  const std::string range = "a number from " + format_real(lo) + " to " + format_real(hi);
  const std::string s = scalar(n, path, range.c_str());
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty() || !std::isfinite(v)) {
    fail(n.Mark(), path, "expected " + range + ", got \"" + s + "\"");
  }
  if (v < lo || v > hi) {
    fail(n.Mark(), path, "out of range: expected " + range + ", got " + s);
  }
  return v;
}

std::string format_real(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<std::int64_t>(v));
  }
  std::array<char, 32> buf{};
  const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return ec == std::errc{} ? std::string(buf.data(), end) : std::string("nan");
}

std::string format_duration(std::uint64_t s) {
  if (s % 3600 == 0) {
    return std::to_string(s / 3600) + "h";
  }
  if (s % 60 == 0) {
    return std::to_string(s / 60) + "m";
  }
  return std::to_string(s) + "s";
}

std::uint64_t duration_s(const FileContext& ctx, const YAML::Node& n, const std::string& path,
                         std::uint64_t lo, std::uint64_t hi) {
  const std::string s = ctx.scalar(n, path, "a duration such as 30s, 5m or 1h");
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  const std::string_view unit(end, static_cast<std::size_t>(s.data() + s.size() - end));
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "s") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60;
  } else if (unit == "h") {
    scale = 3600;
  }
  if (ec != std::errc{} || end == s.data() || scale == 0) {
    ctx.fail(n.Mark(), path, "expected a duration such as 30s, 5m or 1h, got \"" + s + "\"");
  }
  if (v > hi / scale || v * scale < lo) {
    ctx.fail(n.Mark(), path,
             "out of range: expected " + format_duration(lo) + " to " + format_duration(hi) +
                 ", got " + s);
  }
  return v * scale;
}

std::string_view parent_of(std::string_view path) {
  const auto dot = path.rfind('.');
  return dot == std::string_view::npos ? std::string_view() : path.substr(0, dot);
}

std::string_view name_of(std::string_view path) {
  return path.substr(path.rfind('.') + 1);  // npos + 1 == 0
}

const Key& key_at(std::span<const Key> keys, std::string_view path) {
  const auto k =
      std::find_if(keys.begin(), keys.end(), [path](const Key& key) { return key.path == path; });
  if (k == keys.end()) {
    throw std::logic_error("no config key " + std::string(path));
  }
  return *k;
}

void bind_section(const FileContext& ctx, const YAML::Node& node, std::string_view path,
                  std::span<const Key> keys, Config& c) {
  const std::string section(path);
  ctx.expect_map(node, section);
  std::vector<std::string_view> allowed;
  for (const Key& k : keys) {
    if (parent_of(k.path) == path) {
      allowed.push_back(name_of(k.path));
    }
  }
  ctx.check_keys(node, section, allowed);
  for (const Key& k : keys) {
    if (parent_of(k.path) != path) {
      continue;
    }
    const YAML::Node n = node[std::string(name_of(k.path))];
    if (!n) {
      continue;  // not in the file: keeps its value
    }
    if (k.kind == Kind::Section) {
      if (!n.IsNull()) {  // null: every key of the section commented out
        bind_section(ctx, n, k.path, keys, c);
      }
      continue;
    }
    const std::string key_path(k.path);
    k.bind.store(c, read_value(ctx, k, n, key_path), k.scale);
    c.positions[key_path] = position_of(n);
    if (n.IsSequence()) {
      for (std::size_t i = 0; i < n.size(); ++i) {
        c.positions[key_path + "[" + std::to_string(i) + "]"] = position_of(n[i]);
      }
    }
    if (k.after != nullptr) {
      k.after(Site{ctx, n, key_path}, c);
    }
  }
}

std::string format_value(const Key& k, const Value& v) {
  std::string out;
  const auto list = [&out](const auto& items, const auto& format) {
    out = "[";
    for (const auto& item : items) {
      out += (out.size() > 1 ? ", " : "") + format(item);
    }
    out += "]";
  };
  switch (k.kind) {
    case Kind::Bool:
      return std::get<bool>(v) ? "true" : "false";
    case Kind::Integer:
      return std::to_string(std::get<std::uint64_t>(v));
    case Kind::Real:
      return format_real(std::get<double>(v));
    case Kind::String:
      return yaml_string(std::get<std::string>(v), false);
    case Kind::Enum:
      return std::get<std::string>(v);
    case Kind::StringList:
      list(std::get<std::vector<std::string>>(v),
           [](const std::string& s) { return yaml_string(s, true); });
      return out;
    case Kind::IntegerList:
      list(std::get<std::vector<std::uint64_t>>(v),
           [](std::uint64_t x) { return std::to_string(x); });
      return out;
    case Kind::Durations:
      list(std::get<std::vector<std::uint64_t>>(v), format_duration);
      return out;
    case Kind::Section:
      break;
  }
  return out;
}

std::string range_text(const Key& k) {
  auto count = "A list of " + std::to_string(k.min_items) + " to " + std::to_string(k.max_items) +
               " " + std::string(k.items);
  switch (k.kind) {
    case Kind::Bool:
      return "Values: true or false";
    case Kind::Integer:
      return "Range: " + std::to_string(k.lo) + " to " + std::to_string(k.hi);
    case Kind::Real:
      return "Range: " + format_real(k.real_lo) + " to " + format_real(k.real_hi);
    case Kind::Enum:
      return "One of: " + join(k.names);
    case Kind::StringList:
      return count;
    case Kind::IntegerList:
      return count + ", each " + std::to_string(k.lo) + " to " + std::to_string(k.hi);
    case Kind::Durations:
      return count + ", each " + format_duration(k.lo) + " to " + format_duration(k.hi);
    case Kind::String:
    case Kind::Section:
      break;
  }
  return {};
}

}  // namespace dnsmon::detail
