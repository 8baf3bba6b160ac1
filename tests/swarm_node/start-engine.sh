#!/bin/sh
# Starts a Docker Engine inside this container: one node of the test swarm
# (tests/swarm_cluster.py). Arguments go to dockerd.
set -eu

# The container runtime mounts the cgroup controllers read-only; the engine must create
# its containers' cgroups, so mount them writable again (CAP_SYS_ADMIN).
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    # cgroup v2, one hierarchy: as docker:dind's entrypoint does, move this container's
    # processes into a child group, then hand every controller down to the groups below.
    mount -o remount,rw /sys/fs/cgroup
    mkdir -p /sys/fs/cgroup/init
    xargs -rn1 < /sys/fs/cgroup/cgroup.procs > /sys/fs/cgroup/init/cgroup.procs || :
    sed -e 's/ / +/g' -e 's/^/+/' < /sys/fs/cgroup/cgroup.controllers \
        > /sys/fs/cgroup/cgroup.subtree_control
else
    # cgroup v1, one mount per controller: mount each again, writable.
    for dir in /sys/fs/cgroup/*/; do
        name=$(basename "$dir")
        umount -l "$dir"
        case "$name" in
            systemd) mount -t cgroup -o none,name=systemd cgroup "$dir" ;;
            *) mount -t cgroup -o "$name" cgroup "$dir" ;;
        esac
    done
fi

exec dockerd --host unix:///var/run/docker.sock "$@"
