#!/usr/bin/env python3
"""Checks of the dnsmon Grafana dashboard that need no Grafana.

  check_dashboard.py schema DASHBOARD SCHEMA
      DASHBOARD against the JSON Schema of Grafana's own Dashboard type (SCHEMA, generated from
      @grafana/schema by make_schema.sh).
  check_dashboard.py lint DASHBOARD
      provisioning rules: $datasource/$job/$instance variables (multi-select, with All), every
      panel and target on ${datasource}, every selector on job=~"$job" and instance=~"$instance",
      every range over $__rate_interval; panels inside the 24-column grid, none overlapping.
  check_dashboard.py rules DASHBOARD
      prints every target as a recording rule (variables resolved to sample values) for
      `promtool check rules`: Prometheus' own parser reads every expression offline.
  check_dashboard.py queries DASHBOARD --prom URL --time T --rate-interval D
                     --instance NAME=METRICS_FILE... [--scope one|all]
      resolves the variables as Grafana does (label values from Prometheus; a multi-value
      selection regex-escaped and joined as (a|b)), runs every target at time T through the HTTP
      API and fails on a parse error, on an empty result of a panel outside the Detection row, and
      on a summed counter that differs from the sum of the instances' own expositions (their
      /metrics text, saved in METRICS_FILE). The Detection row's targets must parse; their data
      is left to the next command.
  check_dashboard.py detection DASHBOARD --prom URL --rate-interval D --time T...
      runs every target of the Detection row at each time T (the variables resolved as above,
      over every instance) and fails on a parse error and on a target that returns no series at
      any of the times; prints each result's series count and first value.
"""
import json
import math
import re
import sys
import urllib.parse
import urllib.request

SELECTOR = 'job=~"$job", instance=~"$instance"'
REGEX_SPECIAL = re.compile(r"[$^*+?.()|\\\[\]{}]")
# Counters whose value moves after a replay ends (each scrape is counted by the server itself).
MOVING = re.compile(r"^dnsmon_http_")


def load(path):
    with open(path) as f:
        return json.load(f)


def targets(dash):
    """(row title, panel, target) for every target, rows included in order."""
    row = ""
    for p in dash["panels"]:
        if p["type"] == "row":
            row = p["title"]
            for inner in p.get("panels", []):
                for t in inner.get("targets", []):
                    yield row, inner, t
            continue
        for t in p.get("targets", []):
            yield row, p, t


def grafana_regex_value(values):
    """A multi-value or All variable as Grafana's Prometheus data source writes it into a regex
    matcher: each value regex-escaped with the backslash doubled for the PromQL string, joined
    as (a|b) when there is more than one."""
    escaped = [REGEX_SPECIAL.sub(lambda m: "\\\\" + m.group(0), v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def resolve(expr, variables):
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace("${%s}" % name, variables[name]).replace("$" + name, variables[name])
    return expr


# ---------------------------------------------------------------------------------------------
def cmd_schema(dash_path, schema_path):
    import jsonschema  # Debian: python3-jsonschema

    schema = load(schema_path)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(load(dash_path)), key=lambda e: list(e.absolute_path))
    for e in errors:
        if e.context:  # a panel fits neither Panel nor RowPanel: say why it is not a Panel
            panel = [c for c in e.context if list(c.schema_path)[:1] == [0]]
            e = jsonschema.exceptions.best_match(panel or e.context)
        print("FAIL schema /%s: %s" % ("/".join(map(str, e.absolute_path)), e.message[:300]))
    if errors:
        return 1
    print("ok: %s matches Grafana's Dashboard schema (%s)" % (dash_path, schema_path))
    return 0


def cmd_lint(dash_path):
    dash = load(dash_path)
    problems = []
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append("no $datasource variable of type datasource for prometheus")
    for name in ("job", "instance"):
        v = variables.get(name)
        if not v or v.get("type") != "query" or not v.get("multi") or not v.get("includeAll"):
            problems.append(f"${name} must be a multi-select query variable with All")
        elif v.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"${name} must query ${{datasource}}")
    ids = set()
    count = 0
    for row, panel, t in targets(dash):
        count += 1
        where = f'panel {panel["id"]} "{panel["title"]}" {t["refId"]}'
        ids.add(panel["id"])
        for what, ref in (("panel", panel.get("datasource")), ("target", t.get("datasource"))):
            if ref != {"type": "prometheus", "uid": "${datasource}"}:
                problems.append(f"{where}: {what} datasource {ref} is not ${{datasource}}")
        expr = t["expr"]
        for m in re.finditer(r"\b([a-z_:][a-z0-9_:]*)\{([^}]*)\}", expr):
            if SELECTOR not in m.group(2):
                problems.append(f"{where}: selector {m.group(0)} lacks {SELECTOR}")
        bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
        for name in re.findall(r"\b(dnsmon_[a-z0-9_]+|up|scrape_duration_seconds)\b(?!\{)", bare):
            problems.append(f"{where}: {name} without a selector")
        for w in re.findall(r"\[([^\]]+)\]", expr):
            if w != "$__rate_interval":
                problems.append(f"{where}: range [{w}] instead of [$__rate_interval]")
    cells = {}
    for p in dash["panels"]:
        if p["type"] != "row" and not p.get("targets"):
            problems.append(f'panel {p["id"]} "{p.get("title")}" has no target')
        g = p["gridPos"]
        if g["x"] + g["w"] > 24:
            problems.append(f'panel {p["id"]} "{p.get("title")}" is wider than the grid')
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    problems.append(f'panel {p["id"]} overlaps panel {cells[(x, y)]} at {x},{y}')
                    break
                cells[(x, y)] = p["id"]
            else:
                continue
            break
    for p in problems:
        print("FAIL lint " + p)
    if problems:
        return 1
    print(f"ok: {dash_path}: {count} targets on ${{datasource}}, every selector on $job and "
          "$instance, every range $__rate_interval")
    return 0


def cmd_rules(dash_path):
    dash = load(dash_path)
    sample = {"job": "(dnsmon|dnsmon\\\\-replay)", "instance": "(127\\\\.0\\\\.0\\\\.1:9917)",
              "window": "1m", "__rate_interval": "1m", "datasource": "prometheus"}
    rules = []
    for row, panel, t in targets(dash):
        rules.append({"record": "dashboard:panel_%d_%s" % (panel["id"], t["refId"]),
                      "expr": resolve(t["expr"], sample)})
    json.dump({"groups": [{"name": "dnsmon-dashboard-expressions", "rules": rules}]}, sys.stdout,
              indent=1)
    print()
    return 0


# ---------------------------------------------------------------------------------------------
class Prom:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def get(self, path, **params):
        query = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            return json.load(e)

    def label_values(self, label, match):
        return sorted(self.get(f"/api/v1/label/{label}/values", **{"match[]": match})["data"])

    def instant(self, expr, time):
        return self.get("/api/v1/query", query=expr, time=time)


def parse_exposition(path):
    """[(name, {labels}, value)] of a text exposition."""
    out = []
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
    label_re = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
    for line in open(path):
        m = line_re.match(line.strip())
        if m:
            out.append((m.group(1), dict(label_re.findall(m.group(2) or "")), float(m.group(3))))
    return out


def matches(labels, matchers):
    for name, op, value in matchers:
        have = labels.get(name, "")
        if op == "=" and have != value or op == "!=" and have == value:
            return False
        if op == "=~" and not re.fullmatch(value, have) or op == "!~" and re.fullmatch(value, have):
            return False
    return True


SUMMED = re.compile(r'^sum(?: by \(([^)]*)\))? \(rate\(([a-z_:]+)\{([^}]*)\}\[\$__rate_interval\]\)\)$')


def cmd_queries(args):
    dash = load(args["dashboard"])
    prom = Prom(args["prom"])
    time = args["time"]
    scope = args.get("scope", "all")
    exposed = {name: parse_exposition(path) for name, path in args["instance"]}
    jobs = prom.label_values("job", "dnsmon_build_info")
    instances = prom.label_values("instance", 'dnsmon_build_info{job=~"%s"}' % "|".join(jobs))
    if sorted(exposed) != instances:
        print(f"FAIL: Prometheus knows instances {instances}, the test saved {sorted(exposed)}")
        return 1
    chosen = instances if scope == "all" else instances[:1]
    windows = prom.label_values("window", "dnsmon_window_distinct_clients")
    variables = {"job": grafana_regex_value(jobs), "instance": grafana_regex_value(chosen),
                 "window": windows[0] if windows else "1m",
                 "__rate_interval": args["rate_interval"]}
    print(f"scope {scope}: $job = {variables['job']}  $instance = {variables['instance']}  "
          f"$window = {variables['window']}  $__rate_interval = {variables['__rate_interval']}")
    failures = 0
    counted = {"data": 0, "sums": 0, "detection": 0}
    for row, panel, t in targets(dash):
        expr = resolve(t["expr"], variables)
        where = f'panel {panel["id"]} "{panel["title"]}" {t["refId"]}'
        answer = prom.instant(expr, time)
        if answer.get("status") != "success":
            print(f"FAIL {where}: {answer.get('error')}\n     {expr}")
            failures += 1
            continue
        result = answer["data"]["result"]
        if row == "Detection":
            counted["detection"] += 1
            print(f"parsed {where}: {len(result)} series; data checked by the detection command")
            continue
        if not result:
            print(f"FAIL {where}: EMPTY result\n     {expr}")
            failures += 1
            continue
        counted["data"] += 1
        note = ""
        m = SUMMED.match(t["expr"])
        if m and not MOVING.match(m.group(2)):
            # The counter itself, summed the same way, against the expositions' own numbers.
            by = [l.strip() for l in m.group(1).split(",")] if m.group(1) else []
            matchers = [(n, op, v) for n, op, v in
                        re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', m.group(3))
                        if n not in ("job", "instance")]
            raw = "sum%s (%s{%s})" % (" by (%s)" % m.group(1) if by else "", m.group(2),
                                       resolve(m.group(3), variables))
            got = {}
            for s in prom.instant(raw, time)["data"]["result"]:
                got[tuple(s["metric"].get(l, "") for l in by)] = float(s["value"][1])
            want = {}
            for inst in chosen:
                for name, labels, value in exposed[inst]:
                    labels = dict(labels, instance=inst)  # as Prometheus labels the target
                    if name == m.group(2) and matches(labels, matchers):
                        key = tuple(labels.get(l, "") for l in by)
                        want[key] = want.get(key, 0.0) + value
            if got != want:
                print(f"FAIL {where}: {raw}\n     Prometheus {got}\n     expositions {want}")
                failures += 1
                continue
            counted["sums"] += 1
            note = f"; summed counter = the expositions' sum ({sum(want.values()):.0f})"
        values = [float(s["value"][1]) for s in result if "value" in s]
        shown = ", ".join("%.4g" % v for v in values[:3]) + (" ..." if len(values) > 3 else "")
        nan = " (NaN)" if values and all(math.isnan(v) for v in values) else ""
        print(f"ok   {where}: {len(result)} series [{shown}]{nan}{note}")
    print(f"scope {scope}: {counted['data']} targets with data, {counted['sums']} summed "
          f"counters equal to the expositions, {counted['detection']} Detection targets parsed "
          f"(their data is checked on backfilled snapshots), {failures} failure(s)")
    return 1 if failures else 0


def cmd_detection(args):
    dash = load(args["dashboard"])
    prom = Prom(args["prom"])
    jobs = prom.label_values("job", "dnsmon_build_info")
    instances = prom.label_values("instance", 'dnsmon_build_info{job=~"%s"}' % "|".join(jobs))
    if not jobs or not instances:
        print("FAIL: Prometheus has no dnsmon_build_info series to take $job and $instance from")
        return 1
    variables = {"job": grafana_regex_value(jobs), "instance": grafana_regex_value(instances),
                 "window": "1m", "__rate_interval": args["rate_interval"]}
    print(f"$job = {variables['job']}  $instance = {variables['instance']}  "
          f"$__rate_interval = {variables['__rate_interval']}")
    failures = 0
    count = 0
    for row, panel, t in targets(dash):
        if row != "Detection":
            continue
        count += 1
        expr = resolve(t["expr"], variables)
        where = f'panel {panel["id"]} "{panel["title"]}" {t["refId"]}'
        seen = []
        with_data = 0
        for time in args["time"]:
            answer = prom.instant(expr, time)
            if answer.get("status") != "success":
                print(f"FAIL {where} at {time}: {answer.get('error')}\n     {expr}")
                failures += 1
                break
            result = answer["data"]["result"]
            first = "%.4g" % float(result[0]["value"][1]) if result else "-"
            seen.append(f"{time}: {len(result)} series, first {first}")
            with_data += bool(result)
        else:
            if with_data:
                print(f"ok   {where}: " + "; ".join(seen))
            else:
                print(f"FAIL {where}: no series at any time: " + "; ".join(seen) + f"\n     {expr}")
                failures += 1
    print(f"Detection row: {count} targets run at {len(args['time'])} times, "
          f"{count - failures} with data, {failures} failure(s)")
    return 1 if failures or not count else 0


def main(argv):
    if len(argv) >= 3 and argv[0] == "schema":
        return cmd_schema(argv[1], argv[2])
    if len(argv) == 2 and argv[0] == "lint":
        return cmd_lint(argv[1])
    if len(argv) == 2 and argv[0] == "rules":
        return cmd_rules(argv[1])
    if len(argv) >= 2 and argv[0] == "queries":
        args = {"dashboard": argv[1], "instance": []}
        rest = argv[2:]
        while rest:
            key, value, rest = rest[0], rest[1], rest[2:]
            if key == "--instance":
                name, _, path = value.partition("=")
                args["instance"].append((name, path))
            elif key in ("--prom", "--time", "--rate-interval", "--scope"):
                args[key[2:].replace("-", "_")] = value
            else:
                sys.exit(__doc__)
        return cmd_queries(args)
    if len(argv) >= 2 and argv[0] == "detection":
        args = {"dashboard": argv[1], "time": []}
        rest = argv[2:]
        while len(rest) >= 2:
            key, value, rest = rest[0], rest[1], rest[2:]
            if key == "--time":
                args["time"].append(value)
            elif key in ("--prom", "--rate-interval"):
                args[key[2:].replace("-", "_")] = value
            else:
                sys.exit(__doc__)
        if rest or not args["time"] or "prom" not in args or "rate_interval" not in args:
            sys.exit(__doc__)
        return cmd_detection(args)
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
