# Sourced by scripts/demo and scripts/readme-check: what stands in for a cluster on one machine,
# started in the background with their pids appended to `pids`: etcd with the v2 API, and real
# HTTP backends. Needs `root`, the repository's directory.
pids=()

# wait_for CONDITION [SECONDS]: true once the shell condition holds, checked every 0.05 s for up
# to SECONDS (10).
wait_for() { for _ in $(seq $((${2:-10} * 20))); do if eval "$1"; then return 0; fi; sleep 0.05; done; echo "timed out waiting for: $1" >&2; return 1; }

# start_etcd CLIENT_URL PEER_URL DIR: a one-member etcd serving the v2 API on CLIENT_URL; its
# data in DIR/etcd, its log DIR/etcd.log. Returns once it answers.
start_etcd() {
    "$root/scripts/etcd-v2" local "$3/etcd" "$1" "$1" "$2" > "$3/etcd.log" 2>&1 &
    pids+=($!)
    wait_for "curl -s '$1/version' >/dev/null"
}

# start_backend ADDRESS PORT NAME DIR: an HTTP backend answering every GET with NAME
# (Tests/IntegrationSupport/backend.py), its log DIR/NAME.log. Returns once it listens.
start_backend() {
    python3 "$root/Tests/IntegrationSupport/backend.py" "$1" "$2" "$3" > "$4/$3.log" 2>&1 &
    pids+=($!)
    wait_for "grep -q ready '$4/$3.log'"
}
