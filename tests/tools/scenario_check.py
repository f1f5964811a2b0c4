#!/usr/bin/env python3
"""The acceptance checks A1-A16 of Scenario A (docs/scenarios.md, detection spec 5.3).

Reads the truth sidecar the generator wrote, the JSON Lines event log(s) of the replay (several
files are read in order, e.g. the two halves of a replay with a restart in between), the final
metrics text and, when given, a directory of metric snapshots. Prints what it observed for each
check and exits 1 when any check fails.

usage: scenario_check.py --truth A.truth.json --events E1.jsonl [E2.jsonl ...]
                         --metrics M.txt [--snapshots DIR] [--only A1,A6,...]
"""
import argparse
import json
import os
import re
import sys
from datetime import date, datetime, timedelta, timezone

MAILER = "hotel-promo-mailer.example"


def parse_ts(text):
    return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)


def eval_day(e):
    """The logical day an event belongs to: a day-boundary evaluation is stamped at the next
    midnight (or the last second of its day), so one second is taken off before the date."""
    return (parse_ts(e["ts"]) - timedelta(seconds=1)).date() if e["ts"][11:19] == "00:00:00" \
        else parse_ts(e["ts"]).date()


def read_metrics(path):
    metrics = {}
    for line in open(path):
        m = re.match(r"^(\w+)(\{[^}]*\})? (\S+)", line)
        if m:
            metrics[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return metrics


def domain_series(metrics):
    return sum(1 for k in metrics if k.startswith("dnsmon_domain_") and 'domain="' in k)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--truth", required=True)
    ap.add_argument("--events", nargs="+", required=True)
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--snapshots")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))

    truth = json.load(open(args.truth))
    metrics = read_metrics(args.metrics)
    events, problems = [], []
    for path in args.events:
        for n, line in enumerate(open(path), 1):
            try:
                e = json.loads(line)
            except ValueError as err:
                problems.append(f"{path}:{n}: not JSON: {err}")
                continue
            missing = [k for k in ("ts", "detector", "event", "domain", "score", "severity",
                                   "reasons", "details") if k not in e]
            if missing:
                problems.append(f"{path}:{n}: no {', '.join(missing)}")
                continue
            if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e["ts"]):
                problems.append(f"{path}:{n}: ts {e['ts']} is not RFC 3339 UTC")
            if e["severity"] not in ("info", "low", "medium", "high", "critical"):
                problems.append(f"{path}:{n}: severity {e['severity']}")
            events.append(e)

    results = []

    def check(cid, ok, observed):
        if only and cid not in only:
            return
        results.append((cid, ok, observed))

    def of(detector, domain=None, event=None):
        return [e for e in events if e["detector"] == detector and
                (domain is None or e["domain"] == domain) and
                (event is None or e["event"] == event)]

    # A1 dormant_reactivation of the covert domain, dated 2016-05-04 .. 2016-05-11.
    r = of("dormant_reactivation", MAILER)
    check("A1", bool(r) and "2016-05-04" <= r[0]["ts"][:10] <= "2016-05-11",
          f"reactivation events {[e['ts'] for e in r][:3]}")

    covert = of("covert_pair", MAILER)
    # A2 covert_pair >= 0.6 first on or before 2016-06-20.
    first06 = next((e for e in covert if e["score"] >= 0.6), None)
    check("A2", first06 is not None and eval_day(first06) <= date(2016, 6, 20),
          f"first >= 0.6 on {eval_day(first06) if first06 else None}")
    # A3 >= 0.8 first on or before 2016-07-06 and on every evaluation day 07-06 .. 09-23 except
    # the days the realised W14 top-2 share is below 0.95.
    first08 = next((e for e in covert if e["score"] >= 0.8), None)
    days08 = {eval_day(e) for e in covert if e["score"] >= 0.8}
    below = {date.fromisoformat(d) for d in
             truth.get("covert_realised", {}).get("w14_top2_below_0_95", [])}
    missing = []
    d = date(2016, 7, 6)
    while d <= date(2016, 9, 23):
        if d not in days08 and d not in below:
            missing.append(d.isoformat())
        d += timedelta(days=1)
    check("A3", first08 is not None and eval_day(first08) <= date(2016, 7, 6) and not missing,
          f"first >= 0.8 on {eval_day(first08) if first08 else None}; days without >= 0.8 "
          f"(excused {len(below)}): {missing[:8]}{' ...' if len(missing) > 8 else ''} "
          f"({len(missing)})")
    # A4 disappearance transition in [2016-09-23T13:56Z, 2016-09-24T00:00Z).
    t = of("disappearance", MAILER, "transition")
    check("A4", bool(t) and "2016-09-23T13:56:00Z" <= t[0]["ts"] < "2016-09-24T00:00:00Z",
          f"transition {[e['ts'] for e in t][:2]}")
    # A5 persisting on or before 2016-09-26T00:00Z; covert_pair critical (>= 0.95) by 09-26.
    p = of("disappearance", MAILER, "persisting")
    crit = next((e for e in covert if e["score"] >= 0.95 and e["severity"] == "critical"), None)
    check("A5", bool(p) and p[0]["ts"] <= "2016-09-26T00:00:00Z" and crit is not None and
          eval_day(crit) <= date(2016, 9, 26),
          f"persisting {[e['ts'] for e in p][:1]}, first critical covert_pair "
          f"{crit['ts'] if crit else None}")
    # A6 one suffix_leak for the covert domain dated 2016-09-23.
    leaks = of("suffix_leak")
    check("A6", len(leaks) == 1 and leaks[0]["domain"] == MAILER and
          leaks[0]["ts"].startswith("2016-09-23") and
          leaks[0]["details"].get("qname") == f"mail.{MAILER}.corp.orga.example",
          f"suffix_leak events {[(e['domain'], e['ts']) for e in leaks][:3]}")
    # A7 successor_name(client-contact-hub.example <- covert domain) on 2016-09-27.
    s = of("successor_name", "client-contact-hub.example")
    check("A7", bool(s) and s[0]["ts"].startswith("2016-09-27") and
          s[0]["details"].get("predecessor") == MAILER,
          f"successor events {[(e['ts'], e['details'].get('predecessor')) for e in s][:2]}")
    # A8 beacon for (198.18.7.7, netwatch-probe.example) >= 0.9, period 60 +- 1 s, by 08-02.
    b = [e for e in of("beacon", "netwatch-probe.example") if e["score"] >= 0.9 and
         abs(float(e["details"].get("period_s", 0)) - 60) <= 1 and
         e["details"].get("querier") == "198.18.7.7"]
    check("A8", bool(b) and eval_day(b[0]) <= date(2016, 8, 2),
          f"beacon {[(e['ts'], e['score'], e['details'].get('period_s')) for e in b][:1]}; all "
          f"{len(of('beacon', 'netwatch-probe.example'))}")
    # A9 tunneling for dnsexfil-lab.example within the first logical hour of each burst.
    tun = of("tunneling", "dnsexfil-lab.example")
    bursts = truth["parameters"]["tunneling_decoy"]["bursts"]
    late = []
    for burst in bursts:
        start = parse_ts(burst["start"])
        if not any(start <= parse_ts(e["ts"]) < start + timedelta(hours=1) for e in tun):
            late.append(burst["start"][:16])
    check("A9", not late, f"{len(tun)} tunneling events; bursts without one: {late}")
    # A10 burst for election-news.example on >= 9 of 10 spike days, <= 2 other days.
    spikes = set(truth["parameters"]["popular_decoy"]["spike_days"])
    bdays = {e["ts"][:10] for e in of("burst", "election-news.example")}
    check("A10", len(bdays & spikes) >= 9 and len(bdays - spikes) <= 2,
          f"on {len(bdays & spikes)} of {len(spikes)} spike days, other days "
          f"{sorted(bdays - spikes)}")
    # A11 newly_observed within 7 days of the first sighting.
    lags = {}
    for dom in ("netwatch-probe.example", "newtool-saas.example", "dnsexfil-lab.example",
                "client-contact-hub.example"):
        n = of("newly_observed", dom)
        first = date.fromisoformat(truth["first_sightings"][dom][:10])
        lags[dom] = (date.fromisoformat(n[0]["ts"][:10]) - first).days if n else None
    check("A11", all(v is not None and 0 <= v <= 7 for v in lags.values()),
          f"days after first sighting {lags}")
    # A12 oldvendor.example: transition on 08-01, never persisting, covert_pair 0.
    ot = of("disappearance", "oldvendor.example", "transition")
    op = of("disappearance", "oldvendor.example", "persisting")
    oc = [e for e in of("covert_pair", "oldvendor.example") if e["score"] > 0]
    check("A12", bool(ot) and ot[0]["ts"].startswith("2016-08-01") and not op and not oc,
          f"transition {[e['ts'] for e in ot][:1]}, persisting {len(op)}, covert_pair {len(oc)}")
    # A13 no other domain reaches covert_pair >= 0.6.
    best = {}
    for e in of("covert_pair"):
        best[e["domain"]] = max(best.get(e["domain"], 0), e["score"])
    others = {k: v for k, v in best.items() if k != MAILER and v >= 0.6}
    watch = {k: best.get(k) for k in ("family-photos.example", "newtool-saas.example",
                                       "client-contact-hub.example", "netwatch-probe.example",
                                       "dnsexfil-lab.example")}
    check("A13", not others, f"others >= 0.6: {others}; decoys' best {watch}")
    # A14 no tunneling for av-cloud / cdn-static; no beacon >= 0.8 for the covert domain.
    bad_t = [e["domain"] for e in of("tunneling")
             if e["domain"] in ("av-cloud.example", "cdn-static.example")]
    bad_b = [e["ts"] for e in of("beacon", MAILER) if e["score"] >= 0.8]
    check("A14", not bad_t and not bad_b, f"tunneling on decoys {bad_t[:3]}, covert beacons "
          f"{bad_b[:3]}")
    # A15 at the end: querier_concentration_any >= 1000, querier_concentration <= 20.
    qc_any = metrics.get('dnsmon_detector_flagged_domains{detector="querier_concentration_any"}')
    qc = metrics.get('dnsmon_detector_flagged_domains{detector="querier_concentration"}')
    check("A15", qc_any is not None and qc_any >= 1000 and qc is not None and qc <= 20,
          f"querier_concentration_any {qc_any}, querier_concentration {qc}")
    # A16 per-domain series <= 2000 at any snapshot (and at the end).
    counts = [domain_series(metrics)]
    if args.snapshots:
        # The files of --metrics-snapshot-dir (OpenMetrics: the sample's timestamp is ignored).
        names = sorted(n for n in os.listdir(args.snapshots) if n.endswith(".om"))
        if not names:
            problems.append(f"no metric snapshot (*.om) in {args.snapshots}")
        for name in names:
            counts.append(domain_series(read_metrics(os.path.join(args.snapshots, name))))
    check("A16", max(counts) <= 2000,
          f"most dnsmon_domain_* series {max(counts)} over {len(counts)} expositions; at the "
          f"end {counts[0]}")

    for p in problems:
        print("FAIL:", p, file=sys.stderr)
    failed = 0
    for cid, ok, observed in results:
        print(f"{cid:>4} {'pass' if ok else 'FAIL'}  {observed}")
        failed += 0 if ok else 1
    print(f"{len(events)} events; {len(results) - failed} of {len(results)} checks pass")
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
