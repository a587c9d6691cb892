"""Runs Portcullis operations as real Lambda functions on this machine, behind the template's
routes, then runs a command against them.

Each function is the real `bootstrap` binary with its operation as `_HANDLER`, served by its
own `cargo lambda watch --only-lambda-apis` (the Lambda Runtime API emulator from cargo-lambda;
one per function, as each Lambda function is its own process). `gateway.py` stands in for API
Gateway: it routes by `infra/template.yaml`, sending the functions named here to their
emulators and every other route to --fallback (the local server).

Prints, per function, the cold start (process start to the handler's first answer) and the
resident memory after it, then runs the command after `--` with PORTCULLIS_GATEWAY_URL set.

    harness.py --bootstrap target/debug/bootstrap --functions sdk_token,sdk_grants_list \
        --fallback http://127.0.0.1:8765 -- localstack/smoke.sh
"""

import argparse
import http.client
import os
import pathlib
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import gateway  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what, proc, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    sys.exit(f"{what} did not listen on {port}")


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Function:
    """One operation as its own Lambda function: an emulator and a bootstrap process."""

    def __init__(self, name, bootstrap, cargo_lambda, logs):
        self.name, self.port = name, free_port()
        self.log_path = logs / f"lambda-{name}.log"
        self.log = open(self.log_path, "wb", buffering=0)
        self.emulator = subprocess.Popen(
            [cargo_lambda, "lambda", "watch", "--only-lambda-apis", "--ignore-changes",
             "-A", "127.0.0.1", "-P", str(self.port)],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_port(self.port, f"cargo lambda watch for {name}", self.emulator)
        env = dict(os.environ,
                   _HANDLER=name,
                   AWS_LAMBDA_RUNTIME_API=f"http://127.0.0.1:{self.port}/.rt/bootstrap",
                   AWS_LAMBDA_FUNCTION_NAME="bootstrap",
                   AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
                   AWS_LAMBDA_FUNCTION_VERSION="1")
        started = time.monotonic()
        self.process = subprocess.Popen([bootstrap], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        # The emulator holds the invocation until the function asks for its first event, so
        # this times process start, runtime init and the handler's first answer.
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", "/lambda-url/bootstrap/cold-start-probe")
        status = conn.getresponse()
        status.read()
        self.cold_start_ms = (time.monotonic() - started) * 1000
        self.probe_status = status.status
        self.rss_kib = rss_kib(self.process.pid)
        if self.process.poll() is not None:
            sys.exit(f"{name}: the bootstrap exited with {self.process.returncode}")

    def served(self):
        """Requests this function answered: its metrics lines (one per request)."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return sum(1 for line in lines if line.startswith("{") and '"_aws":' in line)

    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        for p in (self.process, self.emulator):
            p.terminate()
        for p in (self.process, self.emulator):
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        self.log.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--functions", required=True)
    ap.add_argument("--fallback")
    ap.add_argument("--cargo-lambda", default=str(ROOT / ".tools/infra/bin/cargo-lambda"))
    ap.add_argument("--logs", default=str(ROOT / ".portcullis"))
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    logs = pathlib.Path(a.logs)
    logs.mkdir(parents=True, exist_ok=True)

    names = [f for f in a.functions.split(",") if f]
    functions = []
    try:
        for name in names:
            functions.append(Function(name, a.bootstrap, a.cargo_lambda, logs))
        print(f"{'function':<28} {'cold start':>12} {'rss':>10}  (process start → first answer; {a.bootstrap})")
        for f in functions:
            print(f"{f.name:<28} {f.cold_start_ms:>10.1f}ms {f.rss_kib / 1024:>8.1f}MB")
            # The probe carries no key: the handler must have answered it with 401 or 404.
            if f.probe_status not in (401, 404):
                sys.exit(f"{f.name}: the cold-start probe answered {f.probe_status}")

        gw = gateway.Gateway(str(ROOT / "infra/template.yaml"), {f.name: f.url() for f in functions}, a.fallback)
        unknown = set(names) - {h for *_, h in gw.table}
        if unknown:
            sys.exit(f"not in the template: {sorted(unknown)}")
        port = free_port()
        server = gateway.ThreadingHTTPServer(("127.0.0.1", port), gateway.make_handler(gw))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        if not command:
            return 0
        env = dict(os.environ, PORTCULLIS_GATEWAY_URL=f"http://127.0.0.1:{port}")
        code = subprocess.call(command, env=env)
        # Every function must have answered the command's requests, not only the probe.
        idle = [f.name for f in functions if f.served() < 2]
        if code == 0 and idle:
            sys.exit(f"no request reached these functions: {idle}")
        return code
    finally:
        for f in functions:
            f.stop()


if __name__ == "__main__":
    sys.exit(main())
