#!/usr/bin/python3
"""wavtool.py: the WAV files of tests/sip/baresip.sh.

  wavtool.py tone FILE HZ SECONDS   write a sine of HZ (amplitude 8000) as
                                    8 kHz mono 16-bit PCM: a phone's voice
  wavtool.py stat FILE              print "frames=N rate=R channels=C
                                    rms=X hz=F" of a 16-bit PCM WAV (a
                                    phone's recording); hz is estimated from
                                    the zero crossings of the samples whose
                                    level is audible. Exit 1 when the file
                                    cannot be read (yet).
"""
import array
import math
import struct
import sys
import wave


def tone(path, hz, seconds):
    rate = 8000
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / rate)))
        for i in range(int(rate * seconds)))
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)


def stat(path):
    try:
        with wave.open(path, "rb") as w:
            if w.getsampwidth() != 2:
                print("not 16-bit PCM", file=sys.stderr)
                return 1
            rate, channels, n = w.getframerate(), w.getnchannels(), w.getnframes()
            data = array.array("h", w.readframes(n))
    except (OSError, EOFError, wave.Error) as e:
        print("cannot read %s: %s" % (path, e), file=sys.stderr)
        return 1
    if sys.byteorder != "little":
        data.byteswap()
    mono = data[::channels] if channels > 1 else data
    rms = math.sqrt(sum(x * x for x in mono) / len(mono)) if mono else 0.0
    # Frequency from the zero crossings of the stretch between the first and
    # the last audible sample (leading and trailing silence left out).
    loud = [i for i, x in enumerate(mono) if abs(x) > 500]
    hz = 0.0
    if len(loud) > 1:
        seg = mono[loud[0]:loud[-1] + 1]
        crossings = sum(1 for a, b in zip(seg, seg[1:]) if (a < 0) != (b < 0))
        hz = crossings / 2.0 / (len(seg) / float(rate))
    print("frames=%d rate=%d channels=%d rms=%.0f hz=%.0f" % (n, rate, channels, rms, hz))
    return 0


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "tone":
        tone(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "stat":
        return stat(sys.argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
