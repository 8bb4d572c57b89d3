#!/usr/bin/python3
"""A small client of the plexusd console protocol (docs/console-protocol.md)
for tests/console/console.sh: it does what the plexus client never does on
purpose (hold many connections, hang up in the middle of an answer, send
garbage) and asks for completions and log lines directly.

Usage: pxclient.py SOCKET ACTION ARGS...
  cmd LINE                 run one command; print its output; exit with its status
  complete LINE            print the candidates of a "complete" request
  many N LINE              open N connections at once, then run LINE on each;
                           print each output to DIR/out.K if --outdir DIR
  abort LINE NBYTES        run LINE, read NBYTES of its output, then reset the
                           connection
  garbage KIND             send a bad frame (header, long, kind, size) and
                           expect the daemon to close the connection
  watch ERE SECONDS READY  with logs on and verbose 1, touch READY, then wait
                           for a log line matching ERE and print it
Exit status: 0 success (or a command's status), 1 check failed, 4 no
connection or protocol error. Standard library only.
"""

import os
import re
import socket
import struct
import sys
import time

TIMEOUT = 20.0


class ProtocolError(Exception):
    pass


class Conn:
    """One console connection; frames are (kind, id, payload bytes)."""

    def __init__(self, path, timeout=TIMEOUT):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 0
        self.eof = False

    def send(self, kind, payload):
        self.next_id += 1
        data = payload.encode() if isinstance(payload, str) else payload
        self.sock.sendall(b"%s %d %d\n" % (kind.encode(), self.next_id, len(data)) + data)
        return self.next_id

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            self.eof = True
            raise EOFError("connection closed by plexusd")
        self.buf += chunk

    def frame(self):
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                parts = self.buf[:nl].split(b" ")
                if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
                    raise ProtocolError("bad header %r" % self.buf[:nl])
                n = int(parts[2])
                if len(self.buf) >= nl + 1 + n:
                    payload = self.buf[nl + 1:nl + 1 + n]
                    self.buf = self.buf[nl + 1 + n:]
                    return parts[0].decode(), int(parts[1]), payload
            elif len(self.buf) > 64:
                raise ProtocolError("header too long")
            self._fill()

    def banner(self):
        kind, _, payload = self.frame()
        if kind != "banner":
            raise ProtocolError("expected a banner, got %s" % kind)
        return payload.decode()

    def request(self, kind, payload):
        """Send a request; return (output bytes, final frame kind, its payload)."""
        rid = self.send(kind, payload)
        out = b""
        while True:
            k, i, p = self.frame()
            if i != rid:
                continue  # banner, log lines, answers to nobody
            if k == "out":
                out += p
            else:
                return out, k, p

    def command(self, line):
        out, kind, status = self.request("cmd", line)
        if kind != "end":
            raise ProtocolError("expected end, got %s" % kind)
        return out.decode(errors="replace"), int(status)

    def close(self):
        self.sock.close()


def reset(sock):
    """Close so that the daemon sees a reset, not an orderly end."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def act_cmd(path, line):
    c = Conn(path)
    c.send("log", "off")
    out, status = c.command(line)
    sys.stdout.write(out)
    return status


def act_complete(path, line):
    c = Conn(path)
    out, kind, payload = c.request("complete", line)
    if kind != "comp":
        raise ProtocolError("expected comp, got %s" % kind)
    text = payload.decode()
    sys.stdout.write(text + ("\n" if text and not text.endswith("\n") else ""))
    return 0


def act_many(path, n, line, outdir=None):
    conns = [Conn(path) for _ in range(n)]
    # Every console thread has greeted us: all n are connected at once.
    for c in conns:
        c.banner()
        c.send("log", "off")
    ids = [c.send("cmd", line) for c in conns]
    failed = 0
    for k, (c, rid) in enumerate(zip(conns, ids)):
        out = b""
        while True:
            kind, i, p = c.frame()
            if i != rid:
                continue
            if kind == "out":
                out += p
            elif kind == "end":
                status = int(p)
                break
        if outdir:
            with open(os.path.join(outdir, "out.%d" % k), "wb") as f:
                f.write(out)
        if status != 0 or not out:
            failed += 1
            print("connection %d: status %d, %d bytes of output" % (k, status, len(out)))
    for c in conns:
        c.close()
    print("%d of %d connections ran '%s' successfully" % (n - failed, n, line))
    return 1 if failed else 0


def act_abort(path, line, nbytes):
    c = Conn(path)
    c.banner()
    c.send("log", "off")
    rid = c.send("cmd", line)
    got = 0
    while got < nbytes:
        kind, i, p = c.frame()
        if i == rid and kind == "out":
            got += len(p)
        elif i == rid and kind == "end":
            print("the command ended after %d bytes, before %d" % (got, nbytes))
            return 1
    reset(c.sock)
    print("read %d bytes of output, then reset the connection" % got)
    return 0


GARBAGE = {
    # not "KIND ID LEN": malformed header
    "header": b"GARBAGE frame\n" + os.urandom(512),
    # no newline within 64 bytes: header too long
    "long": b"cmd 1 " + b"9" * 100,
    # a kind that clients never send
    "kind": b"bogus 1 3\nabc",
    # a payload above the 1 MiB limit
    "size": b"cmd 1 99999999\n",
}


def act_garbage(path, kind):
    c = Conn(path, timeout=10)
    c.banner()
    print("client pid %d" % os.getpid())
    try:
        c.sock.sendall(GARBAGE[kind])
    except (BrokenPipeError, ConnectionResetError):
        print("disconnected while sending")
        return 0
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            c.frame()  # anything but the end is wrong, but keep reading
    except (EOFError, ConnectionResetError):
        print("disconnected by plexusd")
        return 0
    except socket.timeout:
        pass
    print("still connected after 10 s")
    return 1


def act_watch(path, regex, seconds, ready):
    c = Conn(path, timeout=seconds)
    c.banner()
    _, kind, status = c.request("log", "on")
    if kind != "end" or status != b"0":
        raise ProtocolError("log on: %s %r" % (kind, status))
    out, status = c.command("core set verbose 1")
    if status != 0:
        print("core set verbose 1 failed: %s" % out)
        return 1
    with open(ready, "w") as f:
        f.write("%d\n" % os.getpid())
    pattern = re.compile(regex)
    deadline = time.monotonic() + seconds
    seen = []
    try:
        while time.monotonic() < deadline:
            c.sock.settimeout(max(0.1, deadline - time.monotonic()))
            kind, i, p = c.frame()
            if kind == "log":
                text = p.decode(errors="replace")
                seen.append(text)
                if pattern.search(text):
                    sys.stdout.write("log frame: " + text)
                    return 0
    except socket.timeout:
        pass
    print("no log line matching %r within %s s; log frames seen:" % (regex, seconds))
    for text in seen:
        sys.stdout.write("  " + text)
    return 1


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    path, action, args = argv[1], argv[2], argv[3:]
    outdir = None
    if "--outdir" in args:
        k = args.index("--outdir")
        outdir = args[k + 1]
        del args[k:k + 2]
    try:
        if action == "cmd":
            return act_cmd(path, args[0])
        if action == "complete":
            return act_complete(path, args[0])
        if action == "many":
            return act_many(path, int(args[0]), args[1], outdir)
        if action == "abort":
            return act_abort(path, args[0], int(args[1]))
        if action == "garbage":
            return act_garbage(path, args[0])
        if action == "watch":
            return act_watch(path, args[0], float(args[1]), args[2])
    except (OSError, EOFError, ProtocolError) as e:
        print("pxclient: %s: %s" % (action, e))
        return 4
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
