#!/usr/bin/env python3
"""Issue 11's scale benchmark: one controller, many workloads, many real umbra-proxy processes.

    bench/scale/run.sh                     # 1,000 workloads, 10 proxies, 6 minutes
    bench/scale/run.sh --workloads 200 --proxies 4 --minutes 2

Everything is real and on loopback: `umbra run` (act mode, the process provisioner) drives
`--proxies` umbra-proxy processes, each routing every workload (10 host names per workload).
Every workload's primary is one shared `umbra backend`; the policy keeps no shadow instance
(max_instances = 0: a thousand workloads would otherwise keep a thousand idle processes), so
the provisioner is asked and answers every tick but starts nothing, and demand stays under
the migration threshold. Each workload gets a week of 1-minute history before the
controller starts: a shared NAB trace (../shared/data/traces), rotated and scaled per workload.

One more workload, `canary`, measures the rollback lag at this scale: it has no history, a
small capacity and live traffic over it (through proxy 0), so it migrates on observed demand;
once its shadow carries traffic every shadow instance is made to answer 500, proxy 0's guard
rolls the shadow back, and the lag is the controller's `rolled_back` transition minus the
proxy's own rollback time (the proxy's `last_rollback.at_unix_ms`). It repeats while the run
lasts (the policy retries after 20 s).

Printed, against the issue's targets: the rollback lag (target: within one 1 s tick), the
controller's tick (p50/p99 from its own
`umbra_controller_tick_seconds` histogram; target p99 <= 1 s), the time to refit every series
(`umbra_forecast_round_seconds`; target <= 60 s), the controller's peak RSS (target <= 1 GiB),
`GET /v1/status`, the status page and `umbra status --json` (target <= 200 ms), and each
proxy's RSS. The routing decision itself is measured by criterion:
`cargo bench -p proxy --bench routing` (1,000 workloads).
"""

import argparse
import csv
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TRACES = REPO.parent / "shared" / "data" / "traces" / "numenta-NAB"
SOURCES = [
    "elb_request_count_8c0756.csv",
    "ec2_cpu_utilization_825cc2.csv",
    "nyc_taxi.csv",
    "rds_cpu_utilization_cc0c53.csv",
]
WEEK_MINUTES = 7 * 24 * 60
TOKEN = "scale-bench-token"


def free_ports(n):
    """n distinct loopback ports, all held until the last is picked."""
    held = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        held.append(s)
    ports = [s.getsockname()[1] for s in held]
    for s in held:
        s.close()
    return ports


def read_values(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    out = []
    for row in rows[1:]:
        try:
            out.append(float(row[-1]))
        except (ValueError, IndexError):
            continue
    return out


def history_files(workdir, rotations):
    """A week of points per (trace, rotation): the trace repeated to length, then rotated."""
    files = []
    for name in SOURCES:
        values = read_values(TRACES / name)
        peak = sorted(values)[int(len(values) * 0.95)] or 1.0
        week = [(values[i % len(values)] / peak) for i in range(WEEK_MINUTES)]
        for r in range(rotations):
            k = (r * WEEK_MINUTES) // rotations
            rotated = week[k:] + week[:k]
            path = workdir / f"history-{name[:-4]}-{r}.csv"
            with open(path, "w") as f:
                f.write("timestamp,value\n")
                # Timestamps one minute apart; `umbra import --end-now --step 1m` re-dates them.
                start = time.mktime((2026, 1, 1, 0, 0, 0, 0, 0, 0))
                for i, v in enumerate(rotated):
                    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(start + 60 * i))
                    f.write(f"{stamp},{v:.5f}\n")
            files.append(path)
    return files


def policy_text():
    # The trigger is at 0.9 x 200 = 180 requests/s, above the highest spike of any history
    # (3.9x the 95th percentile of 37): no workload but the canary wants a migration, so none
    # takes the one migration slot the canary needs.
    return """[forecast]
quantile = 0.9
horizon = "1h"

[sizing]
instance_capacity = 200.0
min_instances = 0
max_instances = 0
startup = "5s"

[trigger]
threshold = 0.9
lead_time = "10m"
"""


def canary_policy_text():
    return """[forecast]
quantile = 0.9
horizon = "1h"

[sizing]
instance_capacity = 2.0
buffer = 0.2
min_instances = 1
max_instances = 3
startup = "5s"
idle = { cpu_millis = 200, memory_mib = 64 }
full = { cpu_millis = 1000, memory_mib = 256 }

[trigger]
threshold = 0.9
clear_below = 0.3
lead_time = "20s"
min_hold = "10m"

[ramp]
start_weight = 0.1
step = 0.1
interval = "1s"
min_requests = 2
max_p99_ms = 500
# The proxy's guard is the one measured: the controller's own gate lets any error rate pass.
max_error_rate = 1.0
at_full = "keep_warm"
provision_timeout = "30s"
retry_after = "20s"
"""


CANARY_HOST = "canary.scale.test"


def workload_text(name, hosts, backend, policy, capacity, extra=""):
    """One `[[workloads]]` block: the given hosts on `/`, primary `backend`, shadow instances
    of `umbra backend` serving `capacity` requests/s, `extra` TOML appended."""
    host_list = ", ".join(f'"{h}"' for h in hosts)
    return f"""[[workloads]]
name = "{name}"
hosts = [{host_list}]
path_prefix = "/"
primary = ["{backend}"]
policy = "{policy}"

[workloads.instance]
command = ["{{umbra}}", "backend", "--listen", "{{addr}}", "--capacity", "{capacity}", "--name", "{name}-{{port}}"]
health_path = "/healthz"
{extra}"""


def canary_text(backend):
    return workload_text("canary", [CANARY_HOST], backend, "canary", 1000, """
[workloads.guard]
window = "2s"
min_requests = 3
max_p99_ms = 400
max_error_rate = 0.5
cooldown = "5s"
""")


def workloads_text(n, backend):
    return "\n".join(
        workload_text(f"w{i:04d}", [f"w{i:04d}-{h}.scale.test" for h in range(10)], backend,
                      "scale", 50)
        for i in range(n)
    )


def config_text(listen, admin, api, proxies, body):
    proxy_list = ", ".join(f'"{p}"' for p in proxies)
    return f"""[proxy]
listen = "{listen}"
admin_listen = "{admin}"
admin_token = "env:UMBRA_ADMIN_TOKEN"
threads = 1

[controller]
api_listen = "{api}"
api_token = "env:UMBRA_ADMIN_TOKEN"
proxies = [{proxy_list}]
data_dir = "data"
policy_dir = "policies"
step = "1m"
scrape_interval = "5s"
forecast_interval = "10s"
tick = "1s"

{body}"""


def get(addr, path, timeout=10):
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def instance_pids(state_dir):
    """Every "pid" in the process provisioner's state files."""
    pids = []

    def collect(v):
        if isinstance(v, dict):
            for k, x in v.items():
                if k == "pid" and isinstance(x, int):
                    pids.append(x)
                else:
                    collect(x)
        elif isinstance(v, list):
            for x in v:
                collect(x)

    for f in Path(state_dir).glob("*.json") if Path(state_dir).is_dir() else []:
        try:
            collect(json.loads(f.read_text()))
        except (OSError, ValueError):
            pass
    return pids


def put_json(addr, path, body, timeout=5):
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("PUT", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def get_json(addr, path):
    status, body = get(addr, path)
    return json.loads(body) if status == 200 else None


class Canary(threading.Thread):
    """Drives the canary workload: traffic over its capacity through one proxy, a broken shadow
    once the shadow carries traffic, and the lag from that proxy's rollback to the controller's
    `rolled_back` transition, once per cycle until `stop`."""

    def __init__(self, listen, admin, api, stop):
        super().__init__(daemon=True)
        self.listen, self.admin, self.api, self.stop = listen, admin, api, stop
        self.lags_ms, self.problems, self.answered = [], [], 0

    def run(self):
        threading.Thread(target=self.load, daemon=True).start()
        while not self.stop.is_set():
            try:
                self.cycle()
            except (OSError, ValueError, KeyError, TypeError, http.client.HTTPException) as e:
                self.problems.append(repr(e))
                self.stop.wait(2)

    def load(self):
        """About 10 requests/s, five times the canary's primary capacity, one connection."""
        host, port = self.listen.rsplit(":", 1)
        conn = None
        while not self.stop.is_set():
            t0 = time.time()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, int(port), timeout=5)
                conn.request("GET", "/", headers={"Host": CANARY_HOST})
                conn.getresponse().read()
                self.answered += 1
            except (OSError, http.client.HTTPException):
                conn = None
            self.stop.wait(max(0.0, 0.1 - (time.time() - t0)))

    def cycle(self):
        members = None
        while not self.stop.is_set():
            w = get_json(self.admin, "/v1/workloads/canary") or {}
            if (w.get("shadow_weight") or 0) >= 0.2:
                members = [u["address"] for u in (w.get("shadow") or {}).get("upstreams", [])]
                break
            self.stop.wait(0.5)
        if not members:
            return
        broken_ms = time.time() * 1000
        self.fault(members, 500)
        transition = None
        deadline = time.time() + 30
        while transition is None and time.time() < deadline and not self.stop.is_set():
            log = get_json(self.api, "/v1/transitions?workload=canary&limit=100") or []
            found = [t for t in log if t.get("to") == "rolled_back" and t.get("ts_ms", 0) >= broken_ms]
            transition = found[0] if found else None
            self.stop.wait(0.05)
        if transition is not None:
            w = get_json(self.admin, "/v1/workloads/canary") or {}
            proxy_ms = ((w.get("last_rollback") or {}).get("at_unix_ms"))
            if proxy_ms is None:
                self.problems.append(f"the controller rolled back but proxy 0 did not: {transition}")
            else:
                self.lags_ms.append(transition["ts_ms"] - proxy_ms)
        elif not self.stop.is_set():
            self.problems.append("no rollback within 30 s of breaking the shadow")
        # Heal the instances: after `retry_after` the controller migrates onto them again.
        self.fault(members, 0)

    @staticmethod
    def fault(members, status):
        """Every member answers `status` (0: heals); one the controller has stopped is skipped."""
        for m in members:
            try:
                put_json(m, "/_umbra/fault", {"status": status})
            except OSError:
                pass


def wait_http(addr, path, seconds, proc, log):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"process exited early; log:\n{Path(log).read_text()[-3000:]}")
        try:
            status, _ = get(addr, path, timeout=2)
            if 200 <= status < 300:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"{addr}{path} never answered; log:\n{Path(log).read_text()[-3000:]}")


def rss_mib(pid, field="VmRSS"):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def metric_lines(text, name):
    return [l for l in text.splitlines() if l.startswith(name) and not l.startswith("#")]


def histogram_quantile(text, name, q):
    """The q-quantile of a Prometheus histogram from its cumulative buckets (upper bound)."""
    buckets = []
    for line in metric_lines(text, name + "_bucket"):
        le = line.split('le="', 1)[1].split('"', 1)[0]
        buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return float("nan"), 0
    total = buckets[-1][1]
    for le, count in buckets:
        if count >= q * total:
            return le, int(total)
    return float("inf"), int(total)


def gauge(text, name):
    lines = metric_lines(text, name + " ") + metric_lines(text, name + "{")
    return float(lines[0].rsplit(" ", 1)[1]) if lines else float("nan")


def timed(fn, runs=20):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] * 1000, times[min(len(times) - 1, int(len(times) * 0.99))] * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", type=int, default=1000)
    ap.add_argument("--proxies", type=int, default=10)
    ap.add_argument("--minutes", type=float, default=6.0)
    ap.add_argument("--bin-dir", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", str(REPO / "target")), "release"))
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    args = ap.parse_args()
    umbra = Path(args.bin_dir) / "umbra"
    proxy_bin = Path(args.bin_dir) / "umbra-proxy"
    for b in (umbra, proxy_bin):
        if not b.exists():
            sys.exit(f"{b} not found (cargo build --release --workspace --bins)")

    work = Path(tempfile.mkdtemp(prefix="umbra-scale-"))
    env = dict(os.environ, UMBRA_ADMIN_TOKEN=TOKEN, RUST_LOG="warn")
    procs = []
    started = time.time()
    try:
        (work / "policies").mkdir()
        (work / "policies" / "scale.toml").write_text(policy_text())
        (work / "policies" / "canary.toml").write_text(canary_policy_text())
        ports = free_ports(2 * args.proxies + 2)
        backend = f"127.0.0.1:{ports[-1]}"
        api = f"127.0.0.1:{ports[-2]}"
        listens = [f"127.0.0.1:{p}" for p in ports[: args.proxies]]
        admins = [f"127.0.0.1:{p}" for p in ports[args.proxies : 2 * args.proxies]]
        body = workloads_text(args.workloads, backend) + "\n" + canary_text(backend)
        configs = []
        for i in range(args.proxies):
            path = work / f"umbra-{i}.toml"
            path.write_text(config_text(listens[i], admins[i], api, admins, body))
            configs.append(path)

        t0 = time.time()
        files = history_files(work, rotations=10)
        imports = []
        for i in range(args.workloads):
            scale = 5 + (i % 9) * 4  # 95th percentile 5..37 requests/s, peaks under the 180 rps trigger
            cmd = [str(umbra), "import", "--workload", f"w{i:04d}", "--step", "1m", "--end-now",
                   "--scale", str(scale), "--input", str(files[i % len(files)]),
                   "--config", str(configs[0])]
            imports.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            # One at a time: each import holds the store's write lock.
            if imports:
                p = imports.pop(0)
                if p.wait() != 0:
                    sys.exit(f"import failed: {p.stderr.read().decode()}")
        for p in imports:
            if p.wait() != 0:
                sys.exit(f"import failed: {p.stderr.read().decode()}")
        import_s = time.time() - t0
        print(f"imported {args.workloads} x {WEEK_MINUTES} points of history in {import_s:.0f} s", flush=True)

        log = work / "backend.log"
        procs.append(subprocess.Popen([str(umbra), "backend", "--listen", backend, "--capacity", "100000"],
                                      env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w")))
        proxy_procs = []
        for i in range(args.proxies):
            log = work / f"proxy-{i}.log"
            p = subprocess.Popen([str(proxy_bin), "--config", str(configs[i])], env=env,
                                 stdout=subprocess.DEVNULL, stderr=open(log, "w"))
            procs.append(p)
            proxy_procs.append(p)
            wait_http(admins[i], "/readyz", 60, p, log)
        print(f"{args.proxies} proxies serving {args.workloads} workloads", flush=True)

        log = work / "controller.log"
        ctl = subprocess.Popen([str(umbra), "run", "--config", str(configs[0])], env=env,
                               stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        procs.append(ctl)
        wait_http(api, "/healthz", 120, ctl, log)
        print("controller up; observing", flush=True)
        stop_canary = threading.Event()
        canary = Canary(listens[0], admins[0], api, stop_canary)
        canary.start()

        deadline = time.time() + args.minutes * 60
        rounds, round_s = 0, []
        while time.time() < deadline:
            time.sleep(10)
            if ctl.poll() is not None:
                sys.exit(f"controller exited; log:\n{log.read_text()[-3000:]}")
            _, text = get(api, "/metrics")
            text = text.decode()
            n = gauge(text, "umbra_forecast_rounds_total")
            if n == n and n > rounds:
                rounds = int(n)
                round_s.append(gauge(text, "umbra_forecast_round_seconds"))
            p99, ticks = histogram_quantile(text, "umbra_controller_tick_seconds", 0.99)
            forecasted = len(metric_lines(text, "umbra_forecast_mase{"))
            print(f"  t+{time.time() - started:4.0f} s: ticks {ticks}, tick p99 <= {p99} s, "
                  f"forecast rounds {rounds}, series forecast {forecasted} "
                  f"({gauge(text, 'umbra_forecast_series_awaiting_selection'):.0f} awaiting selection), "
                  f"canary rollbacks {len(canary.lags_ms)}, "
                  f"controller RSS {rss_mib(ctl.pid):.0f} MiB", flush=True)

        stop_canary.set()
        canary.join(timeout=10)
        _, text = get(api, "/metrics")
        text = text.decode()
        p50, ticks = histogram_quantile(text, "umbra_controller_tick_seconds", 0.5)
        p99, _ = histogram_quantile(text, "umbra_controller_tick_seconds", 0.99)
        status_p50, status_p99 = timed(lambda: get(api, "/v1/status"))
        page_p50, page_p99 = timed(lambda: get(api, "/?q=w09"))
        cli_p50, cli_p99 = timed(lambda: subprocess.run(
            [str(umbra), "status", "--json", "--config", str(configs[0])], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True), runs=5)
        hwm = rss_mib(ctl.pid, "VmHWM")
        proxy_rss = [rss_mib(p.pid) for p in proxy_procs]
        first_round = round_s[0] if round_s else float("nan")
        steady = round_s[1:]
        worst_round = max(steady) if steady else float("nan")

        def verdict(ok):
            return "met" if ok else "MISSED"

        print()
        print(f"scale: {args.workloads} workloads x 10 host names, {args.proxies} umbra-proxy, "
              f"{args.minutes:g} min observed ({ticks} ticks)")
        print(f"  controller tick           p50 <= {p50} s, p99 <= {p99} s      target p99 <= 1 s: {verdict(p99 <= 1.0)}")
        lags = sorted(canary.lags_ms)
        if lags:
            print(f"  rollback lag, proxy -> controller state   {len(lags)} rollbacks: "
                  f"median {lags[len(lags) // 2]:.0f} ms, max {lags[-1]:.0f} ms   "
                  f"target within a tick (1000 ms): {verdict(lags[-1] <= 1000)}")
        else:
            print("  rollback lag              not measured: the canary never rolled back")
        for p in canary.problems[:5]:
            print(f"    canary: {p}")
        status = get_json(api, "/v1/status") or {}
        w = next((w for w in status.get("workloads", []) if w.get("name") == "canary"), {})
        print(f"    canary: {canary.answered} requests answered; now {w.get('migration_state')}: "
              f"{w.get('last_reason')}")
        print(f"  first round after start   {first_round:.1f} s")
        print(f"  every series after that   {len(steady)} rounds, slowest {worst_round:.1f} s "
              f"({', '.join(f'{r:.1f}' for r in steady)})   target <= 60 s: {verdict(worst_round <= 60)}")
        print(f"  controller peak RSS       {hwm:.0f} MiB      target <= 1024 MiB: {verdict(hwm <= 1024)}")
        print(f"  GET /v1/status            p50 {status_p50:.0f} ms, p99 {status_p99:.0f} ms   target <= 200 ms: {verdict(status_p99 <= 200)}")
        print(f"  status page (filtered)    p50 {page_p50:.0f} ms, p99 {page_p99:.0f} ms   target <= 200 ms: {verdict(page_p99 <= 200)}")
        print(f"  umbra status --json       p50 {cli_p50:.0f} ms, max {cli_p99:.0f} ms (a process start included)")
        print(f"  proxy RSS                 {min(proxy_rss):.0f}-{max(proxy_rss):.0f} MiB each")
        print(f"  history import            {import_s:.0f} s; whole run {time.time() - started:.0f} s")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        # The process provisioner's instances outlive the controller (like pods): stop the
        # canary's, from the provisioner's own state file.
        for pid in instance_pids(work / "data" / "instances" / "process"):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        if args.keep:
            print(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
