#!/usr/bin/env bash
# A private Docker engine for this checkout, so that building and running the images never
# reconfigures the machine: dockerd (Debian's docker.io) with its data root, exec root, pid
# file, socket and configuration under .cache/docker, no iptables rules, no ip_forward
# change, no default bridge (builds use the host's network, containers a user bridge).
#   docker/engine.sh start     install docker.io/docker-compose/mmdebstrap if missing, start
#   docker/engine.sh stop      stop the engine (containers it ran are stopped with it)
#   docker/engine.sh env       print `export DOCKER_HOST=...` for this engine
#   docker/engine.sh base      make the debian:12 base image from Debian's packages (cached)
# What it still writes outside .cache (README, "Docker"): dockerd 20.10 creates
# /etc/docker/key.json (removed at stop when it made it), and containerd's shims keep
# sockets under /run/containerd. containerd is started here with a configuration of its own
# (dockerd's default one creates /opt/containerd).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
cache="${SMLAUNCH_DOCKER_CACHE:-$repo/.cache/docker}"
# Unix socket paths are limited to 107 bytes; containerd nests its sockets two levels under
# the exec root, so a deep checkout gets a short exec root of its own in /tmp.
exec_root="$cache/run"
if [ ${#exec_root} -gt 60 ]; then
  exec_root="/tmp/smlaunch-docker-$(printf %s "$cache" | md5sum | cut -c1-12)"
fi
socket="$exec_root/docker.sock"
export DOCKER_HOST="unix://$socket"
docker=/usr/bin/docker   # Debian's client, the daemon's version (not another docker on PATH)

running() {
  [ -S "$socket" ] && "$docker" version >/dev/null 2>&1
}

start() {
  if [ "$(id -u)" != 0 ]; then
    echo "engine.sh: dockerd needs root" >&2
    exit 1
  fi
  scripts/install-packages.sh docker
  if running; then
    echo "engine.sh: already running ($DOCKER_HOST)"
    return
  fi
  unmount_leftovers   # of an engine killed earlier
  mkdir -p "$cache/data" "$exec_root"
  # dockerd 20.10 insists on /etc/docker/key.json; remember to remove it when we made it.
  if [ ! -e /etc/docker/key.json ]; then touch "$cache/made-etc-docker-key"; fi
  echo '{}' > "$cache/daemon.json"   # not the machine's /etc/docker/daemon.json
  # containerd of our own: the one dockerd starts uses the default configuration, whose
  # "opt" plugin creates /opt/containerd on the machine (and its CRI plugin /etc/cni/net.d);
  # this one keeps it under .cache.
  mkdir -p "$cache/containerd" "$exec_root/containerd"
  cat > "$cache/containerd.toml" <<TOML
version = 2
# No CRI (Kubernetes) plugin: docker does not use it, and it creates /etc/cni/net.d.
disabled_plugins = ["io.containerd.grpc.v1.cri"]
root = "$cache/containerd/root"
state = "$exec_root/containerd/state"
[grpc]
  address = "$exec_root/containerd/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$cache/containerd/opt"
TOML
  containerd --config "$cache/containerd.toml" --log-level warn >"$cache/containerd.log" 2>&1 </dev/null &
  echo $! > "$exec_root/containerd.pid"
  for _ in $(seq 1 100); do
    [ -S "$exec_root/containerd/containerd.sock" ] && break
    sleep 0.1
  done
  # --bridge=none: no docker0; --iptables=false/--ip-forward=false: the host's firewall and
  # forwarding stay as they are. Published ports go through docker-proxy on loopback.
  dockerd --config-file "$cache/daemon.json" --data-root "$cache/data" --exec-root "$exec_root" \
          --containerd "$exec_root/containerd/containerd.sock" \
          --pidfile "$exec_root/dockerd.pid" --host "$DOCKER_HOST" \
          --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
          --storage-driver overlay2 --log-level warn \
          >"$cache/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 300); do
    if running; then
      echo "engine.sh: dockerd $("$docker" version -f '{{.Server.Version}}') at $DOCKER_HOST (data: $cache/data)"
      return
    fi
    if ! kill -0 $! 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "engine.sh: dockerd did not start; its log ($cache/dockerd.log):" >&2
  tail -20 "$cache/dockerd.log" >&2
  exit 1
}

# TERM, then KILL after 30 s, the process whose pid is in $1 (if any); the file is removed.
stop_pidfile() {
  [ -f "$1" ] || return 0
  local pid
  pid="$(cat "$1")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 300); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

# Mounts dockerd left under its exec root and data root when it was killed rather than
# stopped (run/netns/default, an nsfs): they make the checkout's .cache impossible to delete
# ("Device or resource busy"). Deepest first.
unmount_leftovers() {
  local target
  findmnt -rn -o TARGET | awk -v a="$exec_root/" -v b="$cache/" \
      'index($0, a) == 1 || index($0, b) == 1' | sort -r | while read -r target; do
    umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null || true
  done
}

stop() {
  if [ -f "$exec_root/dockerd.pid" ] && running; then
    "$docker" ps -q | xargs -r "$docker" rm -f >/dev/null 2>&1 || true
  fi
  stop_pidfile "$exec_root/dockerd.pid"
  stop_pidfile "$exec_root/containerd.pid"   # after dockerd, which uses it to the end
  unmount_leftovers
  if [ -e "$cache/made-etc-docker-key" ]; then
    rm -f /etc/docker/key.json "$cache/made-etc-docker-key"
  fi
  echo "engine.sh: stopped"
}

# debian:12 from Debian's packages (no registry here). Behind a TLS-intercepting proxy, pip
# in the build needs the machine's extra CA certificates: they go into the root filesystem's
# /usr/local/share/ca-certificates, where the image's ca-certificates package picks them up.
base() {
  if "$docker" image inspect debian:12 >/dev/null 2>&1; then
    echo "engine.sh: debian:12 is present"
    return
  fi
  local tarball="$cache/debian-12-rootfs.tar"
  if [ ! -s "$tarball" ]; then
    echo "engine.sh: making the debian:12 root filesystem with mmdebstrap (once; cached in $tarball)"
    local hook=()
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
      hook=(--customize-hook='mkdir -p "$1/usr/local/share/ca-certificates"'
            --customize-hook='cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/"')
    fi
    mmdebstrap --quiet --variant=minbase "${hook[@]}" bookworm "${tarball%.tar}.tmp.tar" \
      "deb http://deb.debian.org/debian bookworm main" \
      "deb http://deb.debian.org/debian bookworm-updates main" \
      "deb http://deb.debian.org/debian-security bookworm-security main"
    mv "${tarball%.tar}.tmp.tar" "$tarball"
  fi
  "$docker" import "$tarball" debian:12 >/dev/null
  echo "engine.sh: imported debian:12 ($(du -h "$tarball" | cut -f1))"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) echo "export DOCKER_HOST=$DOCKER_HOST" ;;
  base) base ;;
  *) echo "usage: docker/engine.sh start|stop|env|base" >&2; exit 2 ;;
esac
