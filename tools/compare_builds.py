#!/usr/bin/env python3
"""Compares the CPU cost of two dnsmon binaries on one capture, in paired runs.

    tools/compare_builds.py [--rounds N] [--pcap FILE] [--arg ARG ...] OLD NEW

Each round runs both binaries back to back (OLD then NEW in odd rounds, NEW then OLD in even
ones, so a drift of the machine hurts both alike) with `-r FILE --metrics-out /dev/null
--log-level off` and any --arg, and takes each process's user+sys CPU time from wait4(2).
It prints every pair and the median of the NEW/OLD ratios: below 1, NEW is cheaper.

On a shared machine the absolute times of two runs minutes apart can differ by half; the ratio
of two runs seconds apart moves much less. Use this to judge a change, and tools/bench.sh for
the table.
"""

import argparse
import os
import statistics
import subprocess
import sys

DEFAULT_PCAP = "build/bench-data/bench-s1-2000000.pcap"


def cpu_seconds(binary, pcap, extra):
    argv = [binary, "-r", pcap, "--metrics-out", "/dev/null", "--log-level", "off", *extra]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{binary} exited with {code}")
    return usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rounds", type=int, default=10, help="pairs to run (default 10)")
    parser.add_argument("--pcap", default=DEFAULT_PCAP,
                        help=f"capture to replay (default {DEFAULT_PCAP}, from tools/bench.sh)")
    parser.add_argument("--arg", action="append", default=[],
                        help="one more argument for both binaries (repeatable)")
    args = parser.parse_args()
    for path in (args.old, args.new):
        if not os.access(path, os.X_OK):
            sys.exit(f"not an executable: {path}")
    if not os.path.exists(args.pcap):
        sys.exit(f"no capture {args.pcap}: tools/bench.sh --only baseline generates it")
    if args.rounds < 1:
        sys.exit("--rounds must be at least 1")

    ratios = []
    for r in range(args.rounds):
        if r % 2 == 0:
            old = cpu_seconds(args.old, args.pcap, args.arg)
            new = cpu_seconds(args.new, args.pcap, args.arg)
        else:
            new = cpu_seconds(args.new, args.pcap, args.arg)
            old = cpu_seconds(args.old, args.pcap, args.arg)
        ratios.append(new / old)
        print(f"round {r + 1:2}: old {old:.3f} s  new {new:.3f} s  new/old {new / old:.3f}",
              flush=True)
    print(f"median new/old over {len(ratios)} rounds: {statistics.median(ratios):.3f} "
          f"(lowest {min(ratios):.3f}, highest {max(ratios):.3f})")


if __name__ == "__main__":
    main()
