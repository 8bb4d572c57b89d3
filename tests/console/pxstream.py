#!/usr/bin/python3
"""A subscriber that measures, a console that idles, and one that asks for
its events as lines, for tests/console/stream.sh (console.conf's
event_gather_ms and event_nice, "format":"lines").

Usage: pxstream.py SOCKET MODE ARGS...
  delays READY OUT DIR   subscribe to ModuleLoaded and ModuleUnloaded, touch
                         READY, then for each event write "DELAY EVENT" to
                         OUT (DELAY: seconds from the event's timestamp to
                         its arrival here); when DIR/unsubscribe exists send
                         Unsubscribe once and write "unsubscribed"; end when
                         DIR/stop exists (60 s at most)
  idle READY DIR         connect, touch READY, send nothing until DIR/stop
                         exists (60 s at most)
  lines READY OUT DIR    with log lines on, ask for "format":"xml" (must be
                         refused naming the field, the connection usable),
                         then subscribe to ModuleLoaded and ModuleUnloaded
                         with "format":"lines" (the result must say so),
                         touch READY, send a Status action (which must get
                         no answer), and write every byte that comes after
                         the result to OUT until DIR/stop exists (60 s at
                         most)
Exit status: 0 done, 1 check failed, 4 connection or protocol error.
Standard library only.
"""

import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pxclient import Conn, ProtocolError  # noqa: E402

LIMIT = 60


def delays(conn, ready, out, d):
    conn.send("log", "off")
    sid = conn.send("action", json.dumps({"action": "Subscribe", "action_id": "d",
                                          "types": "ModuleLoaded,ModuleUnloaded"}))
    unsub_id = None
    deadline = time.time() + LIMIT
    with open(out, "w") as f:
        while time.time() < deadline and not os.path.exists(os.path.join(d, "stop")):
            if unsub_id is None and os.path.exists(os.path.join(d, "unsubscribe")):
                unsub_id = conn.send("action", json.dumps({"action": "Unsubscribe",
                                                           "action_id": "u"}))
            conn.sock.settimeout(0.05)
            try:
                kind, fid, data = conn.frame()
            except socket.timeout:
                continue
            now = time.time()
            if kind == "result" and fid == sid:
                if json.loads(data).get("response") != "Success":
                    print(data.decode())
                    return 1
                open(ready, "w").close()
            elif kind == "result" and fid == unsub_id:
                f.write("unsubscribed\n")
            elif kind == "event":
                ev = json.loads(data)
                f.write("%.3f %s\n" % (now - ev["timestamp"], ev["event"]))
            f.flush()
    return 0


def result_of(conn, fid):
    while True:
        kind, rid, data = conn.frame()
        if kind == "result" and rid == fid:
            return json.loads(data)


def lines(conn, ready, out, d):
    conn.send("log", "on")
    bad = result_of(conn, conn.send("action", json.dumps(
        {"action": "Subscribe", "action_id": "x", "format": "xml"})))
    if bad.get("code") != "bad_field" or bad.get("field") != "format":
        print("format xml: %s" % json.dumps(bad))
        return 1
    ok = result_of(conn, conn.send("action", json.dumps(
        {"action": "Subscribe", "action_id": "l", "types": "ModuleLoaded,ModuleUnloaded",
         "format": "lines"})))
    if ok.get("response") != "Success" or ok.get("format") != "lines":
        print("format lines: %s" % json.dumps(ok))
        return 1
    open(ready, "w").close()
    conn.send("action", json.dumps({"action": "Status", "action_id": "unanswered"}))
    deadline = time.time() + LIMIT
    with open(out, "wb") as f:
        f.write(conn.buf)
        f.flush()
        while time.time() < deadline and not os.path.exists(os.path.join(d, "stop")):
            conn.sock.settimeout(0.05)
            try:
                chunk = conn.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                break
            f.write(chunk)
            f.flush()
    return 0


def idle(conn, ready, d):
    open(ready, "w").close()
    deadline = time.time() + LIMIT
    while time.time() < deadline and not os.path.exists(os.path.join(d, "stop")):
        time.sleep(0.05)
    return 0


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, mode, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    conn = Conn(path)
    conn.banner()
    if mode == "delays":
        return delays(conn, *args)
    if mode == "idle":
        return idle(conn, *args)
    if mode == "lines":
        return lines(conn, *args)
    print("unknown mode %s" % mode, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, EOFError, ProtocolError) as e:
        print("pxstream: %s" % e, file=sys.stderr)
        sys.exit(4)
