#!/usr/bin/env python3
"""Writes dnsmon.json, the Grafana dashboard for dnsmon, beside this script.

    python3 monitoring/dashboards/generate.py          rewrite dnsmon.json
    python3 monitoring/dashboards/generate.py --check  exit 1 if dnsmon.json differs

The dashboard is provisioning-ready: its data source is the `$datasource` variable (any
Prometheus), and `$job` and `$instance` are multi-select variables with "All". Every query selects
`{job=~"$job", instance=~"$instance"}` and combines the instances so that a panel reads the same
with one instance or many: counters and histograms are summed over instances; gauges are combined
as their meaning allows (README, "Monitoring"): sums for memory, entries and open connections, max
for fill ratios, scores, overcounts and detector base rates, per instance for capture sources,
logical time and distinct counts (HyperLogLog estimates of overlapping sets do not add up).
"""
import json
import sys
from pathlib import Path

SEL = 'job=~"$job", instance=~"$instance"'
DS = {"type": "prometheus", "uid": "${datasource}"}
BASE_RATE = ('max(dnsmon_detector_flagged_domains{%s, detector="querier_concentration"})' % SEL)
BASE_RATE_LEGEND = "base rate: exclusive domains (querier_concentration)"


def rate(metric, by=None, extra="", fn="rate", window="$__rate_interval"):
    """sum [by (labels)] (rate(metric{selector, extra}[window]))"""
    matchers = SEL + (", " + extra if extra else "")
    agg = "sum by (%s)" % ", ".join(by) if by else "sum"
    return "%s (%s(%s{%s}[%s]))" % (agg, fn, metric, matchers, window)


def sel(metric, extra=""):
    return "%s{%s}" % (metric, SEL + (", " + extra if extra else ""))


class Board:
    def __init__(self):
        self.panels = []
        self.next_id = 1
        self.y = 0
        self.x = 0
        self.row_h = 0

    def _id(self):
        i = self.next_id
        self.next_id += 1
        return i

    def row(self, title):
        self._newline()
        self.panels.append({"type": "row", "title": title, "id": self._id(), "collapsed": False,
                            "panels": [], "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}})
        self.y += 1

    def _newline(self):
        if self.x:
            self.y += self.row_h
            self.x = 0
            self.row_h = 0

    def panel(self, kind, title, targets, unit="short", w=12, h=8, description="", stack=False,
              options=None, min_zero=True):
        if self.x + w > 24:
            self._newline()
        field_defaults = {"unit": unit}
        if min_zero:
            field_defaults["min"] = 0
        if kind == "timeseries":
            field_defaults["custom"] = {"fillOpacity": 10 if not stack else 40, "lineWidth": 1,
                                        "stacking": {"mode": "normal" if stack else "none",
                                                     "group": "A"}}
        p = {
            "type": kind,
            "title": title,
            "id": self._id(),
            "datasource": DS,
            "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y},
            "fieldConfig": {"defaults": field_defaults, "overrides": []},
            "targets": [],
        }
        if description:
            p["description"] = description
        if options is not None:
            p["options"] = options
        elif kind == "timeseries":
            p["options"] = {"legend": {"displayMode": "table", "placement": "right",
                                       "calcs": ["lastNotNull", "max"], "showLegend": True},
                            "tooltip": {"mode": "multi", "sort": "desc"}}
        for i, t in enumerate(targets):
            expr, legend = t[0], t[1]
            target = {"refId": chr(ord("A") + i), "datasource": DS, "expr": expr,
                      "legendFormat": legend, "range": kind != "table", "instant": kind == "table"}
            if kind == "table":
                target["format"] = "table"
            p["targets"].append(target)
        self.panels.append(p)
        self.x += w
        self.row_h = max(self.row_h, h)
        return p

    def ts(self, title, targets, **kw):
        return self.panel("timeseries", title, targets, **kw)

    def stat(self, title, targets, w=4, h=4, **kw):
        return self.panel("stat", title, targets, w=w, h=h,
                          options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                                     "values": False},
                                   "colorMode": "value", "graphMode": "area",
                                   "textMode": "auto"}, **kw)

    def table(self, title, targets, w=8, h=9, **kw):
        p = self.panel("table", title, targets, w=w, h=h,
                       options={"showHeader": True, "sortBy": [{"displayName": "Value",
                                                                "desc": True}]}, **kw)
        p["transformations"] = [{"id": "organize", "options": {
            "excludeByName": {"Time": True}, "renameByName": {}}}]
        return p


def top(metric, label, window_var="$window"):
    """Top 10 over the selected instances: an entry's count is summed over the instances that
    have it in their own top-N (a lower bound where an instance's top-N left it out)."""
    return ("topk(10, sum by (%s) (%s))" % (label, sel(metric, 'window="%s"' % window_var)),
            "{{%s}}" % label)


def build():
    b = Board()

    b.row("Overview")
    b.stat("Instances up", [("sum(up{%s})" % SEL, "up")],
           description="Targets of the selected jobs that Prometheus scraped successfully.")
    b.stat("Queries/s", [(rate("dnsmon_queries_total"), "queries/s")], unit="reqps")
    b.stat("Responses/s", [(rate("dnsmon_responses_total"), "responses/s")], unit="reqps")
    b.stat("Frames dropped/s", [(rate("dnsmon_capture_dropped_total"), "dropped/s")],
           unit="pps", description="Every stage: kernel, interface, ring.")
    b.stat("Matched responses", [(
        'sum(rate(dnsmon_query_matching_total{%s, result="matched"}[$__rate_interval]))'
        ' / sum(rate(dnsmon_responses_total{%s}[$__rate_interval]))' % (SEL, SEL), "matched")],
        unit="percentunit", description="Share of responses that met their query.")
    b.stat("Versions", [("count by (version) (%s)" % sel("dnsmon_build_info"), "{{version}}")],
           description="Instances per dnsmon version.")
    b.ts("Capture sources up", [("min by (instance, source) (%s)" % sel("dnsmon_capture_up"),
                                 "{{instance}} {{source}}")], w=12, h=6,
         description="Per instance and source: 1 while the source delivers, 0 after it ended "
                     "(a finished replay shows 0).")
    b.ts("Frames/s by result", [(rate("dnsmon_packets_total", ["result"]), "{{result}}")],
         unit="pps", w=12, h=6, stack=True)

    b.row("Traffic by qtype and rcode")
    b.ts("Queries/s by qtype", [(rate("dnsmon_queries_total", ["qtype"]), "{{qtype}}")],
         unit="reqps", w=8, stack=True)
    b.ts("Responses/s by rcode", [(rate("dnsmon_responses_total", ["rcode"]), "{{rcode}}")],
         unit="reqps", w=8, stack=True)
    b.ts("Responses/s by qtype and rcode class",
         [(rate("dnsmon_responses_by_qtype_total", ["qtype", "rcode_class"]),
           "{{qtype}} {{rcode_class}}")], unit="reqps", w=8)
    b.ts("NXDOMAIN and SERVFAIL share", [
        ('sum by (rcode) (rate(dnsmon_responses_total{%s, rcode=~"NXDOMAIN|SERVFAIL"}'
         '[$__rate_interval])) / scalar(sum(rate(dnsmon_responses_total{%s}'
         '[$__rate_interval])))' % (SEL, SEL), "{{rcode}}")], unit="percentunit", w=8)
    b.ts("Messages/s by transport and direction",
         [(rate("dnsmon_messages_total", ["protocol", "transport", "direction"]),
           "{{protocol}} {{transport}} {{direction}}"),
          (rate("dnsmon_truncated_responses_total"), "truncated responses (TC)")],
         unit="pps", w=8)
    b.ts("Messages/s by IP family, opcode and EDNS",
         [(rate("dnsmon_messages_by_family_total", ["family", "transport"]),
           "{{family}} {{transport}}"),
          (rate("dnsmon_opcodes_total", ["opcode"]), "opcode {{opcode}}"),
          (rate("dnsmon_query_edns_total", ["edns"]), "queries EDNS {{edns}}")],
         unit="pps", w=8)
    b.ts("Bytes/s", [(rate("dnsmon_packet_bytes_total"), "frames (wire)"),
                     (rate("dnsmon_dns_message_bytes_total", ["direction"]),
                      "DNS {{direction}}")], unit="Bps", w=12)
    b.ts("DNS message size p50/p99",
         [("histogram_quantile(%s, %s)" % (q, rate("dnsmon_message_size_bytes_bucket",
                                                   ["direction", "le"])),
           "p%s {{direction}}" % int(float(q) * 100)) for q in ("0.5", "0.99")],
         unit="bytes", w=12)

    b.row("Latency")
    b.ts("Response latency p50 / p90 / p99 (all instances)",
         [("histogram_quantile(%s, %s)" % (q, rate("dnsmon_response_latency_seconds_bucket",
                                                   ["le"])),
           "p%s" % int(float(q) * 100)) for q in ("0.5", "0.9", "0.99")],
         unit="s", w=12,
         description="histogram_quantile over the latency buckets summed across the selected "
                     "instances.")
    b.ts("Response latency p99 by transport and rcode class",
         [("histogram_quantile(0.99, %s)" % rate("dnsmon_response_latency_seconds_bucket",
                                                 ["transport", "rcode_class", "le"]),
           "p99 {{transport}} {{rcode_class}}")], unit="s", w=12)
    b.ts("Response latency p99 by instance",
         [("histogram_quantile(0.99, %s)" % rate("dnsmon_response_latency_seconds_bucket",
                                                 ["instance", "le"]), "p99 {{instance}}")],
         unit="s", w=12)
    b.ts("Mean response latency",
         [("%s / %s" % (rate("dnsmon_response_latency_seconds_sum"),
                        rate("dnsmon_response_latency_seconds_count")), "mean")],
         unit="s", w=12)
    b.ts("Response latency p50 / p99 by leg (client: queries to the server, upstream: from it)",
         [("histogram_quantile(%s, %s)" % (q, rate("dnsmon_response_latency_seconds_bucket",
                                                   ["leg", "le"])),
           "p%s {{leg}}" % int(float(q) * 100)) for q in ("0.5", "0.99")],
         unit="s", w=12,
         description="A resolver's two legs apart: its clients' queries (client) and its own "
                     "queries to authoritative servers (upstream), decided by the server's "
                     "addresses (capture.local_networks, and the host's own when live); "
                     "unknown when neither end is one of them.")
    b.ts("Matched responses/s by leg", [(rate("dnsmon_query_matching_total", ["leg"],
                                              'result="matched"'), "{{leg}}")],
         unit="pps", w=12)

    b.row("Query matching")
    b.ts("Query matching/s by result", [(rate("dnsmon_query_matching_total", ["result"]),
                                         "{{result}}")], unit="pps", w=12,
         description="matched responses, queries unanswered within the timeout, responses "
                     "without a query, retransmitted queries, queries evicted from a full table.")
    b.ts("Unanswered and unmatched share", [
        ('sum by (result) (rate(dnsmon_query_matching_total{%s, result=~"timeout|unmatched_response'
         '|evicted"}[$__rate_interval])) / scalar(sum(rate(dnsmon_queries_total{%s}'
         '[$__rate_interval])))' % (SEL, SEL), "{{result}}")], unit="percentunit", w=12)

    b.row("Drops at every stage")
    b.ts("Capture drops/s by stage (kernel, interface, ring)",
         [(rate("dnsmon_capture_dropped_total", ["where"]), "{{where}}")], unit="pps", w=8,
         description="kernel: the capture buffer was full; interface: the NIC or driver; ring: "
                     "frames a capture thread held for a full worker ring at a stop.")
    b.ts("Capture drops/s by instance and source",
         [(rate("dnsmon_capture_dropped_total", ["instance", "source", "where"]),
           "{{instance}} {{source}} {{where}}")], unit="pps", w=8)
    b.ts("Captured frames/s and snaplen-truncated frames/s",
         [(rate("dnsmon_capture_received_total"), "received"),
          (rate("dnsmon_capture_snaplen_truncated_total"), "truncated by snaplen")],
         unit="pps", w=8)
    b.ts("Worker ring fill (highest instance)",
         [("max by (worker) (%s / %s)" % (sel("dnsmon_ring_occupancy_slots"),
                                          sel("dnsmon_ring_capacity_slots")), "slots w{{worker}}"),
          ("max by (worker) (%s / %s)" % (sel("dnsmon_ring_used_bytes"),
                                          sel("dnsmon_ring_capacity_bytes")), "bytes w{{worker}}")],
         unit="percentunit", w=8)
    b.ts("IP fragment reassembly: losses/s",
         [(rate("dnsmon_ip_reassembly_events_total", ["event"],
                'event=~"timed_out|evicted|over_budget|too_large|too_many_fragments|overlap|invalid"'),
           "{{event}}")], unit="pps", w=8)
    b.ts("TCP stream reassembly: losses/s",
         [(rate("dnsmon_tcp_reassembly_events_total", ["event"],
                'event=~"gap|bytes_skipped|evicted|timed_out|oversized|midstream"'),
           "{{event}}")], unit="pps", w=8)
    b.ts("Reassembly activity/s",
         [(rate("dnsmon_ip_reassembly_events_total", ["event"],
                'event=~"fragment|reassembled|duplicate"'), "ip {{event}}"),
          (rate("dnsmon_tcp_reassembly_events_total", ["event"],
                'event=~"segment|message|out_of_order|duplicate|resync|closed"'), "tcp {{event}}"),
          (rate("dnsmon_reassembled_messages_total"), "messages from fragments")],
         unit="pps", w=12)
    b.ts("Lost output lines/s and long names skipped/s",
         [(rate("dnsmon_output_lost_lines_total", ["output"]), "lost lines {{output}}"),
          (rate("dnsmon_window_names_skipped_total"), "names skipped by the windows")],
         unit="pps", w=12)

    b.row("Top names and clients per window")
    b.table("Top domains ($window)", [top("dnsmon_window_top_domain_queries", "domain")])
    b.table("Top question names ($window)", [top("dnsmon_window_top_qname_queries", "qname")])
    b.table("Top clients ($window)", [top("dnsmon_window_top_client_queries", "client")])
    b.table("Top NXDOMAIN names ($window)",
            [top("dnsmon_window_top_nxdomain_responses", "qname")])
    b.table("Top SERVFAIL names ($window)",
            [top("dnsmon_window_top_servfail_responses", "qname")])
    b.ts("Top-N error bound (Space-Saving overcount, highest instance)",
         [("max by (table) (%s)" % sel("dnsmon_window_top_overcount", 'window="$window"'),
           "{{table}}")], w=8, h=9)
    b.ts("Distinct clients, names and domains ($window, per instance)",
         [("max by (instance) (%s)" % sel("dnsmon_window_distinct_%s" % kind, 'window="$window"'),
           "%s {{instance}}" % kind) for kind in ("clients", "qnames", "domains")], w=12,
         description="HyperLogLog estimates per instance: instances that see the same clients or "
                     "names would count them twice in a sum.")
    b.ts("Messages counted by the top-N tables ($window)",
         [("sum by (table) (%s)" % sel("dnsmon_window_messages", 'window="$window"'),
           "{{table}}")], w=12,
         description="The denominator of a top-N share; summed over instances.")
    b.ts("Window publications/s and domain cache lookups/s",
         [(rate("dnsmon_window_publications_total"), "publications"),
          (rate("dnsmon_domain_cache_lookups_total", ["result"]), "domain cache {{result}}")],
         unit="ops", w=12)

    b.row("Memory and tables")
    b.ts("Memory by table (sum over instances)",
         [("sum by (table) (%s)" % sel("dnsmon_memory_bytes"), "{{table}}")], unit="bytes",
         w=12, stack=True)
    b.ts("Memory by instance, against the analytics budget",
         [("sum by (instance) (%s)" % sel("dnsmon_memory_bytes"), "{{instance}} tables"),
          ("max by (instance) (%s)" % sel("dnsmon_analytics_memory_budget_bytes"),
           "{{instance}} analytics budget")], unit="bytes", w=12)
    b.ts("Table entries (sum over instances)",
         [("sum by (table) (%s)" % sel("dnsmon_table_entries"), "{{table}}")], w=12)
    b.ts("Table fill (highest instance)",
         [("max by (table) (%s / %s)" % (sel("dnsmon_table_entries"),
                                         sel("dnsmon_table_capacity_entries")), "{{table}}")],
         unit="percentunit", w=12)

    b.row("HTTP server (/metrics)")
    b.ts("Connections/s by how they ended",
         [(rate("dnsmon_http_connections_total", ["result"]), "{{result}}")], unit="ops", w=8)
    b.ts("Responses/s by status code",
         [(rate("dnsmon_http_responses_total", ["code"]), "{{code}}")], unit="ops", w=8)
    b.ts("Open connections",
         [("sum by (instance) (%s)" % sel("dnsmon_http_open_connections"), "{{instance}}"),
          ("sum by (instance) (scrape_duration_seconds{%s})" % SEL,
           "{{instance}} scrape duration (s)")], w=8)

    b.row("Detection")
    b.stat("Base rate: exclusive domains", [(BASE_RATE, "querier_concentration")], w=6, h=8,
           description="Domains currently queried almost only by one or two organisations "
                       "(highest instance). Judge every detection below against this number.")
    b.stat("Exclusive domains without the volume gate",
           [('max(dnsmon_detector_flagged_domains{%s, detector="querier_concentration_any"})'
             % SEL, "querier_concentration_any"), (BASE_RATE, "base rate")], w=6, h=8,
           description="The same share rule without the volume, activity and population gates "
                       "(most active domains pass it), beside the base rate.")
    b.ts("Logical time (per instance)",
         [("max by (instance) (%s) * 1000" % sel("dnsmon_logical_time_seconds"),
           "{{instance}}")], unit="dateTimeAsIso", w=12, min_zero=False,
         description="The detectors' clock: replay progress under time compression.")
    b.ts("Flagged domains by detector (highest instance), beside the base rate",
         [("max by (detector) (%s)" % sel("dnsmon_detector_flagged_domains"), "{{detector}}"),
          (BASE_RATE, BASE_RATE_LEGEND)], w=12)
    b.ts("Detector events/s by detector and severity, beside the base rate",
         [(rate("dnsmon_detector_events_total", ["detector", "severity"]),
           "{{detector}} {{severity}}"),
          (BASE_RATE, BASE_RATE_LEGEND)], unit="short", w=12)
    b.ts("Covert-pair score by domain (highest instance), beside the base rate",
         [('max by (domain) (dnsmon_domain_score{%s, detector="covert_pair"})' % SEL,
           "{{domain}}"),
          (BASE_RATE, BASE_RATE_LEGEND)], w=12,
         description="0.4 is the gate alone (the base-rate pattern); 0.6 medium, 0.8 high.")
    b.ts("Domain scores of the other detectors (highest instance), beside the base rate",
         [('max by (detector, domain) (dnsmon_domain_score{%s, detector!="covert_pair"})' % SEL,
           "{{detector}} {{domain}}"),
          (BASE_RATE, BASE_RATE_LEGEND)], w=12)
    b.table("Highest domain scores now, beside the base rate",
            [("topk(20, max by (detector, domain) (%s))" % sel("dnsmon_domain_score"),
              "{{detector}} {{domain}}"),
             (BASE_RATE, BASE_RATE_LEGEND)], w=12)
    b.ts("Domain table entries and capacity by tier (sum over instances)",
         [("sum by (tier) (%s)" % sel("dnsmon_domain_table_entries"), "{{tier}} entries"),
          ("sum by (tier) (%s)" % sel("dnsmon_domain_table_capacity_entries"), "{{tier}} capacity"),
          (BASE_RATE, BASE_RATE_LEGEND)], w=12)
    b.ts("Domain table evictions/s and admissions rejected/s by tier",
         [(rate("dnsmon_domain_table_evictions_total", ["tier"]), "{{tier}} evicted"),
          (rate("dnsmon_admission_rejected_total", ["tier"]), "{{tier}} rejected"),
          (BASE_RATE, BASE_RATE_LEGEND)], w=12)
    return b.panels


def variables():
    def query_var(name, label, query, description):
        return {
            "name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "definition": query,
            "refresh": 2, "multi": True, "includeAll": True, "sort": 1,
            "current": {"text": ["All"], "value": ["$__all"]},
            "description": description,
        }
    job = query_var("job", "Job", "label_values(dnsmon_build_info, job)",
                    "Prometheus jobs that scrape dnsmon.")
    instance = query_var("instance", "Instance",
                         'label_values(dnsmon_build_info{job=~"$job"}, instance)',
                         "dnsmon instances of the selected jobs.")
    # The schema's VariableModel has no `definition`: keep the query object only.
    for v in (job, instance):
        del v["definition"]
    return [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {"text": "Prometheus", "value": "prometheus"}, "refresh": 1,
         "description": "The Prometheus that scrapes dnsmon."},
        job,
        instance,
        {"name": "window", "label": "Window", "type": "query", "datasource": DS,
         "query": {"query": 'label_values(dnsmon_window_distinct_clients{%s}, window)' % SEL,
                   "refId": "PrometheusVariableQueryEditor-VariableQuery"},
         "refresh": 2, "multi": False, "includeAll": False, "sort": 0,
         "current": {"text": "1m", "value": "1m"},
         "description": "Sliding window of the top-N tables and distinct counts "
                        "(analytics.windows)."},
    ]


def dashboard():
    return {
        "uid": "dnsmon",
        "title": "dnsmon",
        "description": "DNS traffic, latency, drops, tables and detections of dnsmon instances.",
        "tags": ["dnsmon", "dns", "prometheus"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "utc",
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "templating": {"list": variables()},
        "links": [],
        "panels": build(),
    }


def main():
    out = Path(__file__).with_name("dnsmon.json")
    text = json.dumps(dashboard(), indent=2) + "\n"
    if sys.argv[1:] == ["--check"]:
        if not out.exists() or out.read_text() != text:
            sys.exit(f"{out} is not what {Path(__file__).name} writes: run it")
        print(f"ok: {out} is up to date")
        return
    if sys.argv[1:]:
        sys.exit(__doc__)
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
