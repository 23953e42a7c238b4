#!/usr/bin/env bash
# Regenerates the announcements and hold music of the SIP front end
# (internal/sipfront/sounds/*.ul: raw G.711 mu-law, 8 kHz, mono) with
# Debian's espeak-ng and sox. Only needed to change the wording; the files
# are committed. Usage: scripts/make-sounds.sh
set -euo pipefail
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y espeak-ng sox" >&2; exit 1; }
done
cd "$(dirname "$0")/../internal/sipfront/sounds"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
say() { espeak-ng -v en-us -s 150 -w "$tmp/say.wav" "$2" && sox "$tmp/say.wav" -r 8000 -c 1 -t ul "$1.ul" norm -3; }
say welcome "Thank you for calling. Please hold, and the next available agent will take your call."
say full "We are sorry. All our lines are busy. Please call again later. Goodbye."
say noagents "We are sorry. Nobody is available to take your call right now. Please call again later. Goodbye."
say monitor "You are listening in."
words=(zero one two three four five six seven eight nine ten)
for i in $(seq 1 10); do say "position$i" "You are number ${words[$i]} in line."; done
say positionmany "There are more than ten callers ahead of you."
# Hold music: eight soft sine chords of two seconds (all below 450 Hz, so
# a 1 kHz test tone stands apart), faded so the loop has no clicks.
parts=()
i=0
for chord in "261.63 329.63 392" "293.66 349.23 440" "246.94 293.66 392" "261.63 329.63 392" \
             "220 261.63 329.63" "246.94 293.66 349.23" "261.63 329.63 392" "196 246.94 293.66"; do
  set -- $chord
  i=$((i + 1))
  sox -n -r 8000 -c 1 -b 16 "$tmp/c$i.wav" synth 2 sine "$1" synth 2 sine mix "$2" synth 2 sine mix "$3" fade q 0.3 2 0.6 vol 0.3
  parts+=("$tmp/c$i.wav")
done
sox "${parts[@]}" -r 8000 -c 1 -t ul hold.ul norm -6
