#!/usr/bin/env python3
"""Checks dnsmon's module graph against the allowed edges (docs/architecture.md).

Two views must agree with the table below:
  - the CMake targets: `cmake --graphviz` of a fresh configure, our targets' link edges;
  - the sources: every `#include "dnsmon/..."` of a module's files names a header of the module
    itself or of a module it may use, and no `#include "..."` reaches into another module's folder.

usage: check_modules.py SOURCE_DIR
Exit 0 when everything follows the table, 1 with one line per violation otherwise.
"""
import os
import re
import subprocess
import sys
import tempfile

# module: (folders of its sources, public header prefixes under an include/ folder, CMake
# targets, modules it may use). A module may always use itself.
MODULES = {
    "common": (["common"], ["dnsmon/common/"], ["dnsmon_common"], []),
    "ring": (["capture/ring"], ["dnsmon/ring.hpp"], ["dnsmon_ring"], []),
    "capture": (["capture/src", "capture/include"], ["dnsmon/capture.hpp", "dnsmon/dedup.hpp", "dnsmon/capture/"],
                ["dnsmon_capture"],
                ["ring", "common"]),
    "parser": (["parser"], ["dnsmon/parser.hpp", "dnsmon/parser/"], ["dnsmon_parser"],
               ["ring", "common"]),
    "domains": (["metrics/domains"], ["dnsmon/domains.hpp"], ["dnsmon_domains"], ["common"]),
    "analytics": (["metrics/analytics"], ["dnsmon/analytics.hpp", "dnsmon/analytics/"],
                  ["dnsmon_analytics"], ["domains", "parser", "ring", "common"]),
    # Per-domain detection: lookup events from the workers, the domain tables, the event log.
    "detect": (["metrics/detect"], ["dnsmon/detect.hpp", "dnsmon/detect/"], ["dnsmon_detect"],
               ["analytics", "domains", "parser", "ring", "common"]),
    # Nothing depends on the exporter but the config (for its options) and the daemon.
    "export": (["metrics/export"], ["dnsmon/metrics.hpp", "dnsmon/export/"], ["dnsmon_metrics"],
               ["detect", "analytics", "domains", "parser", "ring", "common"]),
    # The config module binds the option structs of the modules it configures.
    "config": (["config"], ["dnsmon/config.hpp", "dnsmon/version.hpp"], ["dnsmon_config"],
               ["capture", "parser", "analytics", "domains", "detect", "export", "ring", "common"]),
    "daemon": (["daemon"], [], ["dnsmon", "dnsmon_daemon_core"],
               ["config", "capture", "parser", "analytics", "domains", "detect", "export", "ring",
                "common", "demo", "scenario"]),
    # The generators: the small library that writes pcap files and Scenario A, which make the
    # demo capture (all the daemon links), and the profiles and command-line tool for tests and
    # benchmarks, which the daemon never builds.
    "demo": ([], [], ["dnsmon_demo_gen"], []),
    # Scenario A, streamed frame by frame: gen_scenario and the daemon's demo.
    "scenario": ([], [], ["dnsmon_scenario"], ["demo", "common"]),
    "tools": (["tools"], [], ["dnsmon_gen_pcap", "dnsmon_gen_profiles", "dnsmon_gen_scenario"],
              ["demo", "scenario", "common"]),
}

# Headers of a used module that a module may include, when it may not include all of them: the
# config module sees only the detection options, not the engine.
ONLY_HEADERS = {("config", "detect"): {"dnsmon/detect.hpp", "dnsmon/detect/params.hpp"}}

SOURCE_SUFFIXES = (".cpp", ".hpp", ".h", ".cc")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def owner_of_header(header):
    """The module whose public header this is, or None."""
    best = None
    for name, (_, prefixes, _, _) in MODULES.items():
        for prefix in prefixes:
            if header == prefix or (prefix.endswith("/") and header.startswith(prefix)):
                if best is None or len(prefix) > best[1]:
                    best = (name, len(prefix))
    return best[0] if best else None


def module_of_file(rel):
    best = None
    for name, (folders, _, _, _) in MODULES.items():
        for folder in folders:
            if rel == folder or rel.startswith(folder + "/"):
                if best is None or len(folder) > best[1]:
                    best = (name, len(folder))
    return best[0] if best else None


def check_includes(src):
    problems = []
    for name, (folders, _, _, _) in MODULES.items():
        for folder in folders:
            for root, _, files in os.walk(os.path.join(src, folder)):
                for f in files:
                    if not f.endswith(SOURCE_SUFFIXES):
                        continue
                    path = os.path.join(root, f)
                    rel = os.path.relpath(path, src)
                    if module_of_file(rel) != name:
                        continue  # a nested module's file, checked as that module
                    allowed = set(MODULES[name][3]) | {name}
                    with open(path, encoding="utf-8", errors="replace") as fh:
                        for lineno, line in enumerate(fh, 1):
                            m = INCLUDE.match(line)
                            if not m:
                                continue
                            inc = m.group(1)
                            if inc.startswith("dnsmon/"):
                                owner = owner_of_header(inc)
                                if owner is None:
                                    problems.append(f"{rel}:{lineno}: {inc} is no module's public header")
                                elif owner not in allowed:
                                    problems.append(
                                        f"{rel}:{lineno}: module {name} includes {inc} of module "
                                        f"{owner}, which it may not use")
                                elif (name, owner) in ONLY_HEADERS and \
                                        inc not in ONLY_HEADERS[(name, owner)]:
                                    problems.append(
                                        f"{rel}:{lineno}: module {name} may use only the options "
                                        f"of module {owner}, not {inc}")
                            elif ".." in inc.split("/"):
                                target = os.path.normpath(os.path.join(os.path.dirname(rel), inc))
                                if module_of_file(target) not in (name, None):
                                    problems.append(f"{rel}:{lineno}: reaches into {target}")
    return problems


def check_targets(src):
    target_module = {t: name for name, (_, _, targets, _) in MODULES.items() for t in targets}
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        dot = os.path.join(tmp, "graph.dot")
        run = subprocess.run(
            ["cmake", "-S", src, "-B", os.path.join(tmp, "build"), f"--graphviz={dot}",
             "-DDNSMON_BUILD_TESTS=OFF", "-DDNSMON_BUILD_BENCHMARKS=OFF"],
            capture_output=True, text=True, check=False)
        if run.returncode != 0:
            return [f"cmake configure failed:\n{run.stderr}"]
        with open(dot, encoding="utf-8") as fh:
            text = fh.read()
    # A label is the target's name, then "\n(alias)" for a target with an alias.
    nodes = {node: label.split("\\n")[0]
             for node, label in re.findall(r'"(node\d+)"\s*\[\s*label\s*=\s*"([^"]+)"', text)}
    edges = re.findall(r'"(node\d+)"\s*->\s*"(node\d+)"', text)
    seen = set()
    for a, b in edges:
        ta, tb = nodes.get(a), nodes.get(b)
        ma, mb = target_module.get(ta), target_module.get(tb)
        if ma is None or mb is None or ma == mb:
            continue
        seen.add((ma, mb))
        if mb not in MODULES[ma][3]:
            problems.append(f"CMake: target {ta} ({ma}) links {tb} ({mb}), which {ma} may not use")
    for name, (_, _, targets, _) in MODULES.items():
        for t in targets:
            if t not in nodes.values():
                problems.append(f"CMake: target {t} of module {name} does not exist")
    return problems, seen


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    src = os.path.abspath(sys.argv[1])
    problems = check_includes(src)
    target_problems, edges = check_targets(src)
    problems += target_problems
    print("module edges in CMake: " + ", ".join(f"{a}->{b}" for a, b in sorted(edges)))
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} violation(s) of the allowed module edges")
        return 1
    print("every include and link follows the allowed module edges")
    return 0


if __name__ == "__main__":
    sys.exit(main())
