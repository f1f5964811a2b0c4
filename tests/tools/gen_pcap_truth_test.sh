#!/usr/bin/env bash
# tools/gen_pcap's --truth summary must describe the capture it wrote: a parser written apart from
# the generator reads each capture back (Ethernet, 802.1Q, IPv4/IPv6, UDP, DNS over TCP, DNS
# header and question) and recounts the top clients, top NXDOMAIN/SERVFAIL names, window totals,
# top qnames, distinct counts and the latency quantiles and buckets, for the simple, bench and
# flood profiles, with and without --mixed-case. Also: the simple profile's bytes for the demo's
# options never change, --mixed-case changes the letters' case and nothing else in the traffic,
# responses echo their query's spelling, and --out - writes the same bytes as --out FILE.
set -euo pipefail
: "${GEN_PCAP:?}"
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gen() { "$GEN_PCAP" "$@" 2>/dev/null; }

# The daemon's demo capture (daemon/src/demo_capture.cpp makes the same in memory): its bytes are
# part of the contract.
gen --seed 7 --packets 4000 --rate 100 --out "$work/demo.pcap"
want=8d36c085595eac61468c9316d1eadc312e3dfdd967dbb4c70431f0bb07575f33
got=$(sha256sum "$work/demo.pcap" | cut -d' ' -f1)
[[ "$got" == "$want" ]] || { echo "FAIL: the simple profile's output changed ($got)" >&2; exit 1; }

gen --profile bench --packets 3000 --seed 4 --out - >"$work/stdout.pcap"
gen --profile bench --packets 3000 --seed 4 --out "$work/file.pcap"
cmp "$work/stdout.pcap" "$work/file.pcap" || { echo "FAIL: --out - differs from --out FILE" >&2; exit 1; }

runs=(
  "simple|--seed 7 --packets 4000 --rate 100"
  "simple-mixed|--seed 7 --packets 4000 --rate 100 --mixed-case 40"
  "bench|--profile bench --rate 400 --packets 12000 --seed 11"
  "bench-mixed|--profile bench --rate 400 --packets 12000 --seed 11 --mixed-case 50"
  "bench-v6|--profile bench --packets 12000 --seed 3 --ipv6 60 --tcp 10"
  "flood|--profile flood --packets 20000 --seed 2"
  "flood-mixed|--profile flood --packets 20000 --seed 2 --mixed-case 30"
  "flood-small|--profile flood --packets 400 --seed 9"
)
for run in "${runs[@]}"; do
  name=${run%%|*}
  read -r -a args <<<"${run#*|}"
  gen "${args[@]}" --out "$work/$name.pcap" --truth "$work/$name.json"
done

python3 - "$work" <<'EOF'
import collections, ipaddress, json, struct, sys

work = sys.argv[1]
problems = []

def read_pcap(path):
    data = open(path, "rb").read()
    magic = struct.unpack_from("<I", data)[0]
    assert magic == 0xA1B2C3D4, "little-endian microsecond pcap expected"
    at = 24
    while at < len(data):
        sec, usec, caplen, _ = struct.unpack_from("<IIII", data, at)
        at += 16
        yield (sec * 1_000_000 + usec) * 1000, data[at:at + caplen]
        at += caplen

def question(dns):
    labels, at = [], 12
    while dns[at]:
        labels.append(dns[at + 1:at + 1 + dns[at]].decode("ascii"))
        at += 1 + dns[at]
    return ".".join(labels)

def messages(path):
    """(ts_ns, transport, src, sport, dst, dport, id, qr, rcode, qname) for each DNS message."""
    for ts, f in read_pcap(path):
        at, ethertype = 14, struct.unpack_from("!H", f, 12)[0]
        while ethertype == 0x8100:
            ethertype = struct.unpack_from("!H", f, at + 2)[0]
            at += 4
        if ethertype == 0x0800:
            proto, src, dst = f[at + 9], f[at + 12:at + 16], f[at + 16:at + 20]
            at += (f[at] & 15) * 4
        else:
            proto, src, dst = f[at + 6], f[at + 8:at + 24], f[at + 24:at + 40]
            at += 40
        src, dst = str(ipaddress.ip_address(src)), str(ipaddress.ip_address(dst))
        sport, dport = struct.unpack_from("!HH", f, at)
        if proto == 17:
            dns = f[at + 8:]
        else:
            dns = f[at + (f[at + 12] >> 4) * 4:]
            if not dns:
                continue  # handshake, ACK or FIN
            dns = dns[2:]  # length prefix
        ident, flags = struct.unpack_from("!HH", dns)
        yield (ts, "tcp" if proto == 6 else "udp", src, sport, dst, dport, ident, flags >> 15,
               flags & 15, question(dns))

def top(counter):
    return [[k, v] for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:20]]

# dnsmon's latency bounds: 1, 1.5, 2, 3, 5 and 7 a decade from 10 us to 5 s.
bounds = ["1e-05", "1.5e-05", "2e-05", "3e-05", "5e-05", "7e-05",
          "0.0001", "0.00015", "0.0002", "0.0003", "0.0005", "0.0007",
          "0.001", "0.0015", "0.002", "0.003", "0.005", "0.007",
          "0.01", "0.015", "0.02", "0.03", "0.05", "0.07",
          "0.1", "0.15", "0.2", "0.3", "0.5", "0.7",
          "1", "1.5", "2", "3", "5"]

def recount(path):
    clients, qnames, nx, sf = (collections.Counter() for _ in range(4))
    open_queries, latencies, spellings = {}, [], 0
    for ts, transport, src, sport, dst, dport, ident, qr, rcode, qname in messages(path):
        spellings += qname != qname.lower()
        if qr == 0:
            clients[src] += 1
            qnames[qname.lower()] += 1
            open_queries[(transport, src, sport, ident, qname)] = ts
            continue
        if rcode == 3:
            nx[qname.lower()] += 1
        if rcode == 2:
            sf[qname.lower()] += 1
        # Keyed by the exact spelling: a response that does not echo its query's finds nothing.
        t0 = open_queries.pop((transport, dst, dport, ident, qname), None)
        if t0 is None:
            problems.append(f"{path}: a response to {qname} matches no query")
            continue
        latencies.append(ts - t0)
    latencies.sort()
    n = len(latencies)

    def quantile(pct):
        if n == 0:
            return None
        ns = latencies[max(1, -(-n * pct // 100)) - 1]
        return float(f"{ns // 10**9}.{ns % 10**9:09d}")

    buckets = [[float(b), sum(1 for x in latencies if x <= int(float(b) * 10**9 + 0.5))]
               for b in bounds] + [["+Inf", n]]
    return {
        "top_clients": top(clients),
        "top_nxdomain": top(nx),
        "top_servfail": top(sf),
        "top_qnames": [{"qname": k, "queries": v} for k, v in top(qnames)],
        "window_totals": {"queries": sum(clients.values()), "nxdomain_responses": sum(nx.values()),
                          "servfail_responses": sum(sf.values())},
        "latency": {"count": n, "p50": quantile(50), "p90": quantile(90), "p99": quantile(99),
                    "buckets": buckets},
        "distinct": {"clients": len(clients), "qnames": len(qnames)},
    }, qnames, spellings

truths = {}
for name in ["simple", "simple-mixed", "bench", "bench-mixed", "bench-v6", "flood", "flood-mixed",
             "flood-small"]:
    path = f"{work}/{name}.pcap"
    truth = json.load(open(f"{work}/{name}.json"))
    truths[name] = truth
    mine, qnames, spellings = recount(path)
    for key, value in mine.items():
        theirs = truth[key]
        if key == "distinct":
            theirs = {k: theirs[k] for k in value}
        if value != theirs:
            problems.append(f"{name}: {key} differs\n  recounted: {value}\n  truth:     {theirs}")
    if truth["latency"]["count"] != truth["messages"]["responses"]:
        problems.append(f"{name}: latency count is not the number of responses")
    if ("mixed" in name) != (spellings > 0):
        problems.append(f"{name}: {spellings} names in mixed case")
    if truth.get("distinct_qnames_exact") is not True:
        problems.append(f"{name}: distinct_qnames_exact is not true")
    if name.startswith("flood"):
        flood = sum(v for k, v in qnames.items() if k.endswith(".victim-flood.co.uk"))
        if truth["top_domains"][0] != {"domain": "victim-flood.co.uk", "queries": flood}:
            problems.append(f"{name}: top domain {truth['top_domains'][0]}, {flood} flood queries")
        if any(v != 1 for k, v in qnames.items() if k.endswith(".victim-flood.co.uk")):
            problems.append(f"{name}: a flood name was asked twice")
    print(f"{name}: {truth['frames']['total']} frames, {truth['messages']['queries']} queries, "
          f"latency p50/p90/p99 {truth['latency']['p50']}/{truth['latency']['p90']}/"
          f"{truth['latency']['p99']} s: recounted")

flood = truths["flood"]
nx_flood = flood["responses_by_rcode"]["NXDOMAIN"] - sum(
    n for q, n in flood["top_nxdomain"] if not q.endswith(".victim-flood.co.uk"))
share = (flood["top_domains"][0]["queries"] + nx_flood) / flood["frames"]["total"]
if not 0.88 <= share <= 0.92:
    problems.append(f"flood: {share:.3f} of the frames belong to the flood, not about 0.9")
if len(flood["top_domains"]) < 20:
    problems.append("flood: fewer than 20 registrable domains")

# --mixed-case changes the letters' case and nothing else: same truth (the bench profile's
# compression of a mixed-case question may change sizes, so not its byte count).
for plain, mixed in [("simple", "simple-mixed"), ("bench", "bench-mixed"), ("flood", "flood-mixed")]:
    a, b = dict(truths[plain]), dict(truths[mixed])
    a["frames"] = {k: v for k, v in a["frames"].items() if k != "bytes"}
    b["frames"] = {k: v for k, v in b["frames"].items() if k != "bytes"}
    if a != b:
        problems.append(f"{mixed}: its truth differs from {plain}'s beyond the byte count")

if problems:
    print("FAIL:\n" + "\n".join(problems), file=sys.stderr)
    sys.exit(1)
print("gen_pcap's truth matches its captures")
EOF
