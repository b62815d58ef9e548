#!/usr/bin/env python3
"""Prints `umbra simulate --json` results side by side: predictive vs reactive, with ratios,
and whether each trace meets the target (under-provisioned minutes <= 1/4 of the HPA's at
<= 110% of its instance-hours)."""
import json
import os
import sys

ROWS = [
    ("under-provisioned minutes", "under_provisioned_minutes", 1),
    ("unserved requests", "unserved_requests", 0),
    ("instance-hours", "instance_hours", 1),
    ("scaling actions", "scaling_actions", 0),
]


def meets(p, r):
    """The target: under-provisioned minutes <= 1/4 of the HPA's at <= 110% of its
    instance-hours (`p`, `r`: the predictive and reactive summaries of `umbra simulate --json`)."""
    return (p["under_provisioned_minutes"] <= 0.25 * r["under_provisioned_minutes"]
            and p["instance_hours"] <= 1.10 * r["instance_hours"])


def ratio(p, r):
    if r > 0:
        return f"{p / r:.2f}"
    return "-" if p == 0 else "inf"


def main(paths):
    print(f"{'trace':<28} {'':<26} {'predictive':>12} {'reactive':>12} {'ratio':>7}")
    for path in paths:
        with open(path) as f:
            result = json.load(f)
        p, r, s = result["predictive"], result["reactive"], result["settings"]
        name = os.path.basename(s["trace"]).removesuffix(".csv")
        for i, (label, key, decimals) in enumerate(ROWS):
            first = f"{name[:28]:<28}" if i == 0 else " " * 28
            print(f"{first} {label:<26} {p[key]:>12.{decimals}f} {r[key]:>12.{decimals}f} "
                  f"{ratio(p[key], r[key]):>7}")
        under = ratio(p["under_provisioned_minutes"], r["under_provisioned_minutes"])
        cost = ratio(p["instance_hours"], r["instance_hours"])
        verdict = "MET" if meets(p, r) else "MISSED"
        print(f"{'':<28} migrations {p['migrations']} (attempts {p['migration_attempts']}), "
              f"rollbacks {p['rollbacks']}; primary {s['primary_instances']} x "
              f"{s['instance_capacity']:g} rps; model {s['model']}")
        print(f"{'':<28} target (<= 0.25x minutes at <= 1.10x instance-hours): {verdict} "
              f"({under}x minutes, {cost}x instance-hours)")


if __name__ == "__main__":
    main(sys.argv[1:])
