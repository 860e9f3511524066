#!/usr/bin/env python3
"""Benchmarks for the launcher core and the supervisor, each against a baseline run in the
same invocation: start-up overhead and memory of `smlaunch train` on a trivial script,
and output throughput through the launcher against writing directly.

Usage: bench_launcher.py SMLAUNCH PYTHON [--runs N] [--gib G] [--before OLD_SMLAUNCH] [--startup-only]
                         [--detect-gpus]
"""
import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TRIVIAL_SH = "#!/bin/sh\nexit 0\n"
TRIVIAL_PY = "pass\n"
WRITER = """import os, sys
fd = {"stdout": 1, "stderr": 2}[sys.argv[1]]
block = b"x" * (1 << 20)
for _ in range(int(float(sys.argv[2]) * 1024)):
    view = memoryview(block)
    while view:
        view = view[os.write(fd, view):]
"""
SLEEPER = "import time\ntime.sleep(0.5)\n"


def make_tree(root, program, code):
    base = os.path.join(root, "opt", "ml")
    src = os.path.join(root, "src")
    os.makedirs(os.path.join(base, "input", "config"))
    os.makedirs(src)
    path = os.path.join(src, program)
    with open(path, "w") as f:
        f.write(code)
    os.chmod(path, 0o755)
    hps = {"sagemaker_program": json.dumps(program), "sagemaker_submit_directory": json.dumps("file://" + src)}
    for name, obj in (("hyperparameters.json", hps),
                      ("resourceconfig.json", {"current_host": "algo-1", "hosts": ["algo-1"]}),
                      ("inputdataconfig.json", {"train": {"TrainingInputMode": "File"}})):
        with open(os.path.join(base, "input", "config", name), "w") as f:
            json.dump(obj, f)
    return base, src


DETECT_GPUS = False  # --detect-gpus: the launcher detects the GPUs, as in a GPU image


def env():
    e = {k: v for k, v in os.environ.items() if not k.startswith(("SMLAUNCH_", "SM_", "PIP_"))}
    e.update({"SMLAUNCH_LOG_LEVEL": "warning"})
    if not DETECT_GPUS:
        e["SMLAUNCH_NUM_GPUS"] = "0"
    return e


def interleaved_samples(commands, runs):
    """Run each (argv, cwd[, environment]) in turn, `runs` times, so that any drift of a
    shared machine falls on every side alike; returns per command its wall times and its CPU
    times (getrusage of the children), in ms. The order changes from round to round
    (seeded): on a small VM a run is 0.5 ms faster or slower depending on which command ran
    just before it (the CPU it is placed on), and a fixed order gave that to one side."""
    wall = [[] for _ in commands]
    cpu = [[] for _ in commands]
    default = env()
    order = list(range(len(commands)))
    shuffler = random.Random(13)
    for _ in range(runs):
        shuffler.shuffle(order)
        for i in order:
            argv, cwd, environment = (tuple(commands[i]) + (default,))[:3]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(argv, check=True, cwd=cwd, env=environment, stdout=subprocess.DEVNULL)
            wall[i].append((time.perf_counter() - start) * 1000)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[i].append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000)
    return wall, cpu


def median_and_best(wall):
    """Per command, (median, min) of its wall times."""
    return [(statistics.median(s), min(s)) for s in wall]


def interleaved(commands, runs):
    """interleaved_samples(), as (median, min) wall time in ms per command."""
    return median_and_best(interleaved_samples(commands, runs)[0])


def paired_differences(samples, baseline):
    """Each run's difference from the baseline's run of the same round: a slow stretch of the
    machine falls on both sides of every difference."""
    return [x - y for x, y in zip(samples, baseline)]


def paired_median(samples, baseline):
    """The median of paired_differences()."""
    return statistics.median(paired_differences(samples, baseline))


def paired_interval(samples, baseline, level=0.95, resamples=1000):
    """A bootstrap interval of paired_median() (rounds drawn again with replacement, seeded): how
    far another invocation on the same machine may move the figure. On a 2-core VM the Python
    rows move by more than their differences from one invocation to the next."""
    differences = paired_differences(samples, baseline)
    draw = random.Random(13)
    medians = sorted(statistics.median(draw.choices(differences, k=len(differences))) for _ in range(resamples))
    tail = (1.0 - level) / 2.0
    return medians[int(tail * resamples)], medians[min(resamples - 1, int((1.0 - tail) * resamples))]


def tree_in_place(root, program, code, smlaunch, python):
    """make_tree(), staged once by smlaunch, then without sagemaker_submit_directory: from
    then on the code is already in place and a start copies nothing. Returns the base dir."""
    base, _ = make_tree(root, program, code)
    subprocess.run([smlaunch, "train", "--base-dir", base, "--python", python], check=True, env=env(),
                   stdout=subprocess.DEVNULL)
    with open(os.path.join(base, "input", "config", "hyperparameters.json"), "w") as f:
        json.dump({"sagemaker_program": json.dumps(program)}, f)
    return base


def startup(smlaunch, python, runs, root, program, code, interpreter, before=None, tini=None):
    base = tree_in_place(os.path.join(root, program), program, code, smlaunch, python)
    launcher = [smlaunch, "train", "--base-dir", base, "--python", python]
    direct = ([interpreter, program] if interpreter else ["./" + program])
    commands = [(direct, os.path.join(base, "code")), (launcher, None)]
    if before:
        commands.append(([before, "train", "--base-dir", base, "--python", python], None))
    if tini:  # the floor of any supervisor: a PID 1 that only forks, forwards signals and waits
        commands.append(([tini, "-s", "--"] + direct, os.path.join(base, "code")))
    wall, _ = interleaved_samples(commands, runs)
    return median_and_best(wall), wall


def staged_startup(smlaunch, python, runs, root, before=None):
    """A shell script whose code is copied from a folder (sagemaker_submit_directory=file://...)
    at every start, as when a job is simulated again and again on one tree, beside the same
    script already in place (the start-up rows' tree) and run directly."""
    base, _ = make_tree(os.path.join(root, "staged"), "train.sh", TRIVIAL_SH)
    in_place = tree_in_place(os.path.join(root, "in-place"), "train.sh", TRIVIAL_SH, smlaunch, python)
    commands = [(["./train.sh"], os.path.join(in_place, "code")),
                ([smlaunch, "train", "--base-dir", base, "--python", python], None),
                ([smlaunch, "train", "--base-dir", in_place, "--python", python], None)]
    if before:
        commands.append(([before, "train", "--base-dir", base, "--python", python], None))
    return interleaved(commands, runs)


def launcher_memory(smlaunch, python, root):
    base, _ = make_tree(os.path.join(root, "mem"), "sleep.py", SLEEPER)
    proc = subprocess.Popen([smlaunch, "train", "--base-dir", base, "--python", python], env=env())
    time.sleep(0.3)
    fields = {}
    for path in ("/proc/%d/status" % proc.pid, "/proc/%d/smaps_rollup" % proc.pid):
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
    proc.wait()

    def mib(key):
        return int(fields[key].split()[0]) / 1024.0

    # RSS counts shared library pages too (a dynamic build's libc is shared with the script);
    # private pages are the ones no other process maps: clean ones are the binary's own
    # file in the page cache (shared by every smlaunch running), dirty ones its heap, stack
    # and written data, which only its exit gives back.
    return mib("VmRSS"), mib("Pss"), mib("Private_Clean") + mib("Private_Dirty"), mib("Private_Dirty")


def throughput(smlaunch, python, root, stream, gib, merged):
    tree_root = os.path.join(root, "tp-%s-%s" % (stream, merged))
    shutil.rmtree(tree_root, ignore_errors=True)
    base, src = make_tree(tree_root, "writer.py", WRITER)
    subprocess.run([python, "-c", "pass"], check=True)
    results = {}
    for name, argv, cwd in (
            ("direct", [python, os.path.join(src, "writer.py"), stream, str(gib)], src),
            ("smlaunch", [smlaunch, "train", "--base-dir", base, "--python", python], None)):
        e = env()
        e["SMLAUNCH_GRACE_PERIOD"] = "1"
        if name == "smlaunch":
            hps = {"sagemaker_program": '"writer.py"', "sagemaker_submit_directory": json.dumps("file://" + src),
                   "stream": json.dumps(stream), "gib": json.dumps(gib)}
            with open(os.path.join(base, "input", "config", "hyperparameters.json"), "w") as f:
                json.dump(hps, f)
            # The writer takes its arguments positionally: wrap it.
            with open(os.path.join(src, "run.sh"), "w") as f:
                f.write('#!/bin/sh\nexec "%s" writer.py "$SM_HP_STREAM" "$SM_HP_GIB"\n' % python)
            os.chmod(os.path.join(src, "run.sh"), 0o755)
            hps["sagemaker_program"] = '"run.sh"'
            with open(os.path.join(base, "input", "config", "hyperparameters.json"), "w") as f:
                json.dump(hps, f)
            shutil.rmtree(os.path.join(base, "code"), ignore_errors=True)
        # The consumer: a pipe drained by `cat > /dev/null`, like a container's log pipe.
        reader = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        out = reader.stdin
        err = reader.stdin if merged else (subprocess.DEVNULL if stream == "stdout" else reader.stdin)
        if not merged and stream == "stderr":
            out = subprocess.DEVNULL
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=out, stderr=err, cwd=cwd, env=e)
        reader.stdin.close()
        reader.wait()
        seconds = time.perf_counter() - start
        results[name] = gib * 1024 / seconds
    return results["direct"], results["smlaunch"]


def installed_copy(binary, root, name):
    """`binary` copied (with smlaunch's smlaunch-fetch helper) into the bench's folder, as an
    install or an image's COPY writes it. How a file came into the page cache changes how
    fast it starts: the same bytes started 0.05-0.15 ms slower as the linker wrote them, or
    once faulted back in after an eviction, than freshly copied (bench/README.md, ninth
    pass). Every binary timed is copied, so no side gets the other's pages."""
    binary = os.path.abspath(binary)
    folder = os.path.join(root, name)
    os.makedirs(folder)
    for source in (binary, os.path.join(os.path.dirname(binary), "smlaunch-fetch")):
        if os.path.exists(source):
            shutil.copy2(source, os.path.join(folder, os.path.basename(source)))
    return os.path.join(folder, os.path.basename(binary))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("smlaunch")
    parser.add_argument("python")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", help="another smlaunch binary (e.g. the previous release) timed beside it")
    parser.add_argument("--startup-only", action="store_true", help="only the start-up figures")
    parser.add_argument("--detect-gpus", action="store_true",
                        help="let the launcher detect the GPUs (as in a GPU image) instead of --num-gpus 0")
    parser.add_argument("--cpu", type=int, help="pin the bench and everything it starts to this CPU: the launcher's "
                        "work then cannot overlap the script's, and which CPU each process lands on no longer moves "
                        "the figures (on a 2-core VM it moved tini's share on the Python script by 1.6 ms)")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    global DETECT_GPUS
    DETECT_GPUS = args.detect_gpus
    root = tempfile.mkdtemp(prefix="smlaunch-bench-")
    rows = []
    tini = shutil.which("tini")  # Debian's tini (scripts/install-packages.sh bench); its row is left out without it
    try:
        args.smlaunch = installed_copy(args.smlaunch, root, "smlaunch-bin")
        if args.before:
            args.before = installed_copy(args.before, root, "before-bin")
        if tini:  # from a copy too, on the same terms as the two launchers
            tini = installed_copy(tini, root, "tini-bin")
        for program, code, interp, label in (("train.sh", TRIVIAL_SH, None, "shell script"),
                                            ("train.py", TRIVIAL_PY, args.python, "python script")):
            timings, wall = startup(args.smlaunch, args.python, args.runs, root, program, code, interp,
                                    args.before, tini)
            (d_med, d_min), (l_med, l_min) = timings[0], timings[1]
            rows.append(("start-up, %s, median of %d (ms)" % (label, args.runs), l_med, d_med,
                         "launcher's own share %.2f ms" % (l_med - d_med)))
            paired = paired_median(wall[1], wall[0])
            note = "launcher's own share %.2f ms (95%% interval %.2f-%.2f)" % ((paired,) + paired_interval(wall[1], wall[0]))
            if tini:
                note += ", tini's %.2f ms" % paired_median(wall[-1], wall[0])
            rows.append(("start-up, %s, median of %d differences in a round (ms)" % (label, args.runs),
                         paired, 0.0, note))
            rows.append(("start-up, %s, best of %d (ms)" % (label, args.runs), l_min, d_min,
                         "launcher's own share %.2f ms" % (l_min - d_min)))
            if args.before:
                b_med, b_min = timings[2]
                rows.append(("start-up, %s, median of %d, --before binary (ms)" % (label, args.runs), b_med, d_med,
                             "launcher's own share %.2f ms, paired %.2f ms (95%% interval %.2f-%.2f)"
                             % ((b_med - d_med, paired_median(wall[2], wall[0])) + paired_interval(wall[2], wall[0]))))
                rows.append(("start-up, %s, --before minus this binary, median of %d differences (ms)"
                             % (label, args.runs), paired_median(wall[2], wall[1]), 0.0,
                             "95%% interval %.2f-%.2f" % paired_interval(wall[2], wall[1])))
            if tini:
                t_med, _ = timings[-1]
                rows.append(("start-up, %s, median of %d, tini -s -- (ms)" % (label, args.runs), t_med, d_med,
                             "tini's share %.2f ms: smlaunch's is %.2f ms more" % (t_med - d_med, l_med - t_med)))
        staged = staged_startup(args.smlaunch, args.python, args.runs, root, args.before)
        (d_med, _), (s_med, _), (p_med, _) = staged[:3]
        rows.append(("start-up, shell script copied from a folder, median of %d (ms)" % args.runs, s_med, d_med,
                     "launcher's own share %.2f ms, %.2f ms over the code in place" % (s_med - d_med, s_med - p_med)))
        if args.before:
            b_med, _ = staged[3]
            rows.append(("start-up, shell script copied from a folder, median of %d, --before (ms)" % args.runs,
                         b_med, d_med, "launcher's own share %.2f ms, %.2f ms over the code in place"
                         % (b_med - d_med, b_med - p_med)))
        version = [[args.smlaunch, "--version"]] + ([[args.before, "--version"]] if args.before else [])
        timings = interleaved([(["/bin/true"], None)] + [(v, None) for v in version], args.runs)
        for v, (v_med, _) in zip(version, timings[1:]):
            rows.append(("%s --version, median of %d (ms)" % ("smlaunch" if v[0] == args.smlaunch else "--before",
                                                              args.runs), v_med, timings[0][0],
                         "over /bin/true %.2f ms" % (v_med - timings[0][0])))
        if args.startup_only:
            return print_rows(rows)
        rss, pss, private, dirty = launcher_memory(args.smlaunch, args.python, root)
        rows.append(("smlaunch memory while the script runs: RSS (MiB)", rss, 0.0, "extra process"))
        rows.append(("smlaunch memory while the script runs: PSS (MiB)", pss, 0.0, "extra process"))
        rows.append(("smlaunch memory while the script runs: private (MiB)", private, 0.0, "extra process"))
        rows.append(("smlaunch memory while the script runs: private dirty (MiB)", dirty, 0.0,
                     "extra process: heap, stack, written data"))
        for stream, merged in (("stdout", False), ("stderr", False), ("stdout", True)):
            pairs = [throughput(args.smlaunch, args.python, root, stream, args.gib, merged)
                     for _ in range(args.repeat)]
            direct = statistics.median(p[0] for p in pairs)
            ours = statistics.median(p[1] for p in pairs)
            label = "%s+stderr on one pipe" % stream if merged else stream
            rows.append(("throughput, %.1f GiB to %s, median of %d (MiB/s)" % (args.gib, label, args.repeat),
                         ours, direct, "ratio %.2f" % (ours / direct)))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_rows(rows)


def print_rows(rows):
    width = max(len(r[0]) for r in rows)
    print("%-*s  %10s  %10s  %s" % (width, "figure", "smlaunch", "baseline", "comparison"))
    for name, ours, base, note in rows:
        print("%-*s  %10.2f  %10.2f  %s" % (width, name, ours, base, note))


if __name__ == "__main__":
    main()
