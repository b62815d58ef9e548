"""Helpers for run.sh and callgrind.sh: free ports, readiness, CPU snapshots, a fixed-count
keep-alive client, and the report (medians of per-repetition values and ratios).
bench/edge/edge.py imports it for the same snapshots, records and medians.

Standard library only, so the benchmark needs nothing beyond python3, wrk, nginx and haproxy.
"""

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import sys
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cmd_ports(args):
    """Distinct free ports: all sockets stay bound until every port is picked."""
    socks = []
    for _ in range(args.n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def cmd_wait_http(args):
    """Polls URL until it answers 200 (and contains --body, if given) or the timeout passes."""
    deadline = time.monotonic() + args.timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(args.url, timeout=1) as r:
                body = r.read().decode("utf-8", "replace")
                if r.status == 200 and (args.body is None or args.body in body):
                    return
                last = f"status {r.status}, body {body[:80]!r}"
        except Exception as e:  # connection refused while starting, 503 before ready, ...
            last = str(e)
        time.sleep(0.1)
    sys.exit(f"bench.py: {args.url} not ready after {args.timeout}s: {last}")


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(root, kids=None):
    """root and all its descendants (nginx: master + worker)."""
    kids = kids if kids is not None else children_map()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cmd_descendants(args):
    kids = children_map()
    print(" ".join(str(p) for p in tree(args.pid, kids)[1:]))


def proc_cpu(pid):
    """utime/stime ticks of a process (all its threads, live and exited) and on-CPU ns of its
    live threads from schedstat (finer than the 10 ms ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        st = f.read()
    fields = st[st.rindex(")") + 2:].split()
    minflt, utime, stime = int(fields[7]), int(fields[11]), int(fields[12])
    sched_ns = ctxsw = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                sched_ns += int(f.read().split()[0])
            with open(f"/proc/{pid}/task/{t}/status") as f:
                for line in f:
                    if "ctxt_switches:" in line:  # voluntary and nonvoluntary
                        ctxsw += int(line.split()[1])
        except OSError:
            pass
    return utime, stime, sched_ns, ctxsw, minflt


def count_compilers():
    n = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    if f.read().strip() in ("rustc", "cargo", "cc1", "cc1plus", "ld", "lld"):
                        n += 1
            except OSError:
                pass
    return n


def core_ticks():
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if parts[0].startswith("cpu") and parts[0] != "cpu":
                v = [int(x) for x in parts[1:]]
                out[parts[0]] = (sum(v[:8]) - v[3] - v[4], sum(v[:8]))
    return out


def cmd_busy(args):
    """Prints the busiest core's utilisation (%) over --seconds: what other work would steal."""
    a = core_ticks()
    time.sleep(args.seconds)
    b = core_ticks()
    print(f"{max((b[c][0] - a[c][0]) / max(b[c][1] - a[c][1], 1) * 100 for c in a):.0f}")


def cmd_snap(args):
    """One JSON snapshot: CPU of each named process tree, per-core busy ticks, compilers seen."""
    kids = children_map()
    procs = {}
    for name_pid in args.procs:
        name, pid = name_pid.split("=")
        u = s = ns = cs = mf = 0
        for p in tree(int(pid), kids):
            try:
                pu, ps, pns, pcs, pmf = proc_cpu(p)
            except OSError:
                continue
            u, s, ns, cs, mf = u + pu, s + ps, ns + pns, cs + pcs, mf + pmf
        procs[name] = {"utime": u, "stime": s, "sched_ns": ns, "ctxsw": cs, "minflt": mf}
    cores = {c: {"busy": b, "total": t} for c, (b, t) in core_ticks().items()}
    with open("/proc/loadavg") as f:
        load1 = float(f.read().split()[0])
    with open("/proc/net/snmp") as f:
        tcp = [ln.split() for ln in f if ln.startswith("Tcp:")]
    out_segs = int(tcp[1][tcp[0].index("OutSegs")])
    json.dump({"t": time.monotonic(), "procs": procs, "cores": cores, "tcp_out_segs": out_segs,
               "compilers": count_compilers(), "load1": load1}, sys.stdout)
    print()


def read_wrkjson(path):
    """The WRKJSON line report.lua printed at the end of a wrk run, as a dict."""
    with open(path) as f:
        lines = [ln for ln in f if ln.startswith("WRKJSON ")]
    if not lines:
        sys.exit(f"bench.py: no WRKJSON line in {path} (did wrk fail?)")
    return json.loads(lines[-1][len("WRKJSON "):])


def make_record(w, b, a, target, rep, position, proxy_cpu):
    """One result: a load generator's summary `w` (WRKJSON's shape: requests, duration_us,
    errors by kind, lat_us percentiles, which may be None) and the before/after snapshots."""
    n = max(w["requests"], 1)

    def per_req(name):
        if name not in a["procs"]:
            return None
        pa, pb = a["procs"][name], b["procs"][name]
        du = (pa["utime"] - pb["utime"]) / CLK_TCK * 1e6 / n
        ds = (pa["stime"] - pb["stime"]) / CLK_TCK * 1e6 / n
        dns = (pa["sched_ns"] - pb["sched_ns"]) / 1e3 / n
        dcs = (pa["ctxsw"] - pb["ctxsw"]) / n
        dmf = (pa["minflt"] - pb["minflt"]) / n
        return {"cpu_us": du + ds, "user_us": du, "sys_us": ds, "sched_us": dns,
                "ctxsw": dcs, "minflt": dmf}

    proxy = per_req("proxy")
    upstream = per_req("upstream")
    core = f"cpu{proxy_cpu}"
    dbusy = a["cores"][core]["busy"] - b["cores"][core]["busy"]
    dtotal = max(a["cores"][core]["total"] - b["cores"][core]["total"], 1)
    own = 0.0
    if proxy is not None:
        pa, pb = a["procs"]["proxy"], b["procs"]["proxy"]
        own = (pa["utime"] - pb["utime"]) + (pa["stime"] - pb["stime"])
    errors = sum(w["errors"].values())
    lat = w.get("lat_us") or {}
    return {
        "target": target, "rep": rep, "position": position,
        "requests": w["requests"], "rps": w["requests"] / (w["duration_us"] / 1e6),
        "p50_us": lat.get("p50"), "p99_us": lat.get("p99"),
        "p999_us": lat.get("p999"), "errors": errors,
        "proxy": proxy, "upstream": upstream,
        # Every TCP segment on loopback (client, proxy and upstream) per request.
        "tcp_segs": (a["tcp_out_segs"] - b["tcp_out_segs"]) / n,
        # Busy ticks on the proxy core not spent by the proxy: other load stealing its core.
        "foreign_pct_proxy_core": max(dbusy - own, 0) / dtotal * 100,
        "proxy_core_busy_pct": dbusy / dtotal * 100,
        "compilers": max(a["compilers"], b["compilers"]),
        "load1": a["load1"],
    }


def progress_line(rec, label=None):
    """The one-line summary of a result printed while the benchmark runs."""
    proxy = rec["proxy"]
    cpu = f"proxy CPU {proxy['cpu_us']:5.1f} us/req  " if proxy else ""
    lat = (f"p50 {rec['p50_us']} us  p99 {rec['p99_us']} us  "
           if rec["p50_us"] is not None else "")
    return (f"[bench]   {label or rec['target']:8} {rec['rps']:>9,.0f} req/s  {lat}{cpu}"
            f"errors {rec['errors']}  "
            f"other load on proxy core {rec['foreign_pct_proxy_core']:.1f}%")


def cmd_record(args):
    """Combines wrk's WRKJSON line with the before/after snapshots into one result line."""
    w = read_wrkjson(args.wrk_out)
    with open(args.before) as f:
        b = json.load(f)
    with open(args.after) as f:
        a = json.load(f)
    rec = make_record(w, b, a, args.target, args.rep, args.position, args.proxy_cpu)
    print(json.dumps(rec))
    print(progress_line(rec), file=sys.stderr)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=0, dash="–"):
    if x is None:
        return dash
    return f"{x:,.{nd}f}"


def cmd_report(args):
    with open(args.results) as f:
        recs = [json.loads(ln) for ln in f if ln.strip()]
    with open(args.meta) as f:
        meta = json.load(f)
    labels = meta["labels"]
    order = [t for t in meta["targets"] if any(r["target"] == t for r in recs)]
    by = {(r["target"], r["rep"]): r for r in recs}
    reps = sorted({r["rep"] for r in recs})

    def metric(r, key):
        if key in ("cpu_us", "user_us", "sys_us", "sched_us", "ctxsw", "minflt"):
            return r["proxy"][key] if r["proxy"] else None
        if key == "up_cpu_us":
            return r["upstream"]["cpu_us"] if r["upstream"] else None
        return r[key]

    out = []
    p = out.append
    p(f"### umbra-proxy vs nginx vs HAProxy: {meta['title']}")
    p("")
    p("| target | req/s | p50 µs | p99 µs | proxy CPU µs/req | user | sys "
      "| upstream CPU µs/req | errors |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in order:
        rs = [by[(t, k)] for k in reps if (t, k) in by]
        m = {k: median([metric(r, k) for r in rs])
             for k in ("rps", "p50_us", "p99_us", "cpu_us", "user_us", "sys_us", "up_cpu_us")}
        errs = sum(r["errors"] for r in rs)
        p(f"| {labels[t]} | {fmt(m['rps'])} | {fmt(m['p50_us'])} | {fmt(m['p99_us'])} "
          f"| {fmt(m['cpu_us'], 1)} | {fmt(m['user_us'], 1)} | {fmt(m['sys_us'], 1)} "
          f"| {fmt(m['up_cpu_us'], 1)} | {errs} |")
    p("")
    p("| ratio (median of same-repetition ratios) | req/s | p50 | p99 | CPU/req | user | sys |")
    p("|---|---:|---:|---:|---:|---:|---:|")
    for other in ("nginx", "haproxy"):
        if "umbra" not in order or other not in order:
            continue
        cells = []
        for k in ("rps", "p50_us", "p99_us", "cpu_us", "user_us", "sys_us"):
            ratios = []
            for rep in reps:
                u, o = by.get(("umbra", rep)), by.get((other, rep))
                if u and o:
                    mu, mo = metric(u, k), metric(o, k)
                    if mu is not None and mo:
                        ratios.append(mu / mo)
            cells.append(fmt(median(ratios), 2))
        p(f"| umbra-proxy / {labels[other]} | " + " | ".join(cells) + " |")
    p("")
    p("Diagnostics (medians, per request): the proxy's context switches and minor page faults, "
      "TCP segments on loopback (all hops), the proxy's on-CPU time from schedstat.")
    p("")
    p("| target | context switches | page faults | TCP segments | on-CPU µs (schedstat) |")
    p("|---|---:|---:|---:|---:|")
    for t in order:
        rs = [by[(t, k)] for k in reps if (t, k) in by]
        p(f"| {labels[t]} | {fmt(median([metric(r, 'ctxsw') for r in rs]), 3)} "
          f"| {fmt(median([metric(r, 'minflt') for r in rs]), 3)} "
          f"| {fmt(median([r['tcp_segs'] for r in rs]), 2)} "
          f"| {fmt(median([metric(r, 'sched_us') for r in rs]), 1)} |")
    p("")
    proxied = [r for r in recs if r["proxy"]] or recs
    worst_foreign = max(r["foreign_pct_proxy_core"] for r in proxied)
    compilers = sum(1 for r in recs if r["compilers"])
    p(f"{meta['setup']}")
    p(f"Noise: {compilers}/{len(recs)} runs saw rustc/cargo/cc running; other processes used up "
      f"to {worst_foreign:.1f}% of the proxy core during a proxied run; load1 "
      f"{min(r['load1'] for r in recs):.2f}-{max(r['load1'] for r in recs):.2f}.")
    p("")
    p(f"Command: `{meta['command']}`")
    print("\n".join(out))

    if args.per_rep:
        print("\nPer repetition (order rotated; CPU in µs/request):\n")
        print("| rep | pos | target | req/s | p50 µs | p99 µs | proxy CPU | sched | "
              "upstream CPU | foreign % on proxy core | compilers |")
        print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in sorted(recs, key=lambda r: (r["rep"], r["position"])):
            print(f"| {r['rep']} | {r['position']} | {labels[r['target']]} | {fmt(r['rps'])} "
                  f"| {r['p50_us']} | {r['p99_us']} | {fmt(metric(r, 'cpu_us'), 1)} "
                  f"| {fmt(metric(r, 'sched_us'), 1)} | {fmt(metric(r, 'up_cpu_us'), 1)} "
                  f"| {r['foreign_pct_proxy_core']:.1f} | {r['compilers']} |")


async def one_connection(host, port, n, counts):
    reader, writer = await asyncio.open_connection(host, port)
    req = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    for _ in range(n):
        writer.write(req)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        await reader.readexactly(length)
        counts[status] = counts.get(status, 0) + 1
    writer.close()


async def load(host, port, requests, connections):
    counts = {}
    per = [requests // connections + (i < requests % connections) for i in range(connections)]
    await asyncio.gather(*(one_connection(host, port, n, counts) for n in per if n))
    return counts


def cmd_load(args):
    """Exactly --requests GETs over --connections keep-alive connections (for callgrind,
    where wrk's fixed duration would make the request count vary)."""
    host, port = args.addr.rsplit(":", 1)
    t0 = time.monotonic()
    counts = asyncio.run(load(host, int(port), args.requests, args.connections))
    dt = time.monotonic() - t0
    ok = counts.get(200, 0)
    print(f"{ok} x 200 of {args.requests} in {dt:.1f}s; statuses {counts}", file=sys.stderr)
    if ok != args.requests:
        sys.exit("bench.py: not every request got a 200")


def parse_callgrind(path):
    """Self (exclusive) Ir per (object, function) from a callgrind dump: cost lines count for
    the current function except the one after each `calls=` line, which is a callee's
    inclusive cost."""
    names = {"ob": {}, "fn": {}}
    self_ir = {}
    callers = {}  # callee -> caller -> inclusive Ir of those calls
    arcs = {}  # (caller, callee) -> number of calls
    ob = fn = cfn = None
    skip_next = False
    total = None

    def name(kind, rest):
        rest = rest.strip()
        if rest.startswith("("):
            ident, _, label = rest.partition(")")
            label = label.strip()
            if label:
                names[kind][ident] = label
            return names[kind].get(ident, ident)
        return rest

    with open(path) as f:
        for line in f:
            c = line[0] if line else ""
            if c.isdigit() or c in "+-*":
                if skip_next:
                    skip_next = False
                    by_caller = callers.setdefault(cfn, {})
                    by_caller[fn] = by_caller.get(fn, 0) + int(line.split()[-1])
                    continue
                self_ir[(ob, fn)] = self_ir.get((ob, fn), 0) + int(line.split()[-1])
            elif line.startswith("fn="):
                fn = name("fn", line[3:])
            elif line.startswith("ob="):
                ob = name("ob", line[3:])
            elif line.startswith("cob="):
                name("ob", line[4:])
            elif line.startswith("cfn="):
                cfn = name("fn", line[4:])
            elif line.startswith("calls="):
                skip_next = True
                arcs[(fn, cfn)] = arcs.get((fn, cfn), 0) + int(line[6:].split()[0])
            elif line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
    return self_ir, callers, arcs, total


# libc wrappers whose calls are (about) system calls; vDSO clock reads are not in this list.
SYSCALL_WRAPPERS = {
    "read", "write", "readv", "writev", "send", "sendto", "sendmsg", "recv", "recvfrom",
    "recvmsg", "epoll_wait", "epoll_pwait", "epoll_ctl", "accept4", "close", "getpeername",
    "getsockname", "getsockopt", "setsockopt", "connect", "socket", "ioctl", "futex",
    "syscall", "nanosleep", "clock_nanosleep", "sched_yield", "eventfd_write", "madvise",
    "mmap", "munmap", "splice", "shutdown",
}


def call_counts(arcs):
    """Per-dump counts of what drives kernel and allocator work: allocator entries from
    outside the allocator (mimalloc's mi_* or libc malloc family), task spawns, syscalls."""
    def is_alloc(f):
        return f and (f.startswith(("mi_", "_mi_", "__rustc::__rust_"))
                      or f in ("malloc", "free", "calloc", "realloc", "posix_memalign"))
    out = {"allocator_calls": 0, "frees": 0, "task_spawns": 0, "syscalls": {}}
    for (caller, callee), n in arcs.items():
        if not callee:
            continue
        base = re.sub(r"^__(libc_)?", "", callee.split("'")[0])
        if is_alloc(callee) and not is_alloc(caller):
            out["allocator_calls"] += n
            if "free" in callee or "dealloc" in callee:
                out["frees"] += n
        elif callee.startswith("tokio::runtime::task::list::OwnedTasks<S>::bind_inner"):
            out["task_spawns"] += n  # every tokio::spawn binds its task to the owned list
        elif base in SYSCALL_WRAPPERS and not (caller or "").lstrip("_").startswith(
                ("libc_", base)):
            out["syscalls"][base] = out["syscalls"].get(base, 0) + n
    return out


def crate_of(ob, fn):
    """Which library a function belongs to, for the by-library breakdown."""
    obj = os.path.basename(ob or "")
    if obj.startswith("libc.so") or obj.startswith("ld-linux"):
        return "libc (memcpy/memmove/memset)" if re.search(r"mem(cpy|move|set)", fn) else "libc (other)"
    if fn.startswith(("mi_", "_mi_", "__rustc::__rust_")):
        return "allocator (mimalloc)"
    if not fn.startswith(("<", "_", "core::", "alloc::", "std::")) and "::" not in fn:
        return f"{obj}: C functions"
    crates = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)::", fn)
    # `<alloc::vec::Vec<T> as core::clone::Clone>::clone`: the first path names the owner.
    return crates[0] if crates else f"{obj}: other"


def cmd_callgrind(args):
    self_ir, callers, arcs, total = parse_callgrind(args.dump)
    counted = sum(self_ir.values())
    n = args.requests
    result = {"target": args.target, "requests": n, "ir": counted, "ir_per_request": counted / n,
              "calls": call_counts(arcs)}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.target}: {counted:,} instructions over {n:,} requests = "
          f"{counted / n:,.0f} instructions/request (dump totals {total:,})")
    if args.top:
        print(f"\nTop {args.top} functions of {args.target} by self instructions:\n")
        print("| self Ir/request | % | function | object |")
        print("|---:|---:|---|---|")
        for (ob, fn), ir in sorted(self_ir.items(), key=lambda kv: -kv[1])[:args.top]:
            print(f"| {ir / n:,.0f} | {ir / counted * 100:.1f} | `{fn[:110]}` "
                  f"| {os.path.basename(ob or '?')} |")
        copies = {}
        for callee, by_caller in callers.items():
            if callee and re.search(r"mem(cpy|move|set)", callee):
                for caller, ir in by_caller.items():
                    copies[caller] = copies.get(caller, 0) + ir
        if copies:
            print(f"\nWho calls memcpy/memmove/memset in {args.target} "
                  "(inclusive Ir of those calls; large futures being moved or zeroed):\n")
            print("| Ir/request | % | caller |")
            print("|---:|---:|---|")
            for caller, ir in sorted(copies.items(), key=lambda kv: -kv[1])[:10]:
                print(f"| {ir / n:,.0f} | {ir / counted * 100:.1f} | `{caller[:120]}` |")
        by = {}
        for (ob, fn), ir in self_ir.items():
            k = crate_of(ob, fn)
            by[k] = by.get(k, 0) + ir
        print(f"\n{args.target} self instructions by crate/library (first path segment):\n")
        print("| Ir/request | % | crate |")
        print("|---:|---:|---|")
        for k, ir in sorted(by.items(), key=lambda kv: -kv[1])[:args.top]:
            print(f"| {ir / n:,.0f} | {ir / counted * 100:.1f} | {k} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("ports")
    s.add_argument("n", type=int)
    s.set_defaults(f=cmd_ports)
    s = sub.add_parser("wait-http")
    s.add_argument("url")
    s.add_argument("--timeout", type=float, default=30)
    s.add_argument("--body")
    s.set_defaults(f=cmd_wait_http)
    s = sub.add_parser("descendants")
    s.add_argument("pid", type=int)
    s.set_defaults(f=cmd_descendants)
    s = sub.add_parser("busy")
    s.add_argument("--seconds", type=float, default=5)
    s.set_defaults(f=cmd_busy)
    s = sub.add_parser("snap")
    s.add_argument("procs", nargs="*", help="name=pid; the pid's process tree is summed")
    s.set_defaults(f=cmd_snap)
    s = sub.add_parser("record")
    for a in ("--target", "--wrk-out", "--before", "--after"):
        s.add_argument(a, required=True)
    s.add_argument("--rep", type=int, required=True)
    s.add_argument("--position", type=int, required=True)
    s.add_argument("--proxy-cpu", type=int, default=1)
    s.set_defaults(f=cmd_record)
    s = sub.add_parser("report")
    s.add_argument("results")
    s.add_argument("--meta", required=True)
    s.add_argument("--per-rep", action="store_true")
    s.set_defaults(f=cmd_report)
    s = sub.add_parser("load")
    s.add_argument("addr", help="host:port")
    s.add_argument("--requests", type=int, required=True)
    s.add_argument("--connections", type=int, default=8)
    s.set_defaults(f=cmd_load)
    s = sub.add_parser("callgrind")
    s.add_argument("dump")
    s.add_argument("--target", required=True)
    s.add_argument("--requests", type=int, required=True)
    s.add_argument("--top", type=int, default=0)
    s.add_argument("--json", action="store_true")
    s.set_defaults(f=cmd_callgrind)
    args = ap.parse_args()
    args.f(args)


if __name__ == "__main__":
    main()
