#!/usr/bin/env bash
# Makes the Docker path of "How Postgres is provided" (README) work on a machine without a Docker
# engine: podman answers Docker's API, and PostgreSQL comes from an image built here from Debian's
# packages (no image registry needed). Idempotent: run it again and it only checks.
#
#   scripts/container-postgres.sh          # set up, then print the two variables to export
#   eval "$(scripts/container-postgres.sh --env)"   # set up, and export them into this shell
#   scripts/container-postgres.sh --stop   # stop the API service this script started
#
# `--env` also prints TASKBENCH_PODMAN_STARTED=1 when this call started the API service, so that
# a caller (.ci/run) stops only what it started.
#
# What it does, as root (on Debian 12; apt-get, podman 4.3):
#   1. installs podman, runc and debootstrap when missing;
#   2. /etc/containers/containers.conf.d/50-taskbench.conf: runtime runc (crun refuses hybrid
#      cgroups) and fixed nofile/nproc ulimits (sandboxes that forbid raising them);
#   3. starts `podman system service` on $TASKBENCH_PODMAN_SOCKET (default
#      /run/taskbench/podman.sock) unless something answers /_ping there already:
#      DOCKER_HOST=unix://$TASKBENCH_PODMAN_SOCKET is what testcontainers and the `docker` CLI need;
#   4. builds $TASKBENCH_POSTGRES_IMAGE (default localhost/taskbench-postgres:15) unless an image of that name carries
#      the label of this recipe's content hash: debootstrap of Debian bookworm (minbase) with
#      postgresql-15, scripts/container-entrypoint.sh as its entrypoint, `podman import`ed.
#      The first build downloads about 110 MB of packages and takes one to two minutes (README).
#
# Then `TASKBENCH_POSTGRES_IMAGE` makes `--db docker` and `--db auto` use that image.
# Two setups at once are serialised by a lock.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."

SOCKET=${TASKBENCH_PODMAN_SOCKET:-/run/taskbench/podman.sock}
IMAGE=${TASKBENCH_POSTGRES_IMAGE:-localhost/taskbench-postgres:15}
SUITE=bookworm
MIRROR=${TASKBENCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=postgresql-15
CONF=/etc/containers/containers.conf.d/50-taskbench.conf

mode=setup
case "${1:-}" in
    "") ;;
    --env) mode=env ;;
    --stop) mode=stop ;;
    *) echo "usage: $0 [--env | --stop]" >&2; exit 2 ;;
esac

log() { echo "container-postgres: $*" >&2; }
die() { log "error: $*"; exit 1; }

rundir=$(dirname "$SOCKET")
pidfile="$rundir/podman-service.pid"
# The pid in the pidfile, if that process is still our service (not a recycled pid).
service_pid() {
    local pid
    pid=$(cat "$pidfile" 2>/dev/null) || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "system service .*unix://$SOCKET" || return 1
    echo "$pid"
}
if [ "$mode" = stop ]; then
    if pid=$(service_pid); then
        kill "$pid" && log "stopped the API service (pid $pid)"
    fi
    rm -f "$pidfile"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "run as root: it installs packages, writes /etc/containers and runs rootful podman"
mkdir -p "$rundir"
exec 9>"$rundir/setup.lock"
flock 9
started=0
# A failed setup stops the service it started.
on_exit() {
    local rc=$?
    if [ "$started" = 1 ] && [ "$rc" != 0 ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
}
trap on_exit EXIT

# 1. Packages.
missing=()
for tool in podman:podman runc:runc debootstrap:debootstrap curl:curl; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. Settings.
want_conf='# Written by taskbench scripts/container-postgres.sh.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"'
if [ "$(cat "$CONF" 2>/dev/null)" != "$want_conf" ]; then
    mkdir -p "$(dirname "$CONF")"
    printf '%s\n' "$want_conf" >"$CONF"
    log "wrote $CONF"
    # A running service of ours read the old settings.
    if pid=$(service_pid); then kill "$pid"; sleep 1; fi
fi

# 3. The Docker-compatible API.
ping() { curl -fsS --max-time 10 --unix-socket "$SOCKET" http://d/_ping 2>/dev/null | grep -qx OK; }
if ! ping; then
    # Ours but not answering: replace it; anything else's socket is left alone.
    if pid=$(service_pid); then kill "$pid"; sleep 1; fi
    [ ! -S "$SOCKET" ] || [ -s "$pidfile" ] || die "$SOCKET exists but does not answer /_ping, and is not ours"
    rm -f "$SOCKET"
    # Its own session, so that it outlives this script and a Ctrl-C in the shell that ran it.
    setsid podman system service --time=0 "unix://$SOCKET" </dev/null >"$rundir/podman-service.log" 2>&1 9>&- &
    echo $! >"$pidfile"
    started=1
    for _ in $(seq 100); do ping && break; sleep 0.1; done
    ping || die "podman system service did not answer on $SOCKET (log: $rundir/podman-service.log)"
    log "Docker API (podman $(podman --version | awk '{print $3}')) on unix://$SOCKET"
fi

# 4. The image, rebuilt only when its recipe changes.
recipe=$( { echo "$SUITE $MIRROR $PACKAGES"; sed -n '/^# 4\./,/^# End of the recipe/p' "$self"; cat scripts/container-entrypoint.sh; } | sha256sum | cut -c1-16)
have=$(podman image inspect --format '{{index .Labels "io.taskbench.recipe"}}' "$IMAGE" 2>/dev/null || true)
if [ "$have" != "$recipe" ]; then
    log "building $IMAGE (recipe $recipe): debootstrap $SUITE + $PACKAGES"
    started=$(date +%s)
    root=$(mktemp -d /var/tmp/taskbench-image.XXXXXX)
    trap 'rc=$?; rm -rf --one-file-system "$root"; (exit $rc); on_exit' EXIT
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root/fs" "$MIRROR" >"$root/debootstrap.log" 2>&1 ||
        die "debootstrap failed; its log: $(tail -5 "$root/debootstrap.log")"
    # The package's own cluster, package caches, docs and translations are not needed.
    rm -rf "$root/fs/etc/postgresql/15/main" "$root/fs/var/lib/postgresql/15" "$root/fs/var/cache/apt"/*.bin \
        "$root/fs/var/cache/apt/archives"/*.deb "$root/fs/var/lib/apt/lists"/* "$root/fs/usr/share/doc" \
        "$root/fs/usr/share/man" "$root/fs/usr/share/locale"
    install -m 0755 scripts/container-entrypoint.sh "$root/fs/usr/local/bin/docker-entrypoint.sh"
    tar -C "$root/fs" --one-file-system -cf "$root/rootfs.tar" .
    podman import --quiet \
        --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
        --change 'CMD ["postgres"]' \
        --change 'ENV PGDATA=/var/lib/postgresql/data' \
        --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'EXPOSE 5432' \
        --change 'STOPSIGNAL SIGINT' \
        --change "LABEL io.taskbench.recipe=$recipe" \
        "$root/rootfs.tar" "$IMAGE" >/dev/null
    rm -rf --one-file-system "$root"
    trap on_exit EXIT
    # The previous build of this name, now untagged.
    podman image prune -f --filter label=io.taskbench.recipe >/dev/null || true
    log "built $IMAGE in $(($(date +%s) - started)) s ($(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1/1e6}'))"
fi

# End of the recipe.

[ "$mode" = env ] || log "ready. To use it:"
printf 'export DOCKER_HOST=%q\n' "unix://$SOCKET"
printf 'export TASKBENCH_POSTGRES_IMAGE=%q\n' "$IMAGE"
[ "$mode" != env ] || [ "$started" = 0 ] || echo "export TASKBENCH_PODMAN_STARTED=1"
