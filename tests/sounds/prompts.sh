#!/bin/bash
# The prompt set (sounds/prompts.txt, made at build time by
# scripts/make-prompts into $top_builddir/sounds/en): every prompt exists in
# its four variants; the WAV is 8 kHz 16-bit mono; the raw G.711 files hold
# one byte per sample of the WAV and the .sln16 file twice the samples at two
# bytes each; speech is not silence and the beep is a 1 kHz tone (decoded
# from its mu-law file); a malformed list line is refused naming file:line.
. "$(dirname "$0")/../lib.sh"

SOUNDS=$top_builddir/sounds/en
LIST=$top_srcdir/sounds/prompts.txt
for tool in espeak-ng sox; do
	command -v "$tool" >/dev/null || {
		echo "Bail out! $tool is not installed (Debian package $tool)" >&2
		exit 99
	}
done
[ -d "$SOUNDS" ] || {
	echo "Bail out! $SOUNDS was not built" >&2
	exit 99
}

report=$("$PYTHON" - "$LIST" "$SOUNDS" <<'PYEOF'
import math, os, struct, sys, wave

def rms(pcm):
    s = struct.unpack(f"<{len(pcm)//2}h", pcm)
    return int(math.sqrt(sum(x * x for x in s) / max(1, len(s))))

def ulaw_decode(b):
    b = ~b & 0xFF
    t = (((b & 0x0F) << 3) + 0x84) << ((b & 0x70) >> 4)
    return (0x84 - t) if b & 0x80 else (t - 0x84)

lst, root = sys.argv[1], sys.argv[2]
names = []
for line in open(lst):
    line = line.strip()
    if line and not line.startswith("#"):
        names.append(line.split("|", 1)[0])
problems = []
for n in names:
    base = os.path.join(root, n)
    try:
        w = wave.open(base + ".wav")
    except Exception as e:
        problems.append(f"{n}.wav: {e}")
        continue
    rate, ch, width, frames = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
    pcm = w.readframes(frames)
    if (rate, ch, width) != (8000, 1, 2):
        problems.append(f"{n}.wav: {rate} Hz, {ch} channels, {8*width} bits (want 8000, 1, 16)")
    if frames < 800:
        problems.append(f"{n}.wav: only {frames} samples")
    for ext in ("ulaw", "alaw"):
        size = os.path.getsize(base + "." + ext)
        if abs(size - frames) > 8:
            problems.append(f"{n}.{ext}: {size} bytes for {frames} samples")
    size = os.path.getsize(base + ".sln16")
    if abs(size - 4 * frames) > 64:
        problems.append(f"{n}.sln16: {size} bytes, want about {4 * frames}")
    if rms(pcm) < 300:
        problems.append(f"{n}.wav: silent (rms {rms(pcm)})")
# The beep, decoded from mu-law: 1 kHz means about 2000 zero crossings a second.
s = [ulaw_decode(b) for b in open(os.path.join(root, "beep.ulaw"), "rb").read()]
crossings = sum(1 for a, b in zip(s, s[1:]) if (a < 0) != (b < 0))
per_second = crossings * 8000 / len(s)
if not 1900 <= per_second <= 2100:
    problems.append(f"beep.ulaw: {per_second:.0f} zero crossings a second, want about 2000 (1 kHz)")
print(len(names))
for p in problems:
    print(p)
PYEOF
)
count=$(head -1 <<<"$report")
problems=$(tail -n +2 <<<"$report")
if [ -n "$problems" ]; then
	fail "every prompt of prompts.txt is built in its four variants" "no problem" "got:" "$problems"
fi
pass "all $count prompts exist as 8 kHz 16-bit mono WAV, .ulaw, .alaw and .sln16 of matching lengths; none is silent"
pass "beep is a 1 kHz tone (decoded from beep.ulaw)"

printf 'good|fine\nno text here\n' >"$TMP/bad.txt"
out=$("$top_srcdir/scripts/make-prompts" "$TMP/bad.txt" "$TMP/out" 2>&1)
rc=$?
if [ "$rc" = 1 ] && grep -q "$TMP/bad.txt:2: expected name|text" <<<"$out"; then
	pass "a malformed line of the list is refused with its file:line"
else
	fail "a malformed line of the list is refused with its file:line" \
		"exit 1 and '$TMP/bad.txt:2: expected name|text'" "got exit $rc:" "$out"
fi
finish
