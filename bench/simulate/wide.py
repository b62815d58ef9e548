#!/usr/bin/env python3
"""The wide replay benchmark: the built-in policy (nothing tuned, no per-trace setting) on every
real trace in ../shared/data/traces that is demand-like and sub-hourly, plus two synthetic
ones, at two start-up times, against the Kubernetes HPA and perfect foresight.

Each trace is replayed as a new user would (issue 9): `umbra simulate --trace T
--instance-capacity C --startup S`, C = the trace's 95th percentile / 10 (about ten instances
carry a busy hour), everything else at `umbra simulate`'s defaults except the refit pace
(`--refit-every 15m`, which keeps the run under 15 minutes; the live controller refits at
every new sample).

Traces are split once, before any result was looked at, into those the defaults may be chosen
on (`chosen`) and those they may not (`held-out`); both are reported apart so a default that
only fits the traces it was chosen on shows.

    wide.py BIN [--only NAME[,NAME]] [--split chosen|held-out] [--startups 30s,300s] [--jobs 2]
            [--policy FILE] [--json-out FILE]

`--policy` replays a candidate policy file instead of the built-in one (for choosing defaults
on the `chosen` split; the benchmark's figures are the built-in policy's).
"""
import argparse
import concurrent.futures
import csv
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time

from table import meets  # the target, as bench/simulate/run.sh judges it

HERE = os.path.dirname(os.path.abspath(__file__))
TRACES = os.path.normpath(os.path.join(HERE, "../../../shared/data/traces"))

# (file under TRACES, split). Daily and monthly traces (Prophet's examples) are left out: a
# start-up of minutes means nothing against a day's step.
REAL = [
    ("numenta-NAB/elb_request_count_8c0756.csv", "chosen"),
    ("numenta-NAB/nyc_taxi.csv", "chosen"),
    ("numenta-NAB/ec2_cpu_utilization_825cc2.csv", "chosen"),
    ("numenta-NAB/cpu_utilization_asg_misconfiguration.csv", "chosen"),
    ("numenta-NAB/Twitter_volume_AAPL.csv", "chosen"),
    ("numenta-NAB/ec2_network_in_257a54.csv", "chosen"),
    ("numenta-NAB/ec2_cpu_utilization_5f5533.csv", "held-out"),
    ("numenta-NAB/rds_cpu_utilization_cc0c53.csv", "held-out"),
    ("numenta-NAB/ec2_request_latency_system_failure.csv", "held-out"),
    ("numenta-NAB/ec2_disk_write_bytes_c0d644.csv", "held-out"),
    ("numenta-NAB/Twitter_volume_AMZN.csv", "held-out"),
    ("numenta-NAB/occupancy_6005.csv", "held-out"),
    ("numenta-NAB/speed_6005.csv", "held-out"),
]
SYNTHETIC = [("synthetic_surges", "chosen"), ("synthetic_level_shift", "held-out")]

START = 1_700_000_000 - 1_700_000_000 % 86_400  # a midnight, UTC


def synthetic(name, path):
    """Seeded series with known structure: 10 days of 5-minute samples."""
    rng = random.Random(9)
    rows = []
    surge_days = {3, 5, 8}
    for i in range(10 * 288):
        t = START + i * 300
        day, minute = divmod(i * 5, 1440)
        daily = 100 + 60 * math.sin(2 * math.pi * (minute - 480) / 1440)
        if name == "synthetic_surges":
            # An unannounced 3x surge for an hour, at a different time each surge day.
            surge_at = 600 + 130 * day
            level = daily * (3.0 if day in surge_days and surge_at <= minute < surge_at + 60 else 1.0)
        else:
            # The level doubles for good from day 5, 14:00 (a launch).
            level = daily * (2.0 if (day, minute) >= (5, 840) else 1.0)
        rows.append((t, max(0.0, level * (1 + rng.gauss(0, 0.05)))))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "value"])
        for t, v in rows:
            w.writerow([time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)), f"{v:.3f}"])


def p95(path):
    values = []
    with open(path) as f:
        for row in csv.reader(f):
            try:
                values.append(float(row[1]))
            except (ValueError, IndexError):
                continue
    values.sort()
    return values[min(len(values) - 1, math.ceil(0.95 * len(values)) - 1)]


def replay(binary, path, startup, capacity, policy):
    started = time.monotonic()
    cmd = [binary, "simulate", "--trace", path, "--instance-capacity", f"{capacity:.6g}",
           "--startup", startup, "--refit-every", "15m", "--threads", "1", "--json"]
    if policy:
        cmd += ["--policy", policy]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    result = json.loads(proc.stdout)
    result["seconds"] = time.monotonic() - started
    return result


def ratio(a, b):
    if b > 0:
        return a / b
    return 0.0 if a == 0 else math.inf


def fmt(x, digits=2):
    return "inf" if math.isinf(x) else f"{x:.{digits}f}"


def report(rows, startups):
    print(f"{'trace':<38} {'split':<8} {'start':>5} | {'short min U / HPA':>19} {'ratio':>6} | "
          f"{'inst-h U/HPA':>12} {'U/oracle':>8} {'HPA/oracle':>10} | {'target':<6} {'time':>6}")
    for row in rows:
        p, r, o = row["predictive"], row["reactive"], row["oracle"]
        short = f"{p['under_provisioned_minutes']:.1f} / {r['under_provisioned_minutes']:.1f}"
        print(f"{row['name'][:38]:<38} {row['split']:<8} {row['startup']:>5} | {short:>19} "
              f"{fmt(ratio(p['under_provisioned_minutes'], r['under_provisioned_minutes'])):>6} | "
              f"{fmt(ratio(p['instance_hours'], r['instance_hours'])):>12} "
              f"{fmt(ratio(p['instance_hours'], o['instance_hours'])):>8} "
              f"{fmt(ratio(r['instance_hours'], o['instance_hours'])):>10} | "
              f"{'met' if meets(p, r) else 'MISSED':<6} {row['seconds']:>5.0f}s")
    print()
    print("overall (totals over the traces; cost also as the geometric mean of per-trace ratios):")
    for split in ("chosen", "held-out", "all"):
        for startup in startups:
            sel = [x for x in rows if x["startup"] == startup and split in ("all", x["split"])]
            if not sel:
                continue
            pm = sum(x["predictive"]["under_provisioned_minutes"] for x in sel)
            rm = sum(x["reactive"]["under_provisioned_minutes"] for x in sel)
            ph = sum(x["predictive"]["instance_hours"] for x in sel)
            rh = sum(x["reactive"]["instance_hours"] for x in sel)
            oh = sum(x["oracle"]["instance_hours"] for x in sel)
            geo = math.exp(sum(math.log(ratio(x["predictive"]["instance_hours"],
                                              x["reactive"]["instance_hours"])) for x in sel)
                           / len(sel))
            met = sum(1 for x in sel if meets(x["predictive"], x["reactive"]))
            print(f"  {split:<8} start-up {startup:>4}: {len(sel):>2} traces, short {pm:.1f} / "
                  f"{rm:.1f} min ({fmt(ratio(pm, rm))}x the HPA), instance-hours "
                  f"{fmt(ratio(ph, rh))}x the HPA (geo mean {geo:.2f}x), {fmt(ratio(ph, oh))}x "
                  f"perfect foresight (HPA {fmt(ratio(rh, oh))}x); target met on {met}/{len(sel)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--only", help="comma-separated trace names (file stems)")
    ap.add_argument("--startups", default="30s,300s")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--split", choices=["chosen", "held-out"])
    ap.add_argument("--policy", help="a candidate policy file instead of the built-in one")
    ap.add_argument("--json-out", help="write every result here (JSON lines)")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="umbra-wide-")
    traces = []
    for rel, split in REAL:
        path = os.path.join(TRACES, rel)
        if not os.path.exists(path):
            sys.exit(f"missing trace {path} (the bench reads ../shared/data/traces)")
        traces.append((os.path.basename(rel).removesuffix(".csv"), path, split))
    for name, split in SYNTHETIC:
        path = os.path.join(tmp, name + ".csv")
        synthetic(name, path)
        traces.append((name, path, split))
    if args.only:
        keep = set(args.only.split(","))
        traces = [t for t in traces if t[0] in keep]
    if args.split:
        traces = [t for t in traces if t[2] == args.split]
    startups = args.startups.split(",")

    started = time.monotonic()
    jobs = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for name, path, split in traces:
            capacity = p95(path) / 10
            for startup in startups:
                fut = pool.submit(replay, args.binary, path, startup, capacity, args.policy)
                jobs.append((name, split, startup, capacity, fut))
        rows = []
        for name, split, startup, capacity, fut in jobs:
            result = fut.result()
            result.update(name=name, split=split, startup=startup, capacity=capacity)
            rows.append(result)
            print(f"  {name} @ {startup}: {result['seconds']:.1f} s", file=sys.stderr)
    if args.json_out:
        with open(args.json_out, "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    print(f"{len(rows)} replays in {time.monotonic() - started:.0f} s "
          f"({args.policy or 'built-in policy'}; capacity = p95 / 10; --refit-every 15m; {args.jobs} at a time)")
    print()
    report(rows, startups)


if __name__ == "__main__":
    main()
