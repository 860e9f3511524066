"""Simulated hosts on one Linux machine, the part shared by cluster.py (hosts with sshd)
and ../slurm/slurm_cluster.py (Slurm nodes).

Each host is a network namespace with ``eth0`` (a veth) on a bridge that lives in a
namespace of its own (the root namespace's FORWARD policy may drop bridged traffic, and
nothing in it is touched), one address in a /24 of the harness's own, and one anchor
process (``sleep infinity``) that holds the host's other namespaces: every command
enters a host with ``nsenter --target <anchor>``. Stdlib only; every wait is bounded.
"""

import os
import signal
import subprocess
import time

IFACE = "eth0"  # the interface name inside every host namespace


def sh(argv, error=RuntimeError, timeout=30, check=True, **kw):
    """Run a short helper command (ip, ssh-keygen, ...) with a bound; `error` on failure."""
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise error("command failed (rc=%d): %s\n%s%s" % (p.returncode, " ".join(argv), p.stdout, p.stderr))
    return p


def pid_alive(pid):
    """True if ``pid`` exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def ns_pids(ns):
    p = sh(["ip", "netns", "pids", ns], timeout=10, check=False)
    return [int(x) for x in p.stdout.split() if x.isdigit()]


def kill_ns_procs(ns, grace=2.0):
    """SIGTERM then SIGKILL every process living in netns ``ns``."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        live = ns_pids(ns)
        if not live:
            return
        for pid in live:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and ns_pids(ns):
            time.sleep(0.05)


def pick_subnet(first_two, seed):
    """The third byte of a ``first_two``.X.0/24 not in use in the root namespace (the
    bridge's namespace is private, so an overlap cannot break routing; distinct subnets
    keep parallel runs apart in logs)."""
    used = sh(["ip", "-4", "-o", "addr"], check=False).stdout + sh(["ip", "-4", "route"], check=False).stdout
    for i in range(250):
        x = (seed + i) % 250 + 1
        if "%s.%d." % (first_two, x) not in used:
            return x
    return seed % 250 + 1


def connect_hosts(br_ns, host_ns, addr, add_ns, error=RuntimeError):
    """The bridge in ``br_ns``, and per host (``host_ns``: host -> namespace) its namespace
    with ``eth0`` at ``addr[host]``/24 on the bridge. ``add_ns(name)`` creates a namespace
    and remembers it for teardown."""
    add_ns(br_ns)
    sh(["ip", "-n", br_ns, "link", "add", "br0", "type", "bridge"], error)
    sh(["ip", "-n", br_ns, "link", "set", "br0", "up"], error)
    for i, (h, ns) in enumerate(host_ns.items()):
        add_ns(ns)
        peer = "h%d" % (i + 1)
        sh(["ip", "link", "add", IFACE, "netns", ns, "type", "veth", "peer", "name", peer, "netns", br_ns], error)
        sh(["ip", "-n", br_ns, "link", "set", peer, "master", "br0"], error)
        sh(["ip", "-n", br_ns, "link", "set", peer, "up"], error)
        sh(["ip", "-n", ns, "link", "set", "lo", "up"], error)
        sh(["ip", "-n", ns, "addr", "add", addr[h] + "/24", "dev", IFACE], error)
        sh(["ip", "-n", ns, "link", "set", IFACE, "up"], error)


def write_hosts_file(path, addr, extra=()):
    """The cluster's /etc/hosts (bind-mounted in each host, nothing in /etc is written)."""
    lines = ["127.0.0.1\tlocalhost"] + list(extra) + ["%s\t%s" % (a, h) for h, a in addr.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o644)
    return path


def start_anchor(argv, host, error=RuntimeError, timeout=10):
    """Start ``argv`` (which sets the host up and execs ``sleep infinity``) and wait until
    it is ``sleep``: the namespaces it holds are then ready. Returns its Popen."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    deadline = time.monotonic() + timeout
    while True:
        if p.poll() is not None:
            raise error("anchor for %s exited rc=%s: %s" % (host, p.returncode, p.stderr.read().decode(errors="replace")))
        try:
            with open("/proc/%d/comm" % p.pid) as f:
                if f.read().strip() == "sleep":
                    return p
        except OSError:
            pass
        if time.monotonic() > deadline:
            p.kill()
            p.wait(timeout=5)
            raise error("anchor for %s not ready in %ss" % (host, timeout))
        time.sleep(0.01)


def enter(anchor_pid, cwd=None):
    """argv prefix that runs a command inside the host of ``anchor_pid`` (net, uts and
    mount namespaces; nsenter --mount would otherwise chdir to the anchor's cwd)."""
    return ["nsenter", "--target", str(anchor_pid), "--net", "--uts", "--mount", "--wd=%s" % (cwd or os.getcwd()),
            "--"]
