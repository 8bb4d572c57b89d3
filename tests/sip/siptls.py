#!/usr/bin/python3
"""siptls.py: SIP over TLS for tests/sip/tls.sh, where SIPp cannot go
(Debian's SIPp 3.6.1 is built without OpenSSL). Python's ssl module
against the real plexusd, on loopback only; every wait is bounded.

  siptls.py probe HOST PORT MAXVER
      TLS handshake only, with the client capped at MAXVER (1.1, 1.2, 1.3):
      exit 0 and print the version when it succeeds, 1 when refused.
  siptls.py registrar LISTEN_IP PORT CERTPEM USER PASS REALM EXPIRES COUNT
      a carrier's registrar on TLS: the first REGISTER of a connection is
      challenged (401), one with a right digest gets 200 with EXPIRES; it
      exits 0 after COUNT registrations granted (1 on a wrong digest).
  siptls.py phone HOST PORT USER PASS ACTION [ARG]
      a phone on TLS to plexusd. ACTION "answer": REGISTER (answering the
      challenge), then answer the first INVITE (180, 200 with SDP), wait
      for ACK and for BYE (200). ACTION "call" ARG: INVITE ARG (answering
      the challenge), ACK the 200, keep the call 1 s, BYE. ACTION
      "register" [SECONDS]: REGISTER (answering the challenge) and exit
      0 on 200, 1 on another final response, 2 when none came within
      SECONDS (default 10).

Options before the command, for the transport checks: "--tcp" makes the
phone talk plain TCP instead of TLS; "--via PROTO" makes its Via and
Contact claim PROTO (TCP, TLS) whatever it really uses.

Every message sent or received is printed: ">>> " or "<<< " with its first
line, then its header lines indented, so the shell test can grep them.
Exit status: 0 when the exchange went as described, 1 otherwise (the
reason on the last line), 2 on a timeout.
"""
import hashlib
import warnings
import os
import re
import socket
import ssl
import sys
import time

warnings.simplefilter("ignore", DeprecationWarning)
DEADLINE = time.monotonic() + 30


def say(prefix, data):
    head = data.split("\r\n\r\n", 1)[0].split("\r\n")
    print(prefix + head[0])
    for line in head[1:]:
        print("    " + line)
    sys.stdout.flush()


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, text):
        say(">>> ", text)
        self.sock.sendall(text.encode("latin-1"))

    def recv(self, timeout=10):
        """One SIP message (str), or None when the peer closed."""
        end = min(time.monotonic() + timeout, DEADLINE)
        while True:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"^(?:Content-Length|l)\s*:\s*(\d+)", head, re.I | re.M)
                length = int(m.group(1)) if m else 0
                if len(rest) >= length:
                    msg = head + sep + rest[:length]
                    self.buf = rest[length:]
                    text = msg.decode("latin-1")
                    if text.strip():
                        say("<<< ", text)
                        return text
                    continue
            left = end - time.monotonic()
            if left <= 0:
                print("--- timeout waiting for a message")
                sys.exit(2)
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                return None
            self.buf += data
            # CRLF keep-alives between messages
            while self.buf.startswith(b"\r\n"):
                self.buf = self.buf[2:]


def header(msg, name):
    m = re.search(r"^%s\s*:\s*(.*)$" % re.escape(name), msg, re.I | re.M)
    return m.group(1).strip() if m else None


def headers(msg, name):
    return [v.strip() for v in re.findall(r"^%s\s*:\s*(.*)$" % re.escape(name), msg, re.I | re.M)]


def status(msg):
    m = re.match(r"SIP/2\.0 (\d{3})", msg)
    return int(m.group(1)) if m else 0


def method(msg):
    m = re.match(r"([A-Z]+) ", msg)
    return m.group(1) if m else None


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def auth_params(value):
    return dict((k, v1 or v2) for k, v1, v2 in re.findall(r'(\w+)=(?:"([^"]*)"|([^\s,]+))', value))


def digest(challenge, meth, uri, user, password):
    p = auth_params(challenge)
    ha1 = md5("%s:%s:%s" % (user, p["realm"], password))
    ha2 = md5("%s:%s" % (meth, uri))
    out = 'Digest username="%s", realm="%s", nonce="%s", uri="%s", algorithm=MD5' % (
        user, p["realm"], p["nonce"], uri)
    if "qop" in p and "auth" in p["qop"].split(","):
        cnonce, nc = os.urandom(8).hex(), "00000001"
        resp = md5("%s:%s:%s:%s:auth:%s" % (ha1, p["nonce"], nc, cnonce, ha2))
        out += ', qop=auth, nc=%s, cnonce="%s"' % (nc, cnonce)
    else:
        resp = md5("%s:%s:%s" % (ha1, p["nonce"], ha2))
    out += ', response="%s"' % resp
    if "opaque" in p:
        out += ', opaque="%s"' % p["opaque"]
    return out


def fail(why):
    print("FAIL: " + why)
    sys.exit(1)


def client_context(maxver=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # plexusd's test certificate is self-signed
    if maxver:
        # Let the client go as low as it may, so that only the server's floor refuses.
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        ctx.maximum_version = {"1.1": ssl.TLSVersion.TLSv1_1, "1.2": ssl.TLSVersion.TLSv1_2,
                               "1.3": ssl.TLSVersion.TLSv1_3}[maxver]
    return ctx


def connect(host, port, maxver=None):
    raw = socket.create_connection((host, port), timeout=5)
    return client_context(maxver).wrap_socket(raw)


# ---------------------------------------------------------------- probe

def probe(host, port, maxver):
    try:
        s = connect(host, int(port), maxver)
    except (ssl.SSLError, OSError) as e:
        print("refused: %s" % e)
        return 1
    print("handshake: %s" % s.version())
    s.close()
    return 0


# ---------------------------------------------------------------- registrar

def registrar(ip, port, cert, user, password, realm, expires, count):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((ip, int(port)))
    lsock.listen(4)
    print("--- listening on %s:%s (TLS)" % (ip, port))
    sys.stdout.flush()
    granted = 0
    nonce = os.urandom(8).hex()
    while granted < int(count):
        left = DEADLINE - time.monotonic()
        if left <= 0:
            print("--- timeout waiting for a connection")
            sys.exit(2)
        lsock.settimeout(left)
        try:
            raw, addr = lsock.accept()
        except socket.timeout:
            continue
        try:
            c = Conn(ctx.wrap_socket(raw, server_side=True))
        except (ssl.SSLError, OSError) as e:
            print("--- handshake failed: %s" % e)
            continue
        print("--- connection from %s:%d, %s" % (addr[0], addr[1], c.sock.version()))
        while granted < int(count):
            msg = c.recv(15)
            if msg is None:
                print("--- connection closed")
                break
            if method(msg) is None:
                continue
            base = "\r\n".join("%s: %s" % (h, v) for h in ("Via", "From", "To", "Call-ID", "CSeq")
                               for v in headers(msg, h))
            if method(msg) != "REGISTER":
                c.send("SIP/2.0 200 OK\r\n%s\r\nContent-Length: 0\r\n\r\n" % base)
                continue
            auth = header(msg, "Authorization")
            if not auth:
                c.send('SIP/2.0 401 Unauthorized\r\n%s\r\nWWW-Authenticate: Digest realm="%s", '
                       'nonce="%s", algorithm=MD5\r\nContent-Length: 0\r\n\r\n' % (base, realm, nonce))
                continue
            p = auth_params(auth)
            want = md5("%s:%s:%s" % (md5("%s:%s:%s" % (user, realm, password)), p.get("nonce"),
                                       md5("REGISTER:%s" % p.get("uri"))))
            if p.get("username") != user or p.get("response") != want:
                c.send("SIP/2.0 403 Forbidden\r\n%s\r\nContent-Length: 0\r\n\r\n" % base)
                fail("wrong credentials: %s" % auth)
            contact = header(msg, "Contact") or ""
            contact = re.sub(r";\s*expires=\d+", "", contact)
            c.send("SIP/2.0 200 OK\r\n%s\r\nContact: %s;expires=%s\r\nContent-Length: 0\r\n\r\n" % (
                base, contact, expires))
            granted += 1
            print("--- granted %d of %s" % (granted, count))
    # Keep the connection a moment: plexusd must not see a reset as a failure.
    time.sleep(0.2)
    return 0


# ---------------------------------------------------------------- phone

class Phone:
    def __init__(self, host, port, user, password, plain=False, via=None):
        self.host, self.port = host, int(port)
        self.user, self.password = user, password
        if plain:
            self.c = Conn(socket.create_connection((host, self.port), timeout=5))
        else:
            self.c = Conn(connect(host, self.port))
        self.proto = via or ("TCP" if plain else "TLS")
        self.lhost, self.lport = self.c.sock.getsockname()[:2]
        self.tag = os.urandom(4).hex()
        self.cseq = 0
        print("--- connected from %s:%d, %s" % (self.lhost, self.lport,
                                                "plain TCP" if plain else self.c.sock.version()))

    def contact(self):
        return "<sip:%s@%s:%d;transport=%s>" % (self.user, self.lhost, self.lport, self.proto.lower())

    def request(self, meth, uri, call_id, to, extra="", body="", cseq=None, branch=None):
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        branch = branch or "z9hG4bK" + os.urandom(6).hex()
        msg = ("%s %s SIP/2.0\r\nVia: SIP/2.0/%s %s:%d;branch=%s;rport\r\nMax-Forwards: 70\r\n"
               "From: <sip:%s@%s>;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n"
               "Contact: %s\r\n%sContent-Length: %d\r\n\r\n%s" % (
                   meth, uri, self.proto, self.lhost, self.lport, branch, self.user, self.host, self.tag, to,
                   call_id, cseq, meth, self.contact(), extra, len(body), body))
        self.c.send(msg)
        return branch

    timeout = 10

    def response_to(self, meth, timeout=None):
        """The next final response (answers requests met on the way: none expected)."""
        while True:
            msg = self.c.recv(timeout or self.timeout)
            if msg is None:
                fail("plexusd closed the connection")
            if status(msg) >= 200 and header(msg, "CSeq").endswith(meth):
                return msg
            if method(msg):
                fail("unexpected request %s" % method(msg))

    def with_auth(self, meth, uri, call_id, to, body=""):
        extra = "Content-Type: application/sdp\r\n" if body else ""
        self.request(meth, uri, call_id, to, extra, body)
        r = self.response_to(meth)
        if status(r) in (401, 407):
            if meth == "INVITE":
                self.ack(uri, call_id, header(r, "To"), self.cseq, header(r, "Via"))
            hdr = "WWW-Authenticate" if status(r) == 401 else "Proxy-Authenticate"
            name = "Authorization" if status(r) == 401 else "Proxy-Authorization"
            extra += "%s: %s\r\n" % (name, digest(header(r, hdr), meth, uri, self.user, self.password))
            self.request(meth, uri, call_id, to, extra, body)
            r = self.response_to(meth)
        return r

    def ack(self, uri, call_id, to, cseq, via=None):
        branch = re.search(r"branch=([^;\s]+)", via).group(1) if via else None
        self.request("ACK", uri, call_id, to, cseq=cseq, branch=branch)

    def sdp(self):
        return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                "m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n" % (40000 + os.getpid() % 20000))

    def register(self):
        uri = "sip:%s:%d;transport=%s" % (self.host, self.port, self.proto.lower())
        r = self.with_auth("REGISTER", uri, "reg-%s" % self.tag, "<sip:%s@%s>" % (self.user, self.host))
        if status(r) != 200:
            fail("REGISTER got %d" % status(r))
        print("--- registered %s" % self.contact())
        sys.stdout.flush()

    def answer(self):
        self.register()
        while True:
            inv = self.c.recv(15)
            if inv is None:
                fail("plexusd closed the connection before the INVITE")
            if method(inv) == "INVITE":
                break
            if method(inv):
                fail("unexpected %s" % method(inv))
        to = header(inv, "To") + ";tag=" + self.tag
        base = "\r\n".join("%s: %s" % (h, v) for h in ("Via", "From", "Call-ID", "CSeq")
                           for v in headers(inv, h)) + "\r\nTo: " + to
        self.c.send("SIP/2.0 180 Ringing\r\n%s\r\nContent-Length: 0\r\n\r\n" % base)
        body = self.sdp()
        self.c.send("SIP/2.0 200 OK\r\n%s\r\nContact: %s\r\nContent-Type: application/sdp\r\n"
                    "Content-Length: %d\r\n\r\n%s" % (base, self.contact(), len(body), body))
        got_ack = False
        while True:
            msg = self.c.recv(15)
            if msg is None:
                fail("plexusd closed the connection during the call")
            if method(msg) == "ACK":
                got_ack = True
            elif method(msg) == "BYE":
                rbase = "\r\n".join("%s: %s" % (h, v) for h in ("Via", "From", "To", "Call-ID", "CSeq")
                                    for v in headers(msg, h))
                self.c.send("SIP/2.0 200 OK\r\n%s\r\nContent-Length: 0\r\n\r\n" % rbase)
                break
            elif method(msg):
                fail("unexpected %s" % method(msg))
        if not got_ack:
            fail("no ACK for the 200")
        print("--- answered, ACK, BYE")

    def call(self, exten):
        uri = "sip:%s@%s:%d;transport=%s" % (exten, self.host, self.port, self.proto.lower())
        call_id = "call-%s" % self.tag
        to = "<sip:%s@%s>" % (exten, self.host)
        r = self.with_auth("INVITE", uri, call_id, to, self.sdp())
        if status(r) != 200:
            fail("INVITE got %d" % status(r))
        contact = re.search(r"<([^>]+)>", header(r, "Contact")).group(1)
        to = header(r, "To")
        self.ack(contact, call_id, to, self.cseq)
        time.sleep(1)
        self.request("BYE", contact, call_id, to)
        r = self.response_to("BYE")
        if status(r) != 200:
            fail("BYE got %d" % status(r))
        print("--- called, answered, BYE")


def main():
    a = sys.argv[1:]
    plain, via = False, None
    while a and a[0].startswith("--"):
        if a[0] == "--tcp":
            plain, a = True, a[1:]
        elif a[0] == "--via" and len(a) > 1:
            via, a = a[1], a[2:]
        else:
            sys.exit(__doc__)
    if not a:
        sys.exit(__doc__)
    for host in a[1:2]:
        if not host.startswith("127."):
            sys.exit("loopback addresses only")
    if a[0] == "probe" and len(a) == 4:
        return probe(*a[1:])
    if a[0] == "registrar" and len(a) == 9:
        return registrar(*a[1:])
    if a[0] == "phone" and len(a) >= 6:
        p = Phone(*a[1:5], plain=plain, via=via)
        if a[5] == "register" and len(a) <= 7:
            p.timeout = float(a[6]) if len(a) == 7 else 10
            p.register()
            return 0
        if a[5] == "answer":
            p.answer()
        elif a[5] == "call" and len(a) == 7:
            p.call(a[6])
        else:
            sys.exit(__doc__)
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
