#!/usr/bin/python3
"""sipraw.py: send one UDP datagram to a SIP server on 127.0.0.1 and print
what comes back (tests/sip/sip.sh, the bad-input checks).

  sipraw.py PORT FILE [WAIT]   send FILE, a SIP message written with LF line
                               ends (sent with CRLF); {local_port},
                               {sip_port}, {tag}, {branch} and {call_id}
                               are replaced, and Content-Length is left as
                               written (a test may lie about it)
  sipraw.py PORT --garbage N   send N random bytes (seeded: reproducible)
  sipraw.py PORT --raw TEXT    send TEXT as it is (Python escapes allowed)

It prints every message received within WAIT seconds (default 0.6; it
stops listening 0.3 s after a final response) as "<<< " plus its first
line, each header line as "    " plus the line, and "--- no answer" when
nothing came. Only 127.0.0.1 is ever a target.
"""
import os
import random
import socket
import sys
import time


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    port = int(sys.argv[1])
    wait = 0.6
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    local_port = sock.getsockname()[1]
    if sys.argv[2] == "--garbage":
        rnd = random.Random(int(sys.argv[3]))
        data = bytes(rnd.randrange(256) for _ in range(int(sys.argv[3])))
    elif sys.argv[2] == "--raw":
        data = sys.argv[3].encode("latin-1").decode("unicode_escape").encode("latin-1")
    else:
        if len(sys.argv) > 3:
            wait = float(sys.argv[3])
        with open(sys.argv[2], encoding="latin-1") as f:
            text = f.read()
        uniq = "%d-%d" % (os.getpid(), int(time.time() * 1000) % 1000000)
        for key, value in (("{local_port}", str(local_port)), ("{sip_port}", str(port)),
                           ("{tag}", "t" + uniq), ("{branch}", "z9hG4bK-raw-" + uniq),
                           ("{call_id}", "raw-" + uniq + "@127.0.0.1")):
            text = text.replace(key, value)
        # Header lines and the blank line end with CRLF; a body keeps its lines.
        head, sep, body = text.partition("\n\n")
        data = (head.replace("\n", "\r\n") + ("\r\n\r\n" if sep else "") +
                body.replace("\n", "\r\n")).encode("latin-1")
    sock.sendto(data, ("127.0.0.1", port))
    print(">>> sent %d bytes from 127.0.0.1:%d" % (len(data), local_port))
    deadline = time.monotonic() + wait
    got = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            reply, _ = sock.recvfrom(65535)
        except socket.timeout:
            break
        got += 1
        lines = reply.decode("latin-1").split("\r\n")
        print("<<< " + lines[0])
        status = lines[0].split(" ")
        if (len(status) > 1 and status[0] == "SIP/2.0" and status[1].isdigit()
                and int(status[1]) >= 200):
            deadline = min(deadline, time.monotonic() + 0.3)
        for line in lines[1:]:
            if not line:
                break
            print("    " + line)
    if not got:
        print("--- no answer")


if __name__ == "__main__":
    main()
