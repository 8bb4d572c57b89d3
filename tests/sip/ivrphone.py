#!/usr/bin/python3
"""ivrphone.py: one SIP phone that calls an extension of plexusd and runs a
script against what answers (tests/sip/ivr.sh): it counts the RTP packets
it hears, checks that they form one stream, sends RFC 4733 digits, and
hangs up or waits for plexusd to. It reuses the SIP and codec parts of
mediaphone.py. Only 127.0.0.1 is used.

Steps (--steps, space separated), each a check printed as "ok"/"FAIL":
  final:CODE         the INVITE's final answer is CODE (then nothing else runs)
  packets:N[:TOL]    audio until 0.6 s of silence (after the first packet,
                     30 s at most): N packets, give or take TOL (1); the
                     sequence numbers run on by one and the timestamps by one
                     packet's worth
  atleast:N          at least N packets until 0.6 s of silence
  heard:N[:TOL]      N packets (give or take TOL) heard so far, without
                     waiting (early media, before the answer)
  provisional:CODE   the INVITE was answered CODE before its final answer
  none:SECONDS       no audio packet for SECONDS
  wait:SECONDS       let SECONDS pass (audio counted, not checked)
  dtmf:DIGITS        send the digits as RFC 4733 events (200 ms each)
  bye                hang up; plexusd answers 200
  byed:SECONDS       plexusd hangs up within SECONDS
Exit status 0 when every check passed.
"""
import argparse
import os
import random
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mediaphone import CLOCK, Phone, parse, sdp_media  # noqa: E402


class Ivr:
    def __init__(self, args):
        self.args = args
        self.failures = 0
        self.phone = Phone(args.user, args.secret, args.codec, args.sip_port, "rfc4733")
        self.packets = []  # (seq, ts, marker) of audio heard since the last check
        self.other_pt = 0
        self.bye_received = False
        self.to = self.uri = self.call_id = None
        self.invite_responses = []

    def check(self, ok, what, detail=""):
        print("%s - %s%s" % ("ok" if ok else "FAIL", what, (": " + detail) if detail else ""))
        sys.stdout.flush()
        if not ok:
            self.failures += 1
        return ok

    # -- SIP and RTP
    def handle_sip(self, data):
        p = self.phone
        first, h, body = parse(data)
        if first.startswith("SIP/2.0"):
            p.responses.append((int(first.split()[1]), h, body))
            return
        method = first.split()[0]
        if method == "BYE":
            self.bye_received = True
        if method != "ACK":
            via = "\r\n".join("Via: " + v for v in h.get("via", []))
            p.send("SIP/2.0 200 OK\r\n%s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\n"
                   "CSeq: %s\r\nContent-Length: 0\r\n\r\n" % (
                       via, h["from"][0], h["to"][0], h["call-id"][0], h["cseq"][0]))

    def read_rtp(self):
        while True:
            try:
                data = self.phone.rtp.recv(4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            if len(data) < 12:
                continue
            pt = data[1] & 0x7f
            if pt == self.phone.pt:
                seq, ts = struct.unpack("!HI", data[2:8])
                self.packets.append((seq, ts, bool(data[1] & 0x80)))
            else:
                self.other_pt += 1

    def pump(self, seconds, until=None):
        deadline = time.monotonic() + seconds
        socks = [self.phone.sip, self.phone.rtp]
        while time.monotonic() < deadline:
            if until and until():
                return True
            r, _, _ = select.select(socks, [], [], 0.005)
            for s in r:
                if s is self.phone.sip:
                    self.handle_sip(s.recv(65535))
                else:
                    self.read_rtp()
        return bool(until and until())

    def transaction(self, method, body=None, to=None, call_id=None):
        p = self.phone
        auth = []
        for _ in range(2):
            p.responses = []
            p.request(method, self.uri, call_id, p.tag, to, p.cseq, body, auth)
            # Only answers to this request: a 401 we did not ACK comes again.
            mine = "%d %s" % (p.cseq, method)
            ours = lambda: [r for r in p.responses if r[1].get("cseq", [""])[0] == mine]
            self.pump(10, lambda: any(r[0] >= 200 for r in ours()))
            p.responses = ours()
            final = [r for r in p.responses if r[0] >= 200]
            p.cseq += 1
            if not final:
                return None
            status, h, _ = final[0]
            if status in (401, 407) and not auth:
                key = "www-authenticate" if status == 401 else "proxy-authenticate"
                hdr = "Authorization" if status == 401 else "Proxy-Authorization"
                auth = ["%s: %s" % (hdr, p.digest(method, self.uri, h[key][0]))]
                continue
            return final[0]
        return None

    # -- steps
    def until_silence(self):
        """Pump until 0.6 s pass without audio after the first packet (30 s cap)."""
        deadline = time.monotonic() + 30
        last_count, last_change = 0, time.monotonic()
        while time.monotonic() < deadline:
            self.pump(0.05)
            if len(self.packets) != last_count:
                last_count, last_change = len(self.packets), time.monotonic()
            elif last_count and time.monotonic() - last_change >= 0.6:
                return
            elif not last_count and time.monotonic() - last_change >= 5:
                return  # nothing at all

    def stream_check(self, label):
        step = CLOCK[self.phone.codec_name] * 20 // 1000
        bad_seq = sum(1 for a, b in zip(self.packets, self.packets[1:])
                      if (b[0] - a[0]) & 0xffff != 1)
        jumps = sum(1 for a, b in zip(self.packets, self.packets[1:])
                    if (b[1] - a[1]) & 0xffffffff != step and not b[2])
        self.check(bad_seq == 0 and jumps == 0,
                   "%s: one stream (sequence +1, timestamp +%d)" % (label, step),
                   "%d sequence gaps, %d unmarked timestamp jumps" % (bad_seq, jumps))

    def step(self, text):
        name, _, arg = text.partition(":")
        if name == "packets":
            want, _, tol = arg.partition(":")
            want, tol = int(want), int(tol or 1)
            self.packets = []
            self.until_silence()
            n = len(self.packets)
            self.check(abs(n - want) <= tol, "%d packets of audio (+-%d)" % (want, tol),
                       "got %d" % n)
            if n:
                self.stream_check("%d packets" % n)
            self.packets = []
        elif name == "atleast":
            self.packets = []
            self.until_silence()
            self.check(len(self.packets) >= int(arg), "at least %s packets of audio" % arg,
                       "got %d" % len(self.packets))
            self.packets = []
        elif name == "heard":
            want, _, tol = arg.partition(":")
            want, tol = int(want), int(tol or 1)
            n = len(self.packets)
            self.check(abs(n - want) <= tol, "%d packets heard so far (+-%d)" % (want, tol),
                       "got %d" % n)
            self.packets = []
        elif name == "provisional":
            codes = [r[0] for r in self.invite_responses]
            self.check(int(arg) in codes, "a provisional %s came before the answer" % arg,
                       "responses %s" % codes)
        elif name == "none":
            self.packets = []
            self.pump(float(arg))
            self.check(not self.packets, "no audio for %s s" % arg,
                       "got %d packets" % len(self.packets))
        elif name == "wait":
            self.pump(float(arg))
        elif name == "dtmf":
            p = self.phone
            for d in arg:
                p.ts = (p.ts + 1600) & 0xffffffff
                for k in range(1, 5):
                    p.send_event(d, k * 400, False, k == 1)
                    self.pump(0.05)
                for _ in range(3):
                    p.send_event(d, 1600, True, False)
                self.pump(0.1)
            self.check(True, "sent the digits %s" % arg)
        elif name == "bye":
            final = self.transaction("BYE", to=self.to, call_id=self.call_id)
            self.check(final is not None and final[0] == 200, "BYE is answered 200",
                       str(final and final[0]))
        elif name == "byed":
            self.check(self.pump(float(arg), lambda: self.bye_received),
                       "plexusd hangs up within %s s" % arg)
        else:
            self.check(False, "unknown step %s" % text)

    def run(self):
        a = self.args
        p = self.phone
        self.uri = "sip:%s@127.0.0.1:%d" % (a.exten, a.sip_port)
        self.call_id = "ivr-%d@127.0.0.1" % random.randrange(1 << 40)
        steps = a.steps.split()
        final = self.transaction("INVITE", p.sdp(), "<%s>" % self.uri, self.call_id)
        code = final[0] if final else None
        self.invite_responses = list(p.responses)
        if steps and steps[0].startswith("final:"):
            want = int(steps[0].split(":")[1])
            if final and code >= 200:
                tag = final[1]["to"][0].split("tag=")[-1]
                p.request("ACK", self.uri, self.call_id, p.tag, "<%s>;tag=%s" % (self.uri, tag),
                          p.cseq - 1)
            self.check(code == want, "the call is answered %d" % want, "got %s" % code)
            return
        if not self.check(code == 200, "%s calls %s and is answered" % (a.user, a.exten),
                          "got %s" % code):
            return
        _, h, body = final
        addr, port, _, _ = sdp_media(body)
        p.remote_rtp = (addr, port)
        self.to = "<%s>;tag=%s" % (self.uri, h["to"][0].split("tag=")[1])
        p.request("ACK", self.uri, self.call_id, p.tag, self.to, p.cseq - 1)
        # A packet of our own first, so that symmetric RTP learns where we are.
        p.send_rtp(1000, 20)
        for s in steps:
            self.step(s)
        self.check(self.other_pt == 0, "no packet of an unexpected payload type",
                   "%d" % self.other_pt)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sip-port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--codec", default="ulaw", choices=["ulaw", "alaw", "g722", "opus"])
    ap.add_argument("--exten", required=True)
    ap.add_argument("--steps", default="")
    args = ap.parse_args()
    t = Ivr(args)
    t.run()
    sys.exit(1 if t.failures else 0)


if __name__ == "__main__":
    main()
