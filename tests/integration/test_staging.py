"""Issue 4: staging code from a folder, a .tar.gz, a .tar or s3:// (a real S3 server
checking SigV4), safe extraction, installs, and idempotent re-runs."""
import io
import json
import os
import shutil
import tempfile
import stat
import subprocess
import tarfile
import time
import unittest

import harness
import s3_server
from harness import PROBE, Tree, clean_env

SCRIPT_SH = "#!/bin/sh\necho \"from the archive: $*\" > \"$SM_MODEL_DIR/out.txt\"\n"


def make_tar(path, members, mode="w:gz"):
    """members: list of (TarInfo-like dict, bytes or None)."""
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            ti = tarfile.TarInfo(info["name"])
            ti.type = info.get("type", tarfile.REGTYPE)
            ti.mode = info.get("mode", 0o644)
            ti.linkname = info.get("linkname", "")
            ti.uid, ti.gid = info.get("uid", 0), info.get("gid", 0)
            if data is not None:
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
            else:
                tar.addfile(ti)
    return path


def code_archive(path, script=SCRIPT_SH, extra=(), mode="w:gz"):
    return make_tar(path, [({"name": "train.sh", "mode": 0o755}, script.encode()),
                           ({"name": "lib", "type": tarfile.DIRTYPE, "mode": 0o755}, None),
                           ({"name": "lib/helper.txt"}, b"helper\n"), *extra], mode)


class TestArchives(unittest.TestCase):
    def setUp(self):
        harness.require_binary(self)

    def tree_with_archive(self, archive_name="sourcedir.tar.gz", **kwargs):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.sh", "epochs": 2})
        archive = os.path.join(tree.root, archive_name)
        hps = harness.sdk_encode({"sagemaker_program": "train.sh", "epochs": 2, "sagemaker_submit_directory": archive})
        tree.write_config("hyperparameters.json", hps)
        os.makedirs(tree.path("model"))
        return tree, archive

    def test_targz_is_unpacked_with_permissions_kept(self):
        tree, archive = self.tree_with_archive()
        code_archive(archive, extra=[({"name": "setuid.bin", "mode": 0o4755, "uid": 4242}, b"x")])
        result = tree.run()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(tree.read("model", "out.txt"), "from the archive: --epochs 2\n")
        self.assertTrue(os.stat(tree.path("code", "train.sh")).st_mode & stat.S_IXUSR)
        st = os.stat(tree.path("code", "setuid.bin"))
        self.assertFalse(st.st_mode & stat.S_ISUID, "setuid bits are dropped")
        self.assertEqual(st.st_uid, os.getuid(), "owners from the archive are not kept")
        self.assertEqual(tree.read("code", "lib", "helper.txt"), "helper\n")

    def test_plain_tar_works_too(self):
        tree, archive = self.tree_with_archive("code.tar")
        code_archive(archive, mode="w")
        result = tree.run()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(tree.read("model", "out.txt"), "from the archive: --epochs 2\n")

    def test_unsafe_members_are_refused_and_nothing_escapes(self):
        cases = [
            ("absolute", {"name": "/tmp/smlaunch-evil-abs"}, b"x", "absolute path"),
            ("dotdot", {"name": "../smlaunch-evil-dotdot"}, b"x", "'..'"),
            ("deep dotdot", {"name": "a/../../smlaunch-evil-deep"}, b"x", "'..'"),
            ("symlink out", {"name": "link", "type": tarfile.SYMTYPE, "linkname": "/etc"}, None, "symbolic link"),
            ("symlink up", {"name": "d/link", "type": tarfile.SYMTYPE, "linkname": "../../.."}, None, "symbolic link"),
            ("hardlink out", {"name": "hl", "type": tarfile.LNKTYPE, "linkname": "/etc/passwd"}, None, "hard link"),
            # Written as "req" by libarchive: ".." from the top leaves (found by fuzz_archive_paths).
            ("symlink trailing dot", {"name": "req/.", "type": tarfile.SYMTYPE, "linkname": "../secret"}, None,
             "symbolic link"),
            ("fifo", {"name": "pipe", "type": tarfile.FIFOTYPE}, None, "FIFO"),
            ("device", {"name": "dev", "type": tarfile.CHRTYPE}, None, "device"),
        ]
        for label, info, data, reason in cases:
            with self.subTest(label):
                tree, archive = self.tree_with_archive()
                code_archive(archive, extra=[(info, data)])
                before = set(os.listdir(tree.root))
                result = tree.run()
                self.assertEqual(result.returncode, 66, result.stderr)
                fields = harness.failure_fields(tree.read("output", "failure"))
                self.assertEqual(fields["class"], "StagingError:")
                self.assertIn(info["name"], fields["message"])
                self.assertIn(reason, fields["message"])
                self.assertFalse(os.path.exists("/tmp/smlaunch-evil-abs"))
                self.assertFalse(os.path.exists(os.path.join(tree.base, "smlaunch-evil-dotdot")))
                self.assertFalse(os.path.exists(os.path.join(tree.root, "opt", "smlaunch-evil-deep")))
                self.assertEqual(set(os.listdir(tree.root)), before)
                self.assertFalse(os.listdir(tree.path("code")) if os.path.isdir(tree.path("code")) else [],
                                 "no half-staged code is left behind")

    def test_a_symlink_escaping_then_a_file_written_through_it(self):
        outside = tempfile.mkdtemp(prefix="smlaunch-outside-")
        self.addCleanup(shutil.rmtree, outside, True)
        tree, archive = self.tree_with_archive()
        code_archive(archive, extra=[({"name": "escape", "type": tarfile.SYMTYPE, "linkname": outside}, None),
                                     ({"name": "escape/evil.txt"}, b"written outside")])
        result = tree.run()
        self.assertEqual(result.returncode, 66, result.stderr)
        self.assertIn('"escape"', harness.failure_fields(tree.read("output", "failure"))["message"])
        self.assertEqual(os.listdir(outside), [], "nothing was written through the link")

    def test_links_made_escaping_by_later_members_are_refused(self):
        # Each link is lexically inside when extracted; the later `p -> .` links make the
        # first reach the outside folder, and the entry point used to be chmodded through it.
        outside = tempfile.mkdtemp(prefix="smlaunch-outside-")
        self.addCleanup(shutil.rmtree, outside, True)
        victim = os.path.join(outside, "victim.sh")
        with open(victim, "w") as f:
            f.write("#!/bin/sh\necho victim\n")
        os.chmod(victim, 0o600)
        tree, archive = self.tree_with_archive()
        depth = len(tree.path("code").strip("/").split("/"))
        names = ["p%d" % i for i in range(depth)]
        target = "/".join(names) + "/" + "/".join([".."] * depth) + outside
        members = [({"name": "x", "type": tarfile.SYMTYPE, "linkname": target}, None)]
        members += [({"name": n, "type": tarfile.SYMTYPE, "linkname": "."}, None) for n in names]
        code_archive(archive, extra=members)
        hps = harness.sdk_encode({"sagemaker_program": "x/victim.sh", "sagemaker_submit_directory": archive})
        tree.write_config("hyperparameters.json", hps)
        result = tree.run()
        self.assertEqual(result.returncode, 66, result.stderr)
        message = harness.failure_fields(tree.read("output", "failure"))["message"]
        self.assertIn('member "x"', message)
        self.assertIn(target, message)
        self.assertEqual(stat.S_IMODE(os.stat(victim).st_mode), 0o600, "nothing outside was chmodded")

    def test_member_dot_cannot_replace_the_code_folder(self):
        tree, archive = self.tree_with_archive()
        make_tar(archive, [({"name": "."}, b"print('dot')\n")])
        result = tree.run()
        self.assertEqual(result.returncode, 66, result.stderr)
        message = harness.failure_fields(tree.read("output", "failure"))["message"]
        self.assertIn('member "."', message)
        self.assertIn("code directory itself", message)
        self.assertTrue(os.path.isdir(tree.path("code")))
        # A "." folder entry is skipped: its mode 000 is not applied to code/.
        code_archive(archive, extra=[({"name": ".", "type": tarfile.DIRTYPE, "mode": 0}, None)])
        result = tree.run()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(tree.path("code")).st_mode) & 0o700, 0o700)

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare"), "needs root to bind-mount in a namespace")
    def test_restaging_never_deletes_inside_a_mount_under_code(self):
        # A host folder bind-mounted under code/ (like a data volume) keeps its files when
        # code/ is replaced: the old copy is removed without crossing the mount.
        tree, archive = self.tree_with_archive()
        code_archive(archive)
        self.assertEqual(tree.run().returncode, 0)
        host = os.path.join(tree.root, "host-data")
        os.makedirs(host)
        with open(os.path.join(host, "precious.txt"), "w") as f:
            f.write("keep me\n")
        os.makedirs(tree.path("code", "data"))
        code_archive(archive, script=SCRIPT_SH.replace("from the archive", "version 2"))
        script = 'mount --bind "$1" "$2" && exec "$3" train --base-dir "$4" --python "$5"'
        result = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", host,
                                 tree.path("code", "data"), harness.SMLAUNCH, tree.base, harness.PYTHON],
                                env=clean_env(), capture_output=True, text=True, timeout=120)
        if "mount:" in result.stderr and result.returncode != 0 and "smlaunch" not in result.stderr:
            self.skipTest("cannot bind-mount here: " + result.stderr)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(tree.read("model", "out.txt"), "version 2: --epochs 2\n")
        with open(os.path.join(host, "precious.txt")) as f:
            self.assertEqual(f.read(), "keep me\n")
        self.assertIn("is a mount point: left in place", result.stderr)

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare"), "needs root to bind-mount in a namespace")
    def test_a_code_folder_that_is_a_mount_point_is_replaced_in_place(self):
        # code/ is a volume: its contents are replaced, the mount kept. A mount inside it
        # cannot be moved aside: the staging fails naming it, and deletes nothing there.
        tree, archive = self.tree_with_archive()
        volume = os.path.join(tree.root, "volume")
        host = os.path.join(tree.root, "host-data")
        os.makedirs(volume)
        os.makedirs(host)
        with open(os.path.join(host, "precious.txt"), "w") as f:
            f.write("keep me\n")
        os.makedirs(tree.path("code"))

        def run_with_mounts(*mounts):
            script = "".join('mount --bind "%s" "%s" && ' % m for m in mounts)
            script += 'exec "$0" train --base-dir "$1" --python "$2"'
            return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, harness.SMLAUNCH,
                                   tree.base, harness.PYTHON], env=clean_env(), capture_output=True, text=True,
                                  timeout=120)

        code_archive(archive)
        first = run_with_mounts((volume, tree.path("code")))
        if first.returncode != 0 and "smlaunch" not in first.stderr:
            self.skipTest("cannot bind-mount here: " + first.stderr)
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertIn("is a mount point: replacing its contents in place", first.stderr)
        code_archive(archive, script=SCRIPT_SH.replace("from the archive", "version 2"))
        second = run_with_mounts((volume, tree.path("code")))
        self.assertEqual(second.returncode, 0, second.stderr)
        self.assertEqual(tree.read("model", "out.txt"), "version 2: --epochs 2\n")
        self.assertEqual(sorted(os.listdir(volume)), ["lib", "train.sh"])

        os.makedirs(os.path.join(volume, "data"))
        code_archive(archive, script=SCRIPT_SH.replace("from the archive", "version 3"))
        third = run_with_mounts((volume, tree.path("code")), (host, tree.path("code", "data")))
        self.assertEqual(third.returncode, 66, third.stderr)
        message = harness.failure_fields(tree.read("output", "failure"))["message"]
        self.assertIn(os.path.join(tree.path("code"), "data"), message)
        with open(os.path.join(host, "precious.txt")) as f:
            self.assertEqual(f.read(), "keep me\n")
        self.assertEqual(sorted(os.listdir(volume)), ["data", "lib", "train.sh"], "the old code is back")

    def test_a_second_run_does_not_unpack_again(self):
        tree, archive = self.tree_with_archive()
        code_archive(archive)
        self.assertEqual(tree.run().returncode, 0)
        marker = tree.path("code", "lib", "marker-from-first-run")
        with open(marker, "w") as f:
            f.write("still here")
        second = tree.run()
        self.assertEqual(second.returncode, 0, second.stderr)
        self.assertIn("not unpacking it again", second.stderr)
        self.assertTrue(os.path.exists(marker))
        # A changed archive is unpacked again, replacing what smlaunch staged before.
        code_archive(archive, script=SCRIPT_SH.replace("from the archive", "version 2"))
        third = tree.run()
        self.assertEqual(third.returncode, 0, third.stderr)
        self.assertEqual(tree.read("model", "out.txt"), "version 2: --epochs 2\n")
        self.assertFalse(os.path.exists(marker))

    def test_requirements_and_pyproject_packages_are_installed(self):
        tree, archive = self.tree_with_archive()
        wheels = os.path.join(tree.root, "wheels")
        harness.build_wheel(wheels, "smlaunch_testdep", module_text="VALUE = 7\n")
        # The module lives under src/: importable only once pip installed the package.
        pyproject = ('[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
                     '[project]\nname = "userpkg"\nversion = "1.0"\n[tool.setuptools]\npy-modules = ["userlib"]\n'
                     'package-dir = {"" = "src"}\n')
        script = ("#!/bin/sh\nexec \"$SMLAUNCH_TEST_PYTHON\" -c "
                  "'import smlaunch_testdep, userlib, os; open(os.environ[\"SM_MODEL_DIR\"] + \"/out.txt\", \"w\")"
                  ".write(str(smlaunch_testdep.VALUE) + userlib.NAME)'\n")
        code_archive(archive, script=script, extra=[({"name": "requirements.txt"}, b"smlaunch-testdep==1.0\n"),
                                                    ({"name": "pyproject.toml"}, pyproject.encode()),
                                                    ({"name": "src/userlib.py"}, b"NAME = 'userlib'\n")])
        target = os.path.join(tree.root, "site")
        env = clean_env(PIP_FIND_LINKS=wheels, PIP_TARGET=target, PYTHONPATH=target, PIP_NO_BUILD_ISOLATION="0",
                        SMLAUNCH_TEST_PYTHON=harness.PYTHON)
        result = tree.run(env=env)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(tree.read("model", "out.txt"), "7userlib")
        self.assertIn("pip install . -r requirements.txt", result.stderr)


@unittest.skipUnless(*s3_server.available()[:1], s3_server.available()[1])
class TestS3(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = s3_server.S3Server()
        cls.addClassCleanup(cls.server.stop)
        import tempfile
        cls.tmp = tempfile.mkdtemp(prefix="smlaunch-s3-")
        cls.archive = code_archive(os.path.join(cls.tmp, "sourcedir.tar.gz"))
        cls.etag = cls.server.upload("job-1/source/sourcedir.tar.gz", cls.archive)

    def setUp(self):
        harness.require_binary(self)

    def tree_for(self, key):
        tree = Tree(self, hyperparameters={"sagemaker_program": "train.sh", "epochs": 3,
                                           "sagemaker_region": "us-east-1",
                                           "sagemaker_submit_directory": "s3://%s/%s" % (self.server.bucket, key)})
        os.makedirs(tree.path("model"))
        return tree

    def env(self, endpoint=None, secret=None, **extra):
        return clean_env(AWS_ACCESS_KEY_ID=self.server.key_id, AWS_SECRET_ACCESS_KEY=secret or self.server.secret,
                         S3_ENDPOINT_URL=endpoint or self.server.endpoint, **extra)

    def test_download_with_good_credentials(self):
        tree = self.tree_for("job-1/source/sourcedir.tar.gz")
        result = tree.run(env=self.env())
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(tree.read("model", "out.txt"), "from the archive: --epochs 3\n")
        self.assertEqual(json.loads(tree.read(".smlaunch", "staged-code.json"))["identity"], "etag:" + self.etag)
        # The same ETag: no second download.
        again = tree.run(env=self.env())
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("not downloading it again", again.stderr)
        self.assertNotIn("downloading the code from", again.stderr)

    def test_wrong_secret_is_refused_at_once_with_403(self):
        tree = self.tree_for("job-1/source/sourcedir.tar.gz")
        start = time.monotonic()
        result = tree.run(env=self.env(secret="not-the-secret"))
        self.assertEqual(result.returncode, 66, result.stderr)
        self.assertLess(time.monotonic() - start, 20, "403 is not retried")
        message = harness.failure_fields(tree.read("output", "failure"))["message"]
        self.assertIn("HTTP 403", message)
        self.assertIn(self.server.bucket, message)
        self.assertIn("job-1/source/sourcedir.tar.gz", message)
        self.assertNotIn("not-the-secret", tree.read("output", "failure"))

    def test_missing_key_gives_404_naming_bucket_and_key(self):
        tree = self.tree_for("job-1/source/nope.tar.gz")
        result = tree.run(env=self.env())
        self.assertEqual(result.returncode, 66, result.stderr)
        message = harness.failure_fields(tree.read("output", "failure"))["message"]
        self.assertIn("HTTP 404", message)
        self.assertIn("job-1/source/nope.tar.gz", message)
        self.assertIn(self.server.bucket, message)

    def test_transient_failures_are_retried(self):
        proxy = s3_server.FlakyProxy(self.server.endpoint, failures=2)
        self.addCleanup(proxy.stop)
        tree = self.tree_for("job-1/source/sourcedir.tar.gz")
        result = tree.run(env=self.env(endpoint=proxy.endpoint))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("HTTP 503", result.stderr)
        self.assertGreaterEqual(proxy.requests, 4)  # two failures, then HEAD and GET
        self.assertEqual(tree.read("model", "out.txt"), "from the archive: --epochs 3\n")

    def test_credentials_from_the_container_endpoint(self):
        creds = s3_server.CredentialsEndpoint(self.server.key_id, self.server.secret)
        self.addCleanup(creds.stop)
        tree = self.tree_for("job-1/source/sourcedir.tar.gz")
        env = clean_env(S3_ENDPOINT_URL=self.server.endpoint, AWS_CONTAINER_CREDENTIALS_FULL_URI=creds.url,
                        AWS_CONTAINER_AUTHORIZATION_TOKEN="Bearer t0k3n")
        result = tree.run(env=env)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertGreaterEqual(creds.calls, 1)
        self.assertEqual(creds.authorization, "Bearer t0k3n")

    def test_no_credentials_is_a_clear_error(self):
        tree = self.tree_for("job-1/source/sourcedir.tar.gz")
        result = tree.run(env=clean_env(S3_ENDPOINT_URL=self.server.endpoint))
        self.assertEqual(result.returncode, 66)
        self.assertIn("AWS_ACCESS_KEY_ID", tree.read("output", "failure"))

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare"), "needs root to mount a small tmpfs")
    def test_a_full_disk_names_the_file_and_the_cause(self):
        big = os.path.join(self.tmp, "full.tar.gz")
        with open(big, "wb") as f:
            f.write(os.urandom(1024 * 1024))
        self.server.upload("job-3/source/sourcedir.tar.gz", big)
        tree = self.tree_for("job-3/source/sourcedir.tar.gz")
        os.makedirs(tree.path(".smlaunch"))
        script = 'mount -t tmpfs -o size=64k tmpfs "$1" && exec "$2" train --base-dir "$3" --python "$4"'
        result = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                                 tree.path(".smlaunch"), harness.SMLAUNCH, tree.base, harness.PYTHON],
                                env=self.env(), capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 66, result.stderr)
        message = harness.failure_fields(tree.read("output", "failure"))["message"]
        self.assertIn("cannot write " + tree.path(".smlaunch", "download-"), message)
        self.assertIn("No space left on device", message)

    def test_a_100_mib_archive(self):
        big = os.path.join(self.tmp, "big.tar.gz")
        payload = os.urandom(100 * 1024 * 1024)
        with tarfile.open(big, "w:gz", compresslevel=1) as tar:
            ti = tarfile.TarInfo("train.sh")
            ti.mode = 0o755
            ti.size = len(SCRIPT_SH)
            tar.addfile(ti, io.BytesIO(SCRIPT_SH.encode()))
            ti = tarfile.TarInfo("weights.bin")
            ti.size = len(payload)
            tar.addfile(ti, io.BytesIO(payload))
        self.server.upload("job-2/source/sourcedir.tar.gz", big)
        tree = self.tree_for("job-2/source/sourcedir.tar.gz")
        result = tree.run(env=self.env(), timeout=600)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(os.path.getsize(tree.path("code", "weights.bin")), len(payload))
        with open(tree.path("code", "weights.bin"), "rb") as f:
            self.assertEqual(f.read(), payload)
        self.assertFalse([n for n in os.listdir(tree.path(".smlaunch")) if n.startswith("download")],
                         "the download is removed after unpacking")


if __name__ == "__main__":
    unittest.main()
