#!/usr/bin/env python3
"""Supervisor benchmarks (release build), each against a reference measured in the same run.

1. Reload latency: apply request -> reply (new generation serving) for a config with 100
   backends, 50 applies; beside HAProxy alone doing the same work: `haproxy -c` and a bare
   start (no supervisor) until its admin socket answers.
2. Failed requests during 50 reloads under wrk load (keep-alive and Connection: close), and
   the same with keep-alive for a config without `option idle-close-on-response`.
3. Supervisor RSS idle, after 51 reloads and after 300.
   (1 to 3 run with KUBE_HAPROXY_RUNTIME_UPDATES=off: their applies change only servers.)
4. Endpoint changes through the runtime API, with examples/basic.yaml's template rendered by the
   watcher: one pod's new address -> that address gets traffic (apply request -> first response
   from it), in a small cluster (10 services x 2 pods) and at 500 services x 20 pods, each beside
   the reload path (KUBE_HAPROXY_RUNTIME_UPDATES=off) in the same run.
5. 1000 pod updates in 5 s (a rolling update of a 20-replica service in a 50 x 20 cluster, each
   update its own apply): reloads, time from the last write to the final state served, HAProxy's
   RSS before and after.

Usage: scripts/bench-supervisor.py BINARY_DIR [SECTION...]    sections: reload, runtime, rolling
"""
import http.client
import importlib.util
import json
import os
import re
import socket
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import admin_pid, free_port, percentile, request, rss_kb, send_line, wait_for

BIN = sys.argv[1] if len(sys.argv) > 1 else ".build/release"
SECTIONS = sys.argv[2:] or ["reload", "runtime", "rolling"]
ROOT = os.path.join(os.path.dirname(__file__), "..")
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


def reload_bench():
    work = tempfile.mkdtemp(prefix="kube-haproxy-bench.")
    run_dir = os.path.join(work, "run")
    backend_port = free_port("127.0.0.2")
    backend = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "..", "Tests", "IntegrationSupport", "backend.py"),
                                "127.0.0.2", str(backend_port), "bench"], stdout=subprocess.PIPE)
    backend.stdout.readline()
    env = dict(os.environ, KUBE_HAPROXY_RUN_DIR=run_dir, KUBE_HAPROXY_WATCHER="none", KUBE_HAPROXY_RUNTIME_UPDATES="off")
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




# --- 4 and 5: endpoint changes through the runtime API ---------------------------------------------

spec = importlib.util.spec_from_file_location("bench_jinja", os.path.join(os.path.dirname(__file__), "bench-jinja.py"))
bench_jinja = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_jinja)

# service-001: one host name, no path rule, no TLS (bench-jinja's context gives those to others).
MEASURED_NUMBER = 1
MEASURED = "SERVICE-001"
MEASURED_HOST = "service-001.example.com"


def basic_template(path):
    """The `template` key of examples/basic.yaml, as the ConfigMap holds it."""
    lines = open(os.path.join(ROOT, "examples", "basic.yaml")).read().split("\n")
    start = next(i for i, line in enumerate(lines) if line.strip() == "template: |") + 1
    body = []
    for line in lines[start:]:
        if line.strip() and not line.startswith("    "):
            break
        body.append(line[4:])
    with open(path, "w") as f:
        f.write("\n".join(body))


class Pods:
    """An HAProxy answering on each address with that address: the pods whose traffic is watched."""

    def __init__(self, work, addresses, port):
        config = os.path.join(work, "pods.cfg")
        with open(config, "w") as f:
            f.write("\n".join(["global", "    maxconn 4000", "defaults", "    mode http", "    timeout connect 2s",
                               "    timeout client 30s", "    timeout server 30s", "frontend pods"]
                              + [f"    bind {address}:{port}" for address in addresses]
                              + ['    http-request return status 200 content-type text/plain lf-string "%[dst]"']) + "\n")
        self.process = subprocess.Popen([HAPROXY, "-db", "-f", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for(lambda: connectable(addresses[-1], port)):
            raise RuntimeError("the pods' haproxy did not start")

    def stop(self):
        self.process.kill()
        self.process.wait()


def connectable(address, port):
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def render_cluster(work, services, pods, port, http_port, measured_addresses):
    """The basic template rendered by the watcher for services x pods: the measured service's pods
    at the given addresses (the pods' haproxy answers there), every other pod at a loopback address
    where nothing listens (their health checks fail at once, no traffic leaves the machine)."""
    context = bench_jinja.context(services, pods)
    serial = 0
    for number, service in enumerate(context["services"]):
        for index, pod in enumerate(service["pods"].values()):
            serial += 1
            ip = measured_addresses[index] if number == MEASURED_NUMBER else f"127.{1 + serial // 65536}.{serial // 256 % 256}.{serial % 256}"
            pod["status"]["podIP"] = ip
            pod["status"]["podIPs"] = [{"ip": ip}]
        if number == MEASURED_NUMBER:
            service["ports"] = [port]
    context["env"].update({"LISTEN_ADDRESS": "127.0.0.1", "HTTP_PORT": str(http_port), "STATS_PORT": str(free_port())})
    template = os.path.join(work, "basic.j2")
    basic_template(template)
    context_path = os.path.join(work, "context.json")
    with open(context_path, "w") as f:
        json.dump(context, f)
    rendered = subprocess.run([os.path.join(BIN, "kube-haproxy-watcher"), "render", "--template", template, "--context", context_path],
                              check=True, capture_output=True, text=True).stdout
    return rendered


def encoded(config):
    """An apply request, encoded before the clock starts."""
    return (json.dumps({"op": "apply", "config": config}) + "\n").encode()


class Client:
    """Keep-alive GETs to the measured service through HAProxy; reconnects when a reload closes."""

    def __init__(self, port):
        self.port = port
        self.connection = None

    def get(self):
        for _ in range(3):
            try:
                if self.connection is None:
                    self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                self.connection.request("GET", "/", headers={"Host": MEASURED_HOST})
                response = self.connection.getresponse()
                body = response.read().decode()
                if response.getheader("Connection", "").lower() == "close":
                    self.connection.close()
                    self.connection = None
                return body if response.status == 200 else f"status {response.status}"
            except (http.client.HTTPException, OSError):
                if self.connection:
                    self.connection.close()
                self.connection = None
        return "no answer"


class Supervisor:
    def __init__(self, work, name, runtime):
        self.run_dir = os.path.join(work, name)
        self.control = os.path.join(self.run_dir, "control.sock")
        env = dict(os.environ, KUBE_HAPROXY_RUN_DIR=self.run_dir, KUBE_HAPROXY_WATCHER="none",
                   KUBE_HAPROXY_RUNTIME_UPDATES="on" if runtime else "off")
        self.log = open(os.path.join(work, name + ".log"), "w")
        self.process = subprocess.Popen([SUPERVISOR], env=env, stdout=self.log, stderr=self.log)
        if not wait_for(lambda: os.path.exists(self.control)):
            raise RuntimeError("supervisor did not start")

        # The socket file appears at bind, a moment before the supervisor listens.
        if not wait_for(lambda: self.answers()):
            raise RuntimeError("supervisor does not answer")

    def answers(self):
        try:
            return self.status().get("ok", False)
        except OSError:
            return False

    def status(self):
        return request(self.control, {"op": "status"})

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=40)
        self.log.close()


def server_line(name, address, port):
    return f"server {name} {address}:{port} check"


def measure_changes(work, name, config, port, http_port, addresses, pool, changes, runtime):
    """`changes` new addresses for the measured service's first server: apply request -> first
    answer from the new address, and apply request -> reply."""
    supervisor = Supervisor(work, name, runtime)
    client = Client(http_port)
    try:
        reply = send_line(supervisor.control, encoded(config))
        assert reply.get("ok"), reply
        if not wait_for(lambda: client.get() in addresses, timeout=20):
            raise RuntimeError(f"{name}: the measured service is not served")
        current = addresses[0]
        to_serving, to_reply = [], []
        for index in range(changes):
            new = pool[index % len(pool)]
            changed = config.replace(server_line(f"{MEASURED}_1_1", current, port), server_line(f"{MEASURED}_1_1", new, port))
            assert changed != config
            data = encoded(changed)
            started = time.perf_counter()
            reply = send_line(supervisor.control, data)
            replied = time.perf_counter()
            assert reply.get("ok") and reply.get("runtime") == runtime, reply
            deadline = started + 20
            while client.get() != new:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{name}: {new} never served")
            served = time.perf_counter()
            to_serving.append((served - started) * 1000)
            to_reply.append((replied - started) * 1000)
            config, current = changed, new
            # Old generations of the reload path finish their connections between changes.
            time.sleep(0.1 if not runtime else 0.02)
        status = supervisor.status()
        return to_serving, to_reply, status
    finally:
        supervisor.stop()


def runtime_bench():
    work = tempfile.mkdtemp(prefix="kube-haproxy-bench-runtime.")
    port = free_port()
    addresses = [f"127.250.0.{i}" for i in range(1, 21)]
    pool = [f"127.250.1.{i}" for i in range(1, 41)]
    pods = Pods(work, addresses + pool, port)
    try:
        print("Endpoint change -> serving (one pod's new address; apply request -> first answer from it), "
              "examples/basic.yaml's template (leastconn, server lines with check):")
        for services, per_service, changes in ((10, 2, 100), (500, 20, 30)):
            http_port = free_port()
            config = render_cluster(work, services, per_service, port, http_port, addresses)
            lines = sum(1 for line in config.splitlines() if line.strip().startswith("server "))
            results = {}
            for runtime in (True, False):
                results[runtime] = measure_changes(work, f"{services}x{per_service}-{'runtime' if runtime else 'reload'}", config, port,
                                                   http_port, addresses, pool, changes, runtime)
            print(f"  {services} services x {per_service} pods ({lines} server lines, config {len(config) // 1024} KB), {changes} changes each:")
            for runtime, label in ((True, "runtime API"), (False, "reload (KUBE_HAPROXY_RUNTIME_UPDATES=off)")):
                serving, replies, status = results[runtime]
                print(f"    {label:42} median {statistics.median(serving):7.1f} ms, p99 {percentile(serving, 0.99):7.1f} ms "
                      f"(apply -> reply median {statistics.median(replies):6.1f} ms); reloads {status['reloads'] - 1}, "
                      f"runtime updates {status.get('runtime_updates', 0)}")
            print(f"    runtime API faster by {statistics.median(results[False][0]) / statistics.median(results[True][0]):.1f}x (medians)")
    finally:
        pods.stop()
        shutil.rmtree(work, ignore_errors=True)


def rolling_bench(updates=1000, seconds=5.0, services=50, per_service=20):
    work = tempfile.mkdtemp(prefix="kube-haproxy-bench-rolling.")
    port = free_port()
    http_port = free_port()
    pool = [f"127.250.{2 + i // 250}.{1 + i % 250}" for i in range(updates + per_service)]
    pods = Pods(work, pool, port)
    supervisor = Supervisor(work, "rolling", True)
    try:
        base = render_cluster(work, services, per_service, port, http_port, pool[:per_service])
        head, rest = base.split(f"backend SERVICE_{MEASURED}\n", 1)
        tail = rest[rest.index("\nbackend "):] if "\nbackend " in rest else "\n"

        def config(addresses):
            # The template's positional names: a pod's server is named by its place in the sorted pods.
            lines = [f"  {server_line(f'{MEASURED}_{i + 1}_1', address, port)}" for i, address in enumerate(addresses)]
            return head + f"backend SERVICE_{MEASURED}\n" + "\n".join(lines) + "\n" + tail

        alive = pool[:per_service]
        assert send_line(supervisor.control, encoded(config(alive))).get("ok")
        client = Client(http_port)
        if not wait_for(lambda: client.get() in alive, timeout=20):
            raise RuntimeError("rolling: not served")
        haproxy_pid = supervisor.status()["haproxy_pid"]
        rss_before = rss_kb(haproxy_pid)
        reloads_before = supervisor.status()["reloads"]
        # A rolling update: each pair of updates starts a new pod, then stops the oldest.
        apply_times = []
        started = time.perf_counter()
        next_pod = per_service
        for update in range(updates):
            if update % 2 == 0:
                alive = alive + [pool[next_pod]]
                next_pod += 1
            else:
                alive = alive[1:]
            line = encoded(config(alive))
            sent = time.perf_counter()
            reply = send_line(supervisor.control, line)
            apply_times.append((time.perf_counter() - sent) * 1000)
            assert reply.get("ok"), reply
            delay = started + seconds * (update + 1) / updates - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        writes_done = time.perf_counter()
        last_write = started + seconds
        final = set(alive)
        seen = set()
        # Converged: the final servers answer (leastconn spreads sequential requests over all of them).
        while seen != final:
            if time.perf_counter() > writes_done + 30:
                raise RuntimeError(f"rolling: never converged, served {sorted(seen)}")
            answer = client.get()
            if answer not in final:
                seen = set()
                continue
            seen.add(answer)
        converged = (time.perf_counter() - last_write) * 1000
        status = supervisor.status()
        time.sleep(1)
        rss_after = rss_kb(haproxy_pid)
        print(f"Rolling update through the runtime API: {updates} pod updates over {seconds:.0f} s, each its own apply, "
              f"{services} services x {per_service} pods:")
        print(f"  reloads {status['reloads'] - reloads_before}, runtime updates {status['runtime_updates']}, fallbacks {status['runtime_fallbacks']}; "
              f"the {updates} applies took {writes_done - started:.1f} s (each: median {statistics.median(apply_times):.1f} ms, "
              f"p99 {percentile(apply_times, 0.99):.1f} ms); "
              f"final servers all answering {converged:.0f} ms after the last scheduled write")
        print(f"  HAProxy (pid {haproxy_pid}, the same throughout: {status['haproxy_pid'] == haproxy_pid}) RSS "
              f"{rss_before / 1024:.1f} MB before, {rss_after / 1024:.1f} MB after")
    finally:
        supervisor.stop()
        pods.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    for section in SECTIONS:
        {"reload": reload_bench, "runtime": runtime_bench, "rolling": rolling_bench}[section]()


if __name__ == "__main__":
    main()
