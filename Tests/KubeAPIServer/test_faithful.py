"""kube_api_server.py spoken to by the official Kubernetes Python client: if the client's own
models, pagination, watch and 410 handling accept the server, so will a client written against
the real kube-apiserver.

Run: /usr/bin/python3 -m unittest discover -s Tests/KubeAPIServer -p 'test_*.py' -v
(the Debian package python3-kubernetes installs the client for /usr/bin/python3)."""
import base64
import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import kubernetes
from kubernetes import watch
from kubernetes.client import ApiException, CoreV1Api

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kube_api_server.py")
CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter, or use the continue token in this response to retrieve the remainder of the "
    "results. Continuing with the provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may show up in the list.")


class Server:
    """The server as a child process on free loopback ports, with a client for it."""

    def __init__(self, *arguments, token=None, tls=None, python=sys.executable):
        self.directory = tempfile.mkdtemp(prefix="kube-api-server-test.")
        port_file, admin_file = self.directory + "/port", self.directory + "/admin-port"
        self.log = open(self.directory + "/server.log", "w")
        self.process = subprocess.Popen([python, SERVER, "--port-file", port_file, "--admin-port-file", admin_file,
                                         *arguments], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 10
        while not (os.path.exists(port_file) and os.path.exists(admin_file)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start: " + read(self.directory + "/server.log"))
            time.sleep(0.02)
        self.port = int(read(port_file))
        self.admin_url = "http://127.0.0.1:%d" % int(read(admin_file))
        self.url = ("https" if tls else "http") + "://127.0.0.1:%d" % self.port
        self.clients = []
        self.api = self.client(token=token, tls=tls)

    def client(self, token=None, tls=None, retries=None):
        configuration = kubernetes.client.Configuration()
        configuration.host = self.url
        if token is not None:
            configuration.api_key = {"authorization": token}
            configuration.api_key_prefix = {"authorization": "Bearer"}
        if tls:
            configuration.ssl_ca_cert = tls["ca"]
            configuration.cert_file = tls.get("cert")
            configuration.key_file = tls.get("key")
        if retries is not None:
            configuration.retries = retries
        client = kubernetes.client.ApiClient(configuration)
        self.clients.append(client)
        return CoreV1Api(client)

    def admin(self, path, body=None, method="POST"):
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        request = urllib.request.Request(self.admin_url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def stop(self):
        for client in self.clients:
            client.rest_client.pool_manager.clear()
            client.close()
        self.process.terminate()
        code = self.process.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)
        return code


def read(path):
    with open(path) as file:
        return file.read()


def config_map(name, data=None, labels=None, namespace=None):
    metadata = {"name": name}
    if labels:
        metadata["labels"] = labels
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data or {}}


def status_of(error):
    return json.loads(error.body)


class ServerTestCase(unittest.TestCase):
    arguments = ()
    token = None
    tls = None

    def setUp(self):
        self.server = Server(*self.arguments, token=self.token, tls=self.tls)
        self.api = self.server.api

    def tearDown(self):
        self.assertEqual(self.server.stop(), 0, "the server exits 0 on SIGTERM")

    def assertStatus(self, call, code, reason, message):
        with self.assertRaises(ApiException) as raised:
            call()
        self.assertEqual(raised.exception.status, code)
        status = status_of(raised.exception)
        self.assertEqual((status["kind"], status["apiVersion"], status["status"], status["code"], status["reason"]),
                         ("Status", "v1", "Failure", code, reason))
        self.assertEqual(status["message"], message)
        return status


class ObjectTests(ServerTestCase):
    def test_config_map_create_get_replace_patch_delete(self):
        created = self.api.create_namespaced_config_map("lb", config_map("services", {"web": "{}"}))
        self.assertEqual(created.metadata.namespace, "lb")
        self.assertTrue(created.metadata.uid)
        self.assertIsNotNone(created.metadata.creation_timestamp)
        first = int(created.metadata.resource_version)

        fetched = self.api.read_namespaced_config_map("services", "lb")
        self.assertEqual((fetched.kind, fetched.api_version, fetched.data), ("ConfigMap", "v1", {"web": "{}"}))
        self.assertEqual(fetched.metadata.resource_version, str(first))

        fetched.data["api"] = "{}"
        replaced = self.api.replace_namespaced_config_map("services", "lb", fetched)
        self.assertEqual(int(replaced.metadata.resource_version), first + 1)
        self.assertEqual(replaced.metadata.uid, created.metadata.uid)

        # The body still carries the resourceVersion it was read at: now stale.
        status = self.assertStatus(lambda: self.api.replace_namespaced_config_map("services", "lb", fetched), 409, "Conflict",
                                   'Operation cannot be fulfilled on configmaps "services": the object has been modified; '
                                   "please apply your changes to the latest version and try again")
        self.assertEqual(status["details"], {"name": "services", "kind": "configmaps"})

        patched = self.api.patch_namespaced_config_map("services", "lb", {"data": {"web": None, "shop": "{}"}})
        self.assertEqual(patched.data, {"api": "{}", "shop": "{}"})
        self.assertEqual(int(patched.metadata.resource_version), first + 2)
        json_patched = self.api.patch_namespaced_config_map("services", "lb", [{"op": "add", "path": "/data/x", "value": "1"}])
        self.assertEqual(json_patched.data["x"], "1")

        self.assertStatus(lambda: self.api.create_namespaced_config_map("lb", config_map("services")), 409, "AlreadyExists",
                          'configmaps "services" already exists')
        deleted = self.api.delete_namespaced_config_map("services", "lb")
        self.assertEqual((deleted.kind, deleted.status, deleted.details.name, deleted.details.kind),
                         ("Status", "Success", "services", "configmaps"))
        status = self.assertStatus(lambda: self.api.read_namespaced_config_map("services", "lb"), 404, "NotFound",
                                   'configmaps "services" not found')
        self.assertEqual(status["details"], {"name": "services", "kind": "configmaps"})
        self.assertStatus(lambda: self.api.replace_namespaced_config_map("services", "lb", config_map("services")), 404,
                          "NotFound", 'configmaps "services" not found')

    def test_secret_pod_and_event_round_trip(self):
        secret = self.api.create_namespaced_secret("lb", {"metadata": {"name": "keys"}, "stringData": {"site": "KEY"}})
        self.assertEqual((secret.type, secret.data, secret.string_data), ("Opaque", {"site": base64.b64encode(b"KEY").decode()}, None))
        self.assertEqual(self.api.read_namespaced_secret("keys", "lb").data["site"], "S0VZ")

        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "web-1", "labels": {"app": "web"}},
               "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
               "status": {"podIP": "10.1.0.5", "phase": "Running"}}
        created = self.api.create_namespaced_pod("web", pod)
        self.assertEqual((created.status.pod_ip, created.spec.containers[0].image), ("10.1.0.5", "registry.example/app:1"))
        patched = self.api.patch_namespaced_pod("web-1", "web", {"metadata": {"labels": {"tier": "front"}}})
        self.assertEqual(patched.metadata.labels, {"app": "web", "tier": "front"})
        # A graceful delete leaves the pod terminating; grace 0 removes it and answers the pod.
        terminating = self.api.delete_namespaced_pod("web-1", "web", grace_period_seconds=30)
        self.assertIsNotNone(terminating.metadata.deletion_timestamp)
        self.assertEqual(terminating.metadata.deletion_grace_period_seconds, 30)
        self.assertIsNotNone(self.api.read_namespaced_pod("web-1", "web").metadata.deletion_timestamp)
        deleted = self.api.delete_namespaced_pod("web-1", "web", grace_period_seconds=0)
        self.assertEqual((deleted.kind, deleted.metadata.name), ("Pod", "web-1"))
        self.assertGreater(int(deleted.metadata.resource_version), int(terminating.metadata.resource_version))
        self.assertStatus(lambda: self.api.read_namespaced_pod("web-1", "web"), 404, "NotFound", 'pods "web-1" not found')

        event = {"apiVersion": "v1", "kind": "Event", "metadata": {"generateName": "kube-haproxy."},
                 "involvedObject": {"kind": "ConfigMap", "namespace": "lb", "name": "services"},
                 "reason": "BadService", "message": "service web: no selector", "type": "Warning"}
        created = self.api.create_namespaced_event("lb", event)
        self.assertTrue(created.metadata.name.startswith("kube-haproxy."))
        events = self.api.list_namespaced_event("lb", field_selector="involvedObject.name=services,type=Warning")
        self.assertEqual([item.message for item in events.items], ["service web: no selector"])
        stored = self.server.admin("/_test/objects?resource=events", method="GET")
        self.assertEqual([item["reason"] for item in stored["items"]], ["BadService"])
        self.assertEqual(self.api.delete_namespaced_event(created.metadata.name, "lb").status, "Success")

    def test_list_items_carry_no_kind_and_come_in_key_order(self):
        for namespace, name in [("b", "x"), ("a", "z"), ("a-b", "y"), ("a", "y")]:
            self.api.create_namespaced_config_map(namespace, config_map(name))
        raw = self.api.list_config_map_for_all_namespaces(_preload_content=False)
        body = json.loads(raw.data)
        self.assertEqual((body["kind"], body["apiVersion"]), ("ConfigMapList", "v1"))
        self.assertEqual(body["metadata"], {"resourceVersion": "5"})
        self.assertEqual([(item["metadata"]["namespace"], item["metadata"]["name"]) for item in body["items"]],
                         [("a-b", "y"), ("a", "y"), ("a", "z"), ("b", "x")])
        self.assertTrue(all("kind" not in item and "apiVersion" not in item for item in body["items"]))

    def test_discovery_answers(self):
        self.assertEqual(kubernetes.client.VersionApi(self.api.api_client).get_code().major, "1")
        resources = self.api.get_api_resources()
        self.assertEqual(sorted(resource.name for resource in resources.resources), ["configmaps", "events", "pods", "secrets"])
        self.assertEqual(kubernetes.client.CoreApi(self.api.api_client).get_api_versions().versions, ["v1"])


class ListTests(ServerTestCase):
    def test_pages_are_one_consistent_snapshot(self):
        for index in range(25):
            self.api.create_namespaced_config_map("ns-%d" % (index % 2), config_map("cm-%02d" % index))
        first = self.api.list_config_map_for_all_namespaces(limit=10)
        self.assertEqual(len(first.items), 10)
        self.assertEqual(first.metadata.remaining_item_count, 15)
        listed_at = first.metadata.resource_version
        # Changes after the first page do not show in the later ones.
        self.api.create_namespaced_config_map("ns-1", config_map("cm-99"))
        self.api.delete_namespaced_config_map("cm-23", "ns-1")
        self.api.patch_namespaced_config_map("cm-24", "ns-0", {"data": {"changed": "yes"}})
        items, page = list(first.items), first
        while page.metadata._continue:
            page = self.api.list_config_map_for_all_namespaces(limit=10, _continue=page.metadata._continue)
            self.assertEqual(page.metadata.resource_version, listed_at)
            items += page.items
        self.assertIsNone(page.metadata.remaining_item_count)
        names = [(item.metadata.namespace, item.metadata.name) for item in items]
        self.assertEqual(names, sorted(("ns-%d" % (index % 2), "cm-%02d" % index) for index in range(25)))
        self.assertEqual([item.data for item in items if item.metadata.name == "cm-24"], [None])
        self.assertEqual(len(self.api.list_config_map_for_all_namespaces().items), 25)

    def test_expired_continue_is_410_with_a_fresh_token(self):
        for index in range(5):
            self.api.create_namespaced_config_map("lb", config_map("cm-%d" % index))
        first = self.api.list_namespaced_config_map("lb", limit=2)
        self.server.admin("/_test/compact")
        status = self.assertStatus(lambda: self.api.list_namespaced_config_map("lb", limit=2, _continue=first.metadata._continue),
                                   410, "Expired", CONTINUE_TOO_OLD)
        rest = self.api.list_namespaced_config_map("lb", _continue=status["metadata"]["continue"])
        self.assertEqual([item.metadata.name for item in rest.items], ["cm-2", "cm-3", "cm-4"])

    def test_label_selectors(self):
        labels = {"a": {"app": "web", "tier": "front"}, "b": {"app": "web"}, "c": {"app": "api", "tier": "back"}, "d": {}}
        for name, value in labels.items():
            self.api.create_namespaced_pod("web", {"metadata": {"name": name, "labels": value},
                                                   "spec": {"containers": [{"name": "app", "image": "app"}]}})

        def names(selector):
            return [pod.metadata.name for pod in self.api.list_namespaced_pod("web", label_selector=selector).items]

        self.assertEqual(names("app=web"), ["a", "b"])
        self.assertEqual(names("app==web,tier=front"), ["a"])
        self.assertEqual(names("app!=web"), ["c", "d"])
        self.assertEqual(names("app in (api, web),tier notin (front)"), ["b", "c"])
        self.assertEqual(names("tier"), ["a", "c"])
        self.assertEqual(names("!tier"), ["b", "d"])
        self.assertEqual(names(""), ["a", "b", "c", "d"])
        with self.assertRaises(ApiException) as raised:
            names("app in web")
        self.assertEqual((raised.exception.status, status_of(raised.exception)["reason"]), (400, "BadRequest"))

    def test_field_selectors(self):
        for namespace, name, phase in [("web", "a", "Running"), ("web", "b", "Pending"), ("api", "a", "Running")]:
            self.api.create_namespaced_pod(namespace, {"metadata": {"name": name}, "status": {"phase": phase},
                                                       "spec": {"containers": [{"name": "app", "image": "app"}]}})

        def names(selector):
            return [(pod.metadata.namespace, pod.metadata.name)
                    for pod in self.api.list_pod_for_all_namespaces(field_selector=selector).items]

        self.assertEqual(names("metadata.name=a"), [("api", "a"), ("web", "a")])
        self.assertEqual(names("metadata.namespace=web,metadata.name!=a"), [("web", "b")])
        self.assertEqual(names("status.phase==Running,metadata.namespace!=api"), [("web", "a")])
        self.assertStatus(lambda: names("spec.unknown=x"), 400, "BadRequest", "field label not supported: spec.unknown")


class WatchTests(ServerTestCase):
    arguments = ("--bookmark-interval", "60")

    def stream_in_background(self, function, *args, count, **kwargs):
        """Collects `count` events from Watch().stream in a thread; returns (events, thread)."""
        events, ready = [], threading.Event()
        watcher = watch.Watch()

        def run():
            for event in watcher.stream(function, *args, **kwargs):
                events.append(event)
                if len(events) == count:
                    watcher.stop()
                    break
        thread = threading.Thread(target=run)
        thread.start()
        return events, thread

    def wait_for_watch(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            requests = self.server.admin("/_test/requests", method="GET")
            if any("watch=" in request["query"] for request in requests):
                return
            time.sleep(0.02)
        self.fail("the watch never reached the server")

    def test_watch_sends_added_modified_deleted_in_order(self):
        start = self.api.list_namespaced_config_map("lb").metadata.resource_version
        events, thread = self.stream_in_background(self.api.list_namespaced_config_map, "lb", count=4,
                                                   resource_version=start, timeout_seconds=20)
        self.wait_for_watch()
        written = [self.api.create_namespaced_config_map("lb", config_map("services", {"a": "1"})).metadata.resource_version]
        self.api.create_namespaced_config_map("elsewhere", config_map("services"))
        written.append(self.api.patch_namespaced_config_map("services", "lb", {"data": {"a": "2"}}).metadata.resource_version)
        self.api.delete_namespaced_config_map("services", "lb")
        written.append(str(int(written[-1]) + 1))
        written.append(self.api.create_namespaced_config_map("lb", config_map("config")).metadata.resource_version)
        thread.join(20)
        self.assertEqual([(event["type"], event["object"].metadata.name, event["object"].metadata.resource_version)
                          for event in events],
                         [("ADDED", "services", written[0]), ("MODIFIED", "services", written[1]),
                          ("DELETED", "services", written[2]), ("ADDED", "config", written[3])])
        self.assertEqual(events[1]["object"].data, {"a": "2"})
        self.assertEqual(events[0]["raw_object"]["kind"], "ConfigMap")

    def test_watch_resumes_from_a_resource_version_in_history(self):
        created = self.api.create_namespaced_config_map("lb", config_map("a"))
        self.api.create_namespaced_config_map("lb", config_map("b"))
        self.api.create_namespaced_config_map("lb", config_map("c"))
        events = list(watch.Watch().stream(self.api.list_namespaced_config_map, "lb",
                                           resource_version=created.metadata.resource_version, timeout_seconds=1))
        self.assertEqual([(event["type"], event["object"].metadata.name) for event in events], [("ADDED", "b"), ("ADDED", "c")])
        initial = list(watch.Watch().stream(self.api.list_namespaced_config_map, "lb", resource_version="0", timeout_seconds=1))
        self.assertEqual([(event["type"], event["object"].metadata.name) for event in initial],
                         [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")])

    def test_label_selector_watch_turns_relabelling_into_added_and_deleted(self):
        self.api.create_namespaced_pod("web", {"metadata": {"name": "web-1", "labels": {"app": "web"}},
                                               "spec": {"containers": [{"name": "app", "image": "app"}]}})
        start = self.api.list_namespaced_pod("web").metadata.resource_version
        events, thread = self.stream_in_background(self.api.list_namespaced_pod, "web", count=3, label_selector="app=web",
                                                   resource_version=start, timeout_seconds=20)
        self.wait_for_watch()
        self.api.patch_namespaced_pod("web-1", "web", {"metadata": {"labels": {"app": "other"}}})
        self.api.patch_namespaced_pod("web-1", "web", {"metadata": {"labels": {"note": "unselected"}}})
        self.api.patch_namespaced_pod("web-1", "web", {"metadata": {"labels": {"app": "web"}}})
        self.api.patch_namespaced_pod("web-1", "web", {"status": {"podIP": "10.1.0.9"}})
        thread.join(20)
        self.assertEqual([(event["type"], event["object"].metadata.labels.get("app")) for event in events],
                         [("DELETED", "web"), ("ADDED", "web"), ("MODIFIED", "web")])
        self.assertEqual(int(events[0]["object"].metadata.resource_version), int(start) + 1)

    def test_bookmarks_carry_the_current_resource_version(self):
        self.server.admin("/_test/bookmark-interval?seconds=0.2")
        created = self.api.create_namespaced_config_map("lb", config_map("services"))
        events = []
        for event in watch.Watch().stream(self.api.list_namespaced_config_map, "lb", allow_watch_bookmarks=True,
                                          resource_version=created.metadata.resource_version, timeout_seconds=5):
            events.append(event)
            if event["type"] == "BOOKMARK":
                break
        self.assertEqual([event["type"] for event in events], ["BOOKMARK"])
        self.assertEqual(events[0]["raw_object"], {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {
            "resourceVersion": created.metadata.resource_version, "creationTimestamp": None}})
        pod_bookmark = next(watch.Watch().stream(self.api.list_namespaced_pod, "web", allow_watch_bookmarks=True,
                                                 resource_version=created.metadata.resource_version, timeout_seconds=5))
        self.assertEqual(pod_bookmark["raw_object"], {"kind": "Pod", "apiVersion": "v1", "metadata": {
            "resourceVersion": created.metadata.resource_version, "creationTimestamp": None},
            "spec": {"containers": None}, "status": {}})
        without = list(watch.Watch().stream(self.api.list_namespaced_config_map, "lb",
                                            resource_version=created.metadata.resource_version, timeout_seconds=1))
        self.assertEqual(without, [])

    def test_compacted_resource_version_makes_the_client_raise_410(self):
        created = self.api.create_namespaced_config_map("lb", config_map("services"))
        self.api.patch_namespaced_config_map("services", "lb", {"data": {"a": "1"}})
        compacted = self.server.admin("/_test/compact")["resourceVersion"]
        with self.assertRaises(ApiException) as raised:
            list(watch.Watch().stream(self.api.list_namespaced_config_map, "lb",
                                      resource_version=created.metadata.resource_version, timeout_seconds=5))
        self.assertEqual(raised.exception.status, 410)
        self.assertEqual(raised.exception.reason, "Expired: too old resource version: %s (%s)"
                         % (created.metadata.resource_version, compacted))
        # A list made after the compaction can be watched from.
        relisted = self.api.list_namespaced_config_map("lb").metadata.resource_version
        self.assertEqual(list(watch.Watch().stream(self.api.list_namespaced_config_map, "lb", resource_version=relisted,
                                                   timeout_seconds=1)), [])

    def test_history_bound_expires_old_resource_versions(self):
        self.server.stop()
        self.server = Server("--history", "2")
        self.api = self.server.api
        created = self.api.create_namespaced_config_map("lb", config_map("a"))
        for name in "bcd":
            self.api.create_namespaced_config_map("lb", config_map(name))
        with self.assertRaises(ApiException) as raised:
            list(watch.Watch().stream(self.api.list_namespaced_config_map, "lb",
                                      resource_version=created.metadata.resource_version, timeout_seconds=5))
        self.assertEqual(raised.exception.status, 410)
        events = list(watch.Watch().stream(self.api.list_namespaced_config_map, "lb",
                                           resource_version=str(int(created.metadata.resource_version) + 1), timeout_seconds=1))
        self.assertEqual([event["object"].metadata.name for event in events], ["c", "d"])

    def test_http_410_mode_raises_from_the_call(self):
        created = self.api.create_namespaced_config_map("lb", config_map("services"))
        self.api.patch_namespaced_config_map("services", "lb", {"data": {"a": "1"}})
        self.server.admin("/_test/compact")
        self.server.admin("/_test/watch-410-mode?mode=http")
        with self.assertRaises(ApiException) as raised:
            list(watch.Watch().stream(self.api.list_namespaced_config_map, "lb",
                                      resource_version=created.metadata.resource_version, timeout_seconds=5))
        self.assertEqual(raised.exception.status, 410)
        self.assertEqual(status_of(raised.exception)["code"], 410)

    def test_injected_410_ends_an_open_watch(self):
        start = self.api.list_namespaced_config_map("lb").metadata.resource_version
        outcome = {}

        def run():
            try:
                for _ in watch.Watch().stream(self.api.list_namespaced_config_map, "lb", resource_version=start,
                                              timeout_seconds=20):
                    pass
                outcome["ended"] = True
            except ApiException as error:
                outcome["status"] = error.status
        thread = threading.Thread(target=run)
        thread.start()
        self.wait_for_watch()
        self.server.admin("/_test/watch-error-410")
        thread.join(20)
        self.assertEqual(outcome, {"status": 410})

    def test_close_watches_ends_streams_cleanly(self):
        start = self.api.list_namespaced_config_map("lb").metadata.resource_version
        finished = threading.Event()

        def run():
            list(watch.Watch().stream(self.api.list_namespaced_config_map, "lb", resource_version=start, timeout_seconds=20))
            finished.set()
        thread = threading.Thread(target=run)
        thread.start()
        self.wait_for_watch()
        self.server.admin("/_test/close-watches")
        thread.join(20)
        self.assertTrue(finished.is_set())


class AuthTests(ServerTestCase):
    def setUp(self):
        self.token_file = tempfile.mktemp(prefix="kube-api-server-tokens.")
        with open(self.token_file, "w") as file:
            file.write("first-token\nviewer-token,system:serviceaccount:web:viewer,uid-1\n")
        self.arguments = ("--token-file", self.token_file)
        self.token = "first-token"
        super().setUp()

    def tearDown(self):
        super().tearDown()
        os.unlink(self.token_file)

    def test_bearer_token_rotation(self):
        self.assertEqual(self.api.list_namespaced_config_map("lb").items, [])
        anonymous = self.server.client()
        self.assertStatus(lambda: anonymous.list_namespaced_config_map("lb"), 401, "Unauthorized", "Unauthorized")
        with open(self.token_file, "w") as file:
            file.write("second-token\n")
        self.assertStatus(lambda: self.api.list_namespaced_config_map("lb"), 401, "Unauthorized", "Unauthorized")
        rotated = self.server.client(token="second-token")
        self.assertEqual(rotated.list_namespaced_config_map("lb").items, [])
        requests = self.server.admin("/_test/requests", method="GET")
        self.assertEqual([(request["bearer"], request["token"], request["status"]) for request in requests],
                         [(True, "first-token", 200), (False, None, 401), (True, "first-token", 401), (True, "second-token", 200)])

    def test_forbidden_names_the_user_verb_and_scope(self):
        self.server.admin("/_test/forbid", {"verb": "list", "resource": "pods", "namespace": "default"})
        self.server.admin("/_test/forbid", {"verb": "get", "resource": "secrets", "namespace": "*"})
        status = self.assertStatus(lambda: self.api.list_namespaced_pod("default"), 403, "Forbidden",
                                   'pods is forbidden: User "system:serviceaccount:lb:kube-haproxy" cannot list resource '
                                   '"pods" in API group "" in the namespace "default"')
        self.assertEqual(status["details"], {"kind": "pods"})
        self.assertStatus(lambda: self.api.list_pod_for_all_namespaces(), 403, "Forbidden",
                          'pods is forbidden: User "system:serviceaccount:lb:kube-haproxy" cannot list resource '
                          '"pods" in API group "" at the cluster scope')
        viewer = self.server.client(token="viewer-token")
        self.assertStatus(lambda: viewer.read_namespaced_secret("keys", "lb"), 403, "Forbidden",
                          'secrets "keys" is forbidden: User "system:serviceaccount:web:viewer" cannot get resource '
                          '"secrets" in API group "" in the namespace "lb"')
        self.assertEqual(self.api.list_namespaced_pod("web").items, [])
        self.server.admin("/_test/allow-all")
        self.assertEqual(self.api.list_namespaced_pod("default").items, [])


class TLSTests(unittest.TestCase):
    @staticmethod
    def openssl(*arguments):
        subprocess.run(["openssl", *arguments], check=True, capture_output=True)

    def issue(self, directory, name, usage, san=None):
        self.openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                     "%s/%s.key" % (directory, name), "-out", "%s/%s.csr" % (directory, name), "-subj", "/CN=" + name)
        with open("%s/%s.ext" % (directory, name), "w") as file:
            file.write("extendedKeyUsage=%s\n%s" % (usage, "subjectAltName=%s\n" % san if san else ""))
        self.openssl("x509", "-req", "-in", "%s/%s.csr" % (directory, name), "-CA", directory + "/ca.crt", "-CAkey",
                     directory + "/ca.key", "-CAcreateserial", "-out", "%s/%s.crt" % (directory, name), "-days", "2",
                     "-extfile", "%s/%s.ext" % (directory, name))

    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="kube-api-server-tls.")
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                     self.directory + "/ca.key", "-out", self.directory + "/ca.crt", "-days", "2", "-subj", "/CN=test CA")
        self.issue(self.directory, "server", "serverAuth", "IP:127.0.0.1,DNS:localhost")
        self.issue(self.directory, "client", "clientAuth")

    def tearDown(self):
        shutil.rmtree(self.directory, ignore_errors=True)

    def test_https_with_the_ca_and_a_client_certificate(self):
        d = self.directory
        tls = {"ca": d + "/ca.crt", "cert": d + "/client.crt", "key": d + "/client.key"}
        server = Server("--tls-cert", d + "/server.crt", "--tls-key", d + "/server.key", "--client-ca", d + "/ca.crt", tls=tls)
        try:
            server.api.create_namespaced_config_map("lb", config_map("services"))
            self.assertEqual([item.metadata.name for item in server.api.list_namespaced_config_map("lb").items], ["services"])
            no_client_certificate = server.client(tls={"ca": d + "/ca.crt"}, retries=False)
            with self.assertRaises(Exception):
                no_client_certificate.list_namespaced_config_map("lb")
        finally:
            self.assertEqual(server.stop(), 0)


class WireTests(ServerTestCase):
    def raw(self, request):
        """One request over a fresh socket; the whole response as bytes."""
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as connection:
            connection.sendall(request)
            response = b""
            while True:
                data = connection.recv(65536)
                if not data:
                    return response
                response += data

    def test_writes_need_json_and_chunked_bodies_are_read(self):
        body = json.dumps(config_map("services")).encode()
        response = self.raw(b"POST /api/v1/namespaces/lb/configmaps HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        self.assertTrue(response.startswith(b"HTTP/1.1 415 "), response)
        self.assertIn(b'"reason":"UnsupportedMediaType"', response)
        response = self.raw(b"POST /api/v1/namespaces/lb/configmaps HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        self.assertTrue(response.startswith(b"HTTP/1.1 201 "), response)
        self.assertEqual(self.api.read_namespaced_config_map("services", "lb").metadata.name, "services")

    def test_watch_is_chunked_json_lines_and_ends_when_the_client_goes(self):
        created = self.api.create_namespaced_config_map("lb", config_map("services"))
        connection = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        connection.sendall(b"GET /api/v1/namespaces/lb/configmaps?watch=true&resourceVersion=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while b"\n}}\n" not in received and b"}}\n\r\n" not in received:
            received += connection.recv(65536)
        head, _, chunk = received.partition(b"\r\n\r\n")
        self.assertIn(b"Transfer-Encoding: chunked", head)
        self.assertIn(b"Content-Type: application/json", head)
        size, _, data = chunk.partition(b"\r\n")
        line = data[:int(size, 16)]
        self.assertTrue(line.endswith(b"\n"))
        self.assertEqual(json.loads(line)["type"], "ADDED")
        self.assertEqual(json.loads(line)["object"]["metadata"]["resourceVersion"], created.metadata.resource_version)
        self.assertEqual(self.server.admin("/_test/watches", method="GET"),
                         [{"resource": "configmaps", "namespace": "lb", "labelSelector": "", "fieldSelector": ""}])
        connection.close()
        deadline = time.monotonic() + 10
        while self.server.admin("/_test/watches", method="GET") and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.server.admin("/_test/watches", method="GET"), [])

    def test_initial_events_end_with_an_annotated_bookmark(self):
        self.api.create_namespaced_config_map("lb", config_map("a"))
        created = self.api.create_namespaced_config_map("lb", config_map("b"))
        response = self.raw(b"GET /api/v1/namespaces/lb/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
                            b"&resourceVersionMatch=NotOlderThan&timeoutSeconds=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        lines = [json.loads(line) for line in response.split(b"\r\n") if line.startswith(b"{")]
        self.assertEqual([(line["type"], line["object"]["metadata"].get("name")) for line in lines],
                         [("ADDED", "a"), ("ADDED", "b"), ("BOOKMARK", None)])
        self.assertEqual(lines[2]["object"]["metadata"], {"resourceVersion": created.metadata.resource_version,
                                                          "creationTimestamp": None,
                                                          "annotations": {"k8s.io/initial-events-end": "true"}})

    def test_writes_record_their_manager_in_managed_fields(self):
        created = self.api.create_namespaced_config_map("lb", config_map("services", {"web": "{}"}, labels={"app": "lb"}))
        [entry] = created.metadata.managed_fields
        self.assertEqual((entry.manager, entry.operation, entry.api_version, entry.fields_type),
                         ("OpenAPI-Generator", "Update", "v1", "FieldsV1"))
        self.assertEqual(entry.fields_v1, {"f:data": {".": {}, "f:web": {}},
                                           "f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
        patched = self.api.patch_namespaced_config_map("services", "lb", {"data": {"api": "{}"}}, field_manager="kube-haproxy")
        self.assertEqual([entry.manager for entry in patched.metadata.managed_fields], ["OpenAPI-Generator", "kube-haproxy"])
        listed = self.api.list_namespaced_config_map("lb").items[0]
        self.assertEqual(len(listed.metadata.managed_fields), 2)

    def test_large_responses_are_gzipped_for_clients_that_accept_it(self):
        value = "x" * 2000
        for index in range(80):
            self.api.create_namespaced_config_map("lb", config_map("cm-%02d" % index, {"value": value}))
        self.assertEqual(len(self.api.list_namespaced_config_map("lb").items), 80)
        compressed = self.raw(b"GET /api/v1/namespaces/lb/configmaps HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n"
                              b"Connection: close\r\n\r\n")
        head, _, body = compressed.partition(b"\r\n\r\n")
        self.assertIn(b"Content-Encoding: gzip", head)
        self.assertEqual(len(json.loads(gzip.decompress(body))["items"]), 80)
        plain = self.raw(b"GET /api/v1/namespaces/lb/configmaps HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertNotIn(b"Content-Encoding", plain.partition(b"\r\n\r\n")[0])

    def test_injected_too_many_requests_carries_retry_after(self):
        self.server.admin("/_test/fail-next?count=1&code=429")
        # urllib3 would wait for Retry-After and ask again on its own.
        without_retries = self.server.client(retries=False)
        status = self.assertStatus(lambda: without_retries.list_namespaced_pod("web"), 429, "TooManyRequests",
                                   "Too many requests, please try again later.")
        self.assertEqual(status["details"], {"retryAfterSeconds": 1})
        self.assertEqual(self.api.list_namespaced_pod("web").items, [])

    def test_delete_preconditions(self):
        created = self.api.create_namespaced_config_map("lb", config_map("services"))
        options = kubernetes.client.V1DeleteOptions(preconditions=kubernetes.client.V1Preconditions(resource_version="1"))
        self.assertStatus(lambda: self.api.delete_namespaced_config_map("services", "lb", body=options), 409, "Conflict",
                          'Operation cannot be fulfilled on configmaps "services": Precondition failed: ResourceVersion in '
                          "precondition: 1, ResourceVersion in object meta: %s" % created.metadata.resource_version)
        options.preconditions.resource_version = created.metadata.resource_version
        self.assertEqual(self.api.delete_namespaced_config_map("services", "lb", body=options).status, "Success")


class InterpreterTests(unittest.TestCase):
    def test_server_runs_under_each_python3_the_tests_use(self):
        # The Swift tests start it with the python3 first on PATH; these tests with this one.
        for python in sorted({sys.executable, shutil.which("python3") or sys.executable}):
            with self.subTest(python=python):
                server = Server(python=python)
                try:
                    created = server.api.create_namespaced_config_map("lb", config_map("services"))
                    events = list(watch.Watch().stream(server.api.list_namespaced_config_map, "lb", resource_version="0",
                                                       timeout_seconds=1))
                    self.assertEqual([(event["type"], event["object"].metadata.resource_version) for event in events],
                                     [("ADDED", created.metadata.resource_version)])
                finally:
                    self.assertEqual(server.stop(), 0)


class DownTests(ServerTestCase):
    def test_down_refuses_connections_then_serves_again_on_the_same_port(self):
        self.api.create_namespaced_config_map("lb", config_map("services"))
        watching = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        watching.sendall(b"GET /api/v1/namespaces/lb/configmaps?watch=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while b"ADDED" not in received:
            received += watching.recv(65536)
        self.server.admin("/_test/down?seconds=1")
        while True:
            try:
                data = watching.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            received += data
        watching.close()
        self.assertFalse(received.endswith(b"0\r\n\r\n"), "an open watch is cut, not ended")
        with self.assertRaises(urllib.error.URLError):
            urllib.request.urlopen(self.server.url + "/healthz", timeout=2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.server.url + "/healthz", timeout=2) as response:
                    self.assertEqual(response.read(), b"ok")
                    break
            except urllib.error.URLError:
                time.sleep(0.05)
        self.assertEqual([item.metadata.name for item in self.api.list_namespaced_config_map("lb").items], ["services"])


if __name__ == "__main__":
    unittest.main()
