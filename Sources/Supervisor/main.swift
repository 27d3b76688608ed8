print("kube-haproxy: not yet")
