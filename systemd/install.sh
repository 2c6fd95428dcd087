#!/usr/bin/env bash
# Builds nlbridge and installs it into a system root (default /):
#
#   /usr/lib/nlbridge/                 daemon: dist/, build/Release/*.node,
#                                      production node_modules, openapi.yaml,
#                                      asyncapi.yaml, console/ (the page at GET /)
#   /lib/modules/VER/extra/dummy_netlink.ko   + depmod
#   /usr/src/dummy_netlink-VERSION/    module source + dkms.conf (DKMS)
#   /usr/bin/rr_nlk, /usr/bin/ww_nlk   netlink peers for the module's unit
#   /usr/bin/nlbridge                  the command: the daemon, and the client
#                                      (nlbridge send|watch|status)
#   /usr/share/man/man8/nlbridge.8     its man page
#   /usr/share/bash-completion/completions/nlbridge
#   /lib/systemd/system/nlbridge.{service,socket}
#   /lib/udev/rules.d/60-nlbridge.rules
#   /usr/lib/modules-load.d/dummy_netlink.conf
#   /etc/modprobe.d/dummy_netlink.conf module parameters  (kept if present)
#   /etc/nlbridge/nlbridge.json        daemon config      (kept if present)
#   /etc/credstore/nlbridge.token      bearer token, 0600 (kept if present)
#
# and enables nlbridge.service. Running it again gives the same result.
#
#   sudo ./systemd/install.sh [--root DIR] [--kernel VER] [--rebuild] [--no-enable]
#   sudo ./systemd/install.sh [--root DIR] [--kernel VER] --uninstall
#   ./systemd/install.sh --root DIR --for-package [--version VER]
#
# --kernel  the kernel to build the module for (default: uname -r); its
#           headers must be in /lib/modules/VER/build or
#           /usr/src/linux-headers-VER.
# --rebuild rebuild the addon and dist/ even when they look up to date.
# --uninstall removes everything above, /etc files included.
# --for-package stages the files of the Debian package (npm run package:deb)
#           into DIR: no dummy_netlink.ko (DKMS builds it on the target, so
#           no kernel headers are needed here), no token (the package's
#           postinst makes it on the target), nothing enabled, no depmod;
#           root is not needed (dpkg-deb --root-owner-group owns the files).
# --version (with --for-package) the version to stage as, instead of
#           package.json's: the installed package.json (what the daemon
#           reports) and the DKMS module's directory and dkms.conf say it.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
ROOT=/
KVER=
UNINSTALL=0
REBUILD=0
ENABLE=1
PACKAGE=0
VERSION_OVERRIDE=

die() {
	echo "install.sh: error: $*" >&2
	exit 1
}
say() { echo "install.sh: $*" >&2; }

while (($#)); do
	case $1 in
	--root) ROOT=${2:?--root needs a directory}; shift 2 ;;
	--root=*) ROOT=${1#*=}; shift ;;
	--kernel) KVER=${2:?--kernel needs a version}; shift 2 ;;
	--kernel=*) KVER=${1#*=}; shift ;;
	--uninstall) UNINSTALL=1; shift ;;
	--rebuild) REBUILD=1; shift ;;
	--no-enable) ENABLE=0; shift ;;
	--for-package) PACKAGE=1; ENABLE=0; shift ;;
	--version) VERSION_OVERRIDE=${2:?--version needs a version}; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done

[[ -d $ROOT ]] || die "--root $ROOT is not a directory"
ROOT=$(cd "$ROOT" && pwd)
R=${ROOT%/} # prefix for paths; empty for /
KVER=${KVER:-$(uname -r)}
LIVE=0
[[ $ROOT == / ]] && LIVE=1
((PACKAGE && LIVE)) && die "--for-package stages into a directory: give --root DIR"
((EUID == 0 || PACKAGE)) || die "run as root (it writes to $ROOT)"

VERSION=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$SRC/package.json" | head -n 1)
[[ -n $VERSION ]] || die "no version in $SRC/package.json"
if [[ -n $VERSION_OVERRIDE ]]; then
	((PACKAGE)) || die "--version is for --for-package (a package's version); an install takes package.json's"
	VERSION=$VERSION_OVERRIDE
fi

LIBDIR=/usr/lib/nlbridge
UNITDIR=/lib/systemd/system
UDEVDIR=/lib/udev/rules.d
MODDIR=/lib/modules/$KVER/extra
DKMSDIR=/usr/src/dummy_netlink-$VERSION
# Every file and directory this script owns, for --uninstall.
OWNED=(
	"$LIBDIR"
	"$MODDIR/dummy_netlink.ko"
	"$DKMSDIR"
	/usr/bin/rr_nlk
	/usr/bin/ww_nlk
	/usr/bin/nlbridge
	/usr/share/man/man8/nlbridge.8
	/usr/share/bash-completion/completions/nlbridge
	"$UNITDIR/nlbridge.service"
	"$UNITDIR/nlbridge.socket"
	"$UDEVDIR/60-nlbridge.rules"
	/usr/lib/modules-load.d/dummy_netlink.conf
	/etc/modprobe.d/dummy_netlink.conf
	/etc/nlbridge
	/etc/credstore/nlbridge.token
)

systemctl_root() {
	if ((LIVE)); then systemctl "$@"; else systemctl --root="$ROOT" "$@"; fi
}

run_depmod() {
	if [[ -d $R/lib/modules/$KVER ]]; then
		depmod -b "$ROOT" "$KVER" || die "depmod -b $ROOT $KVER failed"
	fi
}

if ((UNINSTALL)); then
	if ((LIVE)); then
		systemctl disable --now nlbridge.socket nlbridge.service 2>/dev/null || true
		modprobe -r dummy_netlink 2>/dev/null || say "dummy_netlink stays loaded (in use?)"
	elif [[ -e $R$UNITDIR/nlbridge.service ]]; then
		systemctl_root disable nlbridge.socket nlbridge.service >/dev/null 2>&1 || true
	fi
	for p in "${OWNED[@]}"; do rm -rf "${R:?}$p"; done
	rmdir "$R$MODDIR" "$R/etc/credstore" 2>/dev/null || true
	run_depmod
	if ((LIVE)); then
		systemctl daemon-reload
		udevadm control --reload 2>/dev/null || true
	fi
	say "uninstalled from $ROOT (kernel $KVER)"
	exit 0
fi

# --- build ---------------------------------------------------------------
command -v node >/dev/null || die "node (>= 20) is needed to build"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
	die "node $(node --version) is too old: nlbridge needs Node >= 20"
for tool in make cc depmod; do
	command -v "$tool" >/dev/null || die "'$tool' is needed (apt-get install build-essential kmod)"
done
KDIR=
if ((!PACKAGE)); then
	for d in "/lib/modules/$KVER/build" "/usr/src/linux-headers-$KVER"; do
		[[ -f $d/Makefile ]] && KDIR=$d && break
	done
	[[ -n $KDIR ]] || die "no kernel headers for $KVER (apt-get install linux-headers-$KVER, or pass --kernel)"
fi

cd "$SRC"
if [[ ! -d node_modules ]]; then
	say "npm ci (dependencies, addon, TypeScript)"
	npm ci --no-audit --no-fund >&2
else
	# Rebuild what is missing or older than its sources.
	addon=build/Release/nlbridge_netlink.node
	if ((REBUILD)) || [[ ! -f $addon ]] || [[ -n $(find binding.gyp addon/src -newer "$addon" -print -quit) ]]; then
		say "node-gyp rebuild (addon)"
		node scripts/node_gyp_rebuild.js >&2
	fi
	if ((REBUILD)) || [[ ! -f dist/daemon/main.js ]] ||
		[[ -n $(find addon bin cli daemon -name '*.ts' -newer dist/daemon/main.js -print -quit) ]] ||
		[[ tsconfig.json -nt dist/daemon/main.js ]]; then
		say "tsc (daemon)"
		npx --no-install tsc -p tsconfig.json >&2
	fi
fi
[[ -f build/Release/nlbridge_netlink.node ]] || die "the addon was not built (build/Release/nlbridge_netlink.node)"
[[ -f dist/daemon/main.js && -f dist/bin/nlbridge.js ]] || die "the daemon was not compiled (dist/daemon/main.js, dist/bin/nlbridge.js)"

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/nlbridge-install.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT

# Production node_modules: prune a copy (offline; the tree's own stays whole).
say "production node_modules"
mkdir -p "$STAGE/app"
cp package.json package-lock.json "$STAGE/app/"
cp -a node_modules "$STAGE/app/"
(cd "$STAGE/app" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null) ||
	die "npm prune --omit=dev failed"
find "$STAGE/app/node_modules" -mindepth 1 -maxdepth 1 -type d -empty -delete

# Module and tools, built in a private copy (module/ may be in use by others).
if ((!PACKAGE)); then
	say "dummy_netlink.ko for $KVER ($KDIR)"
	mkdir -p "$STAGE/module"
	cp -r module/Kbuild module/dummy_netlink.c module/include "$STAGE/module/"
	make -s -C "$KDIR" M="$STAGE/module" modules >&2 || die "building dummy_netlink.ko for $KVER failed"
fi
for t in rr_nlk ww_nlk; do
	cc -O2 -Wall -Wextra -std=gnu11 -Imodule/include/uapi -Imodule/tools -o "$STAGE/$t" "module/tools/$t.c" ||
		die "building $t failed"
done

# --- install -------------------------------------------------------------
say "installing into $ROOT"
rm -rf "${R:?}$LIBDIR"
install -d -m 0755 "$R$LIBDIR/dist" "$R$LIBDIR/build/Release"
cp -r dist/addon dist/bin dist/cli dist/daemon "$R$LIBDIR/dist/"
find "$R$LIBDIR/dist" -name '*.map' -delete
install -m 0755 build/Release/nlbridge_netlink.node "$R$LIBDIR/build/Release/"
install -m 0644 package.json openapi.yaml asyncapi.yaml "$R$LIBDIR/"
# The daemon reports the version of its package.json (--version, /status).
[[ -z $VERSION_OVERRIDE ]] || node -e '
const fs = require("node:fs");
const [file, version] = process.argv.slice(1);
const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
pkg.version = version;
fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n");' "$R$LIBDIR/package.json" "$VERSION"
# The console page beside dist/, where daemon/http/console.ts looks (its
# tsconfig.json only type-checks the sources, and is never served).
install -d -m 0755 "$R$LIBDIR/console"
install -m 0644 console/index.html console/*.js console/*.css console/*.svg "$R$LIBDIR/console/"
install -m 0644 "$HERE/README.md" "$R$LIBDIR/README.md"
cp -a "$STAGE/app/node_modules" "$R$LIBDIR/"
((PACKAGE)) || chown -R root:root "$R$LIBDIR"
chmod -R u=rwX,go=rX "$R$LIBDIR"

((PACKAGE)) || install -D -m 0644 "$STAGE/module/dummy_netlink.ko" "$R$MODDIR/dummy_netlink.ko"
rm -rf "${R:?}$DKMSDIR"
install -d -m 0755 "$R$DKMSDIR"
cp -r module/Kbuild module/dummy_netlink.c module/include "$R$DKMSDIR/"
sed "s/@VERSION@/$VERSION/" "$HERE/dkms/dkms.conf" >"$R$DKMSDIR/dkms.conf"
# Readable by all whatever the checkout's umask (a clone made with umask 077
# gave 0600 sources and 0700 directories; lintian: non-standard-file-perm).
chmod -R u=rwX,go=rX "$R$DKMSDIR"
install -D -m 0755 "$STAGE/rr_nlk" "$R/usr/bin/rr_nlk"
install -D -m 0755 "$STAGE/ww_nlk" "$R/usr/bin/ww_nlk"
# The command (daemon, or client for send|watch|status) with the system's node, as the unit runs it.
install -d -m 0755 "$R/usr/bin"
printf '#!/bin/sh\nexec /usr/bin/node %s/dist/bin/nlbridge.js "$@"\n' "$LIBDIR" >"$R/usr/bin/nlbridge"
chmod 0755 "$R/usr/bin/nlbridge"
install -D -m 0644 man/nlbridge.8 "$R/usr/share/man/man8/nlbridge.8"
install -D -m 0644 cli/completion.bash "$R/usr/share/bash-completion/completions/nlbridge"

install -D -m 0644 "$HERE/nlbridge.service" "$R$UNITDIR/nlbridge.service"
install -D -m 0644 "$HERE/nlbridge.socket" "$R$UNITDIR/nlbridge.socket"
install -D -m 0644 "$HERE/udev/60-nlbridge.rules" "$R$UDEVDIR/60-nlbridge.rules"
install -D -m 0644 "$HERE/modules-load.d/dummy_netlink.conf" "$R/usr/lib/modules-load.d/dummy_netlink.conf"

# Configuration is the admin's once it exists.
keep_or_install() { # SRC DEST MODE
	if [[ -e $R$2 ]]; then
		say "keeping existing $2"
	else
		install -D -m "$3" "$1" "$R$2"
	fi
}
keep_or_install "$HERE/modprobe.d/dummy_netlink.conf" /etc/modprobe.d/dummy_netlink.conf 0644
install -d -m 0755 "$R/etc/nlbridge"
# 0644 on purpose: the service is a DynamicUser with no group of its own, so
# it reads its config as "others". The config therefore holds no secret: the
# main token is a credential (below), scoped tokens use "credential" too, and
# the daemon refuses an inline "token" in a config every user can read.
keep_or_install "$HERE/nlbridge.json" /etc/nlbridge/nlbridge.json 0644
# Tell the admin now about a kept config the service cannot use safely.
node - "$R/etc/nlbridge/nlbridge.json" <<'EOF' || die "cannot check /etc/nlbridge/nlbridge.json"
const fs = require('node:fs');
const file = process.argv[2];
const warn = (m) => process.stderr.write(`install.sh: warning: /etc/nlbridge/nlbridge.json ${m}\n`);
const st = fs.statSync(file);
if ((st.mode & 0o004) === 0) warn(`is not readable by others (mode 0${(st.mode & 0o777).toString(8)}): the service (DynamicUser) cannot read it; chmod 0644 it and keep secrets out of it`);
let conf;
try {
  conf = JSON.parse(fs.readFileSync(file, 'utf8'));
} catch (err) {
  warn(`is not valid JSON (${err.message}): nlbridge will refuse to start`);
  process.exit(0);
}
for (const t of Array.isArray(conf?.tokens) ? conf.tokens : []) {
  const name = JSON.stringify(t?.name);
  if (t?.token !== undefined) warn(`holds the secret of token ${name} inline: a config the service can read is readable by every local user, and nlbridge refuses to start with it; put the secret in /etc/credstore/ and use "credential"`);
  if (t?.tokenFile !== undefined) warn(`names a tokenFile for token ${name}: the service (DynamicUser) can read it only if every local user can; use "credential" instead`);
}
if (conf?.tokenFile !== undefined) warn('sets "tokenFile": the service (DynamicUser) can read it only if every local user can; the main token comes from /etc/credstore/nlbridge.token');
EOF
if ((PACKAGE)); then
	say "staged nlbridge $VERSION into $ROOT for a package"
	exit 0
fi
# The token, for LoadCredential=token:nlbridge.token (systemd's credential store).
TOKEN=/etc/credstore/nlbridge.token
[[ -d $R/etc/credstore ]] || install -d -m 0700 "$R/etc/credstore"
if [[ ! -s $R$TOKEN ]]; then
	(umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$R$TOKEN")
	say "generated $TOKEN (0600)"
fi
chmod 0600 "$R$TOKEN"

run_depmod
[[ -x $R/usr/bin/node ]] || say "warning: $ROOT/usr/bin/node is missing; nlbridge.service runs /usr/bin/node (>= 20)"

if ((LIVE)); then
	systemctl daemon-reload
	udevadm control --reload 2>/dev/null || true
fi
if ((ENABLE)); then
	systemctl_root enable nlbridge.service >&2
fi
say "installed nlbridge $VERSION for kernel $KVER into $ROOT"
if ((LIVE)); then
	say "start: modprobe dummy_netlink && systemctl start nlbridge; token: $TOKEN"
fi
