#!/usr/bin/python3
"""Drive an interactive program through a pseudo-terminal, as a person at
the keyboard would, for tests/console/console.sh (the plexus client's tab
completion and reconnection only exist on a terminal).

Usage: ptydrive.py [--timeout SECONDS] [--transcript FILE] STEP... -- PROGRAM ARGS...
Steps, run in order:
  expect ERE     wait for output matching ERE (searched in the output since
                 the previous match, with terminal escape sequences removed)
  send TEXT      type TEXT (give control characters as they are: $'\\t')
  touch FILE     create FILE (tells a waiting shell that a point was reached)
  exit STATUS    wait for the program to exit with STATUS
The whole run is bounded by --timeout (default 20 s). On failure it prints
what was expected and the output seen, kills the program and exits 1.
Standard library only.
"""

import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time

ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78cDEHMZ]|\x07")


def clean(data):
    """Terminal output as text: no escape sequences, no carriage returns."""
    return ANSI.sub(b"", data).replace(b"\r", b"").decode("utf-8", "replace")


class Session:
    def __init__(self, argv, deadline, transcript):
        self.deadline = deadline
        self.raw = b""
        self.pos = 0  # start of the not yet matched part of clean(raw)
        self.status = None
        self.transcript = transcript
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            env = dict(os.environ)
            # The same terminal everywhere, whatever the caller's.
            env["TERM"] = "xterm"
            try:
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))

    def read_some(self, timeout):
        if self.fd < 0:
            time.sleep(min(timeout, 0.05))
            return False
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the program closed the terminal
            data = b""
        if not data:
            os.close(self.fd)
            self.fd = -1
            return False
        self.raw += data
        if self.transcript:
            self.transcript.write(data)
            self.transcript.flush()
        return True

    def left(self):
        return self.deadline - time.monotonic()

    def poll_exit(self):
        if self.status is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
        return self.status

    def expect(self, regex):
        pattern = re.compile(regex)
        while True:
            text = clean(self.raw)
            m = pattern.search(text, self.pos)
            if m:
                self.pos = m.end()
                return True
            if self.left() <= 0:
                return False
            if not self.read_some(min(0.2, self.left())) and self.fd < 0:
                if self.poll_exit() is not None:
                    return bool(pattern.search(clean(self.raw), self.pos))

    def send(self, text):
        # One key at a time, as typed: the program sees each as it comes.
        for ch in text.encode():
            os.write(self.fd, bytes([ch]))
            time.sleep(0.01)

    def wait_exit(self):
        while self.poll_exit() is None:
            if self.left() <= 0:
                return None
            self.read_some(min(0.1, self.left()))
        while self.read_some(0.05):
            pass
        return self.status

    def kill(self):
        if self.poll_exit() is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)


def failure(session, what, timeout):
    text = clean(session.raw)
    print("ptydrive: expected %s within %s s" % (what, timeout))
    print("ptydrive: output since the last match:")
    for line in text[session.pos:].splitlines()[-30:]:
        print("  | " + line)
    print("ptydrive: raw tail: %r" % session.raw[-400:])
    session.kill()
    return 1


def main(argv):
    timeout = 20.0
    transcript = None
    args = argv[1:]
    while args and args[0].startswith("--") and args[0] != "--":
        if args[0] == "--timeout":
            timeout = float(args[1])
        elif args[0] == "--transcript":
            transcript = open(args[1], "ab")
        else:
            sys.stderr.write(__doc__)
            return 2
        args = args[2:]
    if "--" not in args:
        sys.stderr.write(__doc__)
        return 2
    k = args.index("--")
    steps, program = args[:k], args[k + 1:]
    if len(steps) % 2 or not program:
        sys.stderr.write(__doc__)
        return 2

    s = Session(program, time.monotonic() + timeout, transcript)

    def stopped(signo, frame):
        # Stopped by the test's clean-up: take the program along.
        s.kill()
        sys.exit(1)

    signal.signal(signal.SIGTERM, stopped)
    for verb, arg in zip(steps[0::2], steps[1::2]):
        if verb == "expect":
            if not s.expect(arg):
                return failure(s, "output matching %r" % arg, timeout)
            print("ptydrive: saw %r" % arg)
        elif verb == "send":
            if s.fd < 0:
                return failure(s, "a running program to type %r into" % arg, timeout)
            s.send(arg)
        elif verb == "touch":
            open(arg, "w").close()
        elif verb == "exit":
            st = s.wait_exit()
            if st is None:
                return failure(s, "the program to exit with status %s" % arg, timeout)
            if st != int(arg):
                return failure(s, "exit status %s, got %s" % (arg, st), timeout)
            print("ptydrive: exited with status %s" % st)
        else:
            sys.stderr.write(__doc__)
            s.kill()
            return 2
    s.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
