#!/usr/bin/python3
"""ctrl.py PORT COMMAND [PARAMS]: one command to a baresip phone through its
ctrl_tcp module (tests/sip/baresip.sh).

Connects to 127.0.0.1:PORT (retrying for up to 5 s while the phone starts),
sends {"command": COMMAND, "params": PARAMS, "token": ...} as a netstring and
reads netstrings until the response with that token. Prints the response's
data on stdout and exits 0 when it says ok, 1 when not; events that arrive
meanwhile go to stderr, one JSON object a line. Exit 2: no connection or no
response within 5 s. ctrl_tcp serves one connection at a time (a new one
replaces the old), so every command has its own.
"""
import json
import os
import socket
import sys
import time

TIMEOUT = 5.0


def connect(port, deadline):
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=1.0)
        except OSError as e:
            if time.monotonic() >= deadline:
                print("ctrl.py: no connection to 127.0.0.1:%d: %s" % (port, e), file=sys.stderr)
                sys.exit(2)
            time.sleep(0.1)


def netstrings(sock, deadline):
    buf = b""
    while True:
        while True:
            colon = buf.find(b":")
            if colon < 0:
                break
            length = int(buf[:colon])
            if len(buf) < colon + 1 + length + 1:
                break
            yield buf[colon + 1:colon + 1 + length]
            buf = buf[colon + 1 + length + 1:]
        left = deadline - time.monotonic()
        if left <= 0:
            return
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return
        if not data:
            return
        buf += data


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: ctrl.py PORT COMMAND [PARAMS]")
    port, command = int(sys.argv[1]), sys.argv[2]
    params = sys.argv[3] if len(sys.argv) > 3 else ""
    deadline = time.monotonic() + TIMEOUT
    sock = connect(port, deadline)
    token = "px%d" % os.getpid()
    msg = json.dumps({"command": command, "params": params, "token": token}).encode()
    sock.sendall(b"%d:%s," % (len(msg), msg))
    for raw in netstrings(sock, deadline):
        try:
            obj = json.loads(raw)
        except ValueError:
            print("ctrl.py: not JSON: %r" % raw, file=sys.stderr)
            continue
        if obj.get("response") and obj.get("token") == token:
            data = obj.get("data", "")
            sys.stdout.write(data if data.endswith("\n") or not data else data + "\n")
            sys.exit(0 if obj.get("ok") else 1)
        print(json.dumps(obj), file=sys.stderr)
    print("ctrl.py: no response to '%s' within %.0f s" % (command, TIMEOUT), file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
