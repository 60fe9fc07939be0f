#!/bin/bash
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# Boot the distribution kernel under QEMU with anchormap.ko and a client.
#
#   run.sh test   the in-kernel selftests (selftests/kernel/test_anchormap.ko);
#                 writes "P F S" to build/results/kernel.count
#   run.sh demo   the example client (examples/kernel_registry/registry_demo.ko)
#   run.sh bench  anchormap against rhashtable (bench/kernel/bench_anchormap.ko,
#                 module parameters from BENCH_ARGS); make bench-kernel
#
# The modules come from build/kmod/ (make module kmod-test / kmod-demo).
# The guest (selftests/qemu/init.sh) loads them, checks /proc/anchormap and
# unloads them; this side reads the serial console and fails on a "not ok",
# a missing summary, an oops, a BUG, a WARNING, a panic or a time-out.
#
# Environment: KVER (kernel release, default kernel/kver.sh), QEMU_TIMEOUT
# (seconds, default 300), QEMU_SMP (default 2).  The debug-kernel lane
# (make check-debug, kernel/kernel.mk) boots its own kernels with:
#   QEMU_KERNEL   the kernel image (default /boot/vmlinuz-$KVER)
#   QEMU_KMOD     the module directory (default build/kmod)
#   QEMU_NAME     the run's name: build/results/NAME.count, build/qemu-MODE-NAME
#                 (default kernel: build/results/kernel.count, build/qemu-MODE)
#   QEMU_APPEND   more kernel command-line parameters
#   QEMU_EXPECT   lines the guest's dmesg must hold, separated by '|' (e.g.
#                 that KASAN is on); each is a guest check
#   QEMU_TEST_ARGS   test_anchormap.ko parameters (e.g. rounds=10)
#   QEMU_FADDR2LINE  the kernel's scripts/faddr2line: on a failure, print the
#                 source line of each anchormap frame in the reports
# Besides the checks above, any KASAN report, lockdep splat, sleep in atomic
# context, debug-objects or spinlock-debug report fails the run, and so does
# a KCSAN report that involves anchormap (a frame or function of anchormap.ko
# or test_anchormap.ko: am_*, amp_*, anchormap_*, kt_*); other KCSAN reports (races
# inside the kernel itself) are listed as notes.
set -u

mode=${1:-test}
case $mode in
test) client=selftests/kernel/test_anchormap.ko ;;
demo) client=examples/kernel_registry/registry_demo.ko ;;
bench) client=bench/kernel/bench_anchormap.ko ;;
*) echo "usage: $0 [test|demo|bench]" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
kmod=${QEMU_KMOD:-$build/kmod}
name=${QEMU_NAME:-kernel}
work=$build/qemu-$mode
[ "$name" = kernel ] || work=$work-$name
results=$build/results
if [ -n "${QEMU_KERNEL:-}" ]; then
	kernel=$QEMU_KERNEL
	kver=${KVER:-$(basename "$kernel")}
else
	kver=${KVER:-$(sh "$root/kernel/kver.sh" boot)}
	kernel=/boot/vmlinuz-$kver
fi
timeout_s=${QEMU_TIMEOUT:-300}
smp=${QEMU_SMP:-2}

die() {
	echo "qemu: $*" >&2
	[ "$mode" = test ] && mkdir -p "$results" && echo "0 1 0" > "$results/$name.count"
	exit 1
}

[ -n "$kver" ] && [ -r "$kernel" ] || die "no kernel image ${QEMU_KERNEL:-/boot/vmlinuz-$kver} (bash scripts/install-deps.sh kernel)"
for f in anchormap.ko "$client"; do
	[ -r "$kmod/$f" ] || die "missing $kmod/$f (make module kmod-$mode)"
done
busybox=$(command -v busybox) || die "busybox not found (busybox-static)"
file -L "$busybox" 2>/dev/null | grep -q 'dynamically linked' &&
	die "$busybox is dynamically linked: install busybox-static"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found"

# ---- initramfs: busybox, /init, the two modules, the mode ----
rm -rf "$work"
mkdir -p "$work/root/bin" "$work/root/lib/modules" "$work/root/proc" \
	 "$work/root/sys" "$work/root/dev" "$work/root/tmp"
cp "$busybox" "$work/root/bin/busybox"
cp "$root/selftests/qemu/init.sh" "$work/root/init"
chmod 755 "$work/root/init" "$work/root/bin/busybox"
cp "$kmod/anchormap.ko" "$kmod/$client" "$work/root/lib/modules/"
echo "$mode" > "$work/root/mode"
if [ -n "${QEMU_EXPECT:-}" ]; then
	tr '|' '\n' <<< "$QEMU_EXPECT" > "$work/root/expect"
fi
[ "$mode" = bench ] && echo "${BENCH_ARGS:-}" > "$work/root/bench_args"
[ "$mode" = test ] && echo "${QEMU_TEST_ARGS:-}" > "$work/root/test_args"
(cd "$work/root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initramfs.cpio.gz" ||
	die "cannot make the initramfs"

# ---- boot ----
# An oops, a soft lockup or a hung task panics, and panic=-1 with
# -no-reboot ends QEMU at once, instead of waiting for the time-out.
panic_on="oops=panic softlockup_panic=1 hung_task_panic=1 hung_task_timeout_secs=60"
log=$work/console.log
echo "qemu: booting $kver (TCG, $smp CPUs) with anchormap.ko and $(basename "$client"), log $log"
[ "$name" = kernel ] || echo "qemu: kernel $kernel, modules from $kmod"
start=$(date +%s.%N)
timeout "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -smp "$smp" -m 1024 \
	-nographic -no-reboot -nic none -kernel "$kernel" -initrd "$work/initramfs.cpio.gz" \
	-append "console=ttyS0 panic=-1 quiet $panic_on ${QEMU_APPEND:-}" </dev/null >"$work/raw.log" 2>&1
qrc=$?
end=$(date +%s.%N)
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
# drop carriage returns and terminal escapes of the firmware
sed -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1bc//g' "$work/raw.log" > "$log"

# ---- verdict ----
problems=()
[ $qrc -eq 124 ] && problems+=("timed out after ${timeout_s}s")
[ $qrc -ne 0 ] && [ $qrc -ne 124 ] && problems+=("qemu exited with status $qrc")
grep -q 'GUEST: done' "$log" || problems+=("the guest did not finish its script")
# KCSAN reports: one block from "BUG: KCSAN:" to the closing "=====" line.
# A block that names anchormap code stays in $checked (and fails the run
# below); one that does not is moved out into $kcsan_other, a note.
checked=$work/console.checked
kcsan_other=$work/kcsan-other.log
am_code='\[(test_)?anchormap\]|(^|[^A-Za-z0-9_])(amp?|anchormap|kt[0-9]*)_[A-Za-z0-9_]*'
AM_CODE=$am_code awk -v other="$kcsan_other" '
	function flush() {
		if (n && !mine) { for (i = 1; i <= n; i++) print blk[i] > other }
		else { for (i = 1; i <= n; i++) print blk[i] }
		n = 0; inblk = 0; mine = 0
	}
	BEGIN { am = ENVIRON["AM_CODE"] }
	/BUG: KCSAN: / { flush(); inblk = 1 }
	inblk { blk[++n] = $0
		# the title, and stack frames ("fn+0x1/0x2 [module]"), not "Comm:"
		if ($0 ~ am && ($0 ~ /BUG: KCSAN: / || $0 ~ /\+0x[0-9a-f]+\/0x[0-9a-f]+/)) mine = 1
		if ($0 ~ /^(\[ *[0-9.]+\] )?=+$/) flush(); next }
	{ print }
	END { flush() }' "$log" > "$checked"
: >> "$kcsan_other"
# One lockdep report is the kernel's own, not anchormap's: the 8250 console
# driver's spinlock_t taken by a printk from hardirq (e.g. "hrtimer:
# interrupt took N ns" under TCG) is "Invalid wait context" with
# CONFIG_PROVE_RAW_LOCK_NESTING.  It is listed as a note; since lockdep
# then stops checking, the run counts one skipped check for it.
console_wait=$work/lockdep-console.log
awk -v other="$console_wait" '
	function flush() {
		if (n && console) { for (i = 1; i <= n; i++) print blk[i] > other }
		else { for (i = 1; i <= n; i++) print blk[i] }
		n = 0; inblk = 0; console = 0
	}
	/\[ BUG: Invalid wait context \]/ { flush(); inblk = 1 }
	inblk { blk[++n] = $0
		if ($0 ~ /is trying to lock:/) { want = 1; next }
		if (want) { want = 0; if ($0 ~ /port_lock_key/ && $0 ~ /serial8250_console_write/) console = 1 }
		if ($0 ~ /<\/TASK>/ || n >= 200) flush(); next }
	{ print }
	END { flush() }' "$checked" > "$checked.tmp" && mv "$checked.tmp" "$checked"
: >> "$console_wait"
bad='Oops|BUG:|kernel BUG|WARNING:|Call Trace|general protection|Kernel panic|soft lockup|hung_task|rcu_sched self-detected|RCU stall'
# the debug kernels' checkers (most also print BUG: or WARNING:)
bad+='|KASAN|possible circular locking dependency|inconsistent lock state|possible recursive locking'
bad+='|sleeping function called from invalid context|scheduling while atomic|suspicious RCU usage'
bad+='|lock inversion|DEBUG_LOCKS_WARN_ON|trying to register non-static key|ODEBUG:|spinlock (bad magic|lockup|already unlocked)'
bad+='|KCSAN: |Invalid wait context'
# anchormap.ko's own reports at unload: maps a client did not destroy, memory not freed
bad+='|maps still registered at unload|blocks still allocated at unload'
nbad=$(grep -Ec "$bad" "$checked")
if [ "$nbad" -gt 0 ]; then
	problems+=("kernel reported ($nbad lines): $(grep -Em1 "$bad" "$checked" | sed 's/^\[[ 0-9.]*\] //')")
	for what in 'BUG: KASAN' 'BUG: KCSAN' 'circular locking' 'inconsistent lock state' \
		    'recursive locking' 'invalid context' 'suspicious RCU usage' 'lock inversion'; do
		c=$(grep -c "$what" "$checked")
		[ "$c" -gt 0 ] && problems+=("$c report(s) '$what'")
	done
fi

# what matters: everything from the guest's first line on (the boot is quiet)
echo "---- console (from /init on) ----"
awk '/GUEST:|insmod|anchormap|test_anchormap|registry_demo|^\[ *[0-9.]+\] (ok|not ok|#)/ { on = 1 } on' "$log" |
	sed 's/^\[ *[0-9.]*\] //'
echo "---- end of console ----"
# guest-side checks, and kernel test lines (numbered "ok N"/"not ok N")
g_pass=$(grep -c 'GUEST: ok ' "$log")
g_fail=$(grep -c 'GUEST: not ok ' "$log")
k_pass=0 k_fail=0 k_skip=0
if [ "$mode" = test ]; then
	sum=$(sed -n 's/.*# anchormap selftests: \([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' "$log" | tail -n 1)
	k_notok=$(grep -Ec '(^|\] )not ok [0-9]+ ' "$log")
	k_ok=$(grep -Ec '(^|\] )ok [0-9]+ ' "$log")
	k_skip=$(grep -Ec '(^|\] )ok [0-9]+ .*# SKIP' "$log")
	if [ -z "$sum" ]; then
		problems+=("no '# anchormap selftests:' summary from test_anchormap")
		k_pass=$((k_ok - k_skip))
		k_fail=$k_notok
	else
		read -r k_pass k_fail <<< "$sum"
		[ $((k_pass + k_fail + k_skip)) -eq $((k_ok + k_notok)) ] ||
			problems+=("summary $k_pass+$k_fail(+$k_skip skipped) disagrees with $((k_ok + k_notok)) result lines")
		[ "$k_fail" -eq "$k_notok" ] ||
			problems+=("summary says $k_fail failed, $k_notok 'not ok' lines")
	fi
	[ "$k_notok" -gt 0 ] && problems+=("$k_notok in-kernel test(s) not ok")
fi
[ "$g_fail" -gt 0 ] && problems+=("$g_fail guest check(s) not ok")
if [ "$mode" = demo ] && ! grep -q 'registry_demo: OK: ' "$log"; then
	problems+=("registry_demo did not report OK")
fi
if [ "$mode" = bench ] && ! grep -q 'bench_anchormap: done errors=0 ' "$log"; then
	problems+=("bench_anchormap did not finish with errors=0")
fi

if [ -s "$console_wait" ]; then
	echo "qemu: note: the kernel's console lock reported 'Invalid wait context' (printk from hardirq, not anchormap: $console_wait); lockdep was off after it"
	k_skip=$((k_skip + 1))
fi
passed=$((k_pass + g_pass))
failed=$((k_fail + g_fail + (${#problems[@]} > 0 && k_fail + g_fail == 0 ? 1 : 0)))
if [ -s "$kcsan_other" ]; then
	echo "---- KCSAN reports outside anchormap (not failures) ----"
	sed 's/^\[ *[0-9.]*\] //' "$kcsan_other"
	echo "---- end of KCSAN reports outside anchormap ----"
	grep -o 'BUG: KCSAN: .*' "$kcsan_other" | sort | uniq -c |
		sed 's/^ *\([0-9]*\) /qemu: note: \1x /'
fi
# source lines of the anchormap frames in the reports (modules built with -g)
if [ ${#problems[@]} -gt 0 ] && [ -x "${QEMU_FADDR2LINE:-}" ]; then
	# reliable frames only (a "? " frame is a stale return address)
	grep -v '? [A-Za-z0-9_.]*+0x' "$checked" |
		grep -Eo '[A-Za-z0-9_.]+\+0x[0-9a-f]+/0x[0-9a-f]+ \[(test_)?anchormap\]' |
		sort -u | head -n 40 | while read -r frame mod; do
		case $mod in
		"[anchormap]") ko=$kmod/anchormap.ko ;;
		*) ko=$kmod/selftests/kernel/test_anchormap.ko ;;
		esac
		where=$("$QEMU_FADDR2LINE" "$ko" "$frame" 2>/dev/null | sed -n 's|^.* at \([^ ]*\).*|\1|p' |
			sed -e "s|^$kmod/||" -e 's|^/.*/include/|include/|' | paste -sd ' ' - | sed 's/ / <- inlined in /g')
		[[ $where == *:[0-9]* ]] && echo "qemu: $frame $mod is $where"
	done
fi
for p in "${problems[@]}"; do
	echo "qemu: FAIL: $p"
done
if [ "$mode" = test ]; then
	echo "qemu: test run took ${secs}s (kernel tests: $k_pass passed, $k_fail failed, $k_skip skipped; guest checks: $g_pass passed, $g_fail failed)"
else
	echo "qemu: $mode run took ${secs}s (guest checks: $g_pass passed, $g_fail failed)"
fi
if [ "$mode" = test ]; then
	mkdir -p "$results"
	echo "$passed $failed $k_skip" > "$results/$name.count"
	echo "$name: $passed passed, $failed failed"
fi
[ ${#problems[@]} -eq 0 ]
