#!/usr/bin/env bash
# The whole-pipeline performance benchmark, in one command (method and results: docs/performance.md).
#
#   tools/bench.sh [--runs N] [--packets N] [--seed S] [--workers "1 2"] [--tshark-packets N]
#                  [--only LIST] [--build-dir DIR] [--skip-build] [--jobs N] [--markdown FILE]
#
# 1. Builds what it needs with the release preset (cmake --preset release; cmake --build --preset
#    release), or in --build-dir.
# 2. Generates the benchmark capture with tools/gen_pcap --profile bench into build/bench-data/,
#    with its ground truth (JSON). An existing file is reused while the generator version and the
#    options are the same.
# 3. Runs every tool N times (default 5), interleaved run by run so that a noisy neighbour hurts
#    all of them alike, each reading the file from the page cache:
#      baseline   pcap_read_baseline: pcap_next_ex and one touch per packet, the floor
#      tcpdump    tcpdump -r FILE -w /dev/null (read and rewrite, no dissection)
#      dnsmon     dnsmon -r FILE --metrics-out /dev/null --workers W, for each W of --workers
#      dnscap     dnscap with the rssm (RSSAC002) plugin, TCP, all VLANs, all rcodes
#      dnsjit     dnsjit's filter_rcode.lua example (header parse, prints SERVFAIL ids)
#      dnstop     dnstop -l 3 (non-interactive; UDP queries only)
#      tshark     tshark -q -z dns,tree on the first --tshark-packets packets (about 30x dnsmon's
#                 cost); its start-up (~1 s) is measured on 1,000 packets and subtracted
#    A peer tool that is not installed is skipped with a note.
# 4. Prints one table of medians: whole-process CPU time (user+sys, from wait4) per packet, packets
#    per second of CPU and of wall time, max RSS, and each tool's CPU cost relative to dnsmon with
#    one worker. Then the worker scaling curve. Read the ratios: on a shared machine absolute times
#    move with the neighbours, ratios much less.
set -euo pipefail

die() {
  echo "bench.sh: $*" >&2
  exit 1
}
note() { echo "bench.sh: $*" >&2; }

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit "${1:-0}"
}

runs=5
packets=2000000
seed=1
workers="1 2"
tshark_packets=200000
only=""
build_dir=""
skip_build=0
jobs=""
markdown=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="${2:?--runs needs a value}"; shift 2 ;;
    --packets) packets="${2:?--packets needs a value}"; shift 2 ;;
    --seed) seed="${2:?--seed needs a value}"; shift 2 ;;
    --workers) workers="${2:?--workers needs a value}"; shift 2 ;;
    --tshark-packets) tshark_packets="${2:?--tshark-packets needs a value}"; shift 2 ;;
    --only) only="${2:?--only needs a value}"; shift 2 ;;
    --build-dir) build_dir="${2:?--build-dir needs a value}"; shift 2 ;;
    --skip-build) skip_build=1; shift ;;
    --jobs) jobs="${2:?--jobs needs a value}"; shift 2 ;;
    --markdown) markdown="${2:?--markdown needs a value}"; shift 2 ;;
    -h | --help) usage 0 ;;
    *) note "unknown option $1"; usage 2 ;;
  esac
done
for n in "$runs" "$packets" "$seed" "$tshark_packets"; do
  [[ "$n" =~ ^[0-9]+$ && "$n" -gt 0 ]] || die "expected a positive number, got '$n'"
done
for w in $workers; do
  [[ "$w" =~ ^[0-9]+$ && "$w" -ge 1 && "$w" -le 64 ]] || die "--workers takes numbers 1-64, got '$w'"
done
[[ "$tshark_packets" -le "$packets" ]] || tshark_packets="$packets"
for t in ${only//,/ }; do
  case "$t" in
    baseline | tcpdump | dnsmon | dnscap | dnsjit | dnstop | tshark) ;;
    *) die "--only takes baseline,tcpdump,dnsmon,dnscap,dnsjit,dnstop,tshark; got '$t'" ;;
  esac
done

cd "$(dirname "$0")/.."
root="$PWD"
command -v python3 >/dev/null || die "python3 is needed to time the runs (apt-get install python3)"
command -v cmake >/dev/null || die "cmake is needed (tools/setup.sh installs the build tools)"

# wanted TOOL: true when TOOL is in --only (or --only is not given).
wanted() { [[ -z "$only" || ",$only," == *",$1,"* ]]; }

# --- 1. build ------------------------------------------------------------------------------------
targets=(dnsmon dnsmon_gen_pcap pcap_read_baseline)
if [[ -z "$build_dir" ]]; then
  build_dir="$root/build/release"
  if [[ "$skip_build" -eq 0 ]]; then
    if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
      echo "== configuring the release preset"
      cmake --preset release >/dev/null || die "cmake --preset release failed"
    fi
    echo "== building ${targets[*]} (release preset)"
    cmake --build --preset release ${jobs:+-j "$jobs"} --target "${targets[@]}" \
      || die "the release build failed (run: cmake --build --preset release)"
  fi
else
  [[ -d "$build_dir" ]] || die "no build directory $build_dir"
  build_dir="$(cd "$build_dir" && pwd)"
  if [[ "$skip_build" -eq 0 ]]; then
    echo "== building ${targets[*]} in $build_dir"
    cmake --build "$build_dir" ${jobs:+-j "$jobs"} --target "${targets[@]}" \
      || die "the build in $build_dir failed"
  fi
fi
dnsmon="$build_dir/daemon/dnsmon"
gen="$build_dir/tools/gen_pcap"
baseline="$build_dir/tests/benchmarks/pcap_read_baseline"
for b in "$dnsmon" "$gen" "$baseline"; do
  [[ -x "$b" ]] || die "$b is missing: it needs DNSMON_BUILD_TESTS=ON and DNSMON_BUILD_BENCHMARKS=ON (the presets' default)"
done

# --- 2. the capture ------------------------------------------------------------------------------
data="$root/build/bench-data"
mkdir -p "$data"
gen_version="$("$gen" --version)"

# capture N: path of the bench capture of N packets, generated unless a current one exists.
capture() {
  local n="$1"
  local base="$data/bench-s${seed}-${n}"
  local args=(--profile bench --seed "$seed" --packets "$n")
  local stamp="$gen_version ${args[*]}"
  if [[ -f "$base.pcap" && -f "$base.json" && -f "$base.stamp" && "$(cat "$base.stamp")" == "$stamp" ]]; then
    note "reusing $base.pcap ($stamp)"
  else
    note "generating $base.pcap ($stamp)"
    rm -f "$base.stamp"
    "$gen" "${args[@]}" --out "$base.pcap.tmp" --truth "$base.json.tmp" 2>/dev/null \
      || die "gen_pcap failed: $gen ${args[*]}"
    mv "$base.pcap.tmp" "$base.pcap"
    mv "$base.json.tmp" "$base.json"
    echo "$stamp" >"$base.stamp"
  fi
  echo "$base.pcap"
}
file="$(capture "$packets")"
small="$file"
tiny_packets=1000
if wanted tshark && command -v tshark >/dev/null; then
  if [[ "$tshark_packets" -lt "$packets" ]]; then
    small="$(capture "$tshark_packets")"  # the same seed: a prefix of the big file
  fi
  tiny="$(capture "$tiny_packets")"  # tshark's start-up cost, subtracted from its runs
fi

# --- 3. the tools ---------------------------------------------------------------------------------
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

names=()     # display name
inputs=()    # packets read per run
declare -A argv
add_tool() {  # add_tool NAME PACKETS CMD...
  local name="$1" n="$2"
  shift 2
  names+=("$name")
  inputs+=("$n")
  argv["$name"]="$(printf '%q ' "$@")"
}

wanted baseline && add_tool "pcap_next_ex loop (floor)" "$packets" "$baseline" "$file"
if wanted tcpdump; then
  if command -v tcpdump >/dev/null; then
    add_tool "tcpdump -r -w /dev/null" "$packets" tcpdump -r "$file" -w /dev/null
  else
    note "tcpdump is not installed: skipped"
  fi
fi
if wanted dnsmon; then
  for w in $workers; do
    add_tool "dnsmon --workers $w" "$packets" "$dnsmon" -r "$file" --metrics-out /dev/null \
      --workers "$w" --log-level warn
  done
fi
if wanted dnscap; then
  rssm="$(dpkg -L dnscap 2>/dev/null | grep '/rssm\.so$' | head -n1 || true)"
  if command -v dnscap >/dev/null && [[ -n "$rssm" ]]; then
    # -T: TCP too; -L 4095: every VLAN and untagged; -m qun and -e nytfsxir: every message and
    # rcode; -D: write the counters in-process, so that the time includes them; -N: stay root.
    add_tool "dnscap -P rssm.so" "$packets" dnscap -N -r "$file" -T -L 4095 -m qun -e nytfsxir \
      -P "$rssm" -w "$tmp/rssm" -S -D
  else
    note "dnscap (with its rssm plugin) is not installed: skipped (apt-get install dnscap)"
  fi
fi
if wanted dnsjit; then
  lua=/usr/share/doc/dnsjit/examples/filter_rcode.lua
  if command -v dnsjit >/dev/null && [[ -f "$lua" ]]; then
    add_tool "dnsjit filter_rcode.lua" "$packets" dnsjit "$lua" "$file" 2
  else
    note "dnsjit (with its examples) is not installed: skipped (apt-get install dnsjit)"
  fi
fi
if wanted dnstop; then
  if command -v dnstop >/dev/null; then
    add_tool "dnstop -l 3 (UDP only)" "$packets" dnstop -l 3 "$file"
  else
    note "dnstop is not installed: skipped (apt-get install dnstop)"
  fi
fi
if wanted tshark; then
  if command -v tshark >/dev/null; then
    # tshark needs about a second to start: its cost per packet is taken as the difference
    # between this run and one over $tiny_packets packets ("marginal" in the table).
    add_tool "tshark -z dns,tree" "$tshark_packets" tshark -n -r "$small" -q -z dns,tree
    add_tool "tshark -z dns,tree (start-up)" "$tiny_packets" tshark -n -r "$tiny" -q -z dns,tree
  else
    note "tshark is not installed: skipped (apt-get install tshark)"
  fi
fi
[[ ${#names[@]} -gt 0 ]] || die "nothing to run (--only '$only')"

# measure OUT ERR CMD...: runs CMD with stdout to OUT and stderr to ERR and prints
# "wall_s cpu_s user_s sys_s maxrss_kib exit_status". CPU comes from wait4(2) with microsecond
# resolution (/usr/bin/time prints only 10 ms). Max RSS comes from /usr/bin/time's %M: a process
# inherits the peak RSS of the image it exec'd from, and Python's is 13 MiB, GNU time's 2 MiB.
cat >"$tmp/measure.py" <<'PY'
import os, subprocess, sys, time
out, err, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
rss_file = err + ".rss"
gnu_time = "/usr/bin/time"
wrapped = [gnu_time, "-q", "-f", "%M", "-o", rss_file] + cmd if os.access(gnu_time, os.X_OK) else cmd
with open(out, "wb") as o, open(err, "wb") as e:
    start = time.perf_counter()
    child = subprocess.Popen(wrapped, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
    _, status, ru = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
rss = ru.ru_maxrss
if wrapped is not cmd:
    try:
        rss = int(open(rss_file).read().split()[-1])
    except (OSError, ValueError, IndexError):
        pass
print(f"{wall:.6f} {ru.ru_utime + ru.ru_stime:.6f} {ru.ru_utime:.6f} {ru.ru_stime:.6f} "
      f"{rss} {child.returncode}")
PY

results="$tmp/results.tsv"
: >"$results"
cat "$file" "$small" >/dev/null  # into the page cache
cpu_model="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
echo "== $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs ($cpu_model), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $runs runs of ${#names[@]} tools on $file ($packets packets; tshark: $tshark_packets)"
declare -A failed
for run in $(seq 1 "$runs"); do
  for i in "${!names[@]}"; do
    name="${names[$i]}"
    [[ -z "${failed[$name]:-}" ]] || continue
    cmd=()
    eval "cmd=(${argv[$name]})"
    rm -f "$tmp"/rssm.*
    if ! line="$(python3 "$tmp/measure.py" /dev/null "$tmp/stderr" "${cmd[@]}")"; then
      die "could not run ${cmd[*]}"
    fi
    read -r wall cpu user sys rss status <<<"$line"
    if [[ "$status" != 0 ]]; then
      note "$name failed (exit $status): ${cmd[*]}"
      tail -n 5 "$tmp/stderr" | sed 's/^/    /' >&2
      [[ "$name" != dnsmon* ]] || die "dnsmon must not fail"
      failed["$name"]=1
      continue
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "${inputs[$i]}" "$run" "$wall" "$cpu" \
      "$user" "$sys" "$rss" >>"$results"
  done
  echo "   run $run/$runs done (load $(cut -d' ' -f1 /proc/loadavg))"
done

# What dnsmon counted, against the generator's truth (one untimed run).
check=""
if wanted dnsmon; then
  "$dnsmon" -r "$file" --metrics-out "$tmp/metrics.txt" --log-level warn 2>"$tmp/stderr" \
    || die "dnsmon failed: $(tail -n 3 "$tmp/stderr")"
  check="$(python3 - "$tmp/metrics.txt" "${file%.pcap}.json" <<'EOF'
import json, re, sys
sums = {}
for line in open(sys.argv[1]):
    m = re.match(r'^(dnsmon_(?:packets|queries|responses)_total)\{[^}]*\} (\S+)$', line)
    if m:
        sums[m.group(1)] = sums.get(m.group(1), 0) + float(m.group(2))
truth = json.load(open(sys.argv[2]))
got = (int(sums.get("dnsmon_packets_total", 0)), int(sums.get("dnsmon_queries_total", 0)),
       int(sums.get("dnsmon_responses_total", 0)))
want = (truth["frames"]["total"], truth["messages"]["queries"], truth["messages"]["responses"])
verdict = "matches the generator's truth" if got == want else f"MISMATCH: the truth says {want}"
print(f"dnsmon counted {got[0]} frames, {got[1]} queries, {got[2]} responses: {verdict}")
EOF
)"
fi

# --- 4. the table ---------------------------------------------------------------------------------
python3 - "$results" "$markdown" "$check" "$workers" <<'EOF'
import statistics, sys
path, markdown, check, workers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split()
rows = {}
order = []
for line in open(path):
    name, n, run, wall, cpu, user, sys_, rss = line.rstrip("\n").split("\t")
    if name not in rows:
        rows[name] = {"n": int(n), "wall": [], "cpu": [], "rss": []}
        order.append(name)
    rows[name]["wall"].append(float(wall))
    rows[name]["cpu"].append(float(cpu))
    rows[name]["rss"].append(int(rss))
if not rows:
    sys.exit("bench.sh: no successful run")
# A "(start-up)" row is the same tool on a tiny file: the tool's row becomes its marginal cost.
startup = {name[: -len(" (start-up)")]: name for name in order if name.endswith(" (start-up)")}
order = [name for name in order if not name.endswith(" (start-up)")]
def marginal(name, key):
    """Seconds of `key` per extra packet over the start-up row, or None when not meaningful."""
    r = rows[name]
    if name not in startup or startup[name] not in rows or r["n"] <= rows[startup[name]]["n"]:
        return None
    s = rows[startup[name]]
    m = (statistics.median(r[key]) - statistics.median(s[key])) / (r["n"] - s["n"])
    return m if m > 0 else None  # too few packets to see past the noise
def is_marginal(name):
    return marginal(name, "cpu") is not None and marginal(name, "wall") is not None
def cost(name, key):
    """Median seconds of `key` per packet; marginal when the tool has a usable start-up row."""
    if is_marginal(name):
        return marginal(name, key)
    return statistics.median(rows[name][key]) / rows[name]["n"]
def ns(name):
    return cost(name, "cpu") * 1e9
ref = f"dnsmon --workers {workers[0]}" if workers else None
ref_ns = ns(ref) if ref in rows else None
head = ["tool", "packets", "runs", "CPU ns/pkt", "Mpkt/s (CPU)", "wall s", "Mpkt/s (wall)",
        "max RSS MiB", "CPU vs dnsmon"]
table = []
for name in order:
    r = rows[name]
    wall = statistics.median(r["wall"])
    label = name + (" (marginal)" if is_marginal(name) else "")
    table.append([label, f"{r['n']:,}", str(len(r["cpu"])), f"{ns(name):,.0f}",
                  f"{1e-6 / cost(name, 'cpu'):.2f}", f"{wall:.3f}",
                  f"{1e-6 / cost(name, 'wall'):.2f}",
                  f"{max(r['rss']) / 1024:.1f}",
                  f"{ns(name) / ref_ns:.2f}x" if ref_ns else "-"])
widths = [max(len(head[i]), *(len(t[i]) for t in table)) for i in range(len(head))]
def fmt(cells):
    return "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                     for i, c in enumerate(cells))
print()
print(fmt(head))
print("  ".join("-" * w for w in widths))
for t in table:
    print(fmt(t))
print()
print("Medians of the runs. CPU = user+sys of the whole process, start-up included; 'marginal' =")
print("(run - run on a tiny prefix) / extra packets. 'CPU vs dnsmon' = the tool's CPU per packet")
print(f"over {ref}'s: above 1, dnsmon is cheaper.")
scaling = [(w, f"dnsmon --workers {w}") for w in workers if f"dnsmon --workers {w}" in rows]
lines = []
if len(scaling) > 1:
    base_wall = statistics.median(rows[scaling[0][1]]["wall"])
    print()
    print("worker scaling (throughput = packets / wall time):")
    for w, name in scaling:
        r = rows[name]
        wall = statistics.median(r["wall"])
        line = (f"  {w} worker(s): {r['n'] / wall / 1e6:.2f} Mpkt/s wall, {ns(name):.0f} CPU ns/pkt, "
                f"speed-up {base_wall / wall:.2f}x, max RSS {max(r['rss']) / 1024:.1f} MiB")
        print(line)
        lines.append(line)
if check:
    print()
    print(check)
if markdown:
    with open(markdown, "w") as f:
        f.write("| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n")
        for t in table:
            f.write("| " + " | ".join(t) + " |\n")
        for line in lines:
            f.write("\n" + line.strip())
        if check:
            f.write("\n\n" + check + "\n")
EOF
echo "== load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
