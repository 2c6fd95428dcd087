#!/usr/bin/env bash
# npm run package:deb: builds nlbridge_<version>_<arch>.deb with dpkg-deb from
# the files systemd/install.sh stages (--for-package), plus what Debian asks
# of a binary package: the copyright, a changelog, a gzipped man page, the
# maintainer scripts, conffiles, md5sums and the shared-library Depends.
#
#   packaging/deb/build.sh [--version VER] [OUT_DIR]   (default: the repository root)
#
# --version VER  the package's version instead of package.json's (also
#                NLB_DEB_VERSION=VER): what the daemon reports and the DKMS
#                module's version follow it. For a local rebuild that must
#                upgrade an installed one, and for the upgrade test
#                (tests/vm/e2e.test.ts builds N and N+1).
#
# Needs dpkg-dev (dpkg-shlibdeps) and what install.sh needs to build (Node
# >= 20, cc, make); not root: dpkg-deb --root-owner-group owns the files.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
die() {
	echo "package:deb: error: $*" >&2
	exit 1
}
VERSION=${NLB_DEB_VERSION:-}
case ${1:-} in
--version) (($# >= 2)) && [[ -n $2 ]] || die "--version needs a version"; VERSION=$2; shift 2 ;;
--version=*) VERSION=${1#*=}; [[ -n $VERSION ]] || die "--version needs a version"; shift ;;
esac
OUT=$(cd "${1:-$SRC}" && pwd)
# A native package's version: no Debian revision (no '-'), and one npm, DKMS
# and a file name take as they are.
if [[ -n $VERSION ]]; then
	[[ $VERSION =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || die "--version '$VERSION': digits, letters, '.', '+', '~' only, starting with a digit"
else
	VERSION=$(node -p 'require(process.argv[1]).version' "$SRC/package.json")
fi
for tool in dpkg-deb dpkg-shlibdeps dpkg-architecture; do
	command -v "$tool" >/dev/null || die "'$tool' is needed (apt-get install dpkg-dev)"
done

# Debian's own variables when set, else the author of the last commit.
MAINTAINER="${DEBFULLNAME:-$(git -C "$SRC" log -1 --format=%an)} <${DEBEMAIL:-$(git -C "$SRC" log -1 --format=%ae)}>"
WHEN=${SOURCE_DATE_EPOCH:-$(git -C "$SRC" log -1 --format=%ct)}
ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nlbridge-deb.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root
mkdir -p "$ROOT"

"$SRC/systemd/install.sh" --root "$ROOT" --for-package --version "$VERSION"

# What Debian's policy asks of the installed files that a developer's install
# does not: ELF files stripped, a shared object not executable (policy 10.1,
# 8.1), and in the npm dependencies no VCS or linter dotfiles, no HTML docs
# (they load scripts from CDNs), no shell scripts of their own test suites,
# and the executable bit exactly on the files that start with #!.
for elf in "$ROOT"/usr/bin/rr_nlk "$ROOT"/usr/bin/ww_nlk; do
	strip --remove-section=.comment --remove-section=.note "$elf"
done
ADDON=$ROOT/usr/lib/nlbridge/build/Release/nlbridge_netlink.node
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$ADDON"
chmod 0644 "$ADDON"
MODULES=$ROOT/usr/lib/nlbridge/node_modules
find "$MODULES" \( -name '.git*' -o -name '.eslintrc*' -o -name '.npmignore' -o -name '.travis.yml' -o -name '*.html' -o -name '*.sh' \) -type f -delete
find "$ROOT/usr/lib/nlbridge" -type f ! -name '*.node' -exec sh -c '
	for f; do
		if [ "$(head -c2 "$f")" = "#!" ]; then chmod 0755 "$f"; else chmod a-x "$f"; fi
	done' _ {} +

# Debian's places for documentation (policy 12.3, 12.5, 12.7).
DOC=$ROOT/usr/share/doc/nlbridge
install -D -m 0644 "$HERE/copyright" "$DOC/copyright"
# A native package (its version has no Debian revision): changelog.gz (policy 12.7).
printf 'nlbridge (%s) unstable; urgency=medium\n\n  * Built from the nlbridge repository by npm run package:deb.\n\n -- %s  %s\n' \
	"$VERSION" "$MAINTAINER" "$(date -R -d "@$WHEN")" | gzip -9n >"$DOC/changelog.gz"
chmod 0644 "$DOC/changelog.gz"
install -D -m 0644 "$HERE/lintian-overrides" "$ROOT/usr/share/lintian/overrides/nlbridge"
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
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s|@MAINTAINER@|$MAINTAINER|" -e "s/@SIZE@/$SIZE/" -e "s/@SHLIBS@/$SHLIBS/" "$HERE/control.in" >"$ROOT/DEBIAN/control"
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -type f -print0 | sort -z | xargs -0 md5sum | sed 's| \./| |') >"$ROOT/DEBIAN/md5sums"

DEB=$OUT/nlbridge_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >&2
echo "$DEB"
