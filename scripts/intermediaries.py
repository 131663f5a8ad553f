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
    h2-streaming     TLS nginx with http2 on, reached directly, request buffering off
    h2-default       TLS nginx with http2 on, reached directly, otherwise its defaults
                     (request buffering on, HTTP/2 bodies too; the 1m body cap)

The h2 paths run more than the stream, each case on a topic of its own and
checked as above, and nginx's access log (which names each request's
protocol) must show every request the producer made as HTTP/2.0, and no
request but the producer's:

    stream           produce --stream --count N (on h2-default nginx may
                     refuse the first body with 413 at 1m, and the producer
                     halves its requests)
    one-record       produce --count 300 --concurrency 4: one request a record,
                     four at once (so no order is checked)
    stream-http1     h2-streaming only: the stream with KAFKA_REST_HTTP_VERSION=1.1,
                     every request HTTP/1.1 instead
    stream-buffered  h2-default only: 2000 records on stdin, then, once nginx
                     has logged the first request (no response headers came,
                     as nginx buffers the body, so the producer ended it at its
                     2 s buffering check), 28000 more, which must go in
                     bounded requests, none refused

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
import threading
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
    "h2-streaming",
    "h2-default",
]
# The paths with an HTTP/2 nginx in front, whose access log is checked.
H2_PATHS = {"h2-streaming", "h2-default"}
# The one-record case: its records (one request each), and its requests in
# flight at once.
ONE_RECORD_COUNT = 300
ONE_RECORD_CONCURRENCY = 4
# The stream-buffered case: the records written before the producer's
# buffering check fires (well under nginx's 1m body cap), and in all.
BUFFERED_FIRST = 2000
BUFFERED_COUNT = 30_000
# The producer's buffering check (ProducerConfig::with_buffering_check's
# default), which the first request of stream-buffered waits for.
BUFFERING_CHECK_S = 2.0
# How long stream-buffered waits for nginx to log its first request.
FIRST_REQUEST_TIMEOUT_S = 30
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
    "h2-streaming": ["nginx", "openssl"],
    "h2-default": ["nginx", "openssl"],
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

    def quit(self, timeout=10):
        """A graceful exit (SIGQUIT: nginx ends what is open, and logs it,
        first), waited for."""
        if self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGQUIT)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Failed(f"{self.name} did not exit within {timeout} s of SIGQUIT")

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
    started.append((nginx, [directory / "nginx.out", directory / "error.log",
                            directory / "access.log"]))
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
    if path in H2_PATHS:
        ca = make_certificates(directory)
        start_nginx(directory, f"nginx-{path}.conf", port, emulator_port, started)
        return {
            "KAFKA_REST_ENDPOINT": f"https://127.0.0.1:{port}",
            "KAFKA_REST_CA_FILE": str(ca),
        }
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


def check_records(emulator_port, topic, count, ordered=True):
    """Every record stored once, unchanged, and in input order per partition
    when sent in order."""
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
            if ordered and previous is not None and number <= previous[0]:
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


class Case:
    """One producer run of a path, on a topic of its own."""

    def __init__(self, name, topic, count, args, env=None, protocol=None,
                 statuses=frozenset({"200"}), buffered=False, ordered=True):
        self.name = name
        self.topic = topic
        self.count = count
        self.args = args
        self.env = env or {}
        # What nginx's access log must say of every request, when checked.
        self.protocol = protocol
        self.statuses = statuses
        # Records on stdin, the first BUFFERED_FIRST until nginx logged a
        # request (stream-buffered).
        self.buffered = buffered
        # Sent in input order (not so with several requests in flight).
        self.ordered = ordered


def cases_of(path, count):
    """The producer runs of a path: the stream alone, or on the h2 paths
    the cases the docstring lists."""
    topic = f"intermediaries-{path}"
    generated = ["--value-size", str(VALUE_SIZE)]
    stream = ["--stream", "--count", str(count), *generated]
    if path not in H2_PATHS:
        return [Case("stream", topic, count, stream)]
    one = min(count, ONE_RECORD_COUNT)
    cases = [
        Case("stream", topic, count, stream, protocol="HTTP/2.0",
             statuses=frozenset({"200", "413"}) if path == "h2-default" else frozenset({"200"})),
        Case("one-record", f"{topic}-one-record", one,
             ["--count", str(one), *generated, "--concurrency", str(ONE_RECORD_CONCURRENCY)],
             protocol="HTTP/2.0", ordered=ONE_RECORD_CONCURRENCY == 1),
    ]
    if path == "h2-streaming":
        cases.append(Case("stream-http1", f"{topic}-stream-http1", count, stream,
                          env={"KAFKA_REST_HTTP_VERSION": "1.1"}, protocol="HTTP/1.1"))
    if path == "h2-default":
        cases.append(Case("stream-buffered", f"{topic}-stream-buffered", BUFFERED_COUNT,
                          ["--stream", "--key-separator", ":"], protocol="HTTP/2.0",
                          buffered=True))
    return cases


def records_uri(topic):
    return f"/kafka/v3/clusters/{CLUSTER}/topics/{topic}/records"


def logged_requests(log):
    """The complete lines of an h2 nginx's access log (log_format protocol)."""
    try:
        text = Path(log).read_text(errors="replace")
    except FileNotFoundError:
        return []
    requests = []
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        fields = line.split()
        if len(fields) != 8:
            raise Failed(f"an access log line not of log_format protocol: {line.strip()!r}")
        protocol, method, uri, status, length, took, connection, _ = fields
        requests.append({"protocol": protocol, "method": method, "uri": uri, "status": status,
                         "length": int(length), "time": float(took), "connection": connection,
                         "line": line.strip()})
    return requests


def feed_buffered(producer, case, log):
    """stream-buffered's input: BUFFERED_FIRST records, then, once nginx has
    logged the request that carried them, the rest."""
    lines = [f"key-{i}:{value(i)}\n".encode() for i in range(case.count)]
    first, rest = b"".join(lines[:BUFFERED_FIRST]), b"".join(lines[BUFFERED_FIRST:])
    gate = threading.Event()
    go_on = []

    def feed():
        try:
            producer.stdin.write(first)
            producer.stdin.flush()
            gate.wait()
            if go_on:
                producer.stdin.write(rest)
        except OSError:
            pass  # the producer is gone: its exit status tells
        finally:
            with contextlib.suppress(OSError):
                producer.stdin.close()

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    begun = time.monotonic()
    try:
        while not [r for r in logged_requests(log) if r["uri"] == records_uri(case.topic)]:
            if producer.poll() is not None:
                raise Failed(f"the producer exited {producer.returncode} before nginx logged"
                             " its first request")
            if time.monotonic() - begun > FIRST_REQUEST_TIMEOUT_S:
                raise Failed(f"nginx logged no request within {FIRST_REQUEST_TIMEOUT_S} s of the"
                             f" first {BUFFERED_FIRST} records: the producer did not end the body"
                             " nginx buffers")
            time.sleep(0.05)
        go_on.append(True)
    finally:
        gate.set()
    return writer


def run_case(case, binaries, env, directory):
    """Runs the producer of one case; returns its wall time."""
    command = [str(binaries["produce"]), *case.args, "--topic", case.topic]
    env = dict(env)
    if case.protocol is not None:
        # The protocol checked is the case's own, not the environment's.
        env.pop("KAFKA_REST_HTTP_VERSION", None)
    env.update(case.env)
    with open(directory / f"reports-{case.name}.jsonl", "wb") as out, \
            open(directory / f"produce-{case.name}.err", "wb") as err:
        begun = time.monotonic()
        producer = subprocess.Popen(
            command, stdin=subprocess.PIPE if case.buffered else subprocess.DEVNULL,
            stdout=out, stderr=err, env=env, start_new_session=True)
        writer = None
        try:
            if case.buffered:
                writer = feed_buffered(producer, case, directory / "access.log")
            status = producer.wait(timeout=RUN_TIMEOUT_S)
        except (subprocess.TimeoutExpired, Failed) as failure:
            os.killpg(producer.pid, signal.SIGKILL)
            producer.wait()
            if isinstance(failure, Failed):
                raise
            raise Failed(f"the producer did not exit within {RUN_TIMEOUT_S} s (killed)")
        finally:
            if writer is not None:
                writer.join(timeout=10)
        wall = time.monotonic() - begun
    summary = [line for line in tail(directory / f"produce-{case.name}.err", 50).splitlines()
               if line.startswith("delivered=")]
    if status != 0:
        raise Failed(f"the producer exited {status}; summary: {summary[-1] if summary else 'none'}")
    if not summary or not summary[-1].startswith(f"delivered={case.count} failed=0 "):
        raise Failed(f"the summary is not delivered={case.count} failed=0: {summary}")
    return wall


def check_access_log(cases, log):
    """Every request nginx logged is one of the cases', in its protocol and
    with a status it allows; returns what each case's requests were."""
    requests = logged_requests(log)
    uris = {records_uri(case.topic) for case in cases}
    problems = []
    others = [r for r in requests if r["uri"] not in uris]
    if others:
        problems.append(f"{len(others)} request(s) of none of the cases, first: {others[0]['line']}")
    notes = []
    for case in cases:
        mine = [r for r in requests if r["uri"] == records_uri(case.topic)]
        if not mine:
            problems.append(f"{case.name}: no request logged")
            continue
        for what, wrong in [
            (case.protocol, [r for r in mine if r["protocol"] != case.protocol]),
            ("POST", [r for r in mine if r["method"] != "POST"]),
            (f"status {'/'.join(sorted(case.statuses))}",
             [r for r in mine if r["status"] not in case.statuses]),
        ]:
            if wrong:
                problems.append(f"{case.name}: {len(wrong)} of {len(mine)} request(s) not {what},"
                                f" first: {wrong[0]['line']}")
        if case.name == "one-record" and len(mine) < case.count:
            problems.append(f"{case.name}: {len(mine)} request(s) for {case.count} records")
        statuses = {}
        for r in mine:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        shown = ", ".join(f"{n} x {status}" for status, n in sorted(statuses.items()))
        note = (f"{len(mine)} request(s) ({shown}) on {len({r['connection'] for r in mine})}"
                f" connection(s), {', '.join(sorted({r['protocol'] for r in mine}))}")
        if case.buffered:
            first, later = mine[0], mine[1:]
            if first["status"] != "200" or first["time"] < BUFFERING_CHECK_S - 0.1:
                problems.append(f"{case.name}: the first request was not answered 200 after the"
                                f" {BUFFERING_CHECK_S} s buffering check: {first['line']}")
            if len(later) < 2:
                problems.append(f"{case.name}: {len(later)} request(s) after the first, for"
                                f" {case.count - BUFFERED_FIRST} records: not bounded")
            note += (f"; the first answered after {first['time']:.2f} s, then bounded requests"
                     f" of at most {max((r['length'] for r in later), default=0)} bytes")
        notes.append((case.name, note))
    if problems:
        raise Failed("nginx's access log:\n  " + "\n  ".join(problems[:20]))
    return dict(notes)


def run_path(path, count, binaries, scratch):
    """Runs one path; returns the wall time of its stream case and a note."""
    directory = scratch / path
    directory.mkdir()
    cases = cases_of(path, count)
    started = []
    produce_err = directory / "produce-stream.err"
    try:
        emulator_port = free_port()
        emulator = Process(
            "emulator",
            [str(binaries["emulator"]), "--listen", f"127.0.0.1:{emulator_port}",
             *[word for case in cases for word in ("--topic", f"{case.topic}:{PARTITIONS}")]],
            directory / "emulator.out",
        )
        started.append((emulator, [directory / "emulator.out"]))
        emulator.wait_listening(emulator_port)
        env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
        env.update(start_path(path, directory, emulator_port, started))
        env["KAFKA_CLUSTER_ID"] = CLUSTER
        walls = {}
        for case in cases:
            produce_err = directory / f"produce-{case.name}.err"
            walls[case.name] = run_case(case, binaries, env, directory)
            check_records(emulator_port, case.topic, case.count, case.ordered)
        if path not in H2_PATHS:
            return walls["stream"], proof_of_tunnel(path, directory, env["KAFKA_REST_ENDPOINT"])
        # Stopped gracefully, nginx has logged every request.
        next(process for process, _ in started if process.name == "nginx").quit()
        logged = check_access_log(cases, directory / "access.log")
        note = "; ".join(f"{case.name} {case.count} in {walls[case.name]:.2f} s:"
                         f" {logged[case.name]}" for case in cases)
        return walls["stream"], note
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
            begun = time.monotonic()
            try:
                wall, note = run_path(path, args.count, binaries, Path(scratch))
            except Failed as failure:
                failed.append(path)
                print(f"FAIL {path}: {failure}", flush=True)
                continue
            walls[path] = wall
            print(f"PASS {path} ({wall:.2f} s{'; ' + note if note else ''};"
                  f" {time.monotonic() - begun:.2f} s in all)", flush=True)
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
