"""Multi-host harness tests: namespaces + sshd + Open MPI across algo-k.

Run (root, Linux):
    timeout 600 /work/main/.venv/bin/python -m unittest discover \
        -s tests/cluster -p 'test_*.py' -v
Skips (with the reason) when namespaces/sshd/mpirun/mpi4py are unavailable.
Timings are printed to stderr as ``TIMING ...`` lines.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Cluster, install_sigterm_handler  # noqa: E402

SYS_PY = "/usr/bin/python3"
MPIRUN = "/usr/bin/mpirun"
CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
}
MPI_SCRIPT = r'''
from mpi4py import MPI
c = MPI.COMM_WORLD
s = c.allreduce(c.Get_rank() + 1, op=MPI.SUM)
print("RANK %d SIZE %d HOST %s SUM %d"
      % (c.Get_rank(), c.Get_size(), MPI.Get_processor_name(), s), flush=True)
'''
LINE = re.compile(r"^RANK (\d+) SIZE (\d+) HOST (\S+) SUM (\d+)$", re.M)

_ok, _why = Cluster.available()


def _timing(name, seconds):
    sys.stderr.write("TIMING %s %.3fs\n" % (name, seconds))


def _mpi_missing():
    if not os.access(MPIRUN, os.X_OK):
        return "mpirun not installed (apt-get install openmpi-bin)"
    r = subprocess.run([SYS_PY, "-c", "import mpi4py"], capture_output=True,
                       timeout=30, env=CLEAN_ENV)
    if r.returncode != 0:
        return "python3-mpi4py not installed for %s" % SYS_PY
    return None


def setUpModule():
    if _ok and threading.current_thread() is threading.main_thread():
        install_sigterm_handler()   # `timeout` -> SIGTERM -> clean teardown


def mpirun_argv(c, hosts_spec, np, script):
    return ["timeout", "120", MPIRUN, "--allow-run-as-root",
            "--host", hosts_spec, "-np", str(np),
            "--mca", "plm_rsh_agent", c.ssh_cmd,
            "-mca", "btl_tcp_if_include", c.iface,
            "-mca", "oob_tcp_if_include", c.iface,
            "-mca", "pml", "ob1", "-mca", "btl", "tcp,self",
            "-x", "PATH", SYS_PY, "-m", "mpi4py", script]


class _ClusterMixin:
    """Shared checks; concrete classes also inherit unittest.TestCase."""
    N = 2

    @classmethod
    def setUpClass(cls):
        if not _ok:
            raise unittest.SkipTest(_why)
        t0 = time.monotonic()
        cls.c = Cluster(cls.N)
        cls.addClassCleanup(cls.c.close)
        cls.c.start()
        cls.c.wait_ssh_ready(timeout=30)
        _timing("cluster%d_up_incl_ssh_ready" % cls.N, time.monotonic() - t0)
        cls.work = tempfile.mkdtemp(prefix="sml-cluster-test-")
        cls.addClassCleanup(shutil.rmtree, cls.work, True)
        cls.script = os.path.join(cls.work, "allreduce.py")
        with open(cls.script, "w") as f:
            f.write(MPI_SCRIPT)

    def test_interface_and_address(self):
        for h in self.c.hosts:
            r = self.c.run(h, ["ip", "-4", "-o", "addr", "show", "dev",
                               self.c.iface], timeout=10, check=True)
            self.assertIn(self.c.addr[h] + "/24", r.stdout)

    def test_hostname(self):
        for h in self.c.hosts:
            r = self.c.run(h, ["hostname"], timeout=10, check=True)
            self.assertEqual(r.stdout.strip(), h)

    def test_name_resolution(self):
        for h in self.c.hosts:
            for other in self.c.hosts:
                r = self.c.run(h, ["getent", "hosts", other], timeout=10)
                self.assertEqual(r.returncode, 0, (h, other, r.stderr))
                self.assertEqual(r.stdout.split()[0], self.c.addr[other])

    def test_ssh_mesh(self):
        for src in self.c.hosts:
            for dst in self.c.hosts:
                r = self.c.ssh(src, dst, ["hostname"], timeout=20)
                self.assertEqual(r.returncode, 0, (src, dst, r.stderr))
                self.assertEqual(r.stdout.strip(), dst)

    def test_ssh_key_only(self):
        # without the key: refused, and only publickey is offered
        r = self.c.run(self.c.hosts[0], [
            "ssh", "-F", "/dev/null", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "PubkeyAuthentication=no", "-o", "ConnectTimeout=5",
            "root@" + self.c.hosts[-1], "true"], timeout=20)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Permission denied (publickey)", r.stderr)

    def _mpirun(self, hosts_spec, np):
        if _mpi_missing():
            self.skipTest(_mpi_missing())
        t0 = time.monotonic()
        r = self.c.run(self.c.hosts[0],
                       mpirun_argv(self.c, hosts_spec, np, self.script),
                       env=CLEAN_ENV, inherit_env=False, timeout=150)
        dt = time.monotonic() - t0
        _timing("mpirun_%dhosts_np%d" % (self.N, np), dt)
        msg = "rc=%d\nstdout:\n%s\nstderr:\n%s" % (r.returncode, r.stdout,
                                                    r.stderr)
        self.assertEqual(r.returncode, 0, msg)
        rows = [tuple(m) for m in LINE.findall(r.stdout)]
        self.assertEqual(len(rows), np, msg)
        self.assertEqual(sorted(int(x[0]) for x in rows), list(range(np)))
        self.assertTrue(all(int(x[1]) == np for x in rows), msg)
        want = np * (np + 1) // 2
        self.assertTrue(all(int(x[3]) == want for x in rows), msg)
        return rows


class TwoHosts(_ClusterMixin, unittest.TestCase):
    N = 2

    def test_mpirun_allreduce(self):
        rows = self._mpirun("algo-1:2,algo-2:2", 4)
        by_rank = {int(r[0]): r[2] for r in rows}
        # processor name == hostname of the (UTS-namespaced) host
        self.assertEqual(by_rank, {0: "algo-1", 1: "algo-1",
                                   2: "algo-2", 3: "algo-2"})


    def test_mpirun_via_env_and_default_btls(self):
        """What a launcher would do: plain mpirun, agent/ifaces via OMPI_MCA_*
        env, default BTLs (vader within a host, tcp across hosts)."""
        if _mpi_missing():
            self.skipTest(_mpi_missing())
        env = dict(CLEAN_ENV, **self.c.ompi_env())
        t0 = time.monotonic()
        r = self.c.run("algo-1", [
            "timeout", "120", MPIRUN, "--host", "algo-1:2,algo-2:2",
            "-np", "4", "-x", "PATH", SYS_PY, "-m", "mpi4py", self.script],
            env=env, inherit_env=False, timeout=150)
        _timing("mpirun_2hosts_np4_env_default_btl", time.monotonic() - t0)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        rows = LINE.findall(r.stdout)
        self.assertEqual(sorted(x[2] for x in rows),
                         ["algo-1", "algo-1", "algo-2", "algo-2"])
        self.assertTrue(all(x[3] == "10" for x in rows), r.stdout)


class ThreeHosts(_ClusterMixin, unittest.TestCase):
    N = 3

    def test_mpirun_allreduce(self):
        rows = self._mpirun("algo-1:1,algo-2:1,algo-3:1", 3)
        self.assertEqual(sorted(r[2] for r in rows),
                         ["algo-1", "algo-2", "algo-3"])


@unittest.skipUnless(_ok, _why)
class Lifecycle(unittest.TestCase):

    def _assert_gone(self, c, procs):
        names = set(os.listdir("/run/netns")) if os.path.isdir(
            "/run/netns") else set()
        for ns in list(c.ns.values()) + [c.br_ns]:
            self.assertNotIn(ns, names)
            self.assertFalse(os.path.exists(os.path.join("/etc/netns", ns)))
        for pid in procs:
            try:
                with open("/proc/%d/stat" % pid) as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue                      # gone
            self.assertEqual(state, "Z", "pid %d survived" % pid)

    def test_up_down_timing_and_cleanup(self):
        t0 = time.monotonic()
        c = Cluster(2)
        with c:
            t_up = time.monotonic() - t0
            c.wait_ssh_ready(timeout=30)
            t_ready = time.monotonic() - t0
            tmp = c.tmpdir
            pids = [p.pid for p in c._procs]
            t1 = time.monotonic()
        t_down = time.monotonic() - t1
        _timing("cluster2_up", t_up)
        _timing("cluster2_up_plus_ssh_ready", t_ready)
        _timing("cluster2_teardown", t_down)
        self.assertFalse(os.path.exists(tmp))
        self._assert_gone(c, pids)
        self.assertLess(t_down, 30)

    def test_teardown_on_exception_kills_remote_orphans(self):
        """A daemonised process started over ssh on algo-2 (not a child of
        anything we track) must still be killed by teardown."""
        c = Cluster(2)
        pidfile = os.path.join(tempfile.gettempdir(),
                               "sml-orphan-%d.pid" % os.getpid())
        self.addCleanup(lambda: os.path.exists(pidfile) and
                        os.unlink(pidfile))
        pid = None
        with self.assertRaises(RuntimeError):
            with c:
                c.wait_ssh_ready(timeout=30)
                # /tmp is shared between simulated hosts; pids too (no pidns)
                r = c.ssh("algo-1", "algo-2", [
                    "setsid", "-f", "sh", "-c",
                    "'echo $$ > %s; exec sleep 300'" % pidfile,
                    "</dev/null >/dev/null 2>&1;",
                    "for i in 1 2 3 4 5 6 7 8 9 10; do",
                    "test -s %s && break; sleep 0.1; done;" % pidfile,
                    "cat", pidfile], timeout=20)
                self.assertEqual(r.returncode, 0, r.stderr)
                pid = int(r.stdout.split()[0])
                self.assertTrue(os.path.exists("/proc/%d" % pid))
                raise RuntimeError("boom")
        self._assert_gone(c, [pid])

    def test_two_clusters_in_parallel(self):
        with Cluster(2) as a, Cluster(2) as b:
            self.assertNotEqual(a.prefix, b.prefix)
            a.wait_ssh_ready(timeout=30)
            b.wait_ssh_ready(timeout=30)
            for c in (a, b):
                r = c.ssh("algo-1", "algo-2", ["getent", "hosts", "algo-2"],
                          timeout=20, check=True)
                self.assertIn(c.addr["algo-2"], r.stdout)

    def test_run_timeout_is_bounded(self):
        with Cluster(1) as c:
            t0 = time.monotonic()
            with self.assertRaises(subprocess.TimeoutExpired):
                c.run("algo-1", ["sleep", "60"], timeout=1)
            self.assertLess(time.monotonic() - t0, 10)


if __name__ == "__main__":
    unittest.main()
