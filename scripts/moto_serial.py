"""moto's server with one request at a time.

moto 5.2.5 keeps its DynamoDB state in plain dicts and copies them inside TransactWriteItems;
two requests at once can fail with `RuntimeError: dictionary changed size during iteration`
and an HTML 500 (seen under our concurrency tests). DynamoDB itself is safe under concurrency,
so the emulator is made to behave like it: the server stays threaded (keep-alive works), but
requests are handled one after another under a lock. Run as: moto_serial.py HOST PORT
"""

import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple

_lock = threading.Lock()
_app = DomainDispatcherApplication(create_backend_app)


def serial_app(environ, start_response):
    with _lock:
        # Consume the whole answer inside the lock: moto may build it lazily.
        return list(_app(environ, start_response))


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    run_simple(host, port, serial_app, threaded=True, request_handler=MotoRequestHandler)
