#!/usr/bin/env python3
"""A real HTTP backend for integration tests: answers every GET with its name.

Usage: backend.py ADDRESS PORT NAME
  GET /             -> 200 "NAME\n"
  GET /slow?seconds=N -> waits N seconds, then 200 "NAME\n"
  GET /headers      -> 200 "NAME\n" followed by the request's headers, one "name: value" a line
  POST (any path)   -> as GET, the request body read and ignored
HTTP/1.1 with keep-alive; one thread per connection. Prints "ready" once listening.
"""
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/slow":
            time.sleep(float(parse_qs(url.query).get("seconds", ["1"])[0]))
        text = self.server.name + "\n"
        if url.path == "/headers":
            text += "".join("%s: %s\n" % (name.lower(), value) for name, value in self.headers.items())
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.do_GET()

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        pass  # a client that resets its connection is not the backend's error


def main():
    address, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    server = Server((address, port), Handler)
    server.name = name
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
