"""Simulated multi-host SageMaker cluster on one Linux machine.

Each simulated host ``algo-k`` is a network namespace with an ``eth0`` veth
attached to a private bridge (which lives in its own, dedicated namespace, so
the root namespace is never touched), a real OpenSSH server on port 22 and an
``/etc/hosts`` that resolves every ``algo-k``.

Per host, one "anchor" process (``sleep infinity``) is started with
``ip netns exec <ns> unshare --uts`` (so it sees the cluster's hosts file
bind-mounted on /etc/hosts, has hostname ``algo-k`` and, by default, a private
tmpfs on /dev/shm).  sshd and every ``run()``/``popen()`` enter the anchor's
net+uts+mount namespaces with ``nsenter``, so a command started by the test
and one started over ssh see exactly the same "host".

Stdlib only; needs root, ``ip`` (iproute2), ``unshare``/``nsenter``
(util-linux) and ``/usr/sbin/sshd``.

    from cluster import Cluster
    ok, why = Cluster.available()
    with Cluster(2) as c:
        c.wait_ssh_ready(30)
        c.run("algo-1", ["ssh", "-F", c.ssh_config, "algo-2", "hostname"])

Everything is bounded in time and torn down on exit (also on exceptions):
processes started here and every process left inside the namespaces are
killed, namespaces and the temp dir are removed; nothing in /etc is written.
Leftovers of runs that were SIGKILLed are reaped by ``cleanup_stale()``
(called automatically when a Cluster starts).
"""

import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

__all__ = ["Cluster", "ClusterError", "install_sigterm_handler"]

from netns_hosts import IFACE, connect_hosts, enter, kill_ns_procs, pick_subnet, pid_alive, sh, start_anchor, \
    write_hosts_file

NS_PREFIX = "sml-"          # every namespace we create starts with this
SSHD = "/usr/sbin/sshd"
_counter = itertools.count(1)


class ClusterError(RuntimeError):
    pass


def _sh(argv, timeout=30, check=True, **kw):
    return sh(argv, ClusterError, timeout=timeout, check=check, **kw)


def _ns_list():
    try:
        return sorted(os.listdir("/run/netns"))
    except OSError:
        return []


def _delete_ns(ns):
    kill_ns_procs(ns)
    _sh(["ip", "netns", "del", ns], timeout=15, check=False)
    shutil.rmtree(os.path.join("/etc/netns", ns), ignore_errors=True)


def install_sigterm_handler():
    """Turn SIGTERM (e.g. from `timeout`) into SystemExit so context
    managers / unittest cleanups tear clusters down.  Main thread only;
    opt-in because it changes process-wide signal handling."""
    def _h(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, _h)


class Cluster:
    """``n_hosts`` simulated SageMaker hosts ``algo-1`` .. ``algo-N``.

    Attributes after ``start()`` (or ``__enter__``):
      hosts       ["algo-1", ...]
      ns          {host: netns name}
      addr        {host: "10.213.X.k"}
      subnet      "10.213.X.0/24"
      iface       "eth0" (interface name inside every host namespace)
      ssh_config  path of an ssh client config (use ``ssh -F``)
      ssh_cmd     "ssh -F <ssh_config>" (for OMPI plm_rsh_agent)
      tmpdir      private temp dir (keys, sshd configs/logs)
    """

    def __init__(self, n_hosts, prefix=None, uts=True, private_shm=True,
                 sshd=SSHD, start_sshd=True):
        """uts: give each host its own hostname (``algo-k``); without it
        Open MPI's vader shm segments of different hosts collide.
        private_shm: private tmpfs /dev/shm per host (like real hosts).
        /tmp stays shared between hosts (handy for scripts/fixtures)."""
        if n_hosts < 1:
            raise ValueError("n_hosts must be >= 1")
        self.n = n_hosts
        if prefix is None:
            prefix = "%s%d-%d" % (NS_PREFIX, os.getpid(), next(_counter))
        if not prefix.startswith(NS_PREFIX):
            prefix = NS_PREFIX + prefix
        self.prefix = prefix
        self.uts = uts
        self.private_shm = private_shm
        self._anchor = {}          # host -> Popen (holds the namespaces)
        self.sshd_bin = sshd
        # start_sshd=False: write each host's sshd config (sshd_config_path())
        # but let the code under test start sshd itself (smlaunch does).
        self.start_sshd = start_sshd
        self.hosts = ["algo-%d" % (i + 1) for i in range(n_hosts)]
        self.ns = {h: "%s-%s" % (prefix, h) for h in self.hosts}
        self.br_ns = "%s-br" % prefix
        self.iface = IFACE
        self.tmpdir = None
        self.ssh_config = None
        self.ssh_cmd = None
        self.addr = {}
        self.subnet = None
        self._sshd = {}            # host -> Popen
        self._procs = []           # every Popen we started
        self._created_ns = []
        self._started = False
        self.timings = {}

    # ------------------------------------------------------------------ #
    @staticmethod
    def available():
        """(True, "") if namespaces + sshd can be used, else (False, why)."""
        if os.name != "posix" or not os.path.exists("/proc/self/ns/net"):
            return False, "not Linux / no network namespaces"
        if os.geteuid() != 0:
            return False, "needs root (network namespaces, sshd)"
        for tool in ("ip", "unshare", "nsenter", "ssh", "ssh-keygen"):
            if shutil.which(tool) is None:
                return False, "%s not found in PATH" % tool
        if not os.access(SSHD, os.X_OK):
            return False, "%s not found (apt-get install openssh-server)" % SSHD
        probe = "%sprobe-%d" % (NS_PREFIX, os.getpid())
        try:
            p = _sh(["ip", "netns", "add", probe], timeout=15, check=False)
            if p.returncode != 0:
                return False, "ip netns add failed: %s" % p.stderr.strip()
            p = _sh(["ip", "-n", probe, "link", "add", "br0", "type", "bridge"],
                    timeout=15, check=False)
            if p.returncode != 0:
                return False, "cannot create bridge: %s" % p.stderr.strip()
        except (OSError, subprocess.TimeoutExpired) as e:
            return False, "namespace probe failed: %s" % e
        finally:
            _sh(["ip", "netns", "del", probe], timeout=15, check=False)
        return True, ""

    @staticmethod
    def cleanup_stale():
        """Delete sml-<pid>-* namespaces, /etc/netns dirs and temp dirs whose
        creator pid is dead (left by SIGKILLed runs).  Returns names."""
        removed = []
        tmp = tempfile.gettempdir()
        for d in os.listdir(tmp):
            m = re.match(r"^%s(\d+)-\d+-[A-Za-z0-9_]{8}$" % NS_PREFIX, d)
            path = os.path.join(tmp, d)
            if (m and not pid_alive(int(m.group(1))) and
                    os.path.isfile(os.path.join(path, "ssh_config"))):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        names = set(_ns_list())
        try:
            names |= {d for d in os.listdir("/etc/netns")
                      if d.startswith(NS_PREFIX)}
        except OSError:
            pass
        for ns in sorted(names):
            if not ns.startswith(NS_PREFIX):
                continue
            rest = ns[len(NS_PREFIX):]
            rest = rest[len("probe-"):] if rest.startswith("probe-") else rest
            pid = rest.split("-", 1)[0]
            if pid.isdigit() and not pid_alive(int(pid)):
                _delete_ns(ns)
                removed.append(ns)
        return removed

    # ------------------------------------------------------------------ #
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self):
        if self._started:
            return self
        ok, why = self.available()
        if not ok:
            raise ClusterError("cluster unavailable: " + why)
        self._started = True
        t0 = time.monotonic()
        self.cleanup_stale()
        self.tmpdir = tempfile.mkdtemp(prefix="%s-" % self.prefix)
        os.chmod(self.tmpdir, 0o700)
        x = pick_subnet("10.213", os.getpid() * 7 + next(_counter))
        self.subnet = "10.213.%d.0/24" % x
        self.addr = {h: "10.213.%d.%d" % (x, i + 1)
                     for i, h in enumerate(self.hosts)}

        connect_hosts(self.br_ns, self.ns, self.addr, self._add_ns, ClusterError)
        # A hosts file of this cluster's own, bind-mounted over /etc/hosts inside each
        # host's mount namespace.
        self.hosts_file = write_hosts_file(os.path.join(self.tmpdir, "hosts"), self.addr,
                                           extra=["::1\tlocalhost ip6-localhost"])
        for h in self.hosts:
            self._start_anchor(h)
        self.timings["network_s"] = time.monotonic() - t0

        # --- ssh ------------------------------------------------------
        self._setup_ssh_keys()
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privsep dir
        for h in self.hosts:
            self._start_sshd(h)
        self.timings["start_s"] = time.monotonic() - t0
        return self

    def _add_ns(self, ns):
        _sh(["ip", "netns", "add", ns])
        self._created_ns.append(ns)

    def _start_anchor(self, h, timeout=10):
        # ip netns exec gives the anchor a mount namespace of its own (slave to
        # the machine's), so this bind mount is seen by the host's processes only.
        script = 'mount --bind "$1" /etc/hosts || exit 1; '
        if self.uts:
            script += 'hostname "$0" || exit 1; '
        if self.private_shm:
            script += ("mount -t tmpfs -o mode=1777,nosuid,nodev "
                       "sml-shm /dev/shm || exit 1; ")
        script += "exec sleep infinity"
        argv = ["ip", "netns", "exec", self.ns[h]]
        if self.uts:
            argv += ["unshare", "--uts", "--"]
        argv += ["sh", "-c", script, h, self.hosts_file]
        # ip netns exec / unshare / sh all exec(), so the anchor becomes `sleep`
        # once the setup is done.
        p = start_anchor(argv, h, ClusterError, timeout)
        self._procs.append(p)
        self._anchor[h] = p

    def _setup_ssh_keys(self):
        td = self.tmpdir
        key = os.path.join(td, "id_ed25519")
        _sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
             "sml-cluster", "-f", key])
        shutil.copy(key + ".pub", os.path.join(td, "authorized_keys"))
        hostkey = os.path.join(td, "ssh_host_ed25519_key")
        _sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostkey])
        self.ssh_config = os.path.join(td, "ssh_config")
        with open(self.ssh_config, "w") as f:
            f.write(
                "Host *\n"
                "  User root\n"
                "  IdentityFile %s\n"
                "  IdentitiesOnly yes\n"
                "  StrictHostKeyChecking no\n"
                "  UserKnownHostsFile /dev/null\n"
                "  GlobalKnownHostsFile /dev/null\n"
                "  LogLevel ERROR\n"
                "  BatchMode yes\n"
                "  ConnectTimeout 5\n"
                "  ServerAliveInterval 5\n"
                "  ServerAliveCountMax 3\n"
                "  ForwardX11 no\n"
                "  ForwardAgent no\n" % key)
        self.ssh_cmd = "ssh -F %s" % self.ssh_config
        self._hostkey = hostkey

    def sshd_config_path(self, h):
        return os.path.join(self.tmpdir, "sshd_config.%s" % h)

    def _start_sshd(self, h):
        td = self.tmpdir
        cfg = self.sshd_config_path(h)
        with open(cfg, "w") as f:
            f.write(
                "ListenAddress %s:22\n"
                "HostKey %s\n"
                "PidFile %s/sshd.%s.pid\n"
                "AuthorizedKeysFile %s/authorized_keys\n"
                "PermitRootLogin prohibit-password\n"
                "PubkeyAuthentication yes\n"
                "PasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\n"
                "HostbasedAuthentication no\n"
                "StrictModes no\n"
                "UsePAM no\n"
                "UseDNS no\n"
                "PrintMotd no\n"
                "PrintLastLog no\n"
                "X11Forwarding no\n"
                "PermitUserEnvironment no\n"
                "MaxStartups 100:30:200\n"
                "MaxSessions 100\n"
                "LogLevel INFO\n" % (self.addr[h], self._hostkey, td, h, td))
        _sh([self.sshd_bin, "-t", "-f", cfg])
        if not self.start_sshd:
            return
        log = open(os.path.join(td, "sshd.%s.log" % h), "w")
        try:
            p = subprocess.Popen(
                self.wrap(h, [self.sshd_bin, "-D", "-e", "-f", cfg], cwd="/"),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            log.close()
        self._sshd[h] = p
        self._procs.append(p)

    # ------------------------------------------------------------------ #
    def exec_prefix(self, host, cwd=None):
        """argv prefix that enters ``host`` (net+uts+mount namespaces)."""
        if host not in self.ns:
            raise KeyError("unknown host %r (have %s)" % (host, self.hosts))
        a = self._anchor.get(host)
        if a is None or a.poll() is not None:
            raise ClusterError("host %s is not running" % host)
        return enter(a.pid, cwd)

    def wrap(self, host, argv, cwd=None):
        """argv that runs ``argv`` inside ``host``."""
        return self.exec_prefix(host, cwd) + list(argv)

    @staticmethod
    def _env(env, inherit_env=True):
        if env is None and inherit_env:
            return None
        full = dict(os.environ) if inherit_env else {}
        full.update(env or {})
        return full

    def popen(self, host, argv, env=None, inherit_env=True, **kw):
        """Popen inside ``host`` (own session; killed on teardown).

        ``env`` is merged over os.environ (or used alone when
        ``inherit_env=False``).  Caller must bound its waits.
        """
        kw.setdefault("start_new_session", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        cwd = kw.pop("cwd", None)
        p = subprocess.Popen(self.wrap(host, argv, cwd),
                             env=self._env(env, inherit_env), **kw)
        self._procs.append(p)
        return p

    def run(self, host, argv, env=None, timeout=60, check=False, input=None,
            cwd=None, inherit_env=True):
        """Run to completion inside ``host``; returns CompletedProcess (text).

        On timeout the whole process group is killed and
        subprocess.TimeoutExpired is raised.
        """
        p = self.popen(host, argv, env=env, inherit_env=inherit_env,
                       text=True, cwd=cwd,
                       stdin=subprocess.PIPE if input is not None
                       else subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill_tree(p)
            out, err = p.communicate(timeout=10)
            raise subprocess.TimeoutExpired(p.args, timeout, out, err)
        if p in self._procs:
            self._procs.remove(p)
        cp = subprocess.CompletedProcess(p.args, p.returncode, out, err)
        if check and cp.returncode != 0:
            raise ClusterError("rc=%d on %s: %s\nstdout:\n%s\nstderr:\n%s" % (
                cp.returncode, host, " ".join(argv), out, err))
        return cp

    def ssh(self, src, dst, argv, timeout=30, **kw):
        """``ssh -F cfg dst argv...`` run from inside ``src``."""
        return self.run(src, ["ssh", "-F", self.ssh_config, dst] + list(argv),
                        timeout=timeout, **kw)

    def ompi_mca_args(self):
        """mpirun args that make Open MPI use this cluster's ssh + eth0."""
        return ["--mca", "plm_rsh_agent", self.ssh_cmd,
                "--mca", "btl_tcp_if_include", self.iface,
                "--mca", "oob_tcp_if_include", self.iface]

    def ompi_env(self):
        """Same as ompi_mca_args() as environment variables (for callers,
        e.g. smlaunch, that build the mpirun command line themselves)."""
        return {"OMPI_MCA_plm_rsh_agent": self.ssh_cmd,
                "OMPI_MCA_btl_tcp_if_include": self.iface,
                "OMPI_MCA_oob_tcp_if_include": self.iface,
                "OMPI_ALLOW_RUN_AS_ROOT": "1",
                "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}

    def sshd_log(self, host):
        try:
            with open(os.path.join(self.tmpdir, "sshd.%s.log" % host)) as f:
                return f.read()
        except OSError:
            return ""

    def wait_ssh_ready(self, timeout=30, src=None):
        """Wait until ``ssh algo-k true`` from ``src`` (default algo-1)
        succeeds for every host.  Bounded exponential backoff; raises
        ClusterError with sshd logs on timeout or if an sshd died."""
        src = src or self.hosts[0]
        t0 = time.monotonic()
        deadline = t0 + timeout
        pending = list(self.hosts)
        delay = 0.05
        last = {}
        while pending:
            for h in pending:
                p = self._sshd.get(h)
                if p is not None and p.poll() is not None:
                    raise ClusterError("sshd on %s exited rc=%s:\n%s" % (
                        h, p.returncode, self.sshd_log(h)))
            # probe all pending hosts in parallel, each bounded
            probes = {h: self.popen(src, ["ssh", "-F", self.ssh_config, h,
                                          "true"], text=True,
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
                      for h in pending}
            for h, p in probes.items():
                left = max(0.1, min(10.0, deadline - time.monotonic()) + 1)
                try:
                    _, err = p.communicate(timeout=left)
                    if p.returncode == 0:
                        pending.remove(h)
                    else:
                        last[h] = "rc=%d %s" % (p.returncode, err.strip())
                except subprocess.TimeoutExpired:
                    self._kill_tree(p, close_pipes=True)
                    last[h] = "ssh probe timed out"
                finally:
                    if p in self._procs:
                        self._procs.remove(p)
            if not pending:
                break
            if time.monotonic() >= deadline:
                raise ClusterError("ssh not ready after %.1fs: %s\n%s" % (
                    timeout, last, "\n".join(
                        "--- sshd %s ---\n%s" % (h, self.sshd_log(h))
                        for h in pending)))
            time.sleep(min(delay, max(0, deadline - time.monotonic())))
            delay = min(delay * 2, 1.0)
        self.timings["ssh_ready_s"] = time.monotonic() - t0
        return self.timings["ssh_ready_s"]

    # ------------------------------------------------------------------ #
    @staticmethod
    def _close_pipes(p):
        for f in (p.stdin, p.stdout, p.stderr):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass

    @classmethod
    def _kill_tree(cls, p, grace=2.0, close_pipes=False):
        try:
            cls._kill_tree_inner(p, grace)
        finally:
            if close_pipes:
                cls._close_pipes(p)

    @staticmethod
    def _kill_tree_inner(p, grace):
        if p.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(p.pid, sig)
            except (ProcessLookupError, PermissionError):
                try:
                    p.send_signal(sig)
                except ProcessLookupError:
                    pass
            try:
                p.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def close(self):
        """Idempotent teardown; never raises for cleanup failures."""
        t0 = time.monotonic()
        errors = []
        for p in reversed(self._procs):
            try:
                self._kill_tree(p, close_pipes=True)
            except Exception as e:  # keep tearing down
                errors.append(e)
        self._procs = []
        self._sshd = {}
        self._anchor = {}
        # Anything else that ended up inside a namespace (orted, ranks,
        # ssh children, daemons that double-forked) is killed here.
        for ns in reversed(self._created_ns):
            try:
                _delete_ns(ns)
            except Exception as e:
                errors.append(e)
        self._created_ns = []
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
        self._started = False
        self.timings["close_s"] = time.monotonic() - t0
        return errors

    def __repr__(self):
        return "Cluster(%d, prefix=%r, subnet=%r)" % (
            self.n, self.prefix, self.subnet)


if __name__ == "__main__":  # quick manual smoke test: python3 cluster.py 2
    import sys
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    ok, why = Cluster.available()
    if not ok:
        print("unavailable:", why)
        sys.exit(77)
    t = time.monotonic()
    with Cluster(n) as c:
        c.wait_ssh_ready(30)
        print(c, "up in %.2fs" % (time.monotonic() - t))
        for h in c.hosts:
            r = c.ssh(c.hosts[0], h, ["hostname; getent hosts algo-1"],
                      timeout=15)
            print(h, "->", r.returncode, r.stdout.strip(), r.stderr.strip())
    print("timings", c.timings, "total %.2fs" % (time.monotonic() - t))
