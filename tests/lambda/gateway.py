"""A small stand-in for API Gateway, driven by the deployment template.

Routes come from `infra/template.yaml` (each function's HttpApi event), so a request reaches
the function the template says it does. A function with an upstream (`name=url`, a
`cargo lambda watch` emulator serving the real `bootstrap` binary, whose function URLs build
the API Gateway v2 events) gets its requests there; other routes go to --fallback (the local
server) when one is given, else answer 404 in the error envelope. `harness.py` starts the
functions and this gateway together. Standard library plus PyYAML.
"""

import argparse
import http.client
import json
import re
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml


def routes(template_path):
    """(method, path template, handler) for every function in the template."""

    class Loader(yaml.SafeLoader):
        pass

    # Short-form intrinsics (!Ref, !Sub, …) never appear in routes; keep them loadable.
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    with open(template_path) as f:
        template = yaml.load(f, Loader=Loader)
    out = []
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        for event in props.get("Events", {}).values():
            if event.get("Type") == "HttpApi":
                e = event["Properties"]
                out.append((e["Method"].upper(), e["Path"], props["Handler"]))
    return out


def matcher(path_template):
    parts = path_template.strip("/").split("/")
    regex = "/".join("[^/]+" if re.fullmatch(r"\{[^}]+\}", p) else re.escape(p) for p in parts)
    literal = sum(1 for p in parts if not p.startswith("{"))
    return re.compile("^/" + regex + "$"), literal


class Gateway:
    def __init__(self, template, upstreams, fallback):
        self.table = [(m, *matcher(p), h) for m, p, h in routes(template)]
        self.upstreams = {name: urllib.parse.urlsplit(url) for name, url in upstreams.items()}
        self.fallback = urllib.parse.urlsplit(fallback) if fallback else None

    def route(self, method, path):
        """The handler API Gateway would pick: the most specific matching route."""
        best = None
        for m, regex, literal, handler in self.table:
            if m == method and regex.match(path) and (best is None or literal > best[0]):
                best = (literal, handler)
        return best[1] if best else None


def make_handler(gw):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _answer(self, status, headers, body):
            self.send_response(status)
            for k, v in headers:
                if k.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                    self.send_header(k, v)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _any(self):
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            split = urllib.parse.urlsplit(self.path)
            handler = gw.route(self.command, split.path)
            if handler in gw.upstreams:
                # Each emulator serves one function, the project's `bootstrap` binary.
                upstream, path = gw.upstreams[handler], f"/lambda-url/bootstrap{self.path}"
            elif handler and gw.fallback:
                upstream, path = gw.fallback, self.path
            else:
                err = {"error": "route_not_found", "message": f"no route for {self.command} {split.path}"}
                return self._answer(404, [("content-type", "application/json")], json.dumps(err).encode())
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
            headers["content-length"] = str(len(body))
            conn.request(self.command, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            conn.close()
            self._answer(r.status, r.getheaders(), data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--template", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--function", action="append", default=[], metavar="NAME=URL",
                    help="a function served by the cargo lambda watch emulator at URL")
    ap.add_argument("--fallback", help="where other routes go (the local server)")
    a = ap.parse_args()
    gw = Gateway(a.template, dict(f.split("=", 1) for f in a.function), a.fallback)
    known = {h for _, _, _, h in gw.table}
    missing = set(gw.upstreams) - known
    if missing:
        sys.exit(f"not in the template: {sorted(missing)}")
    server = ThreadingHTTPServer(("127.0.0.1", a.port), make_handler(gw))
    print(f"gateway on 127.0.0.1:{a.port}: {len(gw.table)} routes", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
