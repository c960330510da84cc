#!/usr/bin/env python3
"""A pass-through HTTP proxy in front of the loopback registry that can hold whole-blob GETs.

    hold_proxy.py LISTEN_PORT UPSTREAM HOLD_FILE LOG

Every request is forwarded to UPSTREAM (host:port) unchanged, user agent included, so the
registry's access log still names the client. While HOLD_FILE exists, a GET of a blob without a
Range header (a background fill: strata-lazy's range reads always carry one) waits before it is
forwarded; a held request whose client gave up is dropped without reaching the registry, so the
registry's log counts exactly the bytes that were delivered. LOG gets one line per request:
`held|passed METHOD PATH STATUS BYTES`, or `dropped GET PATH` for a request dropped while held.
"""

import http.client
import os
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, UPSTREAM, HOLD, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}
log_lock = threading.Lock()


def log(line):
    with log_lock, open(LOG, "a") as f:
        f.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def client_gone(self):
        """Whether the client closed its connection (readable with nothing to read)."""
        r, _, _ = select.select([self.connection], [], [], 0)
        if not r:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def hold(self):
        """Waits while HOLD exists; False when the client left meanwhile."""
        while os.path.exists(HOLD):
            if self.client_gone():
                return False
            time.sleep(0.05)
        return True

    def forward(self):
        held = (self.command == "GET" and "/blobs/" in self.path
                and "range" not in {k.lower() for k in self.headers.keys()}
                and os.path.exists(HOLD))
        if held and not self.hold():
            log(f"dropped GET {self.path}")
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        up = http.client.HTTPConnection(UPSTREAM, timeout=60)
        try:
            up.request(self.command, self.path, body=body, headers=headers)
            resp = up.getresponse()
            sized = resp.getheader("Content-Length") is not None or self.command == "HEAD"
            data = None if sized else resp.read()
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in HOP and (sized or k.lower() != "content-length"):
                    self.send_header(k, v)
            if data is not None:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            sent = 0
            if data is not None:
                self.wfile.write(data)
                sent = len(data)
            elif self.command != "HEAD":
                while chunk := resp.read(1 << 20):
                    self.wfile.write(chunk)
                    sent += len(chunk)
            log(f"{'held' if held else 'passed'} {self.command} {self.path} {resp.status} {sent}")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except OSError as e:
            if not self.wfile.closed:
                try:
                    self.send_error(502, f"upstream {UPSTREAM}: {e}")
                except OSError:
                    pass
            self.close_connection = True
        finally:
            up.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    Server(("127.0.0.1", PORT), Handler).serve_forever()
