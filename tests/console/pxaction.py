#!/usr/bin/python3
"""Actions and event subscriptions on the plexusd console protocol
(docs/console-protocol.md), for tests/sip/events.sh: what a tool or the
switchboard does with JSON actions, plus a subscriber that stops reading.

Usage: pxaction.py SOCKET MODE ARGS...
  run JSON...              send each action on one connection, in order, and
                           print each result (one JSON line); the frame IDs
                           of results must match their actions
  raw PAYLOAD...           like run, but payloads are sent as they are
                           (malformed JSON included)
  repeat N JSON            send the action N times (one after the other) and
                           print how many succeeded
  slow QUEUE READY GO OUT  subscribe with a queue of QUEUE events, touch
                           READY, read nothing until the file GO exists (60 s
                           at most), then read every frame until 3 s pass
                           without one, write the events to OUT (JSON lines),
                           and print the result of a Status action sent on
                           the same connection afterwards
  resub QUEUE READY GO OUT JSON [JSON...]
                           like slow, but when GO exists send the Subscribe
                           action JSON on the same connection (a new filter
                           or queue size while events wait), then the other
                           actions, before reading; the Subscribe's result
                           is printed first
  watch READY OUT           subscribe (every event), touch READY, then write
                           each frame that comes as "KIND PAYLOAD" lines to
                           OUT until the connection ends (20 s at most)
Exit status: 0 done, 1 check failed, 4 connection or protocol error.
Standard library only.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pxclient import Conn, ProtocolError  # noqa: E402


def call(conn, payload):
    """Send one action; return (result payload, events seen meanwhile)."""
    fid = conn.send("action", payload)
    events = []
    while True:
        kind, rid, data = conn.frame()
        if kind == "result":
            if rid != fid:
                raise ProtocolError("result for frame %d while waiting for %d" % (rid, fid))
            return data.decode(), events
        if kind == "event":
            events.append(data.decode())


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, mode, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    conn = Conn(path)
    conn.banner()
    fid = conn.send("log", "off")
    while True:
        kind, rid, _ = conn.frame()
        if kind == "end" and rid == fid:
            break
        if kind != "log":
            raise ProtocolError("expected end after log off, got %s" % kind)
    if mode in ("run", "raw"):
        for a in args:
            result, _ = call(conn, a)
            print(result, flush=True)
        return 0
    if mode == "repeat":
        ok = 0
        for _ in range(int(args[0])):
            result, _ = call(conn, args[1])
            ok += json.loads(result).get("response") == "Success"
        print(ok)
        return 0
    if mode in ("slow", "resub"):
        queue, ready, go, out = int(args[0]), args[1], args[2], args[3]
        result, _ = call(conn, json.dumps({"action": "Subscribe", "action_id": "slow",
                                           "queue": queue}))
        if json.loads(result).get("response") != "Success":
            print(result)
            return 1
        open(ready, "w").close()
        deadline = time.time() + 60
        while not os.path.exists(go) and time.time() < deadline:
            time.sleep(0.1)
        events = []
        if mode == "resub":
            result, events = call(conn, args[4])
            print(result, flush=True)
            # An event after it shows a gap left by what went missing.
            for a in args[5:]:
                _, more = call(conn, a)
                events += more
        conn.sock.settimeout(3.0)
        try:
            while True:
                kind, _, data = conn.frame()
                if kind == "event":
                    events.append(data.decode())
        except (TimeoutError, OSError):
            pass
        conn.sock.settimeout(20.0)
        with open(out, "w") as f:
            for e in events:
                f.write(e + "\n")
        result, _ = call(conn, json.dumps({"action": "Status", "action_id": "after"}))
        print(result)
        return 0
    if mode == "watch":
        ready, out = args[0], args[1]
        result, _ = call(conn, json.dumps({"action": "Subscribe", "action_id": "watch"}))
        if json.loads(result).get("response") != "Success":
            print(result)
            return 1
        deadline = time.time() + 20
        with open(out, "w") as f:
            open(ready, "w").close()
            try:
                while time.time() < deadline:
                    conn.sock.settimeout(max(0.1, deadline - time.time()))
                    kind, _, data = conn.frame()
                    f.write("%s %s\n" % (kind, data.decode(errors="replace")))
                    f.flush()
            except (TimeoutError, OSError, EOFError, ProtocolError):
                pass
        return 0
    print("unknown mode %s" % mode, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ProtocolError, EOFError, OSError) as e:
        print("pxaction: %s" % e, file=sys.stderr)
        sys.exit(4)
