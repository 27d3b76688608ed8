#!/usr/bin/env python3
"""Supervisor benchmarks (release build), each against a reference measured in the same run.

1. Reload latency: apply request -> reply (new generation serving) for a config with 100
   backends, 50 applies; beside HAProxy alone doing the same work: `haproxy -c` and a bare
   start (no supervisor) until its admin socket answers.
2. Failed requests during 50 reloads under wrk load (keep-alive and Connection: close), and
   the same with keep-alive for a config without `option idle-close-on-response`.
3. Supervisor RSS idle, after 51 reloads and after 300.

Usage: scripts/bench-supervisor.py BINARY_DIR
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import admin_pid, free_port, percentile, request, rss_kb, wait_for

BIN = sys.argv[1] if len(sys.argv) > 1 else ".build/release"
SUPERVISOR = os.path.join(BIN, "kube-haproxy")
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def config(port, backend_port, variant, idle_close=True):
    lines = [
        "global", "    maxconn 4000",
        "defaults", "    mode http", "    timeout connect 5s", "    timeout client 30s",
        "    timeout server 30s", "    option idle-close-on-response" if idle_close else "",
        "frontend web", f"    bind 127.0.0.1:{port}", "    default_backend pods",
        "backend pods",
        f"    server live 127.0.0.2:{backend_port}",
    ]
    # 100 backends: 99 more servers, disabled so they take no traffic; the variant changes one
    # address so each apply is a real change.
    for index in range(99):
        lines.append(f"    server pod{index} 127.0.{1 + index // 200}.{10 + index % 200 + variant}:8080 disabled")
    return "\n".join(lines) + "\n"


def main():
    work = tempfile.mkdtemp(prefix="kube-haproxy-bench.")
    run_dir = os.path.join(work, "run")
    backend_port = free_port("127.0.0.2")
    backend = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "..", "Tests", "IntegrationSupport", "backend.py"),
                                "127.0.0.2", str(backend_port), "bench"], stdout=subprocess.PIPE)
    backend.stdout.readline()
    env = dict(os.environ, KUBE_HAPROXY_RUN_DIR=run_dir, KUBE_HAPROXY_WATCHER="none")
    log = open(os.path.join(work, "supervisor.log"), "w")
    supervisor = subprocess.Popen([SUPERVISOR], env=env, stdout=log, stderr=log)
    control = os.path.join(run_dir, "control.sock")
    try:
        wait_for(lambda: os.path.exists(control))
        port = free_port()
        configs = [config(port, backend_port, 0), config(port, backend_port, 1)]
        rss_idle_before = rss_kb(supervisor.pid)

        # 1. Reload latency through the supervisor, interleaved with HAProxy alone doing the same
        # work on the same config (`haproxy -c`, and a bare start until its admin socket answers),
        # so both sides see the same machine load.
        config_file = os.path.join(work, "alone.cfg")
        admin = os.path.join(work, "alone-admin.sock")
        alone_port = free_port()
        with open(config_file, "w") as f:
            f.write(config(alone_port, backend_port, 0))
            f.write(f"global\n    stats socket {admin} mode 600 level admin expose-fd listeners\n")
        request(control, {"op": "apply", "config": configs[1]})
        latencies, checks, starts = [], [], []
        for index in range(50):
            started = time.perf_counter()
            reply = request(control, {"op": "apply", "config": configs[index % 2]})
            latencies.append((time.perf_counter() - started) * 1000)
            assert reply.get("reloaded"), reply

            started = time.perf_counter()
            subprocess.run([HAPROXY, "-c", "-q", "-f", config_file], check=True)
            checks.append((time.perf_counter() - started) * 1000)

            started = time.perf_counter()
            process = subprocess.Popen([HAPROXY, "-db", "-f", config_file], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for(lambda: admin_pid(admin) == process.pid)
            starts.append((time.perf_counter() - started) * 1000)
            process.kill()
            process.wait()
        rss_after_50 = rss_kb(supervisor.pid)

        # 2. Failed requests during 50 reloads under load.
        load = {}
        plain = [config(port, backend_port, 0, idle_close=False), config(port, backend_port, 1, idle_close=False)]
        for mode, headers, variants in (("keep-alive", [], configs), ("close", ["-H", "Connection: close"], configs),
                                        ("keep-alive, template without option idle-close-on-response", [], plain)):
            wrk = subprocess.Popen(["wrk", "-t2", "-c50", "-d12s", "--timeout", "5s", *headers, f"http://127.0.0.1:{port}/"],
                                   stdout=subprocess.PIPE, text=True)
            time.sleep(1)
            for index in range(50):
                reply = request(control, {"op": "apply", "config": variants[index % 2]})
                assert reply.get("ok"), reply
                time.sleep(0.15)
            output = wrk.communicate()[0]
            requests = int(re.search(r"(\d+) requests in", output).group(1))
            rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
            errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
            load[mode] = (requests, rate, errors + (int(non2xx.group(1)) if non2xx else 0))

        # 3. RSS after 300 reloads in all (201 above, 99 more).
        for index in range(99):
            request(control, {"op": "apply", "config": configs[index % 2]})
        rss_after_300 = rss_kb(supervisor.pid)
        time.sleep(1)
        rss_idle_after = rss_kb(supervisor.pid)

        median = statistics.median(latencies)
        alone_start = statistics.median(starts)
        print("Supervisor (release build), config with 100 backends:")
        print(f"  apply -> reply (new generation serving), 50 applies: median {median:.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms")
        print(f"  HAProxy alone, same config: haproxy -c median {statistics.median(checks):.1f} ms (p99 {percentile(checks, 0.99):.1f}); "
              f"bare start until serving median {alone_start:.1f} ms (p99 {percentile(starts, 0.99):.1f})")
        print(f"  supervisor overhead over a bare HAProxy start: {median - alone_start:+.1f} ms (median vs median)")
        for mode, (requests, rate, errors) in load.items():
            print(f"  50 reloads under wrk -t2 -c50 ({mode}): {requests} requests at {rate:.0f} req/s, failed: {errors}")
        print(f"  supervisor RSS: idle {rss_idle_before / 1024:.1f} MB; after 51 reloads {rss_after_50 / 1024:.1f} MB; "
              f"after 300 reloads {rss_after_300 / 1024:.1f} MB; idle after {rss_idle_after / 1024:.1f} MB")
    finally:
        supervisor.terminate()
        supervisor.wait(timeout=40)
        backend.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
