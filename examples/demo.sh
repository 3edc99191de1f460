#!/usr/bin/env bash
# podvisor's demo: a three-master cluster and two node agents on this machine, the example
# manifests applied, the leader master killed, and everything removed at the end.
#
#   make demo                       builds what it needs, then runs this script
#   PODVISOR=... PODVISOR_AGENT=... examples/demo.sh
#
# Each step prints the podvisor command it runs, so the output reads as a tutorial. Settings:
# PODVISOR (the binary), PODVISOR_AGENT (the static agent), PODVISOR_HOME (the cluster's files,
# default /tmp/podvisor-demo), PODVISOR_BASE_PORT (default 23790).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
podvisor=${PODVISOR:-podvisor}
export PODVISOR_HOME=${PODVISOR_HOME:-/tmp/podvisor-demo}
base_port=${PODVISOR_BASE_PORT:-23790}

step() { printf '\n===== %s\n' "$*"; }
run() { printf '$ podvisor %s\n' "$*"; "$podvisor" "$@"; }
fail() { echo "demo: FAILED: $*" >&2; exit 1; }

# wait_until WHAT SECONDS COMMAND...: retries COMMAND every half second, with progress dots.
wait_until() {
    local what=$1 secs=$2 start=$SECONDS
    shift 2
    printf 'waiting for %s ' "$what" >&2
    until "$@" >/dev/null 2>&1; do
        (( SECONDS - start < secs )) || { echo >&2; fail "$what within ${secs}s"; }
        printf . >&2
        sleep 0.5
    done
    echo " ok ($(( SECONDS - start ))s)" >&2
}

# The cluster goes down however the demo ends.
cleanup() { "$podvisor" cluster down >/dev/null 2>&1 || true; }
trap cleanup EXIT

step "1. What this host can run"
run host-check

step "2. Three masters and two node agents on this machine"
run cluster up --base-port "$base_port"
run cluster status

step "3. Apply the example manifests: IP pools, two pods, a Service, a VirtualMachine"
run apply -f "$here/manifests"

step "4. Wait for them, then the status table"
wait_until "pod web Running with an IP" 90 \
    sh -c "'$podvisor' get pod web | grep -E ' Running +node-[0-9]+ +10\.88\.'"
wait_until "pod batch Succeeded" 90 sh -c "'$podvisor' get pod batch | grep -q ' Succeeded'"
wait_until "a VIP for service web" 30 sh -c "'$podvisor' get svc web | grep -q ' 10\.89\.'"
wait_until "VM demo-vm to be acted on" 60 \
    sh -c "'$podvisor' get vm demo-vm | grep -Eq 'PoweredOn +PoweredOn|SoftwarePagedKVM|Error'"
run get nodes
run get pods
run get vms
run get services
echo "Why the VM is in that state, on this host:"
"$podvisor" describe vm demo-vm | sed -n '/^Conditions:/,/^spec:/p' | sed '$d'

step "5. The batch pod's log, and the web pod's page through its pod IP"
run logs batch
web_ip=$("$podvisor" get pod web -o json | sed -n 's/.*"podIP": "\([0-9.]*\)".*/\1/p')
echo "\$ curl http://$web_ip/"
# The host reaches pod IPs through the pod bridge; bash's /dev/tcp needs no HTTP client.
page=$(exec 3<>"/dev/tcp/$web_ip/80" && printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$web_ip" >&3 \
    && sed '1,/^\r$/d' <&3)
echo "$page"
[[ $page == *"hello from podvisor pod"* ]] || fail "the web pod's page: $page"

step "6. Kill the leader master, see a new one elected, and change something"
leader_line=$("$podvisor" cluster status | grep '^leader:')
echo "$leader_line"
old_leader=$(echo "$leader_line" | awk '{print $2}')
old_pid=$(echo "$leader_line" | awk '{print $4}')
echo "\$ kill -9 $old_pid   # $old_leader"
kill -9 "$old_pid"
wait_until "a new leader" 30 \
    sh -c "'$podvisor' cluster status 2>/dev/null | grep '^leader:' | grep -qv ' $old_leader '"
wait_until "the controllers to move to a live master" 30 \
    sh -c "'$podvisor' cluster status 2>/dev/null | grep '^controllers: led by' | grep -qv '$old_leader\$'"
run cluster status
run apply -f "$here/demo/after-failover.yaml"
wait_until "pod after-failover Succeeded" 90 \
    sh -c "'$podvisor' get pod after-failover | grep -q ' Succeeded'"
run get pods
run logs after-failover

step "7. Shut everything down and check that nothing is left"
pids=$(cat "$PODVISOR_HOME"/pids/*.pid)
sandboxes=$(ls "$PODVISOR_HOME"/nodes/*/sandboxes 2>/dev/null | grep -v ':$' || true)
bridge=$(sed -n 's/^bridge = //p' "$PODVISOR_HOME/config")
run cluster down
trap - EXIT
left=0
for pid in $pids; do
    if [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status"; then
        echo "left: process $pid"; left=1
    fi
done
if grep -q " $PODVISOR_HOME" /proc/self/mountinfo; then echo "left: mounts under $PODVISOR_HOME"; left=1; fi
if ip link show "$bridge" >/dev/null 2>&1; then echo "left: interface $bridge"; left=1; fi
for sb in $sandboxes; do
    if [ -n "$(find /sys/fs/cgroup -maxdepth 6 -type d -name "podvisor-$sb" 2>/dev/null)" ]; then
        echo "left: cgroup podvisor-$sb"; left=1
    fi
done
[ -e "$PODVISOR_HOME" ] && { echo "left: $PODVISOR_HOME"; left=1; }
[ $left = 0 ] || fail "something was left behind"
echo "nothing left: no process, mount, interface or cgroup of the demo remains"
echo
echo "demo: OK"
