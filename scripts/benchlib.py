"""Helpers shared by the benchmark scripts: free ports, the control socket, RSS, percentiles,
polling, and a real etcd with the v2 API on loopback."""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import http.client


def free_port(address="127.0.0.1"):
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def request(sock_path, payload):
    return send_line(sock_path, (json.dumps(payload) + "\n").encode())


def send_line(sock_path, line):
    """Sends one request line, already encoded (so that its encoding stays out of a timing), and
    returns the parsed reply."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(sock_path)
        s.sendall(line)
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def wait_for(condition, timeout=10):
    # Polls as often as the supervisor does (1 ms), so the reference is not slowed by polling.
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.001)
    return False


def admin_pid(path):
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(1)
            s.connect(path)
            s.sendall(b"show info\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        match = re.search(rb"^Pid: (\d+)", data, re.M)
        return int(match.group(1)) if match else None
    except OSError:
        return None




class Etcd:
    """A real etcd (v2 API) on free loopback ports with a temporary data directory."""

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix="kube-haproxy-bench-etcd.")
        self.port = free_port()
        peer = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(self.directory, "etcd.log"), "w")
        self.process = subprocess.Popen([
            os.path.join(os.path.dirname(os.path.abspath(__file__)), "etcd-v2"), "bench", os.path.join(self.directory, "data"),
            self.base, self.base, f"http://127.0.0.1:{peer}"], stdout=self.log, stderr=self.log)
        self.connection = None
        if not wait_for(self._ready, timeout=20):
            raise RuntimeError("etcd did not start")

    def _ready(self):
        try:
            self._request("GET", "/v2/keys/")
            return True
        except OSError:
            self.connection = None
            return False

    def _request(self, method, path, body=None):
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            return response.status, response.read()
        except (http.client.HTTPException, OSError):
            self.connection = None
            raise

    def put(self, key, value):
        """Writes a key (value: a JSON-serialisable object, stored as its JSON text)."""
        status, body = self._request("PUT", "/v2/keys" + key, urllib.parse.urlencode({"value": json.dumps(value)}))
        if status not in (200, 201):
            raise RuntimeError(f"PUT {key}: {status} {body[:200]}")
        return json.loads(body)["node"]["modifiedIndex"]

    def delete(self, key):
        status, body = self._request("DELETE", "/v2/keys" + key)
        if status != 200:
            raise RuntimeError(f"DELETE {key}: {status} {body[:200]}")

    def stop(self):
        self.process.kill()
        self.process.wait()
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)
