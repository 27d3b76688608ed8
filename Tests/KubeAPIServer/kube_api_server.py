#!/usr/bin/env python3
"""A test Kubernetes API server: core/v1 pods, configmaps, secrets and events, speaking the
real kube-apiserver's wire protocol (JSON objects, Status errors, chunked lists with continue
tokens, watches with bookmarks and 410 expiry, bearer tokens, TLS), with an admin listener
through which tests break it on purpose. Python 3 standard library only.

Usage: kube_api_server.py [--address IP] [--port N | --port-file PATH] [--admin-port N | --admin-port-file PATH]
                          [--token-file PATH] [--tls-cert PEM --tls-key PEM [--client-ca PEM]]
                          [--history N] [--bookmark-interval SECONDS] [--max-watch-seconds SECONDS]
                          [--verbose]

Main listener (--address, 127.0.0.1 unless given; HTTPS with --tls-cert/--tls-key):
  GET /healthz /livez /readyz /version /api /api/v1, GET /api/v1/namespaces/{ns} (every namespace exists)
  /api/v1/namespaces/{ns}/{resource}          GET list or watch (?watch=1), POST create
  /api/v1/namespaces/{ns}/{resource}/{name}   GET, PUT, PATCH, DELETE
  /api/v1/{resource}                          GET list or watch across namespaces
  /api/v1/watch/namespaces/{ns}/{resource}, /api/v1/watch/{resource}   the legacy watch paths
  Watches: resourceVersion "" or "0" starts with the current objects as ADDED; N resumes after N
  from the history (--history events; older: 200 and an ERROR event with a 410 Expired Status);
  sendInitialEvents=true with allowWatchBookmarks=true ends the initial ADDED events with a
  BOOKMARK annotated k8s.io/initial-events-end. Bookmarks are empty objects of the kind as the real
  server serialises them ({"metadata":{"resourceVersion":"N","creationTimestamp":null}}, and for
  pods "spec":{"containers":null},"status":{}).
  Every write sets metadata.resourceVersion (one counter for all objects), uid and
  creationTimestamp (create) and managedFields (manager: ?fieldManager, else the User-Agent up to
  its first "/"); an update that changes nothing writes nothing. Responses of 128 KiB or more are
  gzipped for clients that send Accept-Encoding: gzip.
  resource: pods, configmaps, secrets, events. POST and PUT take Content-Type application/json;
  PATCH application/merge-patch+json, application/strategic-merge-patch+json (applied as a merge
  patch) or application/json-patch+json. DELETE removes at once; a pod deleted with
  gracePeriodSeconds > 0 becomes terminating instead (MODIFIED), until deleted with 0.
  --token-file: one accepted token a line, `TOKEN[,USER[,UID]]` as kube-apiserver's static token
  file, read again on every request. The user named in 403 messages is the token's USER, else
  system:serviceaccount:lb:kube-haproxy; without --token-file every request is system:anonymous.

Admin listener (plain HTTP on 127.0.0.1, never down, no auth), for tests:
  Each POST answers {"ok":true} (400 {"ok":false,"error":…} for bad arguments).
  POST /_test/compact                     forget all history up to now (old continue tokens and
                                          watch resource versions get 410); the counter moves on
                                          by one: {"ok":true,"resourceVersion":"N"}
  POST /_test/watch-error-410             every open watch gets an ERROR 410 event, then ends
  POST /_test/close-watches               every open watch ends cleanly
  POST /_test/down?seconds=N              close the main listener and every connection on it;
                                          listen again on the same port after N seconds
  POST /_test/forbid  {"verb","resource","namespace"}   deny (each field may be "*")
  POST /_test/allow-all                   drop every deny rule
  POST /_test/fail-next?count=N&code=C    the next N authenticated requests fail with C: 429
                                          (TooManyRequests, Retry-After: 1), 500 (InternalError)
                                          or 503 (ServiceUnavailable)
  POST /_test/watch-410-mode?mode=event|http   a too-old watch resourceVersion: 200 and an ERROR
                                          event (default, as the real server), or HTTP 410
                                          with a Status (reason Gone)
  POST /_test/bookmark-interval?seconds=X
  GET  /_test/requests                    every request served on the main listener, in order:
                                          [{"method","path","query" (raw),"bearer" (bool),"token"
                                          (or null),"status","userAgent"}]
  POST /_test/clear-requests
  GET  /_test/objects?resource=R[&namespace=NS]   {"resourceVersion": "N", "items": [...]}
  GET  /_test/watches                     the open watches: [{"resource","namespace","labelSelector","fieldSelector"}]
The port files are written (atomically) once the listener listens. Exits 0 on SIGTERM or SIGINT.
"""
import argparse
import base64
import bisect
import collections
import copy
import datetime
import gzip
import json
import os
import queue
import random
import select
import signal
import socket
import ssl
import string
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# resource -> (kind, singular name, short names)
RESOURCES = {
    "pods": ("Pod", "pod", ["po"]),
    "configmaps": ("ConfigMap", "configmap", ["cm"]),
    "secrets": ("Secret", "secret", []),
    "events": ("Event", "event", ["ev"]),
}
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
# Field selectors the real server accepts per resource, beside metadata.name and metadata.namespace.
FIELDS = {
    "pods": ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
             "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"],
    "configmaps": [],
    "secrets": ["type"],
    "events": ["involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
               "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
               "reason", "reportingComponent", "source", "type"],
}
# A bookmark's object is an empty object of the kind with only its resourceVersion set, serialised
# as Go serialises it: zero timestamps as null, fields without omitempty as their zero values.
BOOKMARK_FIELDS = {
    "pods": {"spec": {"containers": None}, "status": {}},
    "configmaps": {},
    "secrets": {},
    "events": {"involvedObject": {}, "source": {}, "firstTimestamp": None, "lastTimestamp": None, "eventTime": None,
               "reportingComponent": "", "reportingInstance": ""},
}
DEFAULT_USER = "system:serviceaccount:lb:kube-haproxy"
CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter, or use the continue token in this response to retrieve the remainder of the "
    "results. Continuing with the provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may show up in the list.")
PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml"]


class APIError(Exception):
    """A failure answered as a Status object."""

    def __init__(self, code, reason, message, details=None, metadata=None):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details, self.metadata = details, metadata or {}
        self.headers = []

    def status(self):
        result = {"kind": "Status", "apiVersion": "v1", "metadata": self.metadata, "status": "Failure",
                  "message": self.message, "reason": self.reason}
        if self.details is not None:
            result["details"] = self.details
        result["code"] = self.code
        return result


def not_found(resource, name):
    return APIError(404, "NotFound", '%s "%s" not found' % (resource, name), {"name": name, "kind": resource})


def bad_request(message):
    return APIError(400, "BadRequest", message)


def expired(message, metadata=None):
    return APIError(410, "Expired", message, metadata=metadata)


def now_timestamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- selectors ----

class LabelSelector:
    """Kubernetes label selector syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`,
    `a`, `!a`, `a>1`, `a<1`, comma-separated, all must hold."""

    def __init__(self, text):
        self.requirements = []
        tokens = self.tokenize(text or "")
        position = 0

        def peek():
            return tokens[position] if position < len(tokens) else None

        while position < len(tokens):
            token = tokens[position]
            if token == "!":
                position += 1
                key = peek()
                if key is None or not self.is_word(key):
                    raise bad_request("unable to parse requirement: found '%s', expected: identifier" % (key or ""))
                position += 1
                self.requirements.append((key, "!", None))
            elif self.is_word(token):
                key = token
                position += 1
                operator = peek()
                if operator is None or operator == ",":
                    self.requirements.append((key, "exists", None))
                elif operator in ("=", "==", "!=", ">", "<"):
                    position += 1
                    value = peek()
                    if value is None or value == ",":
                        value = ""
                    elif self.is_word(value):
                        position += 1
                    else:
                        raise bad_request("unable to parse requirement: found '%s', expected: identifier" % value)
                    if operator in (">", "<") and not value.lstrip("-").isdigit():
                        raise bad_request("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer")
                    self.requirements.append((key, "=" if operator == "==" else operator, value))
                elif operator in ("in", "notin"):
                    position += 1
                    if peek() != "(":
                        raise bad_request("unable to parse requirement: found '%s', expected: '('" % (peek() or ""))
                    position += 1
                    values = set()
                    while True:
                        value = peek()
                        if value is None:
                            raise bad_request("unable to parse requirement: found '', expected: ')'")
                        position += 1
                        if value == ")":
                            break
                        if value == ",":
                            continue
                        if not self.is_word(value):
                            raise bad_request("unable to parse requirement: found '%s', expected: ',', ')' or identifier" % value)
                        values.add(value)
                    self.requirements.append((key, operator, values))
                else:
                    raise bad_request("unable to parse requirement: found '%s', expected: in, notin, =, ==, !=, gt, lt" % operator)
            else:
                raise bad_request("unable to parse requirement: found '%s', expected: !, identifier, or 'end of string'" % token)
            if position < len(tokens):
                if tokens[position] != ",":
                    raise bad_request("found '%s', expected: ',' or 'end of string'" % tokens[position])
                position += 1

    @staticmethod
    def is_word(token):
        return token not in ("!", "=", "==", "!=", "(", ")", ",", ">", "<")

    @staticmethod
    def tokenize(text):
        tokens, index = [], 0
        while index < len(text):
            char = text[index]
            if char.isspace():
                index += 1
            elif text.startswith("==", index) or text.startswith("!=", index):
                tokens.append(text[index:index + 2])
                index += 2
            elif char in "!=(),<>":
                tokens.append(char)
                index += 1
            else:
                start = index
                while index < len(text) and not text[index].isspace() and text[index] not in "!=(),<>":
                    index += 1
                tokens.append(text[start:index])
        return tokens

    def matches(self, obj):
        labels = (obj.get("metadata") or {}).get("labels") or {}
        for key, operator, value in self.requirements:
            present = key in labels
            if operator == "exists" and not present:
                return False
            if operator == "!" and present:
                return False
            if operator == "=" and labels.get(key) != value:
                return False
            if operator == "!=" and present and labels[key] == value:
                return False
            if operator == "in" and labels.get(key) not in value:
                return False
            if operator == "notin" and present and labels[key] in value:
                return False
            if operator in (">", "<"):
                try:
                    number = int(labels.get(key, ""))
                except ValueError:
                    return False
                if (operator == ">" and not number > int(value)) or (operator == "<" and not number < int(value)):
                    return False
        return True


class FieldSelector:
    """`field=value`, `field==value`, `field!=value`, comma-separated, on the fields the real
    server indexes for the resource."""

    def __init__(self, text, resource):
        self.requirements = []
        for part in (text or "").split(","):
            part = part.strip()
            if not part:
                continue
            for operator in ("!=", "==", "="):
                if operator in part:
                    field, value = part.split(operator, 1)
                    break
            else:
                raise bad_request("invalid selector: '%s'; can't understand '%s'" % (text, part))
            field = field.strip()
            if field not in ["metadata.name", "metadata.namespace"] + FIELDS[resource]:
                raise bad_request('field label not supported: %s' % field)
            self.requirements.append((field, operator != "!=", value.strip()))

    def matches(self, obj):
        for field, equal, value in self.requirements:
            current = obj
            for part in field.split("."):
                current = current.get(part) if isinstance(current, dict) else None
            if isinstance(current, bool):
                current = "true" if current else "false"
            current = "" if current is None else str(current)
            if (current == value) != equal:
                return False
        return True


# ---- patches ----

def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(document, operations):
    """RFC 6902 JSON patch."""
    if not isinstance(operations, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    document = copy.deepcopy(document)

    def parse(pointer):
        if pointer == "":
            return []
        if not pointer.startswith("/"):
            raise bad_request("the server rejected our request due to an error in our request: invalid JSON pointer %s" % pointer)
        return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]

    def container(doc, parts):
        for part in parts[:-1]:
            if isinstance(doc, list):
                doc = doc[int(part)]
            else:
                doc = doc[part]
        return doc

    def get(doc, parts):
        for part in parts:
            doc = doc[int(part)] if isinstance(doc, list) else doc[part]
        return doc

    def remove(doc, parts):
        parent = container(doc, parts)
        if isinstance(parent, list):
            return parent.pop(int(parts[-1]))
        return parent.pop(parts[-1])

    def add(doc, parts, value):
        if not parts:
            return value
        parent = container(doc, parts)
        if isinstance(parent, list):
            if parts[-1] == "-":
                parent.append(value)
            else:
                parent.insert(int(parts[-1]), value)
        else:
            parent[parts[-1]] = value
        return doc

    for operation in operations:
        try:
            op, path = operation["op"], parse(operation["path"])
            if op == "add":
                document = add(document, path, copy.deepcopy(operation["value"]))
            elif op == "remove":
                remove(document, path)
            elif op == "replace":
                remove(document, path)
                document = add(document, path, copy.deepcopy(operation["value"]))
            elif op == "move":
                value = remove(document, parse(operation["from"]))
                document = add(document, path, value)
            elif op == "copy":
                document = add(document, path, copy.deepcopy(get(document, parse(operation["from"]))))
            elif op == "test":
                if get(document, path) != operation["value"]:
                    raise APIError(422, "Invalid", "the server rejected our request due to an error in our request")
            else:
                raise bad_request("Unexpected kind: %s" % op)
        except (KeyError, IndexError, ValueError, TypeError, AttributeError):
            raise APIError(422, "Invalid", "the server rejected our request due to an error in our request")
    return document


# ---- storage ----

def owned_fields(value):
    """FieldsV1 for a value a manager set: maps list their keys (and "." for the map itself);
    lists and scalars are owned whole. A sketch of structured-merge-diff's sets: the shape the
    real server writes, not its per-list-item keys."""
    if isinstance(value, dict) and value:
        result = {".": {}}
        result.update(("f:" + key, owned_fields(item)) for key, item in value.items())
        return result
    return {}


def managed_fields_entry(obj, manager):
    fields = {}
    metadata = obj.get("metadata") or {}
    owned_metadata = {"f:" + key: owned_fields(value) for key, value in metadata.items()
                      if key in ("labels", "annotations", "generateName", "finalizers", "ownerReferences")}
    if owned_metadata:
        fields["f:metadata"] = owned_metadata
    for key, value in obj.items():
        if key not in ("kind", "apiVersion", "metadata"):
            fields["f:" + key] = owned_fields(value)
    return {"manager": manager, "operation": "Update", "apiVersion": "v1", "time": now_timestamp(),
            "fieldsType": "FieldsV1", "fieldsV1": fields}


def with_managed_fields(obj, previous, manager):
    """metadata.managedFields after `manager` wrote obj: its entry replaced, the others kept."""
    entries = [entry for entry in previous if entry.get("manager") != manager]
    entries.append(managed_fields_entry(obj, manager))
    obj["metadata"]["managedFields"] = entries
    return obj


HistoryEvent = collections.namedtuple("HistoryEvent", "rv type resource key obj prev")


def key_of(namespace, name):
    # etcd keeps objects at /registry/<resource>/<namespace>/<name>; lists come out in that order.
    return namespace + "/" + name


def with_resource_version(obj, rv):
    result = dict(obj)
    result["metadata"] = dict(obj.get("metadata") or {})
    result["metadata"]["resourceVersion"] = str(rv)
    return result


class Watch:
    def __init__(self, resource, namespace, labels, fields, description):
        self.resource, self.namespace, self.labels, self.fields = resource, namespace, labels, fields
        self.description = description
        self.queue = queue.Queue()

    def matches(self, obj):
        return obj is not None and self.labels.matches(obj) and self.fields.matches(obj)

    def translate(self, event):
        """The event this watch sees, with the real server's selector semantics: an object that
        stops matching is DELETED (its last matching state at the new resourceVersion), one that
        starts matching is ADDED."""
        if event.resource != self.resource:
            return None
        if self.namespace is not None and event.key.split("/", 1)[0] != self.namespace:
            return None
        if event.type == "ADDED":
            return ("ADDED", event.obj) if self.matches(event.obj) else None
        if event.type == "DELETED":
            return ("DELETED", event.obj) if self.matches(event.prev) else None
        now, before = self.matches(event.obj), self.matches(event.prev)
        if now and before:
            return ("MODIFIED", event.obj)
        if now:
            return ("ADDED", event.obj)
        if before:
            return ("DELETED", with_resource_version(event.prev, event.rv))
        return None


def item_json(obj):
    """An object as a list's item: without kind and apiVersion, serialised as the list is."""
    return json.dumps({name: value for name, value in obj.items() if name not in ("kind", "apiVersion")},
                      separators=(",", ":")).encode()


class Store:
    def __init__(self, history_size):
        self.lock = threading.RLock()
        self.rv = 1
        self.objects = {resource: {} for resource in RESOURCES}
        # Kept on write, so that a list costs its page, not the whole resource: each namespace's
        # keys in order, and each current object's item JSON with its resourceVersion.
        self.keys = {resource: {} for resource in RESOURCES}
        self.items = {resource: {} for resource in RESOURCES}
        self.history = collections.deque()
        self.history_size = history_size
        # Every event after `floor` is in the history.
        self.floor = 1
        self.watches = set()

    def record(self, kind, resource, key, obj, prev):
        event = HistoryEvent(self.rv, kind, resource, key, obj, prev)
        self.history.append(event)
        while len(self.history) > self.history_size:
            self.floor = self.history.popleft().rv
        for watch in list(self.watches):
            translated = watch.translate(event)
            if translated:
                watch.queue.put(translated)

    def compact(self):
        """Every resourceVersion handed out so far becomes too old. The counter moves on by one,
        as a write elsewhere would, so that a list made now can be watched from."""
        with self.lock:
            self.history.clear()
            self.rv += 1
            self.floor = self.rv

    def stored(self, resource, key, obj):
        """Keeps obj as the object at key, in the key index and with its item JSON."""
        objects = self.objects[resource]
        if key not in objects:
            bisect.insort(self.keys[resource].setdefault(key.split("/", 1)[0], []), key)
        objects[key] = obj
        self.items[resource][key] = (obj["metadata"]["resourceVersion"], item_json(obj))

    def removed(self, resource, key):
        current = self.objects[resource].pop(key, None)
        if current is not None:
            keys = self.keys[resource][key.split("/", 1)[0]]
            del keys[bisect.bisect_left(keys, key)]
            del self.items[resource][key]
        return current

    def item_json(self, resource, key, obj):
        """obj's item JSON; from the cache when obj is the version written last."""
        cached = self.items[resource].get(key)
        if cached is not None and cached[0] == obj["metadata"]["resourceVersion"]:
            return cached[1]
        return item_json(obj)

    def snapshot(self, resource, namespace, rv, start=""):
        """The resource's objects (of namespace, unless None) as they were at rv, from key start
        on, as sorted (key, object) pairs; None when rv is compacted away."""
        with self.lock:
            if rv < self.floor:
                return None
            objects = self.objects[resource]
            if namespace is None:
                keys = sorted(objects)
            else:
                keys = self.keys[resource].get(namespace, [])
            then = {}
            for event in reversed(self.history):
                if event.rv <= rv:
                    break
                if event.resource != resource or (namespace is not None and event.key.split("/", 1)[0] != namespace):
                    continue
                then[event.key] = event.prev
            if then:
                keys = sorted(set(keys).union(then))
            keys = keys[bisect.bisect_left(keys, start):]
            if not then:
                return [(key, objects[key]) for key in keys]
            return [(key, obj) for key in keys for obj in [then[key] if key in then else objects[key]] if obj is not None]

    def get(self, resource, namespace, name):
        with self.lock:
            obj = self.objects[resource].get(key_of(namespace, name))
            if obj is None:
                raise not_found(resource, name)
            return obj

    def create(self, resource, namespace, obj, manager="unknown"):
        with self.lock:
            metadata = obj["metadata"]
            key = key_of(namespace, metadata["name"])
            if key in self.objects[resource]:
                raise APIError(409, "AlreadyExists", '%s "%s" already exists' % (resource, metadata["name"]),
                               {"name": metadata["name"], "kind": resource})
            self.rv += 1
            metadata["resourceVersion"] = str(self.rv)
            metadata["uid"] = str(uuid.uuid4())
            metadata["creationTimestamp"] = now_timestamp()
            metadata["namespace"] = namespace
            # Only a graceful delete makes an object terminating.
            metadata.pop("deletionTimestamp", None)
            metadata.pop("deletionGracePeriodSeconds", None)
            metadata.pop("managedFields", None)
            with_managed_fields(obj, [], manager)
            self.stored(resource, key, obj)
            self.record("ADDED", resource, key, obj, None)
            return obj

    def update(self, resource, namespace, name, change, manager="unknown"):
        """Applies change(current) -> new object; a stale resourceVersion in it is a conflict. An
        update that changes nothing writes nothing, as etcd3 storage skips it."""
        with self.lock:
            key = key_of(namespace, name)
            current = self.objects[resource].get(key)
            if current is None:
                raise not_found(resource, name)
            new = change(copy.deepcopy(current))
            metadata = new.setdefault("metadata", {})
            wanted = metadata.get("resourceVersion")
            if wanted not in (None, "") and wanted != current["metadata"]["resourceVersion"]:
                raise APIError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the object has been modified; '
                               "please apply your changes to the latest version and try again" % (resource, name),
                               {"name": name, "kind": resource})
            for field in ("uid", "creationTimestamp", "namespace", "name", "deletionTimestamp", "deletionGracePeriodSeconds",
                          "managedFields"):
                if field in current["metadata"]:
                    metadata[field] = current["metadata"][field]
                else:
                    metadata.pop(field, None)
            metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
            if new == current:
                return current
            with_managed_fields(new, current["metadata"].get("managedFields") or [], manager)
            self.rv += 1
            metadata["resourceVersion"] = str(self.rv)
            self.stored(resource, key, new)
            self.record("MODIFIED", resource, key, new, current)
            return new

    def terminate(self, resource, namespace, name, grace_seconds):
        """A graceful pod delete: the pod stays, terminating, until deleted with grace 0."""
        def mark(current):
            metadata = current["metadata"]
            if "deletionTimestamp" not in metadata:
                deadline = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=grace_seconds)
                metadata["deletionTimestamp"] = deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
                metadata["deletionGracePeriodSeconds"] = grace_seconds
            return current

        with self.lock:
            key = key_of(namespace, name)
            current = self.objects[resource].get(key)
            if current is None:
                raise not_found(resource, name)
            if "deletionTimestamp" in current["metadata"]:
                return current
            self.rv += 1
            new = mark(copy.deepcopy(current))
            new["metadata"]["resourceVersion"] = str(self.rv)
            self.stored(resource, key, new)
            self.record("MODIFIED", resource, key, new, current)
            return new

    def delete(self, resource, namespace, name):
        with self.lock:
            key = key_of(namespace, name)
            current = self.removed(resource, key)
            if current is None:
                raise not_found(resource, name)
            self.rv += 1
            deleted = with_resource_version(current, self.rv)
            self.record("DELETED", resource, key, deleted, current)
            return deleted


# ---- the server ----

class Server:
    def __init__(self, options):
        self.options = options
        self.store = Store(options.history)
        self.bookmark_interval = options.bookmark_interval
        self.watch_410_mode = "event"
        self.forbidden = []
        self.requests = []
        self.requests_lock = threading.Lock()
        self.connections = set()
        self.connections_lock = threading.Lock()
        self.port = options.port or 0
        self.address = options.address
        self.main = None
        self.main_lock = threading.Lock()
        self.downs = 0
        self.failures = collections.deque()
        self.failures_lock = threading.Lock()
        self.tls = None
        if options.tls_cert:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(options.tls_cert, options.tls_key)
            if options.client_ca:
                self.tls.verify_mode = ssl.CERT_REQUIRED
                self.tls.load_verify_locations(options.client_ca)

    def listen(self):
        # After `down` the port may still be held for a moment: keep trying, it must come back.
        for attempt in range(600):
            try:
                server = MainServer((self.address, self.port), self)
                break
            except OSError as error:
                if self.port == 0 or attempt == 599:
                    raise
                print("listen on %s:%d: %s; trying again" % (self.address, self.port, error), file=sys.stderr, flush=True)
                time.sleep(0.1)
        with self.main_lock:
            self.port = server.server_address[1]
            self.main = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def go_down(self, seconds):
        with self.main_lock:
            server, self.main = self.main, None
            self.downs += 1
            down = self.downs
        if server is not None:
            server.shutdown()
            server.server_close()
        self.end_watches("abort")
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        timer = threading.Timer(seconds, self.come_back, args=(down,))
        timer.daemon = True
        timer.start()

    def fail_next(self, count, code):
        with self.failures_lock:
            self.failures.extend([code] * count)

    def take_failure(self):
        """The error an injected failure answers with, as the real server words it; None when none is due."""
        with self.failures_lock:
            if not self.failures:
                return None
            code = self.failures.popleft()
        if code == 429:
            error = APIError(429, "TooManyRequests", "Too many requests, please try again later.", {"retryAfterSeconds": 1})
            error.headers = [("Retry-After", "1")]
            return error
        if code == 503:
            return APIError(503, "ServiceUnavailable", "the server is currently unable to handle the request")
        return APIError(500, "InternalError", "Internal error occurred: injected failure",
                        {"causes": [{"message": "injected failure"}]})

    def come_back(self, down):
        # A later `down` postpones the return to its own time.
        with self.main_lock:
            if down != self.downs or self.main is not None:
                return
        self.listen()

    def end_watches(self, how):
        with self.store.lock:
            for watch in list(self.store.watches):
                watch.queue.put((how, None))

    def user(self, token):
        if self.options.token_file is None:
            return "system:anonymous"
        return self.tokens().get(token) or DEFAULT_USER

    def tokens(self):
        """token -> user, from the token file as it is now."""
        result = {}
        try:
            with open(self.options.token_file) as file:
                lines = file.read().splitlines()
        except OSError:
            return result
        for line in lines:
            fields = [field.strip().strip('"') for field in line.split(",")]
            if fields and fields[0]:
                result[fields[0]] = fields[1] if len(fields) > 1 and fields[1] else DEFAULT_USER
        return result

    def is_forbidden(self, verb, resource, namespace):
        for rule in self.forbidden:
            if rule.get("verb", "*") not in ("*", verb) or rule.get("resource", "*") not in ("*", resource):
                continue
            # A cluster-wide request needs the right in every namespace.
            if namespace is None or rule.get("namespace", "*") in ("*", namespace):
                return True
        return False


class MainServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: a client opening its watches at once (one per
    # namespace) had the rest of its SYNs dropped and resent a second later. Go's net.Listen,
    # as the real server uses it, takes the system's maximum.
    request_queue_size = socket.SOMAXCONN

    def __init__(self, address, app):
        self.app = app
        super().__init__(address, APIHandler)

    def finish_request(self, request, client_address):
        app = self.app
        if app.tls is not None:
            request.settimeout(10)
            try:
                request = app.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as error:
                if app.options.verbose:
                    print("TLS handshake with %s failed: %s" % (client_address[0], error), file=sys.stderr, flush=True)
                request.close()
                return
            request.settimeout(None)
        with app.connections_lock:
            app.connections.add(request)
        try:
            APIHandler(request, client_address, self)
        finally:
            with app.connections_lock:
                app.connections.discard(request)
            if app.tls is not None:
                try:
                    request.close()
                except OSError:
                    pass

    def handle_error(self, request, client_address):
        if self.app.options.verbose:
            super().handle_error(request, client_address)


class APIHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A response leaves in one segment when flushed, without waiting on Nagle and delayed ACKs.
    disable_nagle_algorithm = True
    wbufsize = -1
    server_version = "kube-api-server-test"
    sys_version = ""

    def log_message(self, format, *args):
        if self.server.app.options.verbose:
            sys.stderr.write("%s %s\n" % (self.address_string(), format % args))
            sys.stderr.flush()

    def version_string(self):
        return self.server_version

    def parse_request(self):
        self.token = None
        return super().parse_request()

    def log_request(self, code="-", size="-"):
        url = urlsplit(getattr(self, "path", ""))
        token = getattr(self, "token", None)
        headers = getattr(self, "headers", None)
        with self.server.app.requests_lock:
            self.server.app.requests.append({
                "method": getattr(self, "command", ""), "path": url.path, "query": url.query,
                "bearer": token is not None, "token": token,
                "status": int(code) if str(code).isdigit() else 0,
                "userAgent": headers.get("User-Agent", "") if headers else "",
            })
        super().log_request(code, size)

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def send_json(self, code, value, extra_headers=()):
        self.send_json_bytes(code, json.dumps(value, separators=(",", ":")).encode() + b"\n", extra_headers)

    def send_json_bytes(self, code, body, extra_headers=()):
        self.send_response(code)
        # As the real server: responses from 128 KiB on are gzipped for clients that accept it.
        if len(body) >= 128 * 1024 and "gzip" in (self.headers.get("Accept-Encoding") or "").lower():
            body = gzip.compress(body)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Vary", "Accept-Encoding")
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        for name, value in extra_headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_text(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def dispatch(self, method):
        app = self.server.app
        self.token = None
        authorization = self.headers.get("Authorization", "")
        if authorization[:7].lower() == "bearer ":
            self.token = authorization[7:].strip()
        try:
            body = self.read_body()
            if app.options.token_file is not None and (self.token is None or self.token not in app.tokens()):
                raise APIError(401, "Unauthorized", "Unauthorized")
            injected = app.take_failure()
            if injected is not None:
                raise injected
            self.route(method, body)
        except APIError as error:
            self.send_json(error.code, error.status(), error.headers)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True

    def route(self, method, body):
        url = urlsplit(self.path)
        query = {name: values[-1] for name, values in parse_qs(url.query, keep_blank_values=True).items()}
        parts = [part for part in url.path.split("/") if part]
        path = "/" + "/".join(parts)
        if path in ("/healthz", "/livez", "/readyz") and method == "GET":
            return self.send_text(200, "ok")
        if path == "/version" and method == "GET":
            return self.send_json(200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0", "gitCommit": "",
                                        "gitTreeState": "clean", "buildDate": "2024-08-13T00:00:00Z",
                                        "goVersion": "go1.22.5", "compiler": "gc", "platform": "linux/amd64"})
        if path == "/api" and method == "GET":
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "%s:%d" % (self.server.app.address, self.server.app.port)}]})
        if path == "/api/v1" and method == "GET":
            return self.send_json(200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": name, "singularName": singular, "namespaced": True, "kind": kind, "verbs": VERBS,
                 **({"shortNames": short} if short else {})}
                for name, (kind, singular, short) in sorted(RESOURCES.items())]})
        if parts[:2] != ["api", "v1"]:
            return self.send_text(404, "404 page not found\n")
        rest = parts[2:]
        if len(rest) == 2 and rest[0] == "namespaces" and method == "GET":
            # Every namespace exists.
            return self.send_json(200, {"kind": "Namespace", "apiVersion": "v1", "metadata": {
                "name": rest[1], "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, "namespace/" + rest[1])), "resourceVersion": "1",
                "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"kubernetes.io/metadata.name": rest[1]}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
        watch_path = bool(rest) and rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        namespace = name = None
        if len(rest) == 1:
            resource = rest[0]
        elif len(rest) in (3, 4) and rest[0] == "namespaces":
            namespace, resource = rest[1], rest[2]
            name = rest[3] if len(rest) == 4 else None
        else:
            raise APIError(404, "NotFound", "the server could not find the requested resource", {})
        if resource not in RESOURCES:
            raise APIError(404, "NotFound", "the server could not find the requested resource", {})
        watch = watch_path or query.get("watch") in ("1", "true", "True")
        if name is None:
            verb = {"GET": "watch" if watch else "list", "POST": "create"}.get(method)
            if verb is None or (method == "POST" and namespace is None):
                raise APIError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})
        else:
            verb = {"GET": "watch" if watch else "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)
            if verb is None:
                raise APIError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})
        self.authorize(verb, resource, namespace, name)
        if verb == "watch":
            fields = query.get("fieldSelector", "")
            if name is not None:
                fields = "metadata.name=%s" % name + ("," + fields if fields else "")
            return self.watch(resource, namespace, query, fields)
        if verb == "list":
            return self.list(resource, namespace, query)
        store = self.server.app.store
        if verb == "get":
            return self.send_json(200, store.get(resource, namespace, name))
        if verb == "delete":
            grace = self.grace_period(query, body)
            self.check_preconditions(store.get(resource, namespace, name), body)
            if resource == "pods" and grace:
                return self.send_json(200, store.terminate(resource, namespace, name, grace))
            deleted = store.delete(resource, namespace, name)
            if resource == "pods":
                # Pods' storage returns the deleted object; the others a Success Status.
                return self.send_json(200, deleted)
            return self.send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                        "details": {"name": name, "kind": resource,
                                                    "uid": deleted["metadata"].get("uid", "")}})
        if verb in ("create", "update"):
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if content_type != "application/json":
                raise APIError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted "
                               "media types include: application/json, application/yaml, "
                               "application/vnd.kubernetes.protobuf")
        if verb == "create":
            obj = self.parse_object(body, resource, namespace)
            metadata = obj["metadata"]
            if not metadata.get("name"):
                if metadata.get("generateName"):
                    metadata["name"] = metadata["generateName"] + "".join(
                        random.choice(string.ascii_lowercase + string.digits) for _ in range(5))
                else:
                    raise APIError(422, "Invalid", '%s "" is invalid: metadata.name: Required value: name or '
                                   "generateName is required" % RESOURCES[resource][0],
                                   {"kind": RESOURCES[resource][0], "causes": [
                                       {"reason": "FieldValueRequired", "message": "Required value: name or generateName is required",
                                        "field": "metadata.name"}]})
            metadata.pop("resourceVersion", None)
            return self.send_json(201, store.create(resource, namespace, obj, self.field_manager(query)))
        if verb == "update":
            obj = self.parse_object(body, resource, namespace)
            if obj["metadata"].get("name") != name:
                raise bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                                  % (obj["metadata"].get("name", ""), name))
            return self.send_json(200, store.update(resource, namespace, name, lambda current: obj, self.field_manager(query)))
        # patch
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type not in PATCH_TYPES or content_type == "application/apply-patch+yaml":
            raise APIError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted "
                           "media types include: " + ", ".join(PATCH_TYPES))
        try:
            patch = json.loads(body or b"null")
        except ValueError as error:
            raise bad_request("error decoding patch: %s" % error)

        def apply(current):
            if content_type == "application/json-patch+json":
                patched = json_patch(current, patch)
            else:
                if not isinstance(patch, dict):
                    raise bad_request("json: cannot unmarshal %s into Go value of type map[string]interface {}"
                                      % type(patch).__name__)
                patched = merge_patch(current, patch)
            if not isinstance(patched, dict):
                raise bad_request("patch produced an object that is not a JSON object")
            return self.normalize(patched, resource)
        return self.send_json(200, store.update(resource, namespace, name, apply, self.field_manager(query)))

    def field_manager(self, query):
        """The fieldManager parameter, else the User-Agent up to its first "/", as the real server names managers."""
        if query.get("fieldManager"):
            return query["fieldManager"]
        return (self.headers.get("User-Agent") or "").split("/")[0][:128] or "unknown"

    @staticmethod
    def check_preconditions(current, body):
        """DeleteOptions.preconditions: uid and resourceVersion must be the object's."""
        try:
            options = json.loads(body) if body else {}
        except ValueError:
            raise bad_request("invalid DeleteOptions body")
        preconditions = (options.get("preconditions") if isinstance(options, dict) else None) or {}
        for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            wanted = preconditions.get(field)
            actual = current["metadata"].get(field, "")
            if wanted is not None and wanted != actual:
                raise APIError(409, "Conflict", "Operation cannot be fulfilled on %s \"%s\": Precondition failed: %s in "
                               "precondition: %s, %s in object meta: %s"
                               % (current["kind"].lower() + "s", current["metadata"]["name"], label, wanted, label, actual),
                               {"name": current["metadata"]["name"], "kind": current["kind"].lower() + "s"})

    @staticmethod
    def grace_period(query, body):
        """gracePeriodSeconds from the query or the DeleteOptions body; None when not given."""
        value = query.get("gracePeriodSeconds")
        if value is None and body:
            try:
                options = json.loads(body)
            except ValueError:
                raise bad_request("invalid DeleteOptions body")
            value = options.get("gracePeriodSeconds") if isinstance(options, dict) else None
        if value is None:
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request("invalid gracePeriodSeconds: %s" % value)

    def authorize(self, verb, resource, namespace, name):
        app = self.server.app
        if not app.is_forbidden(verb, resource, namespace):
            return
        subject = '%s "%s"' % (resource, name) if name else resource
        scope = 'in the namespace "%s"' % namespace if namespace is not None else "at the cluster scope"
        details = {"name": name, "kind": resource} if name else {"kind": resource}
        raise APIError(403, "Forbidden", '%s is forbidden: User "%s" cannot %s resource "%s" in API group "" %s'
                       % (subject, app.user(self.token), verb, resource, scope), details)

    def normalize(self, obj, resource):
        """kind and apiVersion first, as the real server writes them; empty labels and
        annotations dropped, as Go's omitempty does."""
        kind = RESOURCES[resource][0]
        rest = {name: value for name, value in obj.items() if name not in ("kind", "apiVersion")}
        obj.clear()
        obj.update({"kind": kind, "apiVersion": "v1"}, **rest)
        metadata = obj.get("metadata")
        if isinstance(metadata, dict):
            for field in ("labels", "annotations"):
                if metadata.get(field) == {}:
                    del metadata[field]
        for field in ("data", "binaryData"):
            if obj.get(field) == {}:
                del obj[field]
        if resource == "secrets":
            # stringData is write-only: merged into data, base64-encoded.
            string_data = obj.pop("stringData", None) or {}
            if string_data:
                data = dict(obj.get("data") or {})
                for key, value in string_data.items():
                    data[key] = base64.b64encode(str(value).encode()).decode()
                obj["data"] = data
            obj.setdefault("type", "Opaque")
        return obj

    def parse_object(self, body, resource, namespace):
        kind = RESOURCES[resource][0]
        try:
            obj = json.loads(body or b"null")
        except ValueError as error:
            raise bad_request("Object 'Kind' is missing in '%s'" % body.decode(errors="replace")[:200]) from error
        if not isinstance(obj, dict):
            raise bad_request("Object 'Kind' is missing in '%s'" % body.decode(errors="replace")[:200])
        if obj.get("kind") not in (None, "", kind):
            raise bad_request("the object provided is unrecognized (must be of type %s): %s (kind %s)"
                              % (kind, obj.get("kind"), obj.get("kind")))
        metadata = obj.get("metadata")
        if metadata is None:
            metadata = obj["metadata"] = {}
        if not isinstance(metadata, dict):
            raise bad_request("metadata must be an object")
        if metadata.get("namespace") not in (None, "", namespace):
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        metadata["namespace"] = namespace
        return self.normalize(obj, resource)

    def list(self, resource, namespace, query):
        store = self.server.app.store
        labels = LabelSelector(query.get("labelSelector"))
        fields = FieldSelector(query.get("fieldSelector"), resource)
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise bad_request("invalid limit: %s" % query.get("limit"))
        token = query.get("continue") or ""
        start = ""
        if token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
                rv, start = int(decoded["rv"]), decoded["start"]
            except (ValueError, KeyError, TypeError):
                raise bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
            if query.get("resourceVersion"):
                raise bad_request("specifying resource version is not allowed when using continue")
        else:
            requested = query.get("resourceVersion") or ""
            rv = store.rv
            if requested and query.get("resourceVersionMatch") == "Exact":
                try:
                    rv = int(requested)
                except ValueError:
                    raise bad_request("invalid resource version: %s" % requested)
        with store.lock:
            snapshot = store.snapshot(resource, namespace, rv, start)
            current = store.rv
        if snapshot is None:
            if token:
                fresh = self.continue_token(current, start)
                raise expired(CONTINUE_TOO_OLD, {"continue": fresh})
            raise expired("too old resource version: %d (%d)" % (rv, store.floor))
        everything = not labels.requirements and not fields.requirements
        items, last, more = [], None, False
        for index, (key, obj) in enumerate(snapshot):
            if not (everything or (labels.matches(obj) and fields.matches(obj))):
                continue
            if limit and len(items) == limit:
                more = True
                break
            items.append(store.item_json(resource, key, obj))
            last = obj
        metadata = {"resourceVersion": str(rv)}
        if more:
            metadata["continue"] = self.continue_token(rv, last["metadata"]["namespace"] + "/" + last["metadata"]["name"] + "\x00")
            if everything:
                metadata["remainingItemCount"] = len(snapshot) - index
        # The list as json.dumps would write it, joined from the items' JSON kept by the store.
        head = json.dumps({"kind": RESOURCES[resource][0] + "List", "apiVersion": "v1", "metadata": metadata},
                          separators=(",", ":")).encode()
        self.send_json_bytes(200, head[:-1] + b',"items":[' + b",".join(items) + b"]}\n")

    @staticmethod
    def continue_token(rv, start):
        text = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start}, separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def watch(self, resource, namespace, query, field_text):
        app = self.server.app
        store = app.store
        kind = RESOURCES[resource][0]
        watch = Watch(resource, namespace, LabelSelector(query.get("labelSelector")), FieldSelector(field_text, resource),
                      {"resource": resource, "namespace": namespace, "labelSelector": query.get("labelSelector", ""),
                       "fieldSelector": field_text})
        bookmarks = query.get("allowWatchBookmarks") in ("1", "true", "True")
        initial_events = query.get("sendInitialEvents") in ("1", "true", "True")
        try:
            timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else app.options.max_watch_seconds
        except ValueError:
            raise bad_request("invalid timeoutSeconds: %s" % query["timeoutSeconds"])
        if timeout <= 0:
            timeout = app.options.max_watch_seconds
        timeout = min(timeout, app.options.max_watch_seconds)
        requested = query.get("resourceVersion") or ""
        too_old = None
        with store.lock:
            if requested in ("", "0") or initial_events:
                # The current state as synthetic ADDED events, then what changes.
                pending = [("ADDED", obj) for key, obj in sorted(store.objects[resource].items())
                           if (namespace is None or key.split("/", 1)[0] == namespace) and watch.matches(obj)]
                if initial_events and bookmarks:
                    pending.append(("INITIAL-END", None))
            else:
                try:
                    since = int(requested)
                except ValueError:
                    raise bad_request("invalid resource version: %s" % requested)
                if since < store.floor:
                    too_old = "too old resource version: %d (%d)" % (since, store.floor)
                    pending = []
                else:
                    pending = [translated for event in store.history if event.rv > since
                               for translated in [watch.translate(event)] if translated]
            if too_old is None:
                store.watches.add(watch)
        if too_old is not None and app.watch_410_mode == "http":
            raise APIError(410, "Gone", too_old)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            # The client learns at once that the watch is open, as from the real server.
            self.wfile.flush()
            if too_old is not None:
                self.send_event("ERROR", expired(too_old).status())
                return self.end_stream()
            for item in pending:
                watch.queue.put(item)
            deadline = time.monotonic() + timeout
            next_bookmark = time.monotonic() + app.bookmark_interval
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return self.end_stream()
                wait = min(deadline - now, 1.0)
                if bookmarks:
                    wait = min(wait, max(0.0, next_bookmark - now))
                if self.client_gone():
                    self.close_connection = True
                    return
                try:
                    kind_of_event, obj = watch.queue.get(timeout=wait)
                except queue.Empty:
                    if bookmarks and time.monotonic() >= next_bookmark and self.send_bookmark(watch, kind, None):
                        next_bookmark = time.monotonic() + app.bookmark_interval
                    continue
                if kind_of_event == "close":
                    return self.end_stream()
                if kind_of_event == "abort":
                    self.close_connection = True
                    return
                if kind_of_event == "error410":
                    with store.lock:
                        message = "too old resource version: %d (%d)" % (store.floor, store.rv)
                    self.send_event("ERROR", expired(message).status())
                    return self.end_stream()
                if kind_of_event == "INITIAL-END":
                    self.send_bookmark(watch, kind, {"k8s.io/initial-events-end": "true"})
                    continue
                self.send_event(kind_of_event, obj)
        finally:
            with store.lock:
                store.watches.discard(watch)

    def client_gone(self):
        """True when the client closed its end: a watch client sends nothing while it reads, so
        anything readable is its end of stream (or a TLS close_notify)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            if isinstance(self.connection, ssl.SSLSocket):
                return True
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def send_bookmark(self, watch, kind, annotations):
        store = self.server.app.store
        # Only once every queued event is out may a bookmark claim the current resourceVersion.
        with store.lock:
            if not watch.queue.empty() and annotations is None:
                return False
            metadata = {"resourceVersion": str(store.rv), "creationTimestamp": None}
        if annotations:
            metadata["annotations"] = annotations
        self.send_event("BOOKMARK", {"kind": kind, "apiVersion": "v1", "metadata": metadata,
                                     **copy.deepcopy(BOOKMARK_FIELDS[watch.resource])})
        return True

    def send_event(self, kind, obj):
        data = json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class AdminHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = -1

    def log_message(self, format, *args):
        if self.server.app.options.verbose:
            sys.stderr.write("admin %s\n" % (format % args))
            sys.stderr.flush()

    def reply(self, code, value):
        body = json.dumps(value, separators=(",", ":")).encode() + b"\n"
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.handle_admin("GET")

    def do_POST(self):
        self.handle_admin("POST")

    def handle_admin(self, method):
        app = self.server.app
        url = urlsplit(self.path)
        query = {name: values[-1] for name, values in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        route = (method, url.path)
        try:
            if route == ("POST", "/_test/compact"):
                app.store.compact()
                return self.reply(200, {"ok": True, "resourceVersion": str(app.store.rv)})
            if route == ("POST", "/_test/watch-error-410"):
                app.end_watches("error410")
                return self.reply(200, {"ok": True})
            if route == ("POST", "/_test/close-watches"):
                app.end_watches("close")
                return self.reply(200, {"ok": True})
            if route == ("POST", "/_test/down"):
                app.go_down(float(query.get("seconds", "1")))
                return self.reply(200, {"ok": True})
            if route == ("POST", "/_test/forbid"):
                rule = json.loads(body or b"{}")
                if not isinstance(rule, dict) or not all(isinstance(rule.get(field, "*"), str)
                                                         for field in ("verb", "resource", "namespace")):
                    return self.reply(400, {"ok": False, "error": "expected {\"verb\",\"resource\",\"namespace\"} strings"})
                app.forbidden.append(rule)
                return self.reply(200, {"ok": True})
            if route == ("POST", "/_test/fail-next"):
                code = int(query.get("code", "500"))
                if code not in (429, 500, 503):
                    return self.reply(400, {"ok": False, "error": "code must be 429, 500 or 503"})
                app.fail_next(int(query.get("count", "1")), code)
                return self.reply(200, {"ok": True})
            if route == ("POST", "/_test/allow-all"):
                app.forbidden = []
                return self.reply(200, {"ok": True})
            if route == ("POST", "/_test/watch-410-mode"):
                mode = query.get("mode", "")
                if mode not in ("event", "http"):
                    return self.reply(400, {"ok": False, "error": "mode must be event or http"})
                app.watch_410_mode = mode
                return self.reply(200, {"ok": True})
            if route == ("POST", "/_test/bookmark-interval"):
                app.bookmark_interval = float(query["seconds"])
                return self.reply(200, {"ok": True})
            if route == ("GET", "/_test/requests"):
                with app.requests_lock:
                    return self.reply(200, list(app.requests))
            if route == ("GET", "/_test/watches"):
                with app.store.lock:
                    return self.reply(200, [watch.description for watch in app.store.watches])
            if route == ("POST", "/_test/clear-requests"):
                with app.requests_lock:
                    app.requests = []
                return self.reply(200, {"ok": True})
            if route == ("GET", "/_test/objects"):
                resource = query.get("resource", "")
                if resource not in RESOURCES:
                    return self.reply(400, {"ok": False, "error": "resource must be one of " + ", ".join(sorted(RESOURCES))})
                namespace = query.get("namespace")
                with app.store.lock:
                    items = [obj for key, obj in sorted(app.store.objects[resource].items())
                             if namespace is None or key.split("/", 1)[0] == namespace]
                    rv = app.store.rv
                return self.reply(200, {"resourceVersion": str(rv), "items": items})
        except (ValueError, KeyError) as error:
            return self.reply(400, {"ok": False, "error": "%s: %s" % (type(error).__name__, error)})
        self.reply(404, {"ok": False, "error": "no admin route %s %s" % (method, url.path)})


class AdminServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, app):
        self.app = app
        super().__init__(address, AdminHandler)


def write_port(path, port):
    temporary = path + ".tmp"
    with open(temporary, "w") as file:
        file.write("%d\n" % port)
    os.rename(temporary, path)


def main():
    parser = argparse.ArgumentParser(description="A test Kubernetes API server (core/v1 pods, configmaps, secrets, events).")
    parser.add_argument("--address", default="127.0.0.1",
                        help="main listener address (default 127.0.0.1; a test network's host side for containers)")
    parser.add_argument("--port", type=int, help="main listener port (default: a free one)")
    parser.add_argument("--port-file", help="write the main listener's port here once it listens")
    parser.add_argument("--admin-port", type=int, help="admin listener port on 127.0.0.1")
    parser.add_argument("--admin-port-file", help="write the admin listener's port here once it listens")
    parser.add_argument("--token-file", help="accepted bearer tokens, one a line (TOKEN[,USER[,UID]]), read on every request")
    parser.add_argument("--tls-cert", help="server certificate (PEM): serve HTTPS")
    parser.add_argument("--tls-key", help="server private key (PEM)")
    parser.add_argument("--client-ca", help="require client certificates signed by this CA (PEM)")
    parser.add_argument("--history", type=int, default=1000, help="watch events kept for resuming (default 1000)")
    parser.add_argument("--bookmark-interval", type=float, default=60.0, help="seconds between watch bookmarks (default 60)")
    parser.add_argument("--max-watch-seconds", type=float, default=1800.0, help="longest watch (default 1800)")
    parser.add_argument("--verbose", action="store_true", help="log one line per request to stderr")
    options = parser.parse_args()
    if bool(options.tls_cert) != bool(options.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if options.client_ca and not options.tls_cert:
        parser.error("--client-ca needs --tls-cert and --tls-key")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    app = Server(options)
    app.listen()
    admin = None
    if options.admin_port is not None or options.admin_port_file:
        admin = AdminServer(("127.0.0.1", options.admin_port or 0), app)
        threading.Thread(target=admin.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        if options.admin_port_file:
            write_port(options.admin_port_file, admin.server_address[1])
    if options.port_file:
        write_port(options.port_file, app.port)
    if options.verbose:
        print("listening on %s:%d%s" % (app.address, app.port, " (admin %d)" % admin.server_address[1] if admin else ""),
              file=sys.stderr, flush=True)
    while not stop.wait(0.5):
        pass
    app.end_watches("close")
    with app.main_lock:
        if app.main is not None:
            app.main.server_close()
    if admin is not None:
        admin.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
