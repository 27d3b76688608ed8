#!/usr/bin/env python3
"""Watcher benchmarks, end to end: a real source (etcd2, or the test Kubernetes API server), the
release supervisor and watcher, real HAProxy.

1. Change -> serving: from the etcd write that makes a pod ready to HAProxy routing requests
   to it, for isolated changes (more than the reload interval apart); 100 changes.
2. Rolling update: 1000 pod writes over 5 s (500 new ready pods, 500 old ones deleted) ->
   reloads, and time from the last write to the final config being live.
3. Scale: 10,000 pods across 1,000 services -> time from watcher start to the first config
   applied, and the watcher's RSS.

Usage: scripts/bench-watcher.py BINARY_DIR [--source etcd2|kubernetes|both] [latency] [rolling] [scale]
(default: both sources, every section). Through the Kubernetes API the objects go to
Tests/KubeAPIServer/kube_api_server.py, a Python server: its own speed is part of the figures.
"""
import concurrent.futures
import http.client
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import Etcd, free_port, percentile, request, rss_kb, wait_for  # noqa: E402

BIN = sys.argv[1] if len(sys.argv) > 1 else ".build/release"
ROOT = os.path.join(os.path.dirname(__file__), "..")
spec = importlib.util.spec_from_file_location("bench_jinja", os.path.join(os.path.dirname(__file__), "bench-jinja.py"))
bench_jinja = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_jinja)

TEMPLATE = """global
    maxconn 4000
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    option idle-close-on-response
frontend web
    bind 127.0.0.1:{{ env.BENCH_PORT }}
{%- for service in services %}
    acl host_{{ loop.index }} hdr(host) -i {{ service.hostnames[0] }}
    use_backend SERVICE_{{ service.name|upper }} if host_{{ loop.index }}
{%- endfor %}
{%- if services %}
    default_backend SERVICE_{{ services[0].name|upper }}
{%- endif %}
{% for service in services %}
backend SERVICE_{{ service.name|upper }}
    balance roundrobin
{%- for pod in service.pods.values() if pod.status.podIP %}
    server {{ service.name|upper }}_{{ loop.index }} {{ pod.status.podIP }}:{{ service.port }}
{%- endfor %}
{% endfor %}"""


def config_map(name, data):
    return {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": name, "namespace": "lb"}, "data": data}


def service_entry(name, namespace, port):
    return json.dumps({"namespace": namespace, "selector": {"app": name}, "hostnames": [f"{name}.example.com"], "port": port})


class EtcdStore:
    """The objects in etcd, where Kubernetes' etcd2 storage keeps them."""

    def __init__(self):
        self.etcd = Etcd()
        self.environment = {"ETCD2BASE": self.etcd.base}

    def put(self, resource, namespace, name, value):
        self.etcd.put(f"/registry/{resource}/{namespace}/{name}", value)

    def delete(self, resource, namespace, name):
        self.etcd.delete(f"/registry/{resource}/{namespace}/{name}")

    def soon(self, write, *arguments):
        write(*arguments)

    def settle(self):
        pass

    def stop(self):
        self.etcd.stop()


class APIStore:
    """The objects in the test Kubernetes API server, written through its REST API."""

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix="kube-haproxy-bench-apiserver.")
        port_file = os.path.join(self.directory, "port")
        self.log = open(os.path.join(self.directory, "server.log"), "w")
        self.process = subprocess.Popen([sys.executable, os.path.join(ROOT, "Tests", "KubeAPIServer", "kube_api_server.py"),
                                         "--port-file", port_file, "--admin-port-file", os.path.join(self.directory, "admin-port"),
                                         "--history", "20000"], stdout=self.log, stderr=self.log)
        if not wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), timeout=10):
            raise RuntimeError("the API server did not start")
        self.port = int(open(port_file).read().strip())
        self.environment = {"KUBE_HAPROXY_API_SERVER": f"http://127.0.0.1:{self.port}",
                            "KUBE_HAPROXY_API_TOKEN_FILE": os.path.join(self.directory, "no-token")}
        self.local = threading.local()
        # Writes that must keep a pace go through several connections at once: the Python server
        # is slower per request than etcd.
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=16)
        self.pending = []

    def _request(self, method, path, body=None):
        # A connection the server dropped, or one it refused while busy, is tried again.
        for attempt in range(5):
            if getattr(self.local, "connection", None) is None:
                self.local.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                data = json.dumps(body) if body is not None else None
                self.local.connection.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
                response = self.local.connection.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                self.local.connection = None
                if attempt == 4:
                    raise
                time.sleep(0.1 * (attempt + 1))
        return 0, b""

    def soon(self, write, *arguments):
        """Runs a write on one of the pool's connections; `settle()` waits for all of them."""
        self.pending.append(self.pool.submit(write, *arguments))

    def settle(self):
        for future in self.pending:
            future.result()
        self.pending = []

    def put(self, resource, namespace, name, value):
        collection = f"/api/v1/namespaces/{namespace}/{resource}"
        status, body = self._request("PUT", f"{collection}/{name}", value)
        if status == 404:
            status, body = self._request("POST", collection, value)
        if status == 409:  # a POST tried again after its answer was lost
            status, body = self._request("PUT", f"{collection}/{name}", value)
        if status not in (200, 201):
            raise RuntimeError(f"PUT {collection}/{name}: {status} {body[:200]}")

    def delete(self, resource, namespace, name):
        self._request("DELETE", f"/api/v1/namespaces/{namespace}/{resource}/{name}")

    def stop(self):
        self.pool.shutdown()
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)


SOURCE = "etcd2"


class Cluster:
    """A source + the supervisor with the real watcher, in a temporary directory."""

    def __init__(self, reload_interval):
        self.work = tempfile.mkdtemp(prefix="kube-haproxy-bench-watcher.")
        self.store = EtcdStore() if SOURCE == "etcd2" else APIStore()
        self.port = free_port()
        self.run_dir = os.path.join(self.work, "run")
        self.control = os.path.join(self.run_dir, "control.sock")
        self.reload_interval = reload_interval
        self.supervisor = None

    def start(self):
        env = dict(os.environ, KUBE_HAPROXY_RUN_DIR=self.run_dir, KUBE_HAPROXY_WATCHER=os.path.join(BIN, "kube-haproxy-watcher"),
                   KUBE_HAPROXY_RELOAD_INTERVAL=self.reload_interval, BENCH_PORT=str(self.port), STATISTICS_PASSWORD="bench",
                   **self.store.environment)
        self.log = open(os.path.join(self.work, "supervisor.log"), "w")
        self.started = time.perf_counter()
        self.supervisor = subprocess.Popen([os.path.join(BIN, "kube-haproxy")], env=env, stdout=self.log, stderr=self.log)
        if not wait_for(lambda: os.path.exists(self.control), timeout=10):
            raise RuntimeError("supervisor did not start")

    def status(self):
        return request(self.control, {"op": "status"})

    def live_config(self):
        try:
            with open(os.path.join(self.run_dir, "haproxy.cfg")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if sys.exc_info()[0] is not None and self.supervisor:
            with open(os.path.join(self.work, "supervisor.log")) as f:
                print("supervisor log (last lines):\n" + "".join(f.readlines()[-30:]), file=sys.stderr)
        if self.supervisor:
            self.supervisor.terminate()
            self.supervisor.wait(timeout=40)
            self.log.close()
        self.store.stop()
        shutil.rmtree(self.work, ignore_errors=True)


def get(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/", headers={"Connection": "close"})
        return connection.getresponse().read().decode().strip()
    except (OSError, http.client.HTTPException):
        return ""
    finally:
        connection.close()


def pod(name, namespace, ip, app, ready=True):
    _, body = bench_jinja.pod(app, namespace, abs(hash(name)) % 1000, ip)
    body["metadata"]["name"] = name
    body["metadata"]["labels"]["app"] = app
    if not ready:
        for status in body["status"]["containerStatuses"]:
            status["ready"] = False
    return body


def change_to_serving(changes=100):
    cluster = Cluster(reload_interval="250ms")
    backends = []
    try:
        addresses = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        backend_port = free_port("127.0.0.2")
        for index, address in enumerate(addresses):
            process = subprocess.Popen([sys.executable, os.path.join(ROOT, "Tests", "IntegrationSupport", "backend.py"),
                                        address, str(backend_port), f"b{index}"], stdout=subprocess.PIPE)
            process.stdout.readline()
            backends.append(process)
        store = cluster.store
        store.put("configmaps", "lb", "config", config_map("config", {"template": TEMPLATE}))
        store.put("configmaps", "lb", "services", config_map("services", {"web": service_entry("web", "default", backend_port)}))
        store.put("pods", "default", "pod-0", pod("pod-0", "default", addresses[0], "web"))
        cluster.start()
        if not wait_for(lambda: get(cluster.port) == "b0", timeout=20):
            raise RuntimeError("first config not serving")
        latencies = []
        for i in range(1, changes + 1):
            target = f"b{i % 3}"
            started = time.perf_counter()
            store.put("pods", "default", f"pod-{i}", pod(f"pod-{i}", "default", addresses[i % 3], "web"))
            if not wait_for(lambda: get(cluster.port) == target, timeout=10):
                raise RuntimeError(f"change {i} never served")
            latencies.append((time.perf_counter() - started) * 1000)
            # Back to one pod, then wait out the reload interval: the next change is isolated.
            store.delete("pods", "default", f"pod-{i - 1}")
            wait_for(lambda: f"{addresses[(i - 1) % 3]}:" not in cluster.live_config(), timeout=10)
            time.sleep(0.35)
        reloads = cluster.status()["reloads"]
        print("Change -> serving (write that makes a pod ready -> HAProxy routes to it), "
              f"{changes} isolated changes, reload interval 250ms, 0.35 s apart:")
        print(f"  median {statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms, "
              f"max {max(latencies):.1f} ms ({reloads} reloads in all)")
    finally:
        for process in backends:
            process.kill()
        cluster.stop()


def rolling_update(writes=1000, seconds=5.0, replicas=50):
    cluster = Cluster(reload_interval="1s")
    try:
        store = cluster.store
        store.put("configmaps", "lb", "config", config_map("config", {"template": TEMPLATE}))
        store.put("configmaps", "lb", "services", config_map("services", {"web": service_entry("web", "default", 8080)}))
        for i in range(replicas):
            store.put("pods", "default", f"old-{i}", pod(f"old-{i}", "default", f"127.0.1.{i + 1}", "web"))
        cluster.start()
        if not wait_for(lambda: cluster.status().get("generation", 0) >= 1, timeout=20):
            raise RuntimeError("first config not applied")
        time.sleep(1.5)
        before = cluster.status()["reloads"]
        started = time.perf_counter()
        # A rolling update: each step starts a new ready pod and deletes an old one.
        pairs = writes // 2
        alive = [f"old-{i}" for i in range(replicas)]
        for step in range(pairs):
            new = f"new-{step}"
            store.soon(store.put, "pods", "default", new, pod(new, "default", f"127.0.2.{1 + step % 250}", "web"))
            store.soon(store.delete, "pods", "default", alive.pop(0))
            alive.append(new)
            deadline = started + seconds * (step + 1) / pairs
            delay = deadline - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        store.settle()
        last_write = time.perf_counter()
        final_ips = sorted({f"127.0.2.{1 + int(name.split('-')[1]) % 250}:8080" for name in alive})

        def converged():
            live = cluster.live_config()
            servers = sorted(line.split()[2] for line in live.splitlines() if line.strip().startswith("server "))
            return sorted(set(servers)) == final_ips and len(servers) == replicas
        if not wait_for(converged, timeout=30):
            raise RuntimeError("rolling update never converged")
        converged_after = (time.perf_counter() - last_write) * 1000
        time.sleep(1.5)
        reloads = cluster.status()["reloads"] - before
        print(f"Rolling update: {writes} pod writes over {last_write - started:.1f} s ({replicas} replicas), reload interval 1s:")
        print(f"  {reloads} reloads; final config live {converged_after:.0f} ms after the last write")
    finally:
        cluster.stop()


def scale(services=1000, pods_per_service=10):
    cluster = Cluster(reload_interval="1s")
    try:
        store = cluster.store
        store.put("configmaps", "lb", "config", config_map("config", {"template": TEMPLATE}))
        entries = {}
        for s in range(services):
            name = f"svc-{s:04d}"
            entries[name] = service_entry(name, f"ns-{s % 20:02d}", 8080)
        store.put("configmaps", "lb", "services", config_map("services", entries))
        written = time.perf_counter()
        for s in range(services):
            name = f"svc-{s:04d}"
            for p in range(pods_per_service):
                pod_name = f"{name}-{p}"
                store.soon(store.put, "pods", f"ns-{s % 20:02d}", pod_name,
                         pod(pod_name, f"ns-{s % 20:02d}", f"10.{s // 250}.{s % 250}.{p + 1}", name))
        store.settle()
        written = time.perf_counter() - written
        cluster.start()
        if not wait_for(lambda: cluster.status().get("generation", 0) >= 1, timeout=120):
            raise RuntimeError("first config not applied")
        first_config = time.perf_counter() - cluster.started
        watcher = cluster.status()["watcher_pid"]
        with open(f"/proc/{watcher}/status") as f:
            peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        servers = sum(1 for line in cluster.live_config().splitlines() if line.strip().startswith("server "))
        if SOURCE == "kubernetes":
            # The Python server's own part: the same lists, one after the other, without the watcher.
            listed = time.perf_counter()
            for n in range(20):
                store._request("GET", f"/api/v1/namespaces/ns-{n:02d}/pods?limit=500")
            print(f"  (the test API server alone answers the 20 namespaces' pod lists in {(time.perf_counter() - listed) * 1000:.0f} ms)")
        print(f"Scale: {services * pods_per_service} pods across {services} services ({written:.0f} s to write them to {SOURCE}):")
        print(f"  watcher start -> first config applied: {first_config * 1000:.0f} ms ({servers} server lines); "
              f"watcher RSS {rss_kb(watcher) / 1024:.1f} MB, peak {peak / 1024:.1f} MB")
    finally:
        cluster.stop()


if __name__ == "__main__":
    arguments = sys.argv[2:]
    sources = ["etcd2", "kubernetes"]
    if "--source" in arguments:
        at = arguments.index("--source")
        sources = sources if arguments[at + 1] == "both" else [arguments[at + 1]]
        del arguments[at:at + 2]
    for SOURCE in sources:
        print(f"== source: {SOURCE}")
        for section in arguments or ["latency", "rolling", "scale"]:
            {"latency": change_to_serving, "rolling": rolling_update, "scale": scale}[section]()
