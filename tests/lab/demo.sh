#!/bin/bash
# make demo: a live migration that pre-copy cannot finish, rescued by post-copy.
#
# Brings the lab up (two libvirt hosts in namespaces), boots a guest on lab-a that rewrites
# 256 MiB at 100 MiB/s, migrates it to lab-b with a 32 MiB/s cap, shows the job during
# pre-copy (remaining climbs back after every pass), switches to post-copy by hand
# (virsh migrate-postcopy; the migpilot agent will do this), shows the completed job's
# figures and the guest's heartbeat on lab-b, and tears everything down.
set -u
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
PREFIX=${MPLAB_PREFIX:-mpdemo}
export MPLAB_PREFIX=$PREFIX
GUEST=demo
BW=32
STATE=/tmp/$PREFIX
A="qemu+unix:///system?socket=$STATE/lab-a/run/libvirt-sock"
B="qemu+unix:///system?socket=$STATE/lab-b/run/libvirt-sock"

step() { printf '\n\033[1m=== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
die() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then die "run as root (namespaces, libvirtd)"; fi

cleanup() {
    step "Tearing the lab down"
    $PY -m tests.lab.labctl --prefix "$PREFIX" down
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "1. Bringing the lab up: hosts lab-a (192.0.2.1) and lab-b (192.0.2.2), one libvirtd each"
$PY -m tests.lab.labctl --prefix "$PREFIX" up --hosts 2 || die "lab up failed"

step "2. Booting guest '$GUEST' on lab-a: 512 MiB RAM, rewrites 256 MiB at 100 MiB/s"
$PY - <<EOF || die "guest did not boot"
from tests.lab.lab import Lab
lab = Lab.attach('$PREFIX')
lab.start_guest('lab-a', '$GUEST', mem_mib=512, dirty_mib=256, dirty_rate=100, persistent=True)
print('guest up in %.1f s' % lab.timings['boot_${GUEST}_s'])
EOF
sleep 2
echo "its serial console (heartbeat every second):"
tail -n 3 "$STATE/lab-a/log/qemu/$GUEST-serial.log"

step "3. Migrating lab-a -> lab-b, post-copy allowed, bandwidth capped at $BW MiB/s"
printf '$ %s &\n' "virsh -c $A migrate --live --p2p --postcopy --bandwidth $BW $GUEST qemu+tcp://192.0.2.2/system"
virsh -c "$A" migrate --live --p2p --postcopy --bandwidth $BW "$GUEST" qemu+tcp://192.0.2.2/system &
MIG=$!

step "4. Pre-copy: job info on lab-a every 2 s (watch 'Memory remaining' climb back at each new iteration)"
iter=0
for _ in $(seq 1 60); do
    sleep 2
    info=$(virsh -c "$A" domjobinfo "$GUEST" 2>/dev/null) || break
    echo "$info" | grep -E '^(Time elapsed|Memory processed|Memory remaining|Memory bandwidth|Dirty rate|Iteration):' | tr '\n' ';' | sed 's/  */ /g; s/;/ | /g'
    echo
    iter=$(echo "$info" | awk -F: '/^Iteration/ {gsub(/ /,"",$2); print $2}')
    [ "${iter:-0}" -ge 3 ] && break
done
kill -0 $MIG 2>/dev/null || die "the migration ended before the switch (it should not converge)"
echo "two full passes done and the migration is not converging (iteration $iter)."

step "5. Switching to post-copy (what migpilot's agent will decide and do)"
run virsh -c "$A" migrate-postcopy "$GUEST" || die "migrate-postcopy failed"
wait $MIG || die "the migration failed"
echo "migration finished."

step "6. Completed job on the source (lab-a)"
run virsh -c "$A" domjobinfo "$GUEST" --completed

step "7. The guest on lab-b"
run virsh -c "$B" list
$PY - <<EOF || die "guest unhealthy on lab-b"
from tests.lab.lab import Lab
lab = Lab.attach('$PREFIX')
hb = lab.check_guest_healthy('lab-b', '$GUEST', beats=3)
print('heartbeat continues on lab-b: %s (no BUG/Oops/panic on its console)' % (hb,))
EOF
tail -n 3 "$STATE/lab-b/log/qemu/$GUEST-serial.log"

step "Demo OK"
