#!/usr/bin/python3
"""mediaphone.py: two SIP phones in one process that call each other
through plexusd and check the audio each one hears (tests/sip/media.sh).

The callee registers (digest), the caller INVITEs it through plexusd
offering only its codec; the callee answers with only its own. Both then
send a tone in their codec (caller 1000 Hz, callee 600 Hz) as 20 ms RTP
packets, decode what they receive and check, with the Goertzel algorithm,
that the other's tone is there (its power well above the own tone's and
above silence). Options: a re-INVITE from the caller that switches its
codec mid-call (audio checked again after it); DTMF digits sent by the
caller as RFC 4733 events or SIP INFO, which the callee must receive in its
own mode (events or INFO) with their durations. A phone's RFC 4733 events
use its audio's clock (telephone-event/48000 beside Opus, RFC 4733) unless
--caller-event-clock/--callee-event-clock say otherwise: plexusd must offer
and answer that clock, and the events a phone gets must have their
durations in it and their timestamps in its audio's clock, where the audio
stream is. Only 127.0.0.1 is used, and 127.0.0.2 for the SIP of a callee
that plays a carrier (--callee-port: plexusd knows a trunk by its address).
Prints one line per check; exit status 0 when every check passed.

With --bridge-ready FILE the two phones are both callers (user --caller):
the first calls --callee, the second --bridge-exten, each with its own
codec; once both ring the file is written, and the test is expected to
join the two calls with the operator's Bridge. Each phone must then be
answered with its own codec and hear the other's tone; the first hangs
up, and the second must get BYE (its dialplan went on and ended).

Codecs: ulaw, alaw (audioop), g722 (spandsp via ctypes), opus (libopus via
ctypes).
"""
import argparse
import ctypes
import hashlib
import math
import os
import random
import select
import socket
import struct
import sys
import time
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
import audioop  # noqa: E402

RATE = {"ulaw": 8000, "alaw": 8000, "g722": 16000, "opus": 48000}
CLOCK = {"ulaw": 8000, "alaw": 8000, "g722": 8000, "opus": 48000}
STATIC_PT = {"ulaw": 0, "alaw": 8, "g722": 9}
RTPMAP = {"ulaw": "PCMU/8000", "alaw": "PCMA/8000", "g722": "G722/8000", "opus": "opus/48000/2"}
DYN_PT = 107  # the phones' dynamic payload type for Opus (not plexusd's)
DTMF_PT = 100


class Codec:
    """Encoder and decoder state of one phone for one codec."""

    def __init__(self, name):
        self.name = name
        self.rate = RATE[name]
        if name == "g722":
            lib = ctypes.CDLL("libspandsp.so.2")
            lib.g722_encode_init.restype = ctypes.c_void_p
            lib.g722_decode_init.restype = ctypes.c_void_p
            self.lib = lib
            self.enc = lib.g722_encode_init(None, 64000, 0)
            self.dec = lib.g722_decode_init(None, 64000, 0)
        elif name == "opus":
            lib = ctypes.CDLL("libopus.so.0")
            lib.opus_encoder_create.restype = ctypes.c_void_p
            lib.opus_decoder_create.restype = ctypes.c_void_p
            err = ctypes.c_int()
            self.lib = lib
            self.enc = lib.opus_encoder_create(48000, 1, 2048, ctypes.byref(err))
            self.dec = lib.opus_decoder_create(48000, 1, ctypes.byref(err))

    def encode(self, pcm):
        n = len(pcm) // 2
        if self.name == "ulaw":
            return audioop.lin2ulaw(pcm, 2)
        if self.name == "alaw":
            return audioop.lin2alaw(pcm, 2)
        out = ctypes.create_string_buffer(4000)
        if self.name == "g722":
            k = self.lib.g722_encode(ctypes.c_void_p(self.enc), out, pcm, n)
        else:
            k = self.lib.opus_encode(ctypes.c_void_p(self.enc), pcm, n, out, 4000)
        return out.raw[:k]

    def decode(self, payload):
        if self.name == "ulaw":
            return audioop.ulaw2lin(payload, 2)
        if self.name == "alaw":
            return audioop.alaw2lin(payload, 2)
        out = ctypes.create_string_buffer(5760 * 2)
        if self.name == "g722":
            k = self.lib.g722_decode(ctypes.c_void_p(self.dec), out, payload, len(payload))
        else:
            k = self.lib.opus_decode(ctypes.c_void_p(self.dec), payload, len(payload), out,
                                     5760, 0)
        return out.raw[:2 * max(k, 0)]


def tone(freq, rate, start, n):
    return struct.pack("<%dh" % n, *(int(9000 * math.sin(2 * math.pi * freq * (start + i) / rate))
                                    for i in range(n)))


DTMF_LOW = (697, 770, 852, 941)
DTMF_HIGH = (1209, 1336, 1477, 1633)
DTMF_KEYS = ("123A", "456B", "789C", "*0#D")


def dtmf_pcm(digit, rate, start, n):
    """n samples of digit's two tones (about -10 dBm0 each) at rate."""
    row = [i for i, keys in enumerate(DTMF_KEYS) if digit in keys][0]
    lo, hi = DTMF_LOW[row], DTMF_HIGH[DTMF_KEYS[row].index(digit)]
    return struct.pack("<%dh" % n, *(int(5000 * (math.sin(2 * math.pi * lo * (start + i) / rate) +
                                                math.sin(2 * math.pi * hi * (start + i) / rate)))
                                     for i in range(n)))


def dtmf_heard(pcm, rate):
    """The digits whose tones are in pcm (20 ms blocks, runs of 2 or more)."""
    block = rate // 50
    found, run, last = [], 0, None
    for k in range(0, len(pcm) - block + 1, block):
        x = pcm[k:k + block]
        energy = sum(v * v for v in x) / block
        lows = [goertzel(x, rate, f) for f in DTMF_LOW]
        highs = [goertzel(x, rate, f) for f in DTMF_HIGH]
        li, hi = lows.index(max(lows)), highs.index(max(highs))
        d = None
        if energy > 1e5 and sorted(lows)[-2] * 10 < lows[li] and sorted(highs)[-2] * 10 < highs[hi]:
            d = DTMF_KEYS[li][hi]
        if d and d == last:
            run += 1
            if run == 2:
                found.append(d)
        else:
            run = 1 if d else 0
        last = d
    return "".join(found)


def goertzel(samples, rate, freq):
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    return s1 * s1 + s2 * s2 - k * s1 * s2


class Phone:
    def __init__(self, user, secret, codec, sip_port, dtmf, rtcp_mux=False, event_clock=None,
                 port=0):
        self.user, self.secret, self.sip_port = user, secret, sip_port
        self.codec_name = codec
        self.dtmf = dtmf
        self.fixed_event_clock = event_clock
        self.rtcp_mux = rtcp_mux
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # A carrier is told from the phones by its address.
        self.host = "127.0.0.2" if port else "127.0.0.1"
        self.sip.bind((self.host, port))
        # RTP on a port whose next one is free for RTCP.
        for _ in range(50):
            self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.rtp.bind(("127.0.0.1", 0))
            self.rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                self.rtcp.bind(("127.0.0.1", self.rtp.getsockname()[1] + 1))
                break
            except OSError:
                self.rtp.close()
                self.rtcp.close()
        self.remote_ssrc = None
        self.reports = []  # RTCP SR/RR from plexusd: (pt, ssrc, packets or None, via)
        self.port = self.sip.getsockname()[1]
        self.rtp_port = self.rtp.getsockname()[1]
        self.tag = "t%d" % random.randrange(1 << 30)
        self.cseq = 1
        self.responses = []
        self.dialog = None  # (call_id, local_tag, remote_tag, remote_target, is_caller)
        self.remote_rtp = None
        self.remote_pt = None
        self.set_codec(codec)
        self.ssrc = random.randrange(1 << 32)
        self.seq = random.randrange(1 << 16)
        self.ts = random.randrange(1 << 32)
        self.sent_samples = 0
        self.heard = bytearray()
        self.info_digits = []
        self.events = {}  # timestamp -> (digit, duration, ended, arrival of its first packet)
        self.bad_pt = 0
        self.got_bye = False

    def set_codec(self, name):
        # Until the switch is agreed, packets of the old codec may still come.
        self.old_pt = getattr(self, "pt", None)
        self.codec_name = name
        self.codec = Codec(name)
        self.pt = STATIC_PT.get(name, DYN_PT)
        self.event_clock = self.fixed_event_clock or CLOCK[name]
        self.heard = bytearray()

    def sdp(self):
        lines = ["v=0", "o=- 1 %d IN IP4 127.0.0.1" % self.cseq, "s=-", "c=IN IP4 127.0.0.1",
                 "t=0 0"]
        pts = [str(self.pt)] + ([str(DTMF_PT)] if self.dtmf == "rfc4733" else [])
        lines.append("m=audio %d RTP/AVP %s" % (self.rtp_port, " ".join(pts)))
        lines.append("a=rtpmap:%d %s" % (self.pt, RTPMAP[self.codec_name]))
        if self.codec_name == "opus":
            lines.append("a=fmtp:%d useinbandfec=1;maxaveragebitrate=24000;stereo=0" % self.pt)
        if self.dtmf == "rfc4733":
            lines.append("a=rtpmap:%d telephone-event/%d" % (DTMF_PT, self.event_clock))
            lines.append("a=fmtp:%d 0-16" % DTMF_PT)
        lines += ["a=ptime:20", "a=sendrecv"]
        if self.rtcp_mux:
            lines.append("a=rtcp-mux")
        return "\r\n".join(lines) + "\r\n"

    def send(self, text):
        self.sip.sendto(text.encode(), ("127.0.0.1", self.sip_port))

    def request(self, method, uri, call_id, from_tag, to, cseq, body=None, extra=(),
                ctype="application/sdp"):
        h = ["%s %s SIP/2.0" % (method, uri),
             "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%d;rport" % (
                 self.host, self.port, random.randrange(1 << 40)),
             "Max-Forwards: 70",
             "From: <sip:%s@127.0.0.1>;tag=%s" % (self.user, from_tag),
             "To: %s" % to, "Call-ID: %s" % call_id, "CSeq: %d %s" % (cseq, method),
             "Contact: <sip:%s@%s:%d>" % (self.user, self.host, self.port),
             "User-Agent: mediaphone"] + list(extra)
        body = body or ""
        if body:
            h.append("Content-Type: %s" % ctype)
        h.append("Content-Length: %d" % len(body.encode()))
        self.send("\r\n".join(h) + "\r\n\r\n" + body)

    def digest(self, method, uri, challenge):
        params = dict(p.strip().split("=", 1) for p in challenge.split(" ", 1)[1].split(","))
        params = {k: v.strip('"') for k, v in params.items()}
        realm, nonce = params["realm"], params["nonce"]
        cnonce, nc = "%08x" % random.randrange(1 << 32), "00000001"
        ha1 = hashlib.md5(("%s:%s:%s" % (self.user, realm, self.secret)).encode()).hexdigest()
        ha2 = hashlib.md5(("%s:%s" % (method, uri)).encode()).hexdigest()
        resp = hashlib.md5(("%s:%s:%s:%s:auth:%s" % (ha1, nonce, nc, cnonce, ha2)).encode())
        return ('Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", '
                'algorithm=MD5, qop=auth, nc=%s, cnonce="%s"' % (
                    self.user, realm, nonce, uri, resp.hexdigest(), nc, cnonce))

    # -- RTP
    def send_rtp(self, freq, ms):
        if not self.remote_rtp:
            return
        n = self.codec.rate * ms // 1000
        payload = self.codec.encode(tone(freq, self.codec.rate, self.sent_samples, n))
        self.sent_samples += n
        self.seq = (self.seq + 1) & 0xffff
        self.ts = (self.ts + CLOCK[self.codec_name] * ms // 1000) & 0xffffffff
        hdr = struct.pack("!BBHII", 0x80, self.pt, self.seq, self.ts, self.ssrc)
        self.rtp.sendto(hdr + payload, self.remote_rtp)

    def send_audio(self, pcm, ms):
        payload = self.codec.encode(pcm)
        self.seq = (self.seq + 1) & 0xffff
        self.ts = (self.ts + CLOCK[self.codec_name] * ms // 1000) & 0xffffffff
        hdr = struct.pack("!BBHII", 0x80, self.pt, self.seq, self.ts, self.ssrc)
        self.rtp.sendto(hdr + payload, self.remote_rtp)

    def send_event(self, digit, duration, end, marker):
        code = "0123456789*#ABCD".index(digit)
        self.seq = (self.seq + 1) & 0xffff
        hdr = struct.pack("!BBHII", 0x80, DTMF_PT | (0x80 if marker else 0), self.seq,
                          self.ts, self.ssrc)
        self.rtp.sendto(hdr + struct.pack("!BBH", code, (0x80 if end else 0) | 10, duration),
                        self.remote_rtp)

    def read_rtp(self):
        while True:
            try:
                data = self.rtp.recv(4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            if len(data) < 12:
                continue
            if 192 <= data[1] <= 223:
                self.take_rtcp(data, "rtp port")
                continue
            pt = data[1] & 0x7f
            self.remote_ssrc = struct.unpack("!I", data[8:12])[0]
            payload = data[12 + 4 * (data[0] & 0x0f):]
            if pt == self.pt:
                self.heard += self.codec.decode(payload)
            elif pt == self.old_pt:
                pass
            elif self.dtmf == "rfc4733" and pt == DTMF_PT and len(payload) >= 4:
                ts = struct.unpack("!I", data[4:8])[0]
                code, flags, dur = struct.unpack("!BBH", payload[:4])
                self.events.setdefault(ts, (None, 0, False, time.monotonic()))
                self.events[ts] = ("0123456789*#ABCD"[code] if code < 16 else "?", dur,
                                   bool(flags & 0x80), self.events[ts][3])
            else:
                self.bad_pt += 1

    def take_rtcp(self, data, via):
        if len(data) >= 8 and data[1] in (200, 201):
            ssrc = struct.unpack("!I", data[4:8])[0]
            packets = struct.unpack("!I", data[20:24])[0] if data[1] == 200 and len(data) >= 28 \
                else None
            self.reports.append((data[1], ssrc, packets, via))

    def read_rtcp(self):
        while True:
            try:
                data = self.rtcp.recv(4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            self.take_rtcp(data, "rtcp port")

    def send_rr(self, fraction, lost, jitter):
        """A receiver report about plexusd's stream, with an SDES CNAME."""
        rr = struct.pack("!BBHI", 0x81, 201, 7, self.ssrc)
        rr += struct.pack("!IIIIII", self.remote_ssrc, fraction << 24 | lost, 0, jitter, 0, 0)
        sdes = struct.pack("!BBHIBB", 0x81, 202, 3, self.ssrc, 1, 2) + b"mp\0\0\0\0"
        dest = self.remote_rtp if self.rtcp_mux else (self.remote_rtp[0], self.remote_rtp[1] + 1)
        (self.rtp if self.rtcp_mux else self.rtcp).sendto(rr + sdes, dest)

    def hears(self, freq, other):
        pcm = struct.unpack("<%dh" % (len(self.heard) // 2), bytes(self.heard))
        # The last half second: after the path settled.
        pcm = pcm[-self.codec.rate // 2:]
        if len(pcm) < self.codec.rate // 4:
            return False, "only %d samples heard" % len(pcm)
        want = goertzel(pcm, self.codec.rate, freq)
        own = goertzel(pcm, self.codec.rate, other)
        energy = sum(x * x for x in pcm) / len(pcm)
        ok = want > 20 * own and energy > 1e5
        return ok, "%d Hz power %.3g, %d Hz power %.3g, mean energy %.3g" % (
            freq, want, other, own, energy)


def parse(data):
    text = data.decode("latin-1")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    return lines[0], hdrs, body


def sdp_media(body):
    port, addr, pts, rtpmap = None, None, [], {}
    for line in body.splitlines():
        if line.startswith("c=IN IP4 "):
            addr = line[9:].strip()
        elif line.startswith("m=audio "):
            f = line.split()
            port, pts = int(f[1]), [int(x) for x in f[3:]]
        elif line.startswith("a=rtpmap:"):
            pt, enc = line[9:].split(" ", 1)
            rtpmap[int(pt)] = enc.strip()
    return addr, port, pts, rtpmap


class Test:
    def __init__(self, args):
        self.args = args
        self.failures = 0
        self.caller = Phone(args.caller, args.caller_secret, args.caller_codec, args.sip_port,
                            args.caller_dtmf, rtcp_mux=args.rtcp,
                            event_clock=args.caller_event_clock)
        if args.bridge_ready:
            self.callee = Phone(args.caller, args.caller_secret, args.callee_codec,
                                args.sip_port, args.callee_dtmf)
        else:
            self.callee = Phone(args.callee, args.callee_secret, args.callee_codec,
                                args.sip_port, args.callee_dtmf,
                                event_clock=args.callee_event_clock, port=args.callee_port)

    def check(self, ok, what, detail=""):
        print("%s - %s%s" % ("ok" if ok else "FAIL", what, (": " + detail) if detail else ""))
        sys.stdout.flush()
        if not ok:
            self.failures += 1
        return ok

    def handle(self, phone, data):
        first, h, body = parse(data)
        if first.startswith("SIP/2.0"):
            phone.responses.append((int(first.split()[1]), h, body))
            return
        method = first.split()[0]
        via = "\r\n".join("Via: " + v for v in h.get("via", []))
        to = h["to"][0]
        if method == "INVITE" and ";tag=" not in to:
            to += ";tag=" + phone.tag
        if method == "INVITE":
            addr, port, pts, rtpmap = sdp_media(body)
            phone.remote_rtp = (addr, port)
            contact = h["contact"][0].strip("<>").split(">")[0]
            phone.dialog = (h["call-id"][0], phone.tag, h["from"][0].split("tag=")[1], contact,
                            False)
            phone.invite_offer = rtpmap
            sdp = phone.sdp()
            resp = ("SIP/2.0 200 OK\r\n%s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n"
                    "Contact: <sip:%s@%s:%d>\r\nContent-Type: application/sdp\r\n"
                    "Content-Length: %d\r\n\r\n%s" % (
                        via, h["from"][0], to, h["call-id"][0], h["cseq"][0], phone.user,
                        phone.host, phone.port, len(sdp), sdp))
            phone.send(resp)
            return
        if method == "BYE":
            phone.got_bye = True
        if method == "INFO":
            ctype = h.get("content-type", [""])[0].lower()
            if "dtmf" in ctype:
                digit = dur = None
                for line in body.splitlines():
                    k, _, v = line.partition("=")
                    if k.strip().lower() == "signal":
                        digit = v.strip()
                    elif k.strip().lower() == "duration":
                        dur = int(v.strip())
                if ctype.startswith("application/dtmf") and "relay" not in ctype:
                    digit = body.strip()
                phone.info_digits.append((digit, dur))
        if method != "ACK":
            phone.send("SIP/2.0 200 OK\r\n%s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\n"
                       "CSeq: %s\r\nContent-Length: 0\r\n\r\n" % (
                           via, h["from"][0], to, h["call-id"][0], h["cseq"][0]))

    def pump(self, seconds, until=None, rtp=None):
        """Handle SIP and RTP for up to seconds; rtp=(freq_caller, freq_callee)
        sends 20 ms of tone from each phone every 20 ms."""
        deadline = time.monotonic() + seconds
        next_tick = time.monotonic()
        socks = {self.caller.sip: self.caller, self.callee.sip: self.callee,
                 self.caller.rtp: self.caller, self.callee.rtp: self.callee,
                 self.caller.rtcp: self.caller, self.callee.rtcp: self.callee}
        while time.monotonic() < deadline:
            if until and until():
                return True
            now = time.monotonic()
            if rtp and now >= next_tick:
                self.caller.send_rtp(rtp[0], 20)
                self.callee.send_rtp(rtp[1], 20)
                next_tick += 0.02
            r, _, _ = select.select(list(socks), [], [], 0.005)
            for s in r:
                p = socks[s]
                if s is p.sip:
                    self.handle(p, s.recv(65535))
                elif s is p.rtcp:
                    p.read_rtcp()
                else:
                    p.read_rtp()
        return bool(until and until())

    def transaction(self, phone, method, uri, to, body=None, ctype="application/sdp",
                    call_id=None):
        """A request answered with a final response (digest challenge answered once)."""
        call_id = call_id or "mp-%d@127.0.0.1" % random.randrange(1 << 40)
        auth = []
        retried = False
        for _ in range(3):
            phone.responses = []
            phone.request(method, uri, call_id, phone.tag, to, phone.cseq, body, auth, ctype)
            # Only this request's answer: an earlier 401, which this phone
            # never ACKs, is retransmitted for a while and must not be
            # taken for it.
            cseq = "%d %s" % (phone.cseq, method)

            def finals():
                return [r for r in phone.responses
                        if r[0] >= 200 and r[1].get("cseq", [""])[0] == cseq]
            self.pump(5, lambda: bool(finals()))
            final = finals()
            phone.cseq += 1
            if not final:
                return None, call_id
            status, h, rbody = final[0]
            if status == 500 and "retry-after" in h and not retried:
                # RFC 3261 14.2: a re-INVITE that overlaps a transaction
                # still open at the far end gets a 500 with Retry-After;
                # a phone tries once more after that long.
                wait = int(h["retry-after"][0].split()[0])
                print("# %s got 500 %s, Retry-After %d" % (method, h.get("cseq", ["?"])[0], wait))
                retried = True
                self.pump(wait)
                continue
            if status in (401, 407) and not auth:
                key = "www-authenticate" if status == 401 else "proxy-authenticate"
                hdr = "Authorization" if status == 401 else "Proxy-Authorization"
                auth = ["%s: %s" % (hdr, phone.digest(method, uri, h[key][0]))]
                continue
            return final[0], call_id
        return None, call_id

    def audio_check(self, label):
        self.caller.heard = bytearray()
        self.callee.heard = bytearray()
        self.pump(self.args.seconds, rtp=(1000, 600))
        ok, detail = self.callee.hears(1000, 600)
        self.check(ok, "%s: the callee (%s) hears the caller's 1000 Hz tone" % (
            label, self.callee.codec_name), detail)
        ok, detail = self.caller.hears(600, 1000)
        self.check(ok, "%s: the caller (%s) hears the callee's 600 Hz tone" % (
            label, self.caller.codec_name), detail)

    def ring(self, phone, exten):
        """INVITE exten through plexusd (the digest challenge answered) and
        return (uri, to, call_id, cseq) once it rings, or None."""
        uri = "sip:%s@127.0.0.1:%d" % (exten, self.args.sip_port)
        to = "<%s>" % uri
        call_id = "mp-%d@127.0.0.1" % random.randrange(1 << 40)
        auth = []
        for _ in range(2):
            phone.responses = []
            phone.request("INVITE", uri, call_id, phone.tag, to, phone.cseq, phone.sdp(), auth)
            self.pump(5, lambda: any(r[0] >= 180 for r in phone.responses))
            got = [r for r in phone.responses if r[0] >= 180]
            phone.cseq += 1
            if not got:
                return None
            status, h, _ = got[0]
            if status in (401, 407) and not auth:
                key = "www-authenticate" if status == 401 else "proxy-authenticate"
                hdr = "Authorization" if status == 401 else "Proxy-Authorization"
                auth = ["%s: %s" % (hdr, phone.digest("INVITE", uri, h[key][0]))]
                continue
            return (uri, to, call_id, phone.cseq - 1) if status < 200 else None
        return None

    @staticmethod
    def finals(phone, cseq):
        """The final responses phone got to its request numbered cseq."""
        return [r for r in phone.responses
                if r[0] >= 200 and r[1].get("cseq", [""])[0].split()[:1] == [str(cseq)]]

    def answered(self, phone, call):
        """The 200 to phone's INVITE: ACK it, point RTP at plexusd; the
        dialog's To, or None."""
        uri, to, call_id, cseq = call
        final = self.finals(phone, cseq)
        if not final or final[0][0] != 200:
            return None
        status, h, body = final[0]
        addr, port, pts, rtpmap = sdp_media(body)
        phone.remote_rtp = (addr, port)
        self.check(rtpmap.get(pts[0], "").lower() == RTPMAP[phone.codec_name].lower(),
                   "plexusd answers the %s caller with %s" % (phone.codec_name,
                                                              RTPMAP[phone.codec_name]),
                   "m=audio payloads %s, rtpmap %s" % (pts, rtpmap))
        dialog_to = to + ";tag=" + h["to"][0].split("tag=")[1]
        phone.request("ACK", uri, call_id, phone.tag, dialog_to, cseq)
        return dialog_to

    def run_operator_bridge(self):
        a = self.args
        first, second = self.caller, self.callee
        calls = []
        for phone, exten in ((first, a.callee), (second, a.bridge_exten)):
            call = self.ring(phone, exten)
            if not self.check(call is not None, "the %s caller calls %s and it rings" % (
                    phone.codec_name, exten), str(phone.responses and phone.responses[-1][0])):
                return
            calls.append(call)
        with open(a.bridge_ready, "w") as f:
            f.write("ringing\n")

        def both_final():
            return all(self.finals(p, c[3]) for p, c in ((first, calls[0]), (second, calls[1])))
        self.check(self.pump(15, both_final), "both callers are answered (the operator's Bridge)",
                   "responses: %s / %s" % ([r[0] for r in first.responses],
                                           [r[0] for r in second.responses]))
        tos = [self.answered(p, c) for p, c in ((first, calls[0]), (second, calls[1]))]
        if not self.check(all(tos), "both answers are 200"):
            return
        self.audio_check("bridged by the operator")
        uri, _, call_id, _ = calls[0]
        final, _ = self.transaction(first, "BYE", uri, tos[0], call_id=call_id)
        self.check(final is not None and final[0] == 200, "the first caller's BYE is answered 200",
                   str(final and final[0]))
        self.check(self.pump(5, lambda: second.got_bye),
                   "the second caller gets BYE: its dialplan went on after Dial and ended")
        self.check(first.bad_pt == 0 and second.bad_pt == 0,
                   "no packet of an unexpected payload type reached a phone",
                   "first %d, second %d" % (first.bad_pt, second.bad_pt))

    def run(self):
        a = self.args
        if a.bridge_ready:
            self.run_operator_bridge()
            return
        if not a.callee_port:
            reg_uri = "sip:127.0.0.1:%d" % a.sip_port
            final, _ = self.transaction(self.callee, "REGISTER", reg_uri,
                                        "<sip:%s@127.0.0.1>" % a.callee)
            if not self.check(final is not None and final[0] == 200, "the callee registers",
                              str(final and final[0])):
                return
        uri = "sip:%s@127.0.0.1:%d" % (a.callee, a.sip_port)
        to = "<%s>" % uri
        final, call_id = self.transaction(self.caller, "INVITE", uri, to, self.caller.sdp())
        if not self.check(final is not None and final[0] == 200,
                          "%s calls %s through plexusd" % (a.caller_codec, a.callee_codec),
                          str(final and final[0])):
            return
        status, h, body = final
        addr, port, pts, rtpmap = sdp_media(body)
        self.caller.remote_rtp = (addr, port)
        self.check(rtpmap.get(pts[0], "").lower() == RTPMAP[a.caller_codec].lower(),
                   "plexusd answers the caller with %s" % RTPMAP[a.caller_codec],
                   "m=audio payloads %s, rtpmap %s" % (pts, rtpmap))
        if self.caller.dtmf == "rfc4733":
            want = "telephone-event/%d" % self.caller.event_clock
            self.check([v for v in rtpmap.values() if v.startswith("telephone-event")] == [want],
                       "plexusd answers the caller with %s" % want, str(rtpmap))
        remote_tag = h["to"][0].split("tag=")[1]
        self.caller.request("ACK", uri, call_id, self.caller.tag, to + ";tag=" + remote_tag,
                            self.caller.cseq - 1)
        self.check(self.pump(5, lambda: self.callee.remote_rtp is not None),
                   "the callee is called")
        offer = getattr(self.callee, "invite_offer", {})
        self.check(any(v.lower() == RTPMAP[a.callee_codec].lower() for v in offer.values()),
                   "plexusd offers the callee %s" % RTPMAP[a.callee_codec], str(offer))
        if self.callee.dtmf == "rfc4733" and self.callee.fixed_event_clock is None:
            want = "telephone-event/%d" % self.callee.event_clock
            self.check(want in offer.values(), "plexusd offers the callee %s" % want, str(offer))
        self.audio_check("after answer")

        if a.dtmf_digits:
            self.send_dtmf(uri, call_id, to + ";tag=" + remote_tag)

        if a.rtcp:
            self.rtcp_check()

        if a.reinvite_codec:
            self.caller.set_codec(a.reinvite_codec)
            final, _ = self.transaction(self.caller, "INVITE", uri, to + ";tag=" + remote_tag,
                                        self.caller.sdp(), call_id=call_id)
            ok = final is not None and final[0] == 200
            if self.check(ok, "a re-INVITE to %s is accepted" % a.reinvite_codec,
                          str(final and (final[0], final[1]))):
                addr, port, pts, rtpmap = sdp_media(final[2])
                self.check(rtpmap.get(pts[0], "").lower() ==
                           RTPMAP[a.reinvite_codec].lower(),
                           "the answer to the re-INVITE holds %s" % a.reinvite_codec,
                           str(rtpmap))
                self.caller.request("ACK", uri, call_id, self.caller.tag,
                                    to + ";tag=" + remote_tag, self.caller.cseq - 1)
                # What plexusd sent before it took the answer has arrived by now.
                self.pump(0.2)
                self.caller.old_pt = None
                self.audio_check("after the re-INVITE")

        final, _ = self.transaction(self.caller, "BYE", uri, to + ";tag=" + remote_tag,
                                    call_id=call_id)
        self.check(final is not None and final[0] == 200, "BYE is answered 200",
                   str(final and final[0]))
        self.check(self.caller.bad_pt == 0 and self.callee.bad_pt == 0,
                   "no packet of an unexpected payload type reached a phone",
                   "caller %d, callee %d" % (self.caller.bad_pt, self.callee.bad_pt))

    def rtcp_check(self):
        """Each phone reports 25 % loss (5 packets) and 10 ms of jitter on
        plexusd's stream (the caller with rtcp-mux on its RTP port, the
        callee on port + 1), keeps its audio going while plexusd's console
        is looked at (--hold), and must get plexusd's sender reports."""
        for phone, via in ((self.caller, "rtp port"), (self.callee, "rtcp port")):
            phone.reports = []
            phone.send_rr(64, 5, CLOCK[phone.codec_name] // 100)
        self.pump(self.args.hold, rtp=(1000, 600))
        for phone, via in ((self.caller, "rtp port"), (self.callee, "rtcp port")):
            srs = [r for r in phone.reports if r[0] == 200]
            self.check(bool(srs) and all(r[1] == phone.remote_ssrc and r[2] and r[3] == via
                                         for r in srs),
                       "%s gets plexusd's sender reports on its %s" % (phone.user, via),
                       str(phone.reports))

    def send_dtmf(self, uri, call_id, to):
        digits = self.args.dtmf_digits
        self.callee.heard = bytearray()  # tones are looked for from here on
        if self.caller.dtmf == "info":
            # Bodies that hold no digit are refused and change nothing.
            for ctype, body, want in (("application/dtmf-relay", "Signal=Z\r\n", 400),
                                      ("application/dtmf-relay", "Duration=100\r\n", 400),
                                      ("application/dtmf", "55", 400),
                                      ("text/plain", "Signal=5\r\n", 415)):
                final, _ = self.transaction(self.caller, "INFO", uri, to, body, ctype, call_id)
                self.check(final is not None and final[0] == want,
                           "INFO %s %r is answered %d" % (ctype, body, want),
                           str(final and final[0]))
        for d in digits:
            if self.caller.dtmf == "info":
                body = "Signal=%s\r\nDuration=250\r\n" % d
                final, _ = self.transaction(self.caller, "INFO", uri, to, body,
                                            "application/dtmf-relay", call_id)
                self.check(final is not None and final[0] == 200,
                           "INFO with digit %s is answered 200" % d, str(final and final[0]))
            elif self.caller.dtmf == "inband":
                # 250 ms of the digit's tones in the audio, then silence.
                rate = self.caller.codec.rate
                for k in range(13):
                    self.caller.send_audio(dtmf_pcm(d, rate, k * rate // 50, rate // 50), 20)
                    self.pump(0.02)
                for k in range(5):
                    self.caller.send_audio(b"\0\0" * (rate // 50), 20)
                    self.pump(0.02)
            else:
                # 250 ms of event: start (marked), updates, three end
                # packets, in the caller's event clock.
                clock = self.caller.event_clock
                self.caller.ts = (self.caller.ts + CLOCK[self.caller.codec_name] // 50) & 0xffffffff
                for k in range(1, 7):
                    self.caller.send_event(d, k * clock // 20, False, k == 1)
                    self.pump(0.02)
                for _ in range(3):
                    self.caller.send_event(d, clock // 4, True, False)
                self.pump(0.1)
            self.pump(0.2)
        self.pump(1.0)
        if self.callee.dtmf == "inband":
            pcm = struct.unpack("<%dh" % (len(self.callee.heard) // 2), bytes(self.callee.heard))
            got = dtmf_heard(pcm, self.callee.codec.rate)
            self.check(got == digits, "the callee hears the digits %s as tones" % digits,
                       "got %r" % got)
        elif self.callee.dtmf == "info":
            got = "".join(x[0] or "?" for x in self.callee.info_digits)
            durs = [x[1] for x in self.callee.info_digits]
            self.check(got == digits, "the callee gets the digits %s as SIP INFO" % digits,
                       "got %r, durations %s" % (got, durs))
            self.check(all(x and 150 <= x <= 400 for x in durs),
                       "with durations near 250 ms", str(durs))
        else:
            ends = sorted(((ts, v) for ts, v in self.callee.events.items() if v[2]),
                          key=lambda e: e[1][3])
            got = "".join(v[0] for _, v in ends)
            self.check(got == digits, "the callee gets the digits %s as RFC 4733 events" % digits,
                       "got %r" % got)
            clock = self.callee.event_clock
            self.check(all(clock * 15 // 100 <= v[1] <= clock * 4 // 10 for _, v in ends),
                       "with durations near 250 ms (%d at %d Hz)" % (clock // 4, clock), str(ends))
            # Timestamps in the audio's clock (48 kHz for Opus, not 8 kHz
            # units): on a stream plexusd makes (no audio meanwhile, so
            # the stream keeps the wall clock) they move between two
            # digits as far as the time between their arrivals says,
            # within 100 ms.
            audio = CLOCK[self.callee.codec_name]
            steps = [((b[0] - a[0]) % (1 << 32), (b[1][3] - a[1][3]) * audio)
                     for a, b in zip(ends, ends[1:])]
            if audio != 8000:
                self.check(all(abs(dts - dt) <= audio / 10 for dts, dt in steps),
                           "timestamped in the %d Hz audio clock" % audio,
                           "timestamp steps against arrival steps: %s" % steps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sip-port", type=int, required=True)
    ap.add_argument("--caller", required=True)
    ap.add_argument("--caller-secret", required=True)
    ap.add_argument("--caller-codec", required=True, choices=sorted(RATE))
    ap.add_argument("--callee", required=True)
    ap.add_argument("--callee-secret", default="")
    ap.add_argument("--callee-port", type=int, default=0,
                    help="the callee is a carrier on this port (a trunk's host): it does not "
                    "register, --callee is the number dialled")
    ap.add_argument("--bridge-exten")
    ap.add_argument("--bridge-ready")
    ap.add_argument("--callee-codec", required=True, choices=sorted(RATE))
    ap.add_argument("--caller-dtmf", default="rfc4733", choices=["rfc4733", "info", "inband"])
    ap.add_argument("--callee-dtmf", default="rfc4733", choices=["rfc4733", "info", "inband"])
    ap.add_argument("--dtmf-digits", default="")
    ap.add_argument("--caller-event-clock", type=int,
                    help="telephone-event clock of the caller (default: its audio's)")
    ap.add_argument("--callee-event-clock", type=int,
                    help="telephone-event clock of the callee (default: its audio's)")
    ap.add_argument("--reinvite-codec", choices=sorted(RATE))
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--rtcp", action="store_true",
                    help="RTCP checks: the caller offers rtcp-mux; both report loss and jitter")
    ap.add_argument("--hold", type=float, default=3.0,
                    help="seconds the call stays up for the RTCP checks")
    args = ap.parse_args()
    t = Test(args)
    t.run()
    sys.exit(1 if t.failures else 0)


if __name__ == "__main__":
    main()
