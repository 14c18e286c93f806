#!/usr/bin/python3
"""An HTTP origin for cache-group tests: GET /PATH answers the file DIR/PATH.

  origin.py DIR            listens on 127.0.0.1, a port the kernel picks, printed first as
                           "PORT <n>" on stdout; one log line per request on stderr:
                           "origin GET <path> <status>"
Per key, files next to DIR/PATH change the answer:
  PATH.status   an HTTP status to answer instead (e.g. 500), with the file's later lines as body
  PATH.delay    seconds to wait first (a float)
A missing file is 404. Requests are served on threads, so a slow one does not hold the rest.
"""
import http.server
import os
import sys
import time
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real origin

    def do_GET(self):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        root = self.server.root
        target = os.path.normpath(os.path.join(root, path))
        status, body = 404, b"not found\n"
        if target.startswith(root + os.sep):
            delay = read(target + ".delay")
            if delay is not None:
                time.sleep(float(delay.decode()))
            forced = read(target + ".status")
            if forced is not None:
                lines = forced.decode().split("\n", 1)
                status = int(lines[0])
                body = (lines[1] if len(lines) > 1 else "forced status\n").encode()
            else:
                data = read(target)
                if data is not None:
                    status, body = 200, data
        # Logged before answering: a client that has its answer finds its request counted.
        sys.stderr.write("origin GET /%s %d\n" % (path, status))
        sys.stderr.flush()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def log_message(self, *args):
        pass  # do_GET logs one line per request, before answering


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except (FileNotFoundError, IsADirectoryError):
        return None


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.root = os.path.realpath(sys.argv[1])
    sys.stdout.write("PORT %d\n" % server.server_address[1])
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
