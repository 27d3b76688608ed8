#!/usr/bin/env python3
"""The Python side of `scripts/bench jinja`, and its input.

    bench-jinja.py context FILE [SERVICES] [PODS]
        writes the template context the watcher builds for a cluster of SERVICES services
        (default 500) with PODS ready pods each (default 20): services sorted by name, each
        the service's JSON plus `name` and `pods` (pod name -> the whole Kubernetes pod
        object), certificates, ssldir, stats and env.

    bench-jinja.py render TEMPLATE CONTEXT
        what the Swift engine is measured against: in one process, json.load the context,
        compile the template with a default jinja2.Environment() and render it to stdout.
        With --timings, writes "timings: json=…ms compile=…ms render=…ms" to stderr.
"""

import hashlib
import json
import sys
import time


def digest(text, length):
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def pod(service, namespace, index, ip):
    rs = f"{service}-{digest(service, 10)}"
    name = f"{rs}-{digest(f'{service}/{index}', 5)}"
    created = f"2024-03-{1 + index % 28:02d}T{index % 24:02d}:{index % 60:02d}:07Z"
    return name, {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "generateName": rs + "-",
            "namespace": namespace,
            "selfLink": f"/api/v1/namespaces/{namespace}/pods/{name}",
            "uid": "-".join(digest(name, 32)[a:b] for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))),
            "resourceVersion": str(4000000 + index * 7),
            "creationTimestamp": created,
            "labels": {"app": service, "pod-template-hash": digest(service, 10), "tier": "backend",
                       "release": "stable"},
            "annotations": {
                "kubernetes.io/config.seen": created,
                "kubernetes.io/config.source": "api",
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9102",
            },
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                 "uid": digest(rs, 32), "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "volumes": [{"name": "default-token-x7k2p", "secret": {"secretName": "default-token-x7k2p", "defaultMode": 420}}],
            "containers": [{
                "name": service,
                "image": f"registry.example.com/{namespace}/{service}:2.{index % 9}.1",
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                          {"name": "metrics", "containerPort": 9102, "protocol": "TCP"}],
                "env": [{"name": "PORT", "value": "8080"}, {"name": "LOG_LEVEL", "value": "info"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
                "resources": {"limits": {"cpu": "1", "memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "256Mi"}},
                "volumeMounts": [{"name": "default-token-x7k2p", "readOnly": True,
                                  "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                                  "initialDelaySeconds": 10, "timeoutSeconds": 1, "periodSeconds": 10,
                                  "successThreshold": 1, "failureThreshold": 3},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"},
                                   "timeoutSeconds": 1, "periodSeconds": 5, "successThreshold": 1, "failureThreshold": 3},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "nodeName": f"node-{index % 40:02d}.cluster.internal",
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                             "tolerationSeconds": 300}],
            "priority": 0,
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": kind, "status": "True", "lastProbeTime": None, "lastTransitionTime": created}
                for kind in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "hostIP": f"192.168.{index % 40}.{10 + index % 200}",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": created,
            "containerStatuses": [{
                "name": service,
                "state": {"running": {"startedAt": created}},
                "lastState": {},
                "ready": True,
                "restartCount": index % 3,
                "image": f"registry.example.com/{namespace}/{service}:2.{index % 9}.1",
                "imageID": "docker-pullable://registry.example.com/" + service + "@sha256:" + digest(service, 64),
                "containerID": "containerd://" + digest(name, 64),
                "started": True,
            }],
            "qosClass": "Burstable",
        },
    }


def context(services, pods):
    result = []
    serial = 0
    for number in range(services):
        name = f"service-{number:03d}"
        namespace = f"team-{number % 25:02d}"
        hostnames = [f"{name}.example.com"]
        if number % 3 == 0:
            hostnames.append(f"^{name}-(canary|beta)\\.example\\.com$")
        service = {"namespace": namespace, "selector": {"app": name}, "hostnames": hostnames, "ports": [8080]}
        if number % 4 == 0:
            service["ssl"] = True
        if number % 10 == 0:
            service["path"] = f"^/{name}/"
        pod_objects = []
        for index in range(pods):
            serial += 1
            pod_objects.append(pod(name, namespace, serial, f"10.{serial // 65536}.{serial // 256 % 256}.{serial % 256}"))
        service["name"] = name
        service["pods"] = dict(sorted(pod_objects))
        result.append(service)
    return {
        "services": result,
        "certificates": sorted(f"service-{n:03d}.example.com" for n in range(0, services, 4)),
        "ssldir": "/var/run/kube-haproxy/ssl",
        "stats": {"username": "stats", "password": "bench-password"},
        "env": {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOSTNAME": "kube-haproxy-5d8f7c9b6-q2w3e", "ETCD2BASE": "http://192.168.0.1:2379",
                "STATISTICS_PASSWORD": "bench-password"},
    }


def render(template_path, context_path, timings):
    import jinja2

    start = time.perf_counter()
    with open(context_path, "rb") as f:
        variables = json.load(f)
    loaded = time.perf_counter()
    with open(template_path, "rb") as f:
        template = jinja2.Environment().from_string(f.read().decode("utf-8"))
    compiled = time.perf_counter()
    output = template.render(**variables)
    rendered = time.perf_counter()
    sys.stdout.write(output)
    sys.stdout.flush()
    if timings:
        print(f"timings: json={(loaded - start) * 1000:.3f}ms compile={(compiled - loaded) * 1000:.3f}ms "
              f"render={(rendered - compiled) * 1000:.3f}ms", file=sys.stderr)


def main():
    arguments = sys.argv[1:]
    timings = "--timings" in arguments
    arguments = [a for a in arguments if a != "--timings"]
    if len(arguments) >= 2 and arguments[0] == "context":
        services = int(arguments[2]) if len(arguments) > 2 else 500
        pods = int(arguments[3]) if len(arguments) > 3 else 20
        with open(arguments[1], "w", encoding="utf-8") as f:
            json.dump(context(services, pods), f, separators=(",", ":"))
    elif len(arguments) == 3 and arguments[0] == "render":
        render(arguments[1], arguments[2], timings)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
