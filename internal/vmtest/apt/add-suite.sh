#!/bin/sh
# add-suite.sh SUITE: makes Debian's SUITE (e.g. bullseye, for its 5.10 kernel)
# available to apt, with the same URIs and Signed-By as the machine's configured
# Debian entry (no mirror is named here). Idempotent; prints nothing when the
# suite is already configured.
set -eu
suite=$1
out=/etc/apt/sources.list.d/observer-$suite.sources
[ -e "$out" ] && exit 0
grep -rqs "^Suites:.*\\b$suite\\b" /etc/apt/sources.list.d/ && exit 0
grep -qs "^deb .* $suite " /etc/apt/sources.list && exit 0
# The first deb822 stanza whose URIs end in /debian (not -security) gives URIs
# and Signed-By; a one-line sources.list entry is the fallback.
uris="" signed=""
for f in /etc/apt/sources.list.d/*.sources; do
	[ -e "$f" ] || continue
	eval "$(awk '
		/^[[:space:]]*$/ { if (u != "") exit; s = ""; next }
		/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) u = $i }
		/^Signed-By:/ { s = $2 }
		END { if (u != "") printf "uris=%s signed=%s\n", u, s }' "$f")"
	[ -n "$uris" ] && break
done
if [ -z "$uris" ]; then
	uris=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
fi
[ -n "$uris" ] || { echo "add-suite.sh: no Debian apt source configured to derive $suite from" >&2; exit 1; }
{
	echo "Types: deb"
	echo "URIs: $uris"
	echo "Suites: $suite"
	echo "Components: main"
	[ -n "$signed" ] && echo "Signed-By: $signed"
} > "$out"
echo "added apt suite $suite ($uris) in $out"
