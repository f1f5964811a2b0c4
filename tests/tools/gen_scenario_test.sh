#!/usr/bin/env bash
# tools/gen_scenario writes Scenario A and its sidecars, and dnsmon replays it:
#  - `--out DIR/a.pcap` writes a.pcap, a.dnsmon.yaml and a.truth.json; the same seed writes the
#    same bytes in all three, another seed another capture with the same components;
#  - the truth file is JSON with the parameters, the expected detections A1-A16, the covert
#    pair's realised lookups (org A near 2,820, org B 714, others 36, 45 + 3 failing after the
#    death) and the W14 top-2 share of every A3 evaluation day; the capture's packet count is the
#    truth's;
#  - the config sidecar's detection: section holds Scenario A's values, turns detection on and
#    passes `dnsmon --check-config`, and so does the rest of the file without it;
#  - `dnsmon -r` with that configuration decodes every frame (packets ok = frames) and matches every query to its
#    response (no timeouts, no unmatched responses).
# Bad options exit 2 with a message.
set -euo pipefail
: "${GEN_SCENARIO:?}" "${DNSMON:?}"
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

start=$(date +%s.%N)
"$GEN_SCENARIO" --seed 20160504 --out "$work/a.pcap" 2>"$work/a.log" || fail "gen_scenario failed: $(cat "$work/a.log")"
end=$(date +%s.%N)
echo "gen_scenario --seed 20160504: $(python3 -c "print(f'{$end - $start:.1f}')") s"
tail -3 "$work/a.log"
for f in a.pcap a.dnsmon.yaml a.truth.json; do
  [[ -s "$work/$f" ]] || fail "$f not written"
done

mkdir "$work/again"
"$GEN_SCENARIO" --seed 20160504 --out "$work/again/a.pcap" 2>/dev/null
for f in a.pcap a.dnsmon.yaml a.truth.json; do
  cmp -s "$work/$f" "$work/again/$f" || fail "the same seed wrote a different $f"
done
"$GEN_SCENARIO" --seed 5 --out "$work/b.pcap" 2>/dev/null
cmp -s "$work/a.pcap" "$work/b.pcap" && fail "seeds 20160504 and 5 wrote the same capture"

# Bad command lines.
for args in "" "--seed" "--seed x --out $work/x.pcap" "--seed -1 --out $work/x.pcap" "--bogus"; do
  rc=0
  # shellcheck disable=SC2086
  "$GEN_SCENARIO" $args >/dev/null 2>"$work/err" || rc=$?
  [[ $rc == 2 && -s "$work/err" ]] || fail "gen_scenario $args: exit $rc, want 2 and a message"
done
"$GEN_SCENARIO" --help | grep -q -- '--seed' || fail "--help does not describe --seed"

# The configuration passes dnsmon's check, with and without its detection: section.
"$DNSMON" --check-config --config "$work/a.dnsmon.yaml" -r "$work/a.pcap" >/dev/null 2>"$work/err" ||
  fail "dnsmon --check-config refuses the sidecar: $(cat "$work/err")"
sed '/^detection:/,$d' "$work/a.dnsmon.yaml" >"$work/rest.yaml"
"$DNSMON" --check-config --config "$work/rest.yaml" -r "$work/a.pcap" >/dev/null 2>"$work/err" ||
  fail "dnsmon --check-config refuses the sidecar without detection: $(cat "$work/err")"

"$DNSMON" -r "$work/a.pcap" --config "$work/rest.yaml" --metrics-out "$work/metrics.txt" \
  2>"$work/dnsmon.log" ||
  fail "dnsmon -r failed: $(tail -3 "$work/dnsmon.log")"

python3 - "$work" <<'EOF'
import json, os, re, sys

work = sys.argv[1]
problems = []
def check(cond, what):
    if not cond:
        problems.append(what)

truth = json.load(open(os.path.join(work, "a.truth.json")))
other = json.load(open(os.path.join(work, "b.truth.json")))
check(truth["seed"] == 20160504 and other["seed"] == 5, "seeds in the truth files")
check(truth["time"] == {"compression": 1440, "origin": "2016-04-04T00:00:00Z",
                        "end": "2016-10-17T00:00:00Z", "days": 196,
                        "note": truth["time"]["note"]}, "time block")
check(set(truth["capture"]["queries_by_component"]) == set(other["capture"]["queries_by_component"]),
      "another seed has other components")
check(truth["capture"]["queries_by_component"]["benign_poller"] in range(68000, 69200),
      "poller lookups near 68,800")
check(truth["capture"]["packets"] == 2 * truth["capture"]["queries"], "every query answered")
check(900_000 < truth["capture"]["packets"] < 1_000_000, "packets near 0.95 M")
check([e["id"] for e in truth["expected"]] == [f"A{i}" for i in range(1, 17)], "A1-A16 listed")
for key in ("background", "wire", "covert_pair", "suffix_leak", "successor", "benign_poller",
            "popular_decoy", "tunneling_decoy", "hash_lookup_decoy", "cdn_decoy",
            "steady_exclusive_decoy", "new_exclusive_decoy", "expiring_decoy"):
    check(key in truth["parameters"], f"parameters.{key}")
cp = truth["parameters"]["covert_pair"]
check(cp["awake"] == "2016-05-04" and cp["death"] == "2016-09-23T13:56:00Z", "covert dates")
check([o["target"] for o in cp["orgs"]] == [2820, 714], "org targets")
for t in (truth, other):
    r = t["covert_realised"]
    by = r["successful_by_org"]
    check(2730 <= by["A"] <= 2910 and by["B"] == 714 and by["others"] == 36,
          f"seed {t['seed']}: successful lookups per org {by}")
    check(r["failing_by_org"] == {"A": 45, "B": 3}, f"seed {t['seed']}: failing {r['failing_by_org']}")
    check(r["top2_share"] > 0.985, f"seed {t['seed']}: top-2 share {r['top2_share']}")
    days = r["w14_top2_share"]
    check(len(days) == 80 and min(days) == "2016-07-06" and max(days) == "2016-09-23",
          f"seed {t['seed']}: W14 shares for 2016-07-06 .. 2016-09-23")
    check(r["w14_top2_below_0_95"] == sorted(d for d, s in days.items() if s < 0.95),
          f"seed {t['seed']}: days below the gate")
    check(sum(d["A"] + d["B"] + d["others"] for d in r["per_day_queries"]) ==
          r["successful_lookups"] + r["successful_history"], f"seed {t['seed']}: per-day sums")
for d in ("netwatch-probe.example", "newtool-saas.example", "dnsexfil-lab.example",
          "client-contact-hub.example"):
    check(d in truth["first_sightings"], f"first sighting of {d}")
check(truth["first_sightings"]["client-contact-hub.example"].startswith("2016-09-27T14:02:00"),
      "successor first seen 2016-09-27T14:02")

config = open(os.path.join(work, "a.dnsmon.yaml")).read()
try:
    import yaml
    det = yaml.safe_load(config)["detection"]
    check(det["time"]["compression"] == 1440, "time.compression")
    check(str(det["time"]["origin"]).replace(" ", "T").startswith("2016-04-04T00:00:00"),
          "time.origin")
    check(det["clients"]["internal_networks"] == ["198.18.0.0/15"], "internal_networks")
    check(det["normalize"]["search_suffixes"] == ["corp.orga.example"], "search_suffixes")
    check(det["memory"]["base_entries"] == 262144, "memory profile")
    check(det["enabled"] is True, "detection turned on")
except ImportError:
    check("compression: 1440" in config and "198.18.0.0/15" in config and
          "corp.orga.example" in config, "detection values in the config sidecar")

metrics = {}
for line in open(os.path.join(work, "metrics.txt")):
    m = re.match(r"^(\w+(?:\{[^}]*\})?) (\S+)$", line)
    if m:
        metrics[m.group(1)] = float(m.group(2))
packets, queries = truth["capture"]["packets"], truth["capture"]["queries"]
ok = metrics.get('dnsmon_packets_total{result="ok"}')
check(ok == packets, f"dnsmon decoded {ok} of {packets} frames")
check(metrics.get('dnsmon_query_matching_total{leg="unknown",result="matched"}') == queries,
      "every query matched to its response")
for r in ("timeout", "unmatched_response", "duplicate", "evicted"):
    check(metrics.get(f'dnsmon_query_matching_total{{leg="unknown",result="{r}"}}') == 0, f"matching {r} is 0")
if problems:
    print("FAIL:\n  " + "\n  ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"ok: {packets} packets decoded and {queries} queries matched")
EOF
