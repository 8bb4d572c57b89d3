#!/usr/bin/python3
"""Watch one UDP socket's receive queue for bench/run.sh's per-second samples.

sockq.py PORT OUT PARENT_PID MAX_SECS: four times a second, asks the
kernel (netlink sock_diag, filtered in the kernel by source port) for the
UDP socket bound to 127.0.0.1:PORT and writes "RMEM DROPS" to OUT (the
bytes its receive queue holds, as /proc/net/udp's rx_queue shows them, and
the datagrams it dropped so far), or "? ?" when there is no such socket.
OUT is replaced whole each time, so a reader never sees half a line.
Ends when PARENT_PID is gone or after MAX_SECS.

Why not /proc/net/udp: it lists every UDP socket of the machine, and
plexusd keeps thousands of idle RTP sockets bound (one pair per leg of
the last seconds, for reuse); reading and searching it once a second took
about 10 % of a core, on the cores that plexusd and SIPp share.
"""
import os
import socket
import struct
import sys
import time

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
INET_DIAG_REQ_BYTECODE = 1
INET_DIAG_SKMEMINFO = 7
INET_DIAG_BC_S_EQ = 11
SK_MEMINFO_RMEM_ALLOC = 0
SK_MEMINFO_DROPS = 8
MSG_HEADER = struct.Struct("=IHHII")
DIAG_MSG_SIZE = 72  # struct inet_diag_msg
LOOPBACK = socket.inet_aton("127.0.0.1")


def request(port, seq):
    """A dump of UDP/IPv4 sockets whose source port is port."""
    # The filter: "sport == port" jumps to the end (accept); otherwise it
    # jumps 4 bytes past it (reject).
    code = struct.pack("=BBH", INET_DIAG_BC_S_EQ, 8, 12) + struct.pack("=BBH", 0, 0, port)
    attr = struct.pack("=HH", 4 + len(code), INET_DIAG_REQ_BYTECODE) + code
    sockid = bytes(36) + struct.pack("=I", 0) + b"\xff" * 8
    body = (
        struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_UDP,
                    1 << (INET_DIAG_SKMEMINFO - 1), 0, 0xFFFFFFFF)
        + sockid
        + attr
    )
    return MSG_HEADER.pack(MSG_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY,
                           NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def meminfo(msg):
    """(rmem, drops) from one inet_diag_msg, if it is bound to 127.0.0.1."""
    if msg[8:12] != LOOPBACK:
        return None
    at = DIAG_MSG_SIZE
    while at + 4 <= len(msg):
        length, kind = struct.unpack_from("=HH", msg, at)
        if length < 4:
            break
        if kind == INET_DIAG_SKMEMINFO and length >= 4 + 9 * 4:
            mem = struct.unpack_from("=9I", msg, at + 4)
            return mem[SK_MEMINFO_RMEM_ALLOC], mem[SK_MEMINFO_DROPS]
        at += (length + 3) & ~3
    return None


def query(nl, port, seq):
    nl.send(request(port, seq))
    found = None
    while True:
        data = nl.recv(65536)
        at = 0
        while at + MSG_HEADER.size <= len(data):
            length, kind, _, _, _ = MSG_HEADER.unpack_from(data, at)
            if kind == NLMSG_DONE:
                return found
            if kind == NLMSG_ERROR or length < MSG_HEADER.size:
                return None
            found = meminfo(data[at + MSG_HEADER.size:at + length]) or found
            at += (length + 3) & ~3


def main():
    port, out, parent, max_secs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
    end = time.monotonic() + max_secs
    seq = 0
    while time.monotonic() < end:
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            break
        seq += 1
        found = query(nl, port, seq)
        with open(out + ".new", "w") as f:
            f.write("%d %d\n" % found if found else "? ?\n")
        os.replace(out + ".new", out)
        time.sleep(0.25)


if __name__ == "__main__":
    main()
