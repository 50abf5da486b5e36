#!/usr/bin/env python3
"""startup_probe.py TMP [--strace] - how long a `dags trigger` sent at "scheduler up"
waits, against one sent 3 s later (bench/DAEMON-RESULTS.md, finding 2).

A folder of 100 DAG files (drive.py's) and one home under TMP; three starts: fresh home
with a trigger at "scheduler up", restart with a trigger at "scheduler up", restart with a
trigger 3 s after it. With --strace, counts the daemon's fdatasync/fsync calls per start
(strace -c -f). BARAM and BENCH_DIR from the environment, as for drive.py.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drive  # noqa: E402


def main():
    tmp = sys.argv[1] if len(sys.argv) > 1 else "/dev/shm"
    use_strace = "--strace" in sys.argv
    root = os.path.join(tmp, "baram-probe-%d" % os.getpid())
    os.makedirs(root)
    try:
        dags = drive.make_folder(root, 100)
        home = drive.new_home(root, dags, 8)
        for label, delay in (("fresh, trigger at up", 0), ("restart, trigger at up", 0),
                             ("restart, trigger 3 s after up", 3)):
            d = drive.Daemon(home, 8, os.path.join(root, "daemon.log"))
            st = None
            if use_strace:
                st = subprocess.Popen(["strace", "-c", "-f", "-e", "trace=fdatasync,fsync", "-o",
                                       root + "/st", "-p", str(d.p.pid)],
                                      stderr=subprocess.DEVNULL)
            try:
                i, t_up = d.wait(drive.is_msg("scheduler up"))
                time.sleep(delay)
                t0 = time.monotonic()
                rid = drive.trigger(home, "folder_050")
                t1 = time.monotonic()
                i, ts = d.wait(drive.is_msg("run started", run=rid), i)
                d.wait(drive.is_msg("run ended", run=rid), i)
                line = "%-30s exec->up %.1f ms, trigger command %.1f ms, trigger->started %.1f ms" % (
                    label, (t_up - d.t_exec) * 1e3, (t1 - t0) * 1e3, (ts - t0) * 1e3)
                if st:
                    time.sleep(0.2)
                    st.send_signal(signal.SIGINT)
                    st.wait()
                    total = open(root + "/st").read().strip().splitlines()[-1].split()
                    line += ", fdatasync+fsync calls %s" % total[3]
                print(line, flush=True)
            finally:
                d.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
