#!/usr/bin/env bash
# npm run package:deb: builds nlbridge_<version>_<arch>.deb with dpkg-deb from
# the files systemd/install.sh stages (--for-package), plus what Debian asks
# of a binary package: the copyright, a changelog, a gzipped man page, the
# maintainer scripts, conffiles, md5sums and the shared-library Depends.
#
#   packaging/deb/build.sh [OUT_DIR]     (default: the repository root)
#
# Needs dpkg-dev (dpkg-shlibdeps) and what install.sh needs to build (Node
# >= 20, cc, make); not root: dpkg-deb --root-owner-group owns the files.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
OUT=$(cd "${1:-$SRC}" && pwd)
die() {
	echo "package:deb: error: $*" >&2
	exit 1
}
for tool in dpkg-deb dpkg-shlibdeps dpkg-architecture; do
	command -v "$tool" >/dev/null || die "'$tool' is needed (apt-get install dpkg-dev)"
done

VERSION=$(node -p 'require(process.argv[1]).version' "$SRC/package.json")
ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nlbridge-deb.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root
mkdir -p "$ROOT"

"$SRC/systemd/install.sh" --root "$ROOT" --for-package

# Debian's places for documentation (policy 12.3, 12.5, 12.7).
DOC=$ROOT/usr/share/doc/nlbridge
install -D -m 0644 "$HERE/copyright" "$DOC/copyright"
printf 'nlbridge (%s) unstable; urgency=medium\n\n  * Built from the nlbridge repository by npm run package:deb.\n\n -- nlbridge developers <nlbridge@localhost>  %s\n' \
	"$VERSION" "$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git -C "$SRC" log -1 --format=%ct 2>/dev/null || date +%s)}")" |
	gzip -9n >"$DOC/changelog.Debian.gz"
chmod 0644 "$DOC/changelog.Debian.gz"
gzip -9n "$ROOT/usr/share/man/man8/nlbridge.8"

mkdir -m 0755 "$ROOT/DEBIAN"
# Every file under /etc is the admin's once installed: an upgrade keeps their edits.
(cd "$ROOT" && find etc -type f | sort | sed 's|^|/|') >"$ROOT/DEBIAN/conffiles"
for script in postinst prerm postrm; do
	sed "s/@VERSION@/$VERSION/g" "$HERE/$script" >"$ROOT/DEBIAN/$script"
	chmod 0755 "$ROOT/DEBIAN/$script"
done

# The shared libraries the ELF files need (the addon: libstdc++; the tools: libc).
mkdir -p "$WORK/shlibs/debian"
printf 'Source: nlbridge\n\nPackage: nlbridge\nArchitecture: any\n' >"$WORK/shlibs/debian/control"
mapfile -t elves < <(find "$ROOT" -type f \( -name '*.node' -o -path '*/usr/bin/*' \) -exec sh -c 'head -c4 "$1" | grep -q ELF && echo "$1"' _ {} \;)
SHLIBS=$(cd "$WORK/shlibs" && dpkg-shlibdeps -O "${elves[@]}" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[[ -n $SHLIBS ]] || die "dpkg-shlibdeps found no library dependencies in ${elves[*]}"

SIZE=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE/" -e "s/@SHLIBS@/$SHLIBS/" "$HERE/control.in" >"$ROOT/DEBIAN/control"
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -type f -print0 | sort -z | xargs -0 md5sum | sed 's| \./| |') >"$ROOT/DEBIAN/md5sums"

DEB=$OUT/nlbridge_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >&2
echo "$DEB"
