#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# lint.sh BUILD_DIR - the kernel's own checkers on the kernel-facing files,
# with the tools of Debian's linux-source-6.12 (untarred once under
# BUILD_DIR/lint/src-VERSION):
#
#   checkpatch   scripts/checkpatch.pl --strict on every file Kbuild reads
#   kernel-doc   scripts/kernel-doc -none -Wall on the core (sources.mk) and
#                the module glue (kernel/)
#   coccicheck   make coccicheck MODE=report M=<a copy of those files>
#
# A checkpatch or coccinelle finding passes only if scripts/lint-allow.txt
# lists it with its reason; an entry of that file that matches nothing
# fails too (the list must not outlive its findings).  kernel-doc has no
# allow list.  `make lint` runs `make sparse` on each kernel of the matrix
# before it (Makefile).  Appends one "P F 0" line per checker to
# BUILD_DIR/results/lint.count.

set -u

build=${1:?usage: lint.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$build/lint" "$build/results"
build=$(cd "$build" && pwd)
allow=$root/scripts/lint-allow.txt
count=$build/results/lint.count
passed=0
failed=0

# The files the kernel builds (Kbuild, kernel/kernel.mk's KSRC).
cd "$root" || exit 1
# shellcheck disable=SC2207
core=($(make -s --no-print-directory print-core))	# sources.mk
files=("${core[@]}" kernel/*.c kernel/*.h selftests/harness.h selftests/am_testutil.h selftests/am_snapbuf.h
       selftests/common_tests.c
       selftests/common/*.h selftests/common/*.c selftests/kernel/*.c examples/kernel_registry/*.c)

result() {
	if [ "$2" -eq 0 ]; then
		echo "ok lint_$1"
		passed=$((passed + 1))
	else
		echo "not ok lint_$1 # $2 finding(s)"
		failed=$((failed + 1))
	fi
}

finish() {
	echo "$passed $failed 0" >> "$count"
	echo "# [lint] $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}

# ---- the 6.12 tree ----
pkg=linux-source-6.12
version=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null)
if [ -z "$version" ] || [ ! -r /usr/src/$pkg.tar.xz ]; then
	echo "# lint: $pkg is not installed (bash scripts/install-deps.sh lint)"
	result tools 1
	finish
fi
src=$build/lint/src-$version
if [ ! -e "$src/.anchormap-untarred" ]; then
	echo "# lint: untarring /usr/src/$pkg.tar.xz ($version)"
	rm -rf "$build"/lint/src-*
	mkdir -p "$src"
	tar -xf /usr/src/$pkg.tar.xz -C "$src" --strip-components=1 || { result tools 1; finish; }
	touch "$src/.anchormap-untarred"
fi

# check_findings NAME FINDINGS: FINDINGS has lines "FILE<TAB>LINE<TAB>TYPE<TAB>TEXT";
# print those lint-allow.txt does not cover, and the allow entries of the
# checker NAME that matched nothing; return how many.
check_findings() {
	python3 - "$1" "$2" "$allow" <<'EOF'
import sys
name, findings, allow = sys.argv[1:]
rules = []
for n, raw in enumerate(open(allow), 1):
    line = raw.rstrip('\n')
    if not line.strip() or line.lstrip().startswith('#'):
        continue
    f = [x.strip() for x in line.split(' | ')]
    if len(f) != 5 or not f[4]:
        print(f'# lint-allow.txt:{n}: want "checker | file | type | line text | reason"')
        rules.append(None)
        continue
    if f[0] == name:
        rules.append([f, n, 0])
bad = sum(1 for r in rules if r is None)
rules = [r for r in rules if r]
src = {}
for raw in open(findings):
    path, lno, typ, text = raw.rstrip('\n').split('\t', 3)
    if path not in src:
        try:
            src[path] = open(path).read().split('\n')
        except OSError:
            src[path] = []
    code = src[path][int(lno) - 1] if 0 < int(lno) <= len(src[path]) else ''
    for r in rules:
        f = r[0]
        if f[1] == path and f[2] == typ and f[3] in code:
            r[2] += 1
            break
    else:
        print(f'{path}:{lno}: {typ}: {text}')
        print(f'#   {code.strip()}')
        bad += 1
for f, n, hits in rules:
    if not hits:
        print(f'# lint-allow.txt:{n}: matches no {name} finding any more: remove it')
        bad += 1
sys.exit(min(bad, 255))
EOF
}

# ---- checkpatch ----
cp_out=$build/lint/checkpatch.txt
"$src/scripts/checkpatch.pl" --strict --no-tree --terse --show-types --no-summary \
	-f "${files[@]}" > "$cp_out" 2>&1
# "file:line: TYPE:NAME: message"
sed -nE 's/^([^:]+):([0-9]+): (ERROR|WARNING|CHECK):([A-Z_]+): (.*)$/\1\t\2\t\4\t\5/p' \
	"$cp_out" > "$cp_out.tsv"
other=$(grep -cvE '^[^:]+:[0-9]+: (ERROR|WARNING|CHECK):' "$cp_out")
[ "$other" -gt 0 ] && { echo "# checkpatch said more:"; grep -vE '^[^:]+:[0-9]+: (ERROR|WARNING|CHECK):' "$cp_out"; }
check_findings checkpatch "$cp_out.tsv"
n=$(($? + other))
echo "# checkpatch --strict: $(wc -l < "$cp_out.tsv") finding(s), $n not allowed"
result checkpatch "$n"

# ---- kernel-doc ----
kd_out=$build/lint/kernel-doc.txt
"$src/scripts/kernel-doc" -none -Wall "${core[@]}" kernel/*.c kernel/*.h > "$kd_out" 2>&1
kd_rc=$?
cat "$kd_out"
n=$(grep -c . "$kd_out")
[ "$kd_rc" -ne 0 ] && [ "$n" -eq 0 ] && n=1
echo "# kernel-doc -none -Wall: $n warning(s)"
result kernel-doc "$n"

# ---- coccinelle ----
# coccicheck writes nothing into M=, but works on a copy so that the
# paths it reports are short and the tree stays untouched.
mirror=$build/lint/cocci-src
rm -rf "$mirror"
for f in "${files[@]}"; do
	mkdir -p "$mirror/$(dirname "$f")" && cp "$f" "$mirror/$f"
done
co_out=$build/lint/coccicheck.txt
make -s -C "$src" coccicheck MODE=report M="$mirror" J="$(nproc)" > "$co_out" 2>&1
co_rc=$?
# "path:line:col-col: WARNING message" (or ERROR)
sed -nE "s|^$mirror/([^:]+):([0-9]+):[0-9-]+: (WARNING\|ERROR):? (.*)$|\1\t\2\t\4\t\4|p" \
	"$co_out" > "$co_out.tsv"
ran=$(grep -c -- '--cocci-file' "$co_out")
check_findings coccicheck "$co_out.tsv"
n=$?
if [ "$co_rc" -ne 0 ] || [ "$ran" -lt 50 ]; then
	tail -n 20 "$co_out"
	echo "# coccicheck failed (status $co_rc, $ran scripts run)"
	n=$((n + 1))
fi
echo "# coccicheck: $ran scripts, $(wc -l < "$co_out.tsv") report(s), $n not allowed"
result coccicheck "$n"

finish
