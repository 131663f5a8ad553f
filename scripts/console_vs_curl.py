#!/usr/bin/env python3
"""The console producer against curl, side by side, on the standalone emulator.

Both stream the same records in one chunked request to a fresh release
emulator on 127.0.0.1, stdout of both to a file: `produce --stream` reads
lines (stdin redirected from a file, or --file) or generates them (--count);
curl posts the same records pre-encoded as concatenated JSON. Runs come in
alternating pairs (the first of each pair alternates too); the figure is the
median wall time of each side and the ratio of records/s (curl's time over
the producer's: 1.0 means as fast as curl).

    python3 scripts/console_vs_curl.py                       # 200k and 2M records, 5 pairs
    python3 scripts/console_vs_curl.py --records 200000 --pairs 3 --inputs count

Builds the two release binaries first unless --no-build. Sends traffic to
127.0.0.1 only.
"""

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = "lkc-emulator"
TOPIC = "demo"
TEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# Hang guard for one run: generous for 2M records on a slow machine.
RUN_TIMEOUT_S = 600


def value(i, size):
    """The value of generated record i, as the console producer's --count makes it."""
    start = i % len(TEXT)
    out = (TEXT[start:] + TEXT * (size // len(TEXT) + 2))[:size]
    return out


def write_inputs(directory, records, size):
    """Lines for the producer, and the same records pre-encoded for curl."""
    lines = directory / f"lines-{records}.txt"
    lines_json = directory / f"lines-{records}.json"
    count_json = directory / f"count-{records}.json"
    with open(lines, "w") as text, open(lines_json, "w") as encoded, open(
        count_json, "w"
    ) as generated:
        for i in range(records):
            v = value(i, size)
            text.write(v)
            text.write("\n")
            encoded.write('{"value":{"type":"STRING","data":"%s"}}' % v)
            generated.write(
                '{"key":{"type":"STRING","data":"key-%d"},"value":{"type":"STRING","data":"%s"}}'
                % (i, v)
            )
    return lines, lines_json, count_json


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_of(pid):
    """User plus system CPU seconds of a running process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class Emulator:
    def __init__(self, binary):
        self.port = free_port()
        self.process = subprocess.Popen(
            [str(binary), "--listen", f"127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    sys.exit("the emulator did not start")
                time.sleep(0.02)
        self.cpu_at_start = cpu_of(self.process.pid)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def cpu(self):
        return cpu_of(self.process.pid) - self.cpu_at_start

    def stop(self):
        self.process.kill()
        self.process.wait()


def timed(command, stdin_path, stdout_path):
    """Wall seconds and CPU seconds of one command, and its exit status."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    with open(stdout_path, "wb") as out:
        started = time.monotonic()
        process = subprocess.Popen(
            command, stdin=stdin, stdout=out, stderr=subprocess.PIPE
        )
        try:
            _, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            sys.exit(f"timed out after {RUN_TIMEOUT_S} s: {' '.join(command)}")
        wall = time.monotonic() - started
    if stdin_path:
        stdin.close()
    return wall, process.returncode, stderr


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def check_reports(path, records, who):
    """Every record got a delivered report."""
    delivered = 0
    with open(path, "rb") as f:
        for line in f:
            if b'"error_code":200' in line:
                delivered += 1
    if delivered != records:
        sys.exit(f"{who}: {delivered} of {records} records delivered (reports in {path})")


def run_one(side, kind, records, files, binaries, scratch):
    lines, lines_json, count_json = files
    emulator = Emulator(binaries["emulator"])
    try:
        out = scratch / f"{side}.out"
        if side == "produce":
            command = [
                str(binaries["produce"]),
                "--stream",
                "--endpoint",
                emulator.url,
                "--cluster",
                CLUSTER,
                "--topic",
                TOPIC,
            ]
            stdin = None
            if kind == "stdin":
                stdin = lines
            elif kind == "file":
                command += ["--file", str(lines)]
            else:
                command += ["--count", str(records), "--value-size", "100"]
        else:
            body = count_json if kind == "count" else lines_json
            command = [
                "curl",
                "-sS",
                "--fail-with-body",
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "-H",
                "Transfer-Encoding: chunked",
                "-T",
                str(body),
                f"{emulator.url}/kafka/v3/clusters/{CLUSTER}/topics/{TOPIC}/records",
            ]
            stdin = None
        cpu_before = child_cpu()
        wall, status, stderr = timed(command, stdin, out)
        cpu = child_cpu() - cpu_before
        server_cpu = emulator.cpu()
    finally:
        emulator.stop()
    if status != 0:
        sys.exit(f"{side} exited {status}: {stderr.decode(errors='replace')[-2000:]}")
    check_reports(out, records, side)
    return wall, cpu, server_cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", default="200000,2000000")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--inputs", default="stdin,file,count")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        sys.exit("curl is needed")
    if not args.no_build:
        subprocess.run(
            ["cargo", "build", "--release", "--example", "produce", "-p", "ccloud-kafka-rest",
             "-p", "ccloud-kafka-rest-emulator", "--bin", "ccloud-kafka-rest-emulator"],
            cwd=ROOT,
            check=True,
        )
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binaries = {
        "produce": target / "release" / "examples" / "produce",
        "emulator": target / "release" / "ccloud-kafka-rest-emulator",
    }
    for path in binaries.values():
        if not path.exists():
            sys.exit(f"{path} is missing: build with cargo build --release --example produce "
                     "and cargo build --release -p ccloud-kafka-rest-emulator")

    results = []
    print(
        f"{'input':6} {'records':>8} {'produce s':>10} {'curl s':>8} {'ratio':>6}"
        f" {'produce cpu s':>14} {'curl cpu s':>11} {'server cpu s (p/c)':>19}"
    )
    with tempfile.TemporaryDirectory(prefix="console-vs-curl-") as scratch:
        scratch = Path(scratch)
        for records in [int(r) for r in args.records.split(",")]:
            files = write_inputs(scratch, records, 100)
            for kind in args.inputs.split(","):
                runs = {"produce": [], "curl": []}
                for pair in range(args.pairs):
                    order = ("produce", "curl") if pair % 2 == 0 else ("curl", "produce")
                    for side in order:
                        runs[side].append(
                            run_one(side, kind, records, files, binaries, scratch)
                        )
                median = {
                    side: [statistics.median(r[i] for r in runs[side]) for i in range(3)]
                    for side in runs
                }
                ratio = median["curl"][0] / median["produce"][0]
                print(
                    f"{kind:6} {records:>8} {median['produce'][0]:>10.3f} {median['curl'][0]:>8.3f}"
                    f" {ratio:>6.2f} {median['produce'][1]:>14.3f} {median['curl'][1]:>11.3f}"
                    f" {median['produce'][2]:>9.3f}/{median['curl'][2]:.3f}",
                    flush=True,
                )
                results.append(
                    {
                        "input": kind,
                        "records": records,
                        "pairs": args.pairs,
                        "produce_wall_s": [r[0] for r in runs["produce"]],
                        "curl_wall_s": [r[0] for r in runs["curl"]],
                        "ratio": ratio,
                    }
                )
            for path in files:
                path.unlink()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
