print("kube-haproxy-watcher: not yet")
