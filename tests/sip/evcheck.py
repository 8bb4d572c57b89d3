#!/usr/bin/python3
"""Checks on an event stream recorded by "plexus -e" (one JSON object per
line), for tests/sip/events.sh. FROM is a line number: only events after it
are looked at (what the test did since it took the mark).

Usage: evcheck.py FILE FROM MODE ARGS...
  wait SECONDS KEY=VALUE...  wait until an event matches every KEY=VALUE
                             (VALUE compared as text; KEY~RE matches a regular
                             expression); print it
  call CALLER CALLEE CAUSE   the two legs of one call, caller's channel
                             SIP/CALLER-..., callee's SIP/CALLEE-...: the
                             same linkedid, the caller's events in order
                             ChannelCreated, ChannelState Ring, DialBegin,
                             DialEnd ANSWER, ChannelState Up, Bridged,
                             Hangup CAUSE (one Unbridged, which may
                             follow the Hangup of the side that left
                             first); the callee's
                             ChannelCreated, ChannelState Up, Hangup CAUSE;
                             print both sequences
  contiguous                 sequence numbers increase by one, no EventsLost
  accounted                  every event once, in order: each seq is one
                             more than the one before, or an EventsLost right
                             after it (after_seq = that seq) says how many
                             are missing
Exit status: 0 the check holds, 1 it does not (the events are printed).
"""

import json
import re
import sys
import time


def load(path, start):
    events = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if n <= start or not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except ValueError:
                events.append({"event": "BadLine", "text": line})
    return events


def matches(ev, conds):
    for c in conds:
        if "~" in c and ("=" not in c or c.index("~") < c.index("=")):
            k, v = c.split("~", 1)
            if k not in ev or not re.search(v, str(ev[k])):
                return False
        else:
            k, v = c.split("=", 1)
            if k not in ev or str(ev[k]) != v:
                return False
    return True


def show(events):
    return "\n".join("  " + json.dumps(e) for e in events)


def check_wait(path, start, secs, conds):
    deadline = time.time() + float(secs)
    while True:
        events = load(path, start)
        for e in events:
            if matches(e, conds):
                print(json.dumps(e))
                return 0
        if time.time() >= deadline:
            print("no event matching %s within %s s; events seen:\n%s"
                  % (" ".join(conds), secs, show(events)))
            return 1
        time.sleep(0.1)


def leg(events, endpoint):
    """Events of the first channel of that endpoint, and that channel."""
    name = None
    for e in events:
        ch = e.get("channel", "")
        if re.match(r"SIP/%s-[0-9a-f]{8}$" % re.escape(endpoint), ch):
            name = ch
            break
    return name, [e for e in events if e.get("channel") == name and name]


def subsequence(seq, want):
    """Is want (list of (event, predicate)) found in seq in that order?"""
    i = 0
    for e in seq:
        if i < len(want) and e["event"] == want[i][0] and want[i][1](e):
            i += 1
    return i == len(want), i


def check_call(path, start, caller, callee, cause):
    events = load(path, start)
    a, aev = leg(events, caller)
    b, bev = leg(events, callee)
    problems = []
    if not a or not b:
        problems.append("no channel of %s or of %s" % (caller, callee))
    else:
        links = {e["linkedid"] for e in aev + bev}
        if len(links) != 1:
            problems.append("the legs do not share one linkedid: %s" % sorted(links))
        cause = int(cause)
        want_a = [("ChannelCreated", lambda e: True),
                  ("ChannelState", lambda e: e.get("state") == "Ring"),
                  ("DialBegin", lambda e: e.get("peer_channel") == b),
                  ("DialEnd", lambda e: e.get("dialstatus") == "ANSWER"),
                  ("ChannelState", lambda e: e.get("state") == "Up"),
                  ("Bridged", lambda e: e.get("peer_channel") == b),
                  ("Hangup", lambda e: e.get("cause") == cause)]
        want_b = [("ChannelCreated", lambda e: True),
                  ("ChannelState", lambda e: e.get("state") == "Up"),
                  ("Hangup", lambda e: e.get("cause") == cause)]
        ok, got = subsequence(aev, want_a)
        if not ok:
            problems.append("caller: expected %s, stuck at %s"
                            % ([w[0] for w in want_a], want_a[got][0]))
        ok, got = subsequence(bev, want_b)
        if not ok:
            problems.append("callee: expected %s, stuck at %s"
                            % ([w[0] for w in want_b], want_b[got][0]))
        if aev and aev[0]["event"] != "ChannelCreated":
            problems.append("the caller's first event is not ChannelCreated")
        # The far end's BYE ends the leg before the bridge notices: the
        # Unbridged that follows is the only event allowed after Hangup.
        after = [e["event"] for e in aev[[e["event"] for e in aev].index("Hangup") + 1:]] \
            if any(e["event"] == "Hangup" for e in aev) else []
        if after not in ([], ["Unbridged"]):
            problems.append("after the caller's Hangup only Unbridged may come, got %s" % after)
        if sum(e["event"] == "Unbridged" and e.get("peer_channel") == b for e in aev) != 1:
            problems.append("the caller must have one Unbridged from the callee")
        if bev and bev[-1]["event"] != "Hangup":
            problems.append("the callee's last event is not Hangup")
        if sum(e["event"] == "Hangup" for e in aev) != 1 or \
                sum(e["event"] == "Hangup" for e in bev) != 1:
            problems.append("each leg must have exactly one Hangup")
        seqs = [e["seq"] for e in events]
        if seqs != sorted(seqs):
            problems.append("sequence numbers are not increasing")
    summary = "caller %s: %s\ncallee %s: %s" % (
        a, " ".join(e["event"] + ("(%s)" % e.get("state", e.get("cause", "")))
                    for e in aev),
        b, " ".join(e["event"] + ("(%s)" % e.get("state", e.get("cause", "")))
                    for e in bev))
    if problems:
        print("\n".join(problems) + "\n" + summary + "\nall events:\n" + show(events))
        return 1
    print(summary)
    return 0


def check_contiguous(path, start):
    events = load(path, start)
    bad = [e for e in events if e["event"] in ("EventsLost", "BadLine")]
    seqs = [e["seq"] for e in events if "seq" in e]
    gaps = [(x, y) for x, y in zip(seqs, seqs[1:]) if y != x + 1]
    if bad or gaps or not seqs:
        print("expected contiguous sequence numbers and no loss; gaps %s, %s\n%s"
              % (gaps, bad, show(events)))
        return 1
    print("%d events, seq %d..%d" % (len(seqs), seqs[0], seqs[-1]))
    return 0


def check_accounted(path, start):
    events = load(path, start)
    prev, problems, lost = None, [], 0
    for e in events:
        if e["event"] == "EventsLost":
            if prev is None or e.get("after_seq") != prev:
                problems.append("EventsLost after_seq %s, but the last event was %s"
                                % (e.get("after_seq"), prev))
            prev = (prev or 0) + e.get("lost", 0)
            lost += e.get("lost", 0)
            continue
        if "seq" not in e:
            problems.append("no seq: %s" % json.dumps(e))
            continue
        if prev is not None and e["seq"] != prev + 1:
            problems.append("seq %d after %d: %s" % (e["seq"], prev, "a duplicate or out of order"
                                                    if e["seq"] <= prev else "a gap not told"))
        prev = e["seq"]
    if problems or not events:
        print("%d problems (first 10):\n%s" % (len(problems), "\n".join(problems[:10]) or "no events"))
        return 1
    print("%d events, %d told lost" % (len(events), lost))
    return 0


def main(argv):
    path, start, mode, args = argv[1], int(argv[2]), argv[3], argv[4:]
    if mode == "wait":
        return check_wait(path, start, args[0], args[1:])
    if mode == "call":
        return check_call(path, start, *args)
    if mode == "contiguous":
        return check_contiguous(path, start)
    if mode == "accounted":
        return check_accounted(path, start)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
