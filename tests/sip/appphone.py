#!/usr/bin/python3
"""appphone.py: SIP phones that call plexusd's media applications and
check what they hear (tests/sip/apps_media.sh). Built on mediaphone.py's
phone (SIP over UDP with digest, RTP in G.711/G.722/Opus, Goertzel).

Scenarios (the first argument):
  echo      call EXTEN, send a 1000 Hz tone: the packets come back (counted)
            and the tone heard is 1000 Hz; a digit comes back as an RFC 4733
            event; '#' ends Echo (plexusd then hangs up: BYE).
  talk      call EXTEN, send a tone for --seconds, then hang up (BYE), or
            with --wait-bye wait for plexusd to hang up, or with --digits
            press those digits (RFC 4733) and wait for plexusd to hang up.
  listen    N callers (--callers) call EXTEN at once and check that each
            hears --freq (or any energy when 0); while they listen, the
            console command --show is run and printed.
  hold      the caller calls --callee through Dial; both talk; the callee
            puts the caller on hold (re-INVITE a=sendonly) and stops
            sending: the caller hears --freq (the holder's music class),
            the holder receives nothing; after unhold (a=sendrecv) each
            hears the other's tone again.
Only 127.0.0.1 is used. One line per check; exit status 0 when all passed.
"""
import argparse
import os
import select
import shlex
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mediaphone as mp  # noqa: E402


class AppPhone(mp.Phone):
    def __init__(self, *args):
        super().__init__(*args)
        self.requests = []
        self.rx_audio = 0
        self.direction = "sendrecv"
        self.invite_from = None

    def sdp(self):
        return super().sdp().replace("a=sendrecv", "a=" + self.direction)

    def energy(self, last_s=0.5):
        pcm = struct.unpack("<%dh" % (len(self.heard) // 2), bytes(self.heard))
        pcm = pcm[-int(self.codec.rate * last_s):]
        if not pcm:
            return 0.0, pcm
        return sum(x * x for x in pcm) / len(pcm), pcm


class Count(AppPhone):
    """Counts received audio packets one by one."""

    def read_rtp(self):
        while True:
            try:
                data = self.rtp.recv(4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            if len(data) < 12:
                continue
            pt = data[1] & 0x7f
            payload = data[12 + 4 * (data[0] & 0x0f):]
            if pt == self.pt:
                self.rx_audio += 1
                self.heard += self.codec.decode(payload)
            elif pt == mp.DTMF_PT and len(payload) >= 4:
                ts = struct.unpack("!I", data[4:8])[0]
                code, flags, dur = struct.unpack("!BBH", payload[:4])
                self.events[ts] = ("0123456789*#ABCD"[code] if code < 16 else "?", dur,
                                   bool(flags & 0x80))
            else:
                self.bad_pt += 1


class Apps(mp.Test):
    def __init__(self, args):
        self.args = args
        self.failures = 0
        self.phones = []

    def phone(self, user):
        p = Count(user, "s" + user, self.args.codec, self.args.sip_port, "rfc4733")
        self.phones.append(p)
        return p

    def handle(self, phone, data):
        first, h, body = mp.parse(data)
        if not first.startswith("SIP/2.0"):
            method = first.split()[0]
            phone.requests.append(method)
            if method == "INVITE":
                phone.invite_from = h["from"][0]
        super().handle(phone, data)

    def pump(self, seconds, until=None, rtp=None):
        """Handle SIP and RTP of every phone; rtp = {phone: freq} sends
        20 ms of tone from each of those phones every 20 ms."""
        deadline = time.monotonic() + seconds
        next_tick = time.monotonic()
        socks = {}
        for p in self.phones:
            socks[p.sip] = p
            socks[p.rtp] = p
        while time.monotonic() < deadline:
            if until and until():
                return True
            now = time.monotonic()
            if rtp and now >= next_tick:
                for p, freq in rtp.items():
                    p.send_rtp(freq, 20)
                next_tick += 0.02
            r, _, _ = select.select(list(socks), [], [], 0.005)
            for s in r:
                p = socks[s]
                if s is p.sip:
                    self.handle(p, s.recv(65535))
                else:
                    p.read_rtp()
        return bool(until and until())

    # -- calls
    def call(self, p, exten):
        uri = "sip:%s@127.0.0.1:%d" % (exten, self.args.sip_port)
        to = "<%s>" % uri
        final, call_id = self.transaction(p, "INVITE", uri, to, p.sdp())
        if not self.check(final is not None and final[0] == 200, "%s calls %s" % (p.user, exten),
                          str(final and final[0])):
            return None
        status, h, body = final
        addr, port, pts, rtpmap = mp.sdp_media(body)
        p.remote_rtp = (addr, port)
        to += ";tag=" + h["to"][0].split("tag=")[1]
        p.request("ACK", uri, call_id, p.tag, to, p.cseq - 1)
        return (uri, call_id, to)

    def bye(self, p, dialog, label):
        uri, call_id, to = dialog
        final, _ = self.transaction(p, "BYE", uri, to, call_id=call_id)
        self.check(final is not None and final[0] == 200, "%s: BYE is answered 200" % label,
                   str(final and final[0]))

    def send_digit(self, p, d):
        p.ts = (p.ts + 160) & 0xffffffff
        for k in range(1, 7):
            p.send_event(d, k * 400, False, k == 1)
            self.pump(0.02)
        for _ in range(3):
            p.send_event(d, 2000, True, False)
        self.pump(0.05)

    def show(self):
        if not self.args.show:
            return
        out = subprocess.run(shlex.split(self.args.show), capture_output=True, text=True,
                             timeout=20)
        for line in out.stdout.splitlines():
            print("show: " + line)
        sys.stdout.flush()

    # -- scenarios
    def run_echo(self):
        p = self.phone(self.args.caller)
        d = self.call(p, self.args.exten)
        if not d:
            return
        p.sent_samples = 0
        self.pump(2.0, rtp={p: 1000})
        self.pump(0.3)
        sent = p.sent_samples // (p.codec.rate // 50)
        self.check(sent - 5 <= p.rx_audio <= sent + 1,
                   "the packets the caller sends come back", "sent %d, received %d" % (
                       sent, p.rx_audio))
        ok, detail = p.hears(1000, 600)
        self.check(ok, "the caller hears its own 1000 Hz tone", detail)
        self.send_digit(p, "5")
        self.pump(1.0)
        got = "".join(v[0] for _, v in sorted(p.events.items()) if v[2])
        self.check(got == "5", "the digit 5 comes back as an RFC 4733 event", repr(got))
        self.send_digit(p, "#")
        ended = self.pump(5, lambda: "BYE" in p.requests)
        self.check(ended, "# ends Echo and the dialplan hangs up")
        if not ended:
            self.bye(p, d, "echo")

    def run_talk(self):
        p = self.phone(self.args.caller)
        d = self.call(p, self.args.exten)
        if not d:
            return
        if self.args.digits:
            # Talk, then press the digits (the tone goes on meanwhile).
            self.pump(self.args.seconds, rtp={p: self.args.freq})
            for d in self.args.digits:
                self.send_digit(p, d)
            ended = self.pump(5, lambda: "BYE" in p.requests, rtp={p: self.args.freq})
            self.check(ended, "plexusd hangs up after the digits %s" % self.args.digits)
        elif self.args.wait_bye:
            ended = self.pump(self.args.seconds + 5, lambda: "BYE" in p.requests,
                              rtp={p: self.args.freq})
            self.check(ended, "plexusd hangs up once the application is done")
        else:
            self.pump(self.args.seconds, rtp={p: self.args.freq})
            self.bye(p, d, "talk")

    def run_listen(self):
        callers = [self.phone(str(int(self.args.caller) + i)) for i in range(self.args.callers)]
        dialogs = []
        for p in callers:
            dialogs.append(self.call(p, self.args.exten))
        if not all(dialogs):
            return
        for p in callers:
            p.heard = bytearray()
        self.pump(2.0)
        self.show()
        for p in callers:
            energy, pcm = p.energy()
            ok = energy > 1e5 and len(pcm) >= p.codec.rate // 4
            detail = "mean energy %.3g over %d samples" % (energy, len(pcm))
            if ok and self.args.freq:
                ok, detail = p.hears(self.args.freq, 1700)
            self.check(ok, "%s hears the music%s" % (
                p.user, " (%d Hz)" % self.args.freq if self.args.freq else ""), detail)
        for p, d in zip(callers, dialogs):
            self.bye(p, d, p.user)

    def reinvite(self, p, direction, label):
        call_id, _, remote_tag, target, _ = p.dialog
        p.direction = direction
        to = p.invite_from
        final, _ = self.transaction(p, "INVITE", target, to, p.sdp(), call_id=call_id)
        ok = self.check(final is not None and final[0] == 200, label, str(final and final[0]))
        if ok:
            p.request("ACK", target, call_id, p.tag, to, p.cseq - 1)
        return ok

    def run_hold(self):
        a = self.args
        caller = self.phone(a.caller)
        callee = self.phone(a.callee)
        final, _ = self.transaction(callee, "REGISTER", "sip:127.0.0.1:%d" % a.sip_port,
                                    "<sip:%s@127.0.0.1>" % a.callee)
        if not self.check(final is not None and final[0] == 200, "the callee registers"):
            return
        d = self.call(caller, a.callee)
        if not d or not self.check(self.pump(5, lambda: callee.remote_rtp is not None),
                                   "the callee is called"):
            return
        self.pump(1.0, rtp={caller: 1000, callee: 600})
        self.check(callee.hears(1000, 600)[0] and caller.hears(600, 1000)[0],
                   "before hold each hears the other")
        if not self.reinvite(callee, "sendonly", "the callee puts the caller on hold"):
            return
        self.pump(0.5, rtp={caller: 1000})
        caller.heard = bytearray()
        callee.rx_audio = 0
        self.pump(2.0, rtp={caller: 1000})
        self.show()
        ok, detail = caller.hears(a.freq, 600)
        self.check(ok, "the held caller hears the holder's class (%d Hz)" % a.freq, detail)
        self.check(callee.rx_audio == 0, "the holder receives no RTP while holding",
                   "%d packets" % callee.rx_audio)
        if not self.reinvite(callee, "sendrecv", "the callee takes the caller off hold"):
            return
        self.pump(0.5, rtp={caller: 1000, callee: 600})
        caller.heard = bytearray()
        callee.heard = bytearray()
        self.pump(1.5, rtp={caller: 1000, callee: 600})
        ok, detail = caller.hears(600, 1000)
        self.check(ok, "after unhold the caller hears the callee's 600 Hz again", detail)
        ok, detail = callee.hears(1000, 600)
        self.check(ok, "after unhold the callee hears the caller's 1000 Hz again", detail)
        self.bye(caller, d, "hold")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=["echo", "talk", "listen", "hold"])
    ap.add_argument("--sip-port", type=int, required=True)
    ap.add_argument("--caller", required=True, help="user; its secret is s<user>")
    ap.add_argument("--callee")
    ap.add_argument("--exten", default="")
    ap.add_argument("--codec", default="ulaw", choices=sorted(mp.RATE))
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--freq", type=int, default=1000)
    ap.add_argument("--callers", type=int, default=1)
    ap.add_argument("--wait-bye", action="store_true")
    ap.add_argument("--digits", default="", help="talk: press these after --seconds")
    ap.add_argument("--show", default="", help="console command line to run while listening")
    args = ap.parse_args()
    t = Apps(args)
    getattr(t, "run_" + args.scenario)()
    sys.exit(1 if t.failures else 0)


if __name__ == "__main__":
    main()
