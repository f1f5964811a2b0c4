#!/usr/bin/env python3
"""Merges metric snapshot files (dnsmon --metrics-snapshot-dir: OpenMetrics text, every sample
with its timestamp, one # EOF each) into one OpenMetrics input for
`promtool tsdb create-blocks-from openmetrics`, adding the labels a scrape would have added.

usage: merge_snapshots.py OUT JOB INSTANCE SNAPSHOT...

The snapshots are given in time order. Each family's # HELP, # TYPE and # UNIT lines appear once,
then every sample of the family: grouped by labelset (a histogram's or summary's buckets,
quantiles, _sum and _count stay together), each group's points in time order, then one # EOF.
Every sample gets job="JOB" and instance="INSTANCE" in front of its own labels.
"""
import re
import sys

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?( .*)$')
# Labels that tell apart the samples of one point of a histogram or a summary.
POINT_LABELS = re.compile(r'(?:^|,)(?:le|quantile)="[^"]*"')


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    out, job, instance, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    added = f'job="{job}",instance="{instance}"'
    families = {}  # family -> (metadata lines, {labelset -> [lines]}); insertion order kept
    for path in files:
        family = None
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if line == "# EOF":
                    break
                if line.startswith("# "):
                    parts = line.split(" ", 3)
                    if len(parts) >= 3 and parts[1] in ("HELP", "TYPE", "UNIT"):
                        family = parts[2]
                        meta, _ = families.setdefault(family, ([], {}))
                        if line not in meta:
                            meta.append(line)
                    continue
                m = SAMPLE.match(line)
                if not m or family is None:
                    sys.exit(f"{path}: cannot read the line: {line}")
                name, labels, rest = m.group(1), m.group(2) or "", m.group(3)
                key = POINT_LABELS.sub("", labels).lstrip(",")
                text = f"{name}{{{added}{',' + labels if labels else ''}}}{rest}"
                families[family][1].setdefault(key, []).append(text)
    with open(out, "w") as f:
        for meta, series in families.values():
            f.write("\n".join(meta) + "\n")
            for lines in series.values():
                f.write("\n".join(lines) + "\n")
        f.write("# EOF\n")


if __name__ == "__main__":
    main()
