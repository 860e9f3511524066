"""A real Slurm cluster on one Linux machine, for tests.

munged, slurmctld and N slurmds ``algo-1`` .. ``algo-N``. Each node is a network
namespace with ``eth0`` (a veth) on a bridge that lives in a namespace of its own (the
root namespace's FORWARD policy may drop bridged traffic), addresses 10.214.X.k/24 (no
other test uses 10.214), and one anchor process (``sleep infinity``) that holds the
node's UTS namespace (hostname ``algo-k``) and a private mount namespace with the
cluster's hosts file bind-mounted on /etc/hosts and a private /dev/shm. Daemons and
commands enter a node with ``nsenter --target <anchor> --net --uts --mount`` (not
``ip netns exec``, which remounts /sys and breaks slurmd's cgroup probe).

slurmctld runs on algo-1 (the head node); clients (sbatch, scontrol, scancel, squeue)
run there too. All configuration, state, spool, logs and the munge key live in one
temp dir; munged listens on its own socket. ``ProctrackType=proctrack/linuxproc``,
``TaskPlugin=task/none``, no cgroup plugins, ``SlurmUser=root``.

Stdlib only; needs root, iproute2, util-linux and Debian's slurm-wlm + munge.

    from slurm_cluster import SlurmCluster
    ok, why = SlurmCluster.available()
    with SlurmCluster(2) as c:
        job = c.sbatch(script_text, ["-N2", "--ntasks-per-node=2"])
        state = c.wait_job(job, timeout=120)

Teardown (also on exceptions) kills every process in the namespaces, the daemons, then
deletes the namespaces and the temp dir. Bounded in time throughout.
"""

import itertools
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
from netns_hosts import IFACE, connect_hosts, enter, kill_ns_procs, ns_pids, pick_subnet, pid_alive, sh, \
    start_anchor, write_hosts_file  # noqa: E402

__all__ = ["SlurmCluster", "SlurmClusterError"]

NS_PREFIX = "sms-"  # every namespace this harness creates
TOOLS = ("slurmctld", "slurmd", "munged", "sbatch", "scontrol", "scancel", "squeue", "srun")
_counter = itertools.count(1)


class SlurmClusterError(RuntimeError):
    pass


def _sh(argv, timeout=30, check=True, **kw):
    return sh(argv, SlurmClusterError, timeout=timeout, check=check, **kw)


class SlurmCluster:
    """Attributes after start(): hosts, ns, addr, tmpdir, conf (slurm.conf), env
    (SLURM_CONF for clients), iface."""

    def __init__(self, n_nodes=2, cpus=4, kill_wait=30, gpus=0):
        """gpus: fake GPUs per node (Gres=gpu:N; character devices in the temp dir)."""
        self.n = n_nodes
        self.gpus = gpus
        self.cpus = cpus
        self.kill_wait = kill_wait
        self.prefix = "%s%d-%d" % (NS_PREFIX, os.getpid(), next(_counter))
        self.hosts = ["algo-%d" % (i + 1) for i in range(n_nodes)]
        self.ns = {h: "%s-%s" % (self.prefix, h) for h in self.hosts}
        self.br_ns = "%s-br" % self.prefix
        self.iface = IFACE
        self.addr = {}
        self.tmpdir = None
        self._anchor = {}
        self._procs = []
        self._daemons = {}
        self._created_ns = []
        self._started = False
        self.timings = {}

    @staticmethod
    def available():
        if os.name != "posix" or not os.path.exists("/proc/self/ns/net"):
            return False, "not Linux / no network namespaces"
        if os.geteuid() != 0:
            return False, "needs root (network namespaces, slurmd as root)"
        for tool in ("ip", "unshare", "nsenter") + TOOLS:
            if shutil.which(tool) is None and not os.access("/usr/sbin/" + tool, os.X_OK):
                return False, "%s not found (apt-get install slurm-wlm munge)" % tool
        return True, ""

    @staticmethod
    def cleanup_stale():
        """Remove sms-<pid>-* namespaces and temp dirs whose creator is dead."""
        tmp = tempfile.gettempdir()
        for d in os.listdir(tmp):
            m = re.match(r"^%s(\d+)-\d+-[A-Za-z0-9_]{8}$" % NS_PREFIX, d)
            if m and not pid_alive(int(m.group(1))):
                shutil.rmtree(os.path.join(tmp, d), ignore_errors=True)
        try:
            names = os.listdir("/run/netns")
        except OSError:
            names = []
        for ns in names:
            m = re.match(r"^%s(\d+)-" % NS_PREFIX, ns)
            if m and not pid_alive(int(m.group(1))):
                kill_ns_procs(ns)
                _sh(["ip", "netns", "del", ns], check=False)

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

    @staticmethod
    def _tool(name):
        return shutil.which(name) or "/usr/sbin/" + name

    def start(self, timeout=60):
        if self._started:
            return self
        ok, why = self.available()
        if not ok:
            raise SlurmClusterError("slurm cluster unavailable: " + why)
        self._started = True
        t0 = time.monotonic()
        self.cleanup_stale()
        self.tmpdir = tempfile.mkdtemp(prefix="%s-" % self.prefix)
        os.chmod(self.tmpdir, 0o755)
        x = pick_subnet("10.214", os.getpid() * 7 + next(_counter))
        self.addr = {h: "10.214.%d.%d" % (x, i + 1) for i, h in enumerate(self.hosts)}

        connect_hosts(self.br_ns, self.ns, self.addr, self._add_ns, SlurmClusterError)
        self.hosts_file = write_hosts_file(os.path.join(self.tmpdir, "hosts"), self.addr)
        for h in self.hosts:
            self._start_anchor(h)

        self._write_config()
        self._start_munged()
        self.env = {"SLURM_CONF": self.conf, "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        self._daemons["slurmctld"] = self._daemon(self.hosts[0], [self._tool("slurmctld"), "-D", "-i", "-f", self.conf],
                                                  "slurmctld.log")
        for h in self.hosts:
            self._daemons["slurmd-" + h] = self._daemon(
                h, [self._tool("slurmd"), "-D", "-N", h, "-f", self.conf], "slurmd-%s.out" % h)
        self.wait_nodes_idle(timeout=timeout)
        self.timings["start_s"] = time.monotonic() - t0
        return self

    def _write(self, name, text, mode=0o644):
        path = os.path.join(self.tmpdir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def _add_ns(self, ns):
        _sh(["ip", "netns", "add", ns])
        self._created_ns.append(ns)

    def _start_anchor(self, h, timeout=10):
        script = ('mount --make-rprivate / && mount --bind "$1" /etc/hosts && hostname "$0" && '
                  'mount -t tmpfs -o mode=1777,nosuid,nodev sms-shm /dev/shm && exec sleep infinity')
        argv = ["nsenter", "--net=/run/netns/" + self.ns[h], "unshare", "--uts", "--mount", "--",
                "sh", "-c", script, h, self.hosts_file]
        p = start_anchor(argv, h, SlurmClusterError, timeout)
        self._procs.append(p)
        self._anchor[h] = p

    def exec_prefix(self, host, cwd=None):
        return enter(self._anchor[host].pid, cwd)

    def _write_config(self):
        td = self.tmpdir
        for d in ("state", "spool", "log", "munge"):
            os.makedirs(os.path.join(td, d), exist_ok=True)
        os.chmod(os.path.join(td, "munge"), 0o700)
        self.munge_key = os.path.join(td, "munge", "munge.key")
        with open(self.munge_key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(self.munge_key, 0o400)
        self.munge_socket = os.path.join(td, "munge", "munge.socket")
        gres = ""
        if self.gpus:
            # Slurm accepts only character devices as GPU files; these are /dev/null's.
            os.makedirs(os.path.join(td, "dev"), exist_ok=True)
            for i in range(self.gpus):
                os.mknod(os.path.join(td, "dev", "gpu%d" % i), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            self._write("gres.conf", "Name=gpu File=%s/dev/gpu[0-%d]\n" % (td, self.gpus - 1))
            gres = " Gres=gpu:%d" % self.gpus
        names = ",".join(self.hosts)
        addrs = ",".join(self.addr[h] for h in self.hosts)
        conf = "\n".join([
            "ClusterName=smlaunch",
            "SlurmctldHost=%s(%s)" % (self.hosts[0], self.addr[self.hosts[0]]),
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            "AuthInfo=socket=%s" % self.munge_socket,
            "StateSaveLocation=%s/state" % td,
            "SlurmdSpoolDir=%s/spool/%%n" % td,
            "SlurmctldPidFile=%s/slurmctld.pid" % td,
            "SlurmdPidFile=%s/slurmd-%%n.pid" % td,
            "SlurmctldLogFile=%s/log/slurmctld.log" % td,
            "SlurmdLogFile=%s/log/slurmd-%%n.log" % td,
            "SlurmctldPort=6817",
            "SlurmdPort=6818",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "MpiDefault=none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "SlurmdParameters=config_overrides",
            "ReturnToService=2",
            "SchedulerType=sched/builtin",
            # Schedule a batch job when it arrives (the default may wait up to 3 s).
            "SchedulerParameters=batch_sched_delay=0",
            "KillWait=%d" % self.kill_wait,
            "MinJobAge=300",
            "InactiveLimit=0",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=60",
            "MessageTimeout=10",
            "GresTypes=gpu",
            "NodeName=%s NodeAddr=%s CPUs=%d%s State=UNKNOWN" % (names, addrs, self.cpus, gres),
            "PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO",
            "",
        ])
        self.conf = self._write("slurm.conf", conf)

    def _start_munged(self, timeout=10):
        td = self.tmpdir
        argv = [self._tool("munged"), "--foreground", "--force", "--socket=" + self.munge_socket,
                "--key-file=" + self.munge_key, "--pid-file=%s/munge/munged.pid" % td,
                "--log-file=%s/log/munged.log" % td, "--seed-file=%s/munge/munged.seed" % td]
        log = open(os.path.join(td, "log", "munged.out"), "w")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        log.close()
        self._procs.append(p)
        self._daemons["munged"] = p
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.munge_socket):
            if p.poll() is not None or time.monotonic() > deadline:
                raise SlurmClusterError("munged did not start: %s" % self.log("munged.out"))
            time.sleep(0.02)

    def _daemon(self, host, argv, log_name):
        log = open(os.path.join(self.tmpdir, "log", log_name), "w")
        env = dict(self._base_env(), SLURM_CONF=self.conf)
        p = subprocess.Popen(self.exec_prefix(host, cwd=self.tmpdir) + argv, stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        self._procs.append(p)
        return p

    @staticmethod
    def _base_env():
        return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                "LANG": "C.UTF-8"}

    def log(self, name):
        try:
            with open(os.path.join(self.tmpdir, "log", name), errors="replace") as f:
                return f.read()[-4000:]
        except OSError as e:
            return str(e)

    def logs(self):
        return "\n".join("== %s ==\n%s" % (n, self.log(n)) for n in sorted(os.listdir(os.path.join(self.tmpdir, "log"))))

    def run(self, argv, host=None, timeout=30, check=True, env=None, cwd=None):
        """Run a client command (scontrol, sbatch, ...) on ``host`` (default: algo-1)."""
        full_env = dict(self._base_env(), SLURM_CONF=self.conf)
        full_env.update(env or {})
        p = subprocess.run(self.exec_prefix(host or self.hosts[0], cwd=cwd) + argv, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=timeout, env=full_env)
        if check and p.returncode != 0:
            raise SlurmClusterError("rc=%d: %s\n%s%s" % (p.returncode, " ".join(argv), p.stdout, p.stderr))
        return p

    def wait_nodes_idle(self, timeout=60):
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for name, p in self._daemons.items():
                if p.poll() is not None:
                    raise SlurmClusterError("%s exited rc=%s\n%s" % (name, p.returncode, self.logs()))
            p = self.run(["sinfo", "-h", "-N", "-o", "%N %T"], check=False, timeout=15)
            last = p.stdout + p.stderr
            states = dict(line.split() for line in p.stdout.splitlines() if len(line.split()) == 2)
            if p.returncode == 0 and len(states) == self.n and all(s == "idle" for s in states.values()):
                return
            time.sleep(0.1)
        raise SlurmClusterError("nodes not idle within %ss: %s\n%s" % (timeout, last, self.logs()))

    def sbatch(self, script_path, options, env=None, cwd=None):
        """Submit; returns the job id."""
        p = self.run(["sbatch", "--parsable"] + list(options) + [script_path], env=env, cwd=cwd)
        return p.stdout.strip().split(";")[0]

    def job_state(self, job):
        p = self.run(["scontrol", "-o", "show", "job", job], check=False, timeout=15)
        fields = dict(re.findall(r"(\w+)=(\S*)", p.stdout))
        return fields

    def wait_job(self, job, timeout, states=("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY")):
        """Poll until the job reaches one of ``states``; returns scontrol's fields."""
        deadline = time.monotonic() + timeout
        fields = {}
        while time.monotonic() < deadline:
            fields = self.job_state(job)
            if fields.get("JobState") in states:
                return fields
            time.sleep(0.1)
        raise SlurmClusterError("job %s not in %s within %ss: %s" % (job, states, timeout, fields))

    def ns_cmdlines(self, host):
        anchor = self._anchor[host].pid
        out = []
        for pid in ns_pids(self.ns[host]):
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            if pid != anchor:
                out.append(cmd)
        return out

    def close(self):
        for p in reversed(self._procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
        deadline = time.monotonic() + 5
        for p in self._procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        for ns in reversed(self._created_ns):
            kill_ns_procs(ns)
            _sh(["ip", "netns", "del", ns], check=False)
        self._created_ns = []
        self._procs = []
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


if __name__ == "__main__":
    import sys
    with SlurmCluster(int(sys.argv[1]) if len(sys.argv) > 1 else 2, gpus=2) as c:
        print("up in %.2f s" % c.timings["start_s"])
        print(c.run(["sinfo"]).stdout)
        print(c.run(["srun", "-N2", "--ntasks-per-node=2", "--gpus-per-node=2", "sh", "-c",
                     "echo $SLURMD_NODENAME $(hostname) $SLURM_JOB_NODELIST $SLURM_TASKS_PER_NODE "
                     "gpus=$SLURM_GPUS_ON_NODE cuda=$CUDA_VISIBLE_DEVICES"], timeout=60).stdout)
        script = os.path.join(c.tmpdir, "job.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\necho batch gpus=$SLURM_GPUS_ON_NODE\n"
                    "srun --nodes=2 --ntasks=2 --ntasks-per-node=1 --overlap sh -c "
                    "'echo step $SLURMD_NODENAME gpus=$SLURM_GPUS_ON_NODE cuda=$CUDA_VISIBLE_DEVICES'\n")
        os.chmod(script, 0o755)
        job = c.sbatch(script, ["-N2", "--ntasks-per-node=2", "--gpus-per-node=2", "-o", c.tmpdir + "/out"])
        print(c.wait_job(job, 60).get("JobState"))
        print(open(c.tmpdir + "/out").read())
