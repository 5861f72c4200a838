"""agentmill's LLM bridge: the harness's only way to a model, with no network in the sandbox.

It serves HTTP on 127.0.0.1 inside the sandbox (loopback exists even with network mode "none")
and carries each request as one JSON line on its stdout to the worker, which holds the other end
of this process's stdin and stdout (a Docker exec, not a socket). The worker's gateway forwards
the request to the policy server, keeps it and the answer, and writes the answer back as one
JSON line on stdin. Nothing else leaves the sandbox: this process opens no connection.

  stdout: {"ready": PORT}                                   once, when listening
          {"id": N, "method": "POST", "path": "/v1/...", "body": "..."}
  stdin:  {"id": N, "status": 200, "content_type": "...", "body": "..."}
Standard library only (it runs with the sandbox's own python3).
"""

import http.server
import json
import os
import sys
import threading

PORT = int(os.environ.get("AGENTMILL_BRIDGE_PORT", "0"))
MAX_BODY = 64 << 20

lock = threading.Lock()
waiting = {}
next_id = [0]


def send(obj):
    line = json.dumps(obj) + "\n"
    with lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def answers():
    for line in sys.stdin:
        try:
            msg = json.loads(line)
            slot = waiting.pop(msg["id"])
        except (ValueError, KeyError):
            continue
        slot[1] = msg
        slot[0].set()
    # The worker closed the channel: the episode is over.
    os._exit(0)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def relay(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self.reply(413, "application/json", json.dumps({"error": {"message": "agentmill bridge: request body too large"}}))
        raw = self.rfile.read(length) if length else b""
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return self.reply(400, "application/json", json.dumps({"error": {"message": "agentmill bridge: the request body is not UTF-8"}}))
        slot = [threading.Event(), None]
        with lock:
            next_id[0] += 1
            rid = next_id[0]
            waiting[rid] = slot
        send({"id": rid, "method": method, "path": self.path, "body": body})
        slot[0].wait()
        answer = slot[1]
        self.reply(int(answer.get("status", 502)), answer.get("content_type") or "application/json", answer.get("body", ""))

    def reply(self, status, content_type, body):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.relay("GET")

    def do_POST(self):
        self.relay("POST")


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    threading.Thread(target=answers, daemon=True).start()
    send({"ready": server.server_address[1]})
    server.serve_forever()


main()
