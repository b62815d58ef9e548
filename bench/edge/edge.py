"""Helpers for bench/edge/tls.sh and reload.sh: readiness checks over https and on a response
header, a TLS probe (what each server negotiates, whether it resumes sessions), a client that
makes full TLS handshakes, result records for wrk, h2load and that client, wrk's error counts
for the reload benchmark, and both reports.

Standard library only. Snapshots, records and medians come from bench/proxy/bench.py.
"""

import argparse
import json
import multiprocessing
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

# No __pycache__ left in the source tree by the import.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proxy"))
import bench  # noqa: E402  (bench/proxy/bench.py, found through the path above)
from bench import fmt, median  # noqa: E402


def client_context(alpn=None):
    """A client context that, like wrk, does not verify the (self-signed) certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


# --- readiness and probes ---------------------------------------------------------------------

def cmd_wait(args):
    """Polls URL (a new connection each time) until it answers 200 with --body in the body and
    --header NAME=VALUE among the headers, or the timeout passes."""
    want = None
    if args.header:
        name, _, value = args.header.partition("=")
        want = (name.lower(), value)
    ctx = client_context() if args.url.startswith("https:") else None
    deadline = time.monotonic() + args.timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(args.url, timeout=2, context=ctx) as r:
                body = r.read().decode("utf-8", "replace")
                got = r.headers.get(want[0]) if want else None
                if (r.status == 200 and (args.body is None or args.body in body)
                        and (want is None or got == want[1])):
                    return
                last = f"status {r.status}, {want[0] if want else 'body'} " \
                       f"{got if want else body[:80]!r}"
        except Exception as e:  # refused while starting, 503 before ready, ...
            last = str(e)
        time.sleep(0.05)
    sys.exit(f"edge.py: {args.url} not ready after {args.timeout}s"
             f"{' (waiting for ' + args.header + ')' if args.header else ''}: {last}")


def fetch_once(host, port, ctx, session=None):
    """One `Connection: close` GET over a new TLS connection; returns the TLS socket's facts."""
    with socket.create_connection((host, port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="localhost", session=session) as t:
            t.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while True:  # to EOF, so TLS 1.3 session tickets are read too
                chunk = t.recv(65536)
                if not chunk:
                    break
                data += chunk
            return {"reused": t.session_reused, "session": t.session,
                    "status": data.split(b"\r\n", 1)[0].decode()}


def cmd_tls_probe(args):
    """One JSON line: protocol, cipher, key exchange and ALPN the server picks for an OpenSSL
    client offering h2 and http/1.1, and whether it resumes the session of a previous
    connection (wrk reuses its session when it reconnects)."""
    host, port = args.addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        with client_context(["h2", "http/1.1"]).wrap_socket(s, server_hostname="localhost") as t:
            first = {"version": t.version(), "cipher": t.cipher()[0],
                     "alpn": t.selected_alpn_protocol()}
    ctx = client_context()
    plain = fetch_once(host, int(port), ctx)
    again = fetch_once(host, int(port), ctx, session=plain["session"])
    group = "?"
    try:
        out = subprocess.run(
            ["openssl", "s_client", "-brief", "-connect", args.addr, "-servername", "localhost"],
            input=b"", capture_output=True, timeout=10).stderr.decode("utf-8", "replace")
        m = re.search(r"(?:Server|Peer) Temp Key: ([^\n]+)", out)
        group = m.group(1).strip() if m else "?"
    except (OSError, subprocess.TimeoutExpired):
        pass
    print(json.dumps({"protocol": first["version"], "cipher": first["cipher"],
                      "alpn": first["alpn"], "group": group, "resumes": again["reused"],
                      "status": plain["status"]}))


# --- full handshakes --------------------------------------------------------------------------

def handshake_worker(host, port, start_at, end_at, queue):
    ctx = client_context()
    req = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    errors = {"connect": 0, "handshake": 0, "read": 0, "status": 0}
    ok = reused = 0
    lat = []
    while time.monotonic() < start_at:
        time.sleep(0.001)
    last = start_at
    while time.monotonic() < end_at:
        t0 = time.monotonic()
        try:
            s = socket.create_connection((host, port), timeout=5)
        except OSError:
            errors["connect"] += 1
            continue
        try:
            t = ctx.wrap_socket(s, server_hostname="localhost")  # no session: a full handshake
        except (ssl.SSLError, OSError):
            errors["handshake"] += 1
            s.close()
            continue
        try:
            t.sendall(req)
            data = b""
            while True:
                chunk = t.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ssl.SSLError, OSError):
            errors["read"] += 1
            t.close()
            continue
        reused += t.session_reused
        t.close()
        last = time.monotonic()
        if data.startswith(b"HTTP/1.1 200 "):
            ok += 1
            lat.append(last - t0)
        else:
            errors["status"] += 1
    queue.put({"ok": ok, "reused": reused, "errors": errors, "lat": lat, "last": last})


def cmd_handshakes(args):
    """For --seconds, --procs processes each open a connection, make a full TLS handshake (no
    session offered), send one `Connection: close` GET, read the response to EOF and start
    over. Prints a JSON summary in WRKJSON's shape (requests = successful connections)."""
    host, port = args.addr.rsplit(":", 1)
    queue = multiprocessing.Queue()
    start_at = time.monotonic() + 0.2
    end_at = start_at + args.seconds
    procs = [multiprocessing.Process(target=handshake_worker,
                                     args=(host, int(port), start_at, end_at, queue))
             for _ in range(args.procs)]
    for p in procs:
        p.start()
    try:
        results = [queue.get(timeout=args.seconds + 60) for _ in procs]
    except Exception:  # queue.Empty: a client process died without reporting
        for p in procs:
            p.kill()
        sys.exit("edge.py: a handshake client process did not report (crashed?)")
    for p in procs:
        p.join()
    lat = sorted(x for r in results for x in r["lat"])
    errors = {k: sum(r["errors"][k] for r in results) for k in results[0]["errors"]}

    def pct(q):
        return round(lat[min(int(len(lat) * q), len(lat) - 1)] * 1e6) if lat else None

    out = {"requests": sum(r["ok"] for r in results),
           "duration_us": round((max(r["last"] for r in results) - start_at) * 1e6),
           "errors": errors, "reused": sum(r["reused"] for r in results),
           "lat_us": {"p50": pct(0.5), "p99": pct(0.99), "p999": pct(0.999)}}
    print(json.dumps(out))


# --- records ----------------------------------------------------------------------------------

def parse_h2load(path):
    """h2load's summary as WRKJSON's shape: requests = 2xx responses; errors: failed requests
    (h2load's `failed` includes errored and timed-out ones) and 3xx (expected none)."""
    text = open(path).read()
    fin = re.search(r"finished in ([\d.]+)(ms|s)", text)
    req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    proto = re.search(r"Application protocol: (\S+)", text)
    if not (fin and req and codes):
        sys.exit(f"edge.py: no h2load summary in {path}:\n{text[-2000:]}")
    if not proto or proto.group(1) != "h2":
        sys.exit(f"edge.py: h2load did not speak h2 ({proto.group(1) if proto else 'no ALPN'})"
                 f" in {path}")
    secs = float(fin.group(1)) / (1000 if fin.group(2) == "ms" else 1)
    return {"requests": int(codes.group(1)), "duration_us": secs * 1e6,
            "errors": {"failed": int(req.group(5)), "3xx": int(codes.group(2))},
            "lat_us": None}


def cmd_record(args):
    """A result line (bench.py's record plus scenario and, for the handshake client, the count
    of resumed sessions) for one run of wrk, h2load or the handshake client."""
    if args.kind == "wrk":
        w = bench.read_wrkjson(args.out)
    elif args.kind == "h2load":
        w = parse_h2load(args.out)
    else:
        with open(args.out) as f:
            w = json.load(f)
    with open(args.before) as f:
        b = json.load(f)
    with open(args.after) as f:
        a = json.load(f)
    rec = bench.make_record(w, b, a, args.target, args.rep, args.position, args.proxy_cpu)
    rec["scenario"] = args.scenario
    rec["error_kinds"] = w["errors"]
    if "reused" in w:
        rec["reused"] = w["reused"]
    print(json.dumps(rec))
    print(bench.progress_line(rec, f"{args.scenario}:{args.target}"), file=sys.stderr)


# --- the TLS report ---------------------------------------------------------------------------

# Per scenario: heading, the unit one "request" is, and which target pairs get ratios.
SCENARIOS = {
    "ka": ("HTTPS keep-alive (HTTP/1.1 over TLS, wrk)", "req", "requests/s"),
    "new": ("New connections, sessions resumed (wrk -H 'Connection: close')", "conn",
            "connections/s"),
    "full": ("New connections, full handshakes (edge.py handshakes)", "handshake",
             "handshakes/s"),
    "h2": ("HTTP/2 over TLS (h2load)", "req", "requests/s"),
}
RATIOS = [("umbra", "nginx"), ("umbra", "haproxy"), ("umbra_log", "umbra")]


def metric(r, key):
    if key in ("cpu_us", "user_us", "sys_us"):
        return r["proxy"][key] if r["proxy"] else None
    return r.get(key)


def cmd_tls_report(args):
    with open(args.results) as f:
        recs = [json.loads(ln) for ln in f if ln.strip()]
    with open(args.meta) as f:
        meta = json.load(f)
    labels = meta["labels"]
    out = []
    p = out.append
    p(f"### umbra-proxy vs nginx vs HAProxy at the edge (TLS): {meta['title']}")
    p("")
    p("What each server negotiated with an OpenSSL client (the library wrk uses) offering h2 "
      "and http/1.1; `resumes` = accepts the session of the previous connection:")
    p("")
    p("| target | protocol | cipher | key exchange | ALPN | resumes |")
    p("|---|---|---|---|---|---|")
    for t, probe in meta["probes"].items():
        p(f"| {labels[t]} | {probe['protocol']} | {probe['cipher']} | {probe['group']} "
          f"| {probe['alpn']} | {'yes' if probe['resumes'] else 'no'} |")
    for sc, (title, unit, rate) in SCENARIOS.items():
        rs = [r for r in recs if r["scenario"] == sc]
        if not rs:
            continue
        targets = [t for t in meta["targets"] if any(r["target"] == t for r in rs)]
        by = {(r["target"], r["rep"]): r for r in rs}
        reps = sorted({r["rep"] for r in rs})
        has_lat = any(r["p50_us"] is not None for r in rs)
        p("")
        p(f"#### {title}: {meta['commands'][sc]}")
        p("")
        head = f"| target | {rate} |" + (" p50 µs | p99 µs |" if has_lat else "")
        head += f" proxy CPU µs/{unit} | user | sys | proxy core busy % | errors |"
        if sc == "full":
            head += " resumed |"
        p(head)
        p("|---|" + "---:|" * (head.count("|") - 2))
        for t in targets:
            trs = [by[(t, k)] for k in reps if (t, k) in by]
            m = {k: median([metric(r, k) for r in trs])
                 for k in ("rps", "p50_us", "p99_us", "cpu_us", "user_us", "sys_us",
                           "proxy_core_busy_pct")}
            kinds = {}
            for r in trs:
                for k, v in r["error_kinds"].items():
                    kinds[k] = kinds.get(k, 0) + v
            errs = sum(kinds.values())
            err_cell = str(errs) + (" (" + ", ".join(f"{k} {v}" for k, v in kinds.items() if v)
                                    + ")" if errs else "")
            row = f"| {labels[t]} | {fmt(m['rps'])} |"
            if has_lat:
                row += f" {fmt(m['p50_us'])} | {fmt(m['p99_us'])} |"
            row += (f" {fmt(m['cpu_us'], 1)} | {fmt(m['user_us'], 1)} | {fmt(m['sys_us'], 1)}"
                    f" | {fmt(m['proxy_core_busy_pct'])} | {err_cell} |")
            if sc == "full":
                row += f" {sum(r.get('reused', 0) for r in trs)} |"
            p(row)
        pairs = [(a, b) for a, b in RATIOS if a in targets and b in targets]
        if pairs:
            p("")
            keys = ["rps"] + (["p50_us", "p99_us"] if has_lat else []) + ["cpu_us"]
            p(f"| ratio (median of same-repetition ratios) | {rate} |"
              + (" p50 | p99 |" if has_lat else "") + f" CPU/{unit} |")
            p("|---|" + "---:|" * len(keys))
            for a, b in pairs:
                cells = []
                for k in keys:
                    ratios = []
                    for rep in reps:
                        ra, rb = by.get((a, rep)), by.get((b, rep))
                        if ra and rb:
                            va, vb = metric(ra, k), metric(rb, k)
                            if va is not None and vb:
                                ratios.append(va / vb)
                    cells.append(fmt(median(ratios), 2))
                p(f"| {labels[a]} / {labels[b]} | " + " | ".join(cells) + " |")
    if meta.get("access_log"):
        p("")
        p(meta["access_log"])
    proxied = [r for r in recs if r["proxy"]] or recs
    p("")
    p(meta["setup"])
    p(f"Noise: {sum(1 for r in recs if r['compilers'])}/{len(recs)} runs saw rustc/cargo/cc "
      f"running; other processes used up to "
      f"{max(r['foreign_pct_proxy_core'] for r in proxied):.1f}% of the proxy core during a "
      f"run; load1 {min(r['load1'] for r in recs):.2f}-{max(r['load1'] for r in recs):.2f}.")
    p("")
    p(f"Command: `{meta['command']}`")
    print("\n".join(out))
    if args.per_rep:
        print("\nPer run (order rotated within each scenario):\n")
        print("| rep | scenario | pos | target | rate | proxy CPU µs | core busy % | "
              "foreign % on proxy core | errors | compilers |")
        print("|---:|---|---:|---|---:|---:|---:|---:|---:|---:|")
        order = list(SCENARIOS)
        for r in sorted(recs, key=lambda r: (r["rep"], order.index(r["scenario"]),
                                             r["position"])):
            print(f"| {r['rep']} | {r['scenario']} | {r['position']} | {labels[r['target']]} "
                  f"| {fmt(r['rps'])} | {fmt(metric(r, 'cpu_us'), 1)} "
                  f"| {r['proxy_core_busy_pct']:.0f} | {r['foreign_pct_proxy_core']:.1f} "
                  f"| {r['errors']} | {r['compilers']} |")


# --- the reload benchmark ---------------------------------------------------------------------

def parse_wrk_text(path):
    """wrk's own summary: requests, `Socket errors: connect A, read B, write C, timeout D` (only
    printed when one is non-zero) and `Non-2xx or 3xx responses: N`. Cross-checked against the
    WRKJSON line of report.lua when there is one."""
    text = open(path).read()
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    if not m:
        sys.exit(f"edge.py: no 'N requests in T' line in {path} (did wrk fail?):\n{text[-2000:]}")
    out = {"requests": int(m.group(1)), "connect": 0, "read": 0, "write": 0, "timeout": 0,
           "non2xx": 0}
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}.get(m.group(3), 1)
    out["seconds"] = float(m.group(2)) * unit
    s = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if s:
        out.update(connect=int(s.group(1)), read=int(s.group(2)), write=int(s.group(3)),
                   timeout=int(s.group(4)))
    n = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if n:
        out["non2xx"] = int(n.group(1))
    if "WRKJSON " in text:
        w = bench.read_wrkjson(path)
        e = w["errors"]
        check = {"requests": w["requests"], "connect": e["connect"], "read": e["read"],
                 "write": e["write"], "timeout": e["timeout"], "non2xx": e["status"]}
        if any(out[k] != v for k, v in check.items()):
            sys.exit(f"edge.py: wrk's text and report.lua disagree in {path}: {out} vs {check}")
    return out


ERROR_KINDS = ("connect", "read", "write", "timeout", "non2xx")


def cmd_reload_record(args):
    """One reload run as a JSON line: wrk's counts plus the timeline of reloads and upgrade."""
    rec = parse_wrk_text(args.wrk_out)
    with open(args.steps) as f:
        steps = [json.loads(ln) for ln in f if ln.strip()]
    rec.update(proxy=args.proxy, run=args.run, steps=steps)
    rec["errors"] = sum(rec[k] for k in ERROR_KINDS)
    print(json.dumps(rec))
    per = rec["errors"] / max(rec["requests"], 1) * 1e5
    print(f"[bench]   {args.proxy:8} run {args.run}: {rec['requests']:,} requests, "
          f"errors {rec['errors']} ({per:.1f} per 100k): "
          + ", ".join(f"{k} {rec[k]}" for k in ERROR_KINDS), file=sys.stderr)


def cmd_reload_report(args):
    with open(args.results) as f:
        recs = [json.loads(ln) for ln in f if ln.strip()]
    with open(args.meta) as f:
        meta = json.load(f)
    labels = meta["labels"]
    out = []
    p = out.append
    p(f"### Reloads and binary upgrade under load: {meta['title']}")
    p("")
    p("| proxy | run | requests | connect | read | write | timeout | non-2xx | errors "
      "| errors per 100k | sequence |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    totals = {}
    for t in meta["targets"]:
        rs = sorted((r for r in recs if r["proxy"] == t), key=lambda r: r["run"])
        if not rs:
            continue
        for r in rs:
            p(f"| {labels[t]} | {r['run']} | {r['requests']:,} | "
              + " | ".join(str(r[k]) for k in ERROR_KINDS)
              + f" | {r['errors']} | {r['errors'] / max(r['requests'], 1) * 1e5:.1f} "
              f"| {describe_steps(r['steps'])} |")
        tot = {k: sum(r[k] for r in rs) for k in ("requests", "errors") + ERROR_KINDS}
        totals[t] = tot
        p(f"| **{labels[t]}** | **all {len(rs)}** | **{tot['requests']:,}** | "
          + " | ".join(f"**{tot[k]}**" for k in ERROR_KINDS)
          + f" | **{tot['errors']}** | **{tot['errors'] / max(tot['requests'], 1) * 1e5:.1f}**"
          " | |")
    p("")
    p("| proxy | errors per 100k requests (all runs) | goal |")
    p("|---|---:|---|")
    for t, tot in totals.items():
        per = tot["errors"] / max(tot["requests"], 1) * 1e5
        goal = ("met (at most 1 per 100k)" if per <= 1 else "missed (more than 1 per 100k)") \
            if t == "umbra" else ""
        p(f"| {labels[t]} | {per:.1f} | {goal} |")
    p("")
    p(meta["setup"])
    p(f"Noise: rustc/cargo running at the start or end of {meta['noisy_runs']} of {len(recs)} "
      "runs.")
    p("")
    p(f"Command: `{meta['command']}`")
    print("\n".join(out))


def describe_steps(steps):
    """`5 reloads (new config served after 0.02-0.11 s), upgrade: old exited after 1.3 s`."""
    reloads = [s for s in steps if s["step"] == "reload"]
    upgrades = [s for s in steps if s["step"] == "upgrade"]
    parts = []
    if reloads:
        lo = min(s["served_after_s"] for s in reloads)
        hi = max(s["served_after_s"] for s in reloads)
        parts.append(f"{len(reloads)} reloads (served after {lo:.2f}-{hi:.2f} s)")
    for u in upgrades:
        parts.append(f"{u['how']}: old gone after {u['old_exited_after_s']:.1f} s")
    return "; ".join(parts)


def cmd_step(args):
    """Appends one step of the reload timeline (a JSON line) to --file."""
    rec = {"step": args.step, "gen": args.gen}
    if args.served_after is not None:
        rec["served_after_s"] = args.served_after
    if args.old_exited_after is not None:
        rec["old_exited_after_s"] = args.old_exited_after
    if args.how:
        rec["how"] = args.how
    with open(args.file, "a") as f:
        f.write(json.dumps(rec) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("wait")
    s.add_argument("url")
    s.add_argument("--timeout", type=float, default=30)
    s.add_argument("--body")
    s.add_argument("--header", help="NAME=VALUE the response must carry")
    s.set_defaults(f=cmd_wait)
    s = sub.add_parser("tls-probe")
    s.add_argument("addr", help="host:port")
    s.set_defaults(f=cmd_tls_probe)
    s = sub.add_parser("handshakes")
    s.add_argument("addr", help="host:port")
    s.add_argument("--seconds", type=float, required=True)
    s.add_argument("--procs", type=int, default=4)
    s.set_defaults(f=cmd_handshakes)
    s = sub.add_parser("record")
    s.add_argument("--kind", choices=("wrk", "h2load", "handshakes"), required=True)
    for a in ("--scenario", "--target", "--out", "--before", "--after"):
        s.add_argument(a, required=True)
    s.add_argument("--rep", type=int, required=True)
    s.add_argument("--position", type=int, required=True)
    s.add_argument("--proxy-cpu", type=int, default=1)
    s.set_defaults(f=cmd_record)
    s = sub.add_parser("tls-report")
    s.add_argument("results")
    s.add_argument("--meta", required=True)
    s.add_argument("--per-rep", action="store_true")
    s.set_defaults(f=cmd_tls_report)
    s = sub.add_parser("step")
    s.add_argument("--file", required=True)
    s.add_argument("--step", choices=("reload", "upgrade"), required=True)
    s.add_argument("--gen", type=int, required=True)
    s.add_argument("--served-after", type=float)
    s.add_argument("--old-exited-after", type=float)
    s.add_argument("--how")
    s.set_defaults(f=cmd_step)
    s = sub.add_parser("reload-record")
    for a in ("--proxy", "--wrk-out", "--steps"):
        s.add_argument(a, required=True)
    s.add_argument("--run", type=int, required=True)
    s.set_defaults(f=cmd_reload_record)
    s = sub.add_parser("reload-report")
    s.add_argument("results")
    s.add_argument("--meta", required=True)
    s.set_defaults(f=cmd_reload_report)
    args = ap.parse_args()
    args.f(args)


if __name__ == "__main__":
    main()
