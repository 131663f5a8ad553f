#!/usr/bin/env python3
"""The console producer's stream through real HTTP intermediaries.

For each path, a fresh release emulator on 127.0.0.1, the intermediary in
front of it (configs from scripts/intermediaries/), and `produce --stream
--count N` through it; then the emulator's records endpoint must hold every
record exactly once (generated record i has key `key-i` and a value made
from i), in input order within each partition, and the producer must have
exited 0 with `delivered=N failed=0`. Paths:

    direct           straight to the emulator (the baseline)
    nginx-default    nginx with only proxy_pass (buffers the request, 1m cap)
    nginx-ingress    nginx as ingress-nginx's defaults set it up
    nginx-streaming  nginx with request and response buffering off
    haproxy          HAProxy in HTTP mode, its defaults
    tls-connect      TLS nginx (on-the-fly CA) reached through tinyproxy (CONNECT)

    python3 scripts/intermediaries.py                        # every path, 100000 records
    python3 scripts/intermediaries.py --paths direct,haproxy --count 20000
    python3 scripts/intermediaries.py --measure               # also wall times and rates

Needs nginx (Debian: nginx-light), haproxy, tinyproxy and openssl for the
paths that use them. Builds the two binaries first (release, or debug with
--profile debug) unless --no-build. Sends traffic to 127.0.0.1 only.
"""

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = Path(__file__).resolve().parent / "intermediaries"
CLUSTER = "lkc-emulator"
PARTITIONS = 3
VALUE_SIZE = 100
TEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
PATHS = [
    "direct",
    "nginx-default",
    "nginx-ingress",
    "nginx-streaming",
    "haproxy",
    "tls-connect",
]
# Hang guard of one path's producer run.
RUN_TIMEOUT_S = 300
START_TIMEOUT_S = 30
# The tools each path needs, and the Debian package that has them.
TOOLS = {
    "nginx-default": ["nginx"],
    "nginx-ingress": ["nginx"],
    "nginx-streaming": ["nginx"],
    "haproxy": ["haproxy"],
    "tls-connect": ["nginx", "tinyproxy", "openssl"],
}
PACKAGES = {"nginx": "nginx-light", "haproxy": "haproxy", "tinyproxy": "tinyproxy", "openssl": "openssl"}
# Proxy variables the producer would otherwise follow: each path sets its own.
PROXY_VARIABLES = [
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "all_proxy", "no_proxy", "KAFKA_REST_PROXY",
]


class Failed(Exception):
    """A path failed; the message says why."""


def value(i, size=VALUE_SIZE):
    """The value of generated record i, as the console producer's --count makes it."""
    start = i % len(TEXT)
    return (TEXT[start:] + TEXT * (size // len(TEXT) + 2))[:size]


def which(tool):
    # /usr/sbin is not on every user's PATH, and nginx and haproxy live there.
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, lines=30):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Process:
    """A process in its own process group, its output in a file."""

    def __init__(self, name, command, log, **kwargs):
        self.name = name
        self.log = log
        with open(log, "wb") as out:
            self.popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kwargs,
            )

    def wait_listening(self, port):
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.popen.poll() is not None:
                raise Failed(f"{self.name} exited {self.popen.returncode} at start")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise Failed(f"{self.name} did not listen on {port} within {START_TIMEOUT_S} s")
                time.sleep(0.02)

    def stop(self):
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()


def render(template, target, **values):
    text = (CONFIGS / template).read_text()
    for name, replacement in values.items():
        text = text.replace(f"@{name}@", str(replacement))
    Path(target).write_text(text)


def make_certificates(directory):
    """A CA and a server certificate for 127.0.0.1 and localhost signed by it."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        ["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
         "-subj", "/CN=intermediaries test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["openssl", "req", *ec, "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=localhost"],
        ["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "server.ext"],
    ]
    (directory / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
    )
    for step in steps:
        done = subprocess.run(step, cwd=directory, capture_output=True)
        if done.returncode != 0:
            raise Failed(f"{' '.join(step[:3])} failed: {done.stderr.decode(errors='replace')}")
    return directory / "ca.pem"


def start_nginx(directory, site, port, upstream, started):
    render("nginx.conf", directory / "nginx.conf", DIR=directory,
           # As root, workers would run as nobody, who cannot enter the
           # run's private directory; as anyone else the directive is moot.
           USER="user root;" if os.geteuid() == 0 else "")
    render(site, directory / "site.conf", DIR=directory, PORT=port, UPSTREAM=upstream)
    nginx = Process(
        "nginx",
        [which("nginx"), "-p", str(directory), "-e", str(directory / "error.log"),
         "-c", str(directory / "nginx.conf"), "-g", "daemon off;"],
        directory / "nginx.out",
    )
    started.append((nginx, [directory / "nginx.out", directory / "error.log"]))
    nginx.wait_listening(port)


def start_path(path, directory, emulator_port, started):
    """Starts the path's intermediaries; returns the producer's environment."""
    if path == "direct":
        return {"KAFKA_REST_ENDPOINT": f"http://127.0.0.1:{emulator_port}"}
    port = free_port()
    if path.startswith("nginx-"):
        start_nginx(directory, f"{path}.conf", port, emulator_port, started)
        return {"KAFKA_REST_ENDPOINT": f"http://127.0.0.1:{port}"}
    if path == "haproxy":
        render("haproxy.cfg", directory / "haproxy.cfg", PORT=port, UPSTREAM=emulator_port)
        haproxy = Process("haproxy", [which("haproxy"), "-db", "-f", str(directory / "haproxy.cfg")],
                          directory / "haproxy.log")
        started.append((haproxy, [directory / "haproxy.log"]))
        haproxy.wait_listening(port)
        return {"KAFKA_REST_ENDPOINT": f"http://127.0.0.1:{port}"}
    if path == "tls-connect":
        ca = make_certificates(directory)
        start_nginx(directory, "nginx-tls.conf", port, emulator_port, started)
        proxy_port = free_port()
        render("tinyproxy.conf", directory / "tinyproxy.conf", DIR=directory, PORT=proxy_port,
               UPSTREAM=port)
        tinyproxy = Process("tinyproxy", [which("tinyproxy"), "-d", "-c", str(directory / "tinyproxy.conf")],
                            directory / "tinyproxy.out")
        started.append((tinyproxy, [directory / "tinyproxy.out", directory / "tinyproxy.log"]))
        tinyproxy.wait_listening(proxy_port)
        return {
            "KAFKA_REST_ENDPOINT": f"https://127.0.0.1:{port}",
            "KAFKA_REST_CA_FILE": str(ca),
            "KAFKA_REST_PROXY": f"http://127.0.0.1:{proxy_port}",
        }
    raise ValueError(path)


def check_records(emulator_port, topic, count):
    """Every record stored once, unchanged, in input order per partition."""
    url = f"http://127.0.0.1:{emulator_port}/emulator/topics/{topic}/records"
    # The emulator directly, whatever proxy the environment names.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    seen = [0] * count
    last = {}
    problems = []
    stored = 0
    with opener.open(url, timeout=60) as answer:
        for line in answer:
            stored += 1
            record = json.loads(line)
            partition, offset = record["partition_id"], record["offset"]
            key = base64.b64decode(record["key"]["data"]).decode()
            number = int(key[len("key-"):]) if key.startswith("key-") else -1
            if not 0 <= number < count:
                problems.append(f"partition {partition} offset {offset}: unexpected key {key!r}")
                continue
            seen[number] += 1
            if base64.b64decode(record["value"]["data"]).decode() != value(number):
                problems.append(f"{key} (partition {partition} offset {offset}): value changed")
            previous = last.get(partition)
            if previous is not None and number <= previous[0]:
                problems.append(
                    f"partition {partition}: {key} at offset {offset} after key-{previous[0]}"
                    f" at offset {previous[1]}"
                )
            last[partition] = (number, offset)
            if len(problems) > 20:
                break
    missing = [i for i, n in enumerate(seen) if n == 0]
    twice = [i for i, n in enumerate(seen) if n > 1]
    if missing:
        problems.append(f"{len(missing)} record(s) missing, first key-{missing[0]}")
    if twice:
        problems.append(f"{len(twice)} record(s) stored more than once, first key-{twice[0]}")
    if problems:
        raise Failed(f"{stored} records stored for {count} sent:\n  " + "\n  ".join(problems[:20]))


def proof_of_tunnel(path, directory, endpoint):
    """The producer's connections went through tinyproxy's CONNECT."""
    if path != "tls-connect":
        return None
    target = endpoint.split("://", 1)[1]
    tunnels = [line for line in tail(directory / "tinyproxy.log", 10_000).splitlines()
               if f"): CONNECT {target} " in line]
    requests = tail(directory / "access.log", 10_000).count("POST /kafka/v3/")
    if not tunnels:
        raise Failed(f"tinyproxy logged no CONNECT {target}: the traffic did not go through it")
    if requests == 0:
        raise Failed("the TLS nginx logged no produce request")
    return f"{len(tunnels)} CONNECT tunnel(s) to {target}, {requests} produce request(s) at the TLS nginx"


def run_path(path, count, binaries, scratch):
    """Runs one path; returns the producer's wall time and a note."""
    directory = scratch / path
    directory.mkdir()
    topic = f"intermediaries-{path}"
    started = []
    produce_err = directory / "produce.err"
    try:
        emulator_port = free_port()
        emulator = Process(
            "emulator",
            [str(binaries["emulator"]), "--listen", f"127.0.0.1:{emulator_port}",
             "--topic", f"{topic}:{PARTITIONS}"],
            directory / "emulator.out",
        )
        started.append((emulator, [directory / "emulator.out"]))
        emulator.wait_listening(emulator_port)
        env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
        env.update(start_path(path, directory, emulator_port, started))
        env["KAFKA_CLUSTER_ID"] = CLUSTER
        command = [str(binaries["produce"]), "--stream", "--count", str(count),
                   "--value-size", str(VALUE_SIZE), "--topic", topic]
        with open(directory / "reports.jsonl", "wb") as out, open(produce_err, "wb") as err:
            begun = time.monotonic()
            producer = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                        env=env, start_new_session=True)
            try:
                status = producer.wait(timeout=RUN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(producer.pid, signal.SIGKILL)
                producer.wait()
                raise Failed(f"the producer did not exit within {RUN_TIMEOUT_S} s (killed)")
            wall = time.monotonic() - begun
        summary = [line for line in tail(produce_err, 50).splitlines()
                   if line.startswith("delivered=")]
        if status != 0:
            raise Failed(f"the producer exited {status}; summary: {summary[-1] if summary else 'none'}")
        if not summary or not summary[-1].startswith(f"delivered={count} failed=0 "):
            raise Failed(f"the summary is not delivered={count} failed=0: {summary}")
        check_records(emulator_port, topic, count)
        return wall, proof_of_tunnel(path, directory, env["KAFKA_REST_ENDPOINT"])
    except Failed as failure:
        print(f"--- {path}: producer stderr (last 30 lines)", file=sys.stderr)
        print(tail(produce_err), file=sys.stderr)
        for process, logs in started[1:] + started[:1]:
            for log in logs:
                text = tail(log)
                if text:
                    print(f"--- {path}: {process.name} {log.name} (last 30 lines)", file=sys.stderr)
                    print(text, file=sys.stderr)
        raise failure
    finally:
        for process, _ in reversed(started):
            process.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", default=",".join(PATHS),
                        help=f"comma-separated, from: {','.join(PATHS)} (default: all)")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--measure", action="store_true",
                        help="also print wall times and rates, with direct as the baseline")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--profile", choices=["release", "debug"], default="release",
                        help="which build of the two binaries to run (default: release)")
    parser.add_argument("--keep", metavar="DIR",
                        help="write each path's configs and logs under DIR and keep them")
    args = parser.parse_args()
    paths = [p for p in args.paths.split(",") if p]
    unknown = [p for p in paths if p not in PATHS]
    if unknown or not paths:
        sys.exit(f"unknown path(s) {','.join(unknown)}; the paths are {','.join(PATHS)}")
    if args.measure and "direct" not in paths:
        paths.insert(0, "direct")
    missing = sorted({t for p in paths for t in TOOLS.get(p, []) if not which(t)})
    if missing:
        sys.exit("missing: " + ", ".join(missing) + "; install with: apt-get install -y "
                 "--no-install-recommends " + " ".join(PACKAGES[t] for t in missing))
    if not args.no_build:
        # Two builds, as .ci/run does: one build of both packages unifies
        # their features and so rebuilds what CI built.
        release = ["--release"] if args.profile == "release" else []
        for build in (["--example", "produce", "-p", "ccloud-kafka-rest"],
                      ["-p", "ccloud-kafka-rest-emulator"]):
            subprocess.run(["cargo", "build", *release, *build], cwd=ROOT, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binaries = {
        "produce": target / args.profile / "examples" / "produce",
        "emulator": target / args.profile / "ccloud-kafka-rest-emulator",
    }
    flag = " --release" if args.profile == "release" else ""
    for binary in binaries.values():
        if not binary.exists():
            sys.exit(f"{binary} is missing: build with cargo build{flag} --example produce "
                     f"and cargo build{flag} -p ccloud-kafka-rest-emulator")

    walls = {}
    failed = []
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        scratch_dir = contextlib.nullcontext(tempfile.mkdtemp(prefix="intermediaries-", dir=args.keep))
    else:
        scratch_dir = tempfile.TemporaryDirectory(prefix="intermediaries-")
    with scratch_dir as scratch:
        if args.keep:
            print(f"configs and logs kept in {scratch}")
        for path in paths:
            print(f"{path}: {args.count} records ...", flush=True)
            try:
                wall, note = run_path(path, args.count, binaries, Path(scratch))
            except Failed as failure:
                failed.append(path)
                print(f"FAIL {path}: {failure}", flush=True)
                continue
            walls[path] = wall
            print(f"PASS {path} ({wall:.2f} s{'; ' + note if note else ''})", flush=True)
    if args.measure:
        print(f"\n{'path':16} {'wall s':>8} {'records/s':>10} {'rate vs direct':>15}")
        for path in paths:
            if path not in walls:
                print(f"{path:16} {'failed':>8}")
                continue
            ratio = f"{walls['direct'] / walls[path]:.2f}" if "direct" in walls else "-"
            print(f"{path:16} {walls[path]:>8.2f} {args.count / walls[path]:>10.0f} {ratio:>15}")
    if failed:
        sys.exit(f"failed: {','.join(failed)}")
    print(f"all {len(paths)} path(s) passed")


if __name__ == "__main__":
    main()
