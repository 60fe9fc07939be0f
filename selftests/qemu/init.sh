#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0 OR MIT
#
# /init of the QEMU guest made by selftests/qemu/run.sh.  /mode says what
# to do: "test" (anchormap.ko, then the in-kernel selftests), "demo"
# (anchormap.ko, then the example client) or "bench" (anchormap.ko, then
# the rhashtable comparison, parameters from /bench_args).  Each check prints
# "GUEST: ok NAME" or "GUEST: not ok NAME"; the host counts them.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# every printk on the console, so that the host sees the modules' lines
echo 8 > /proc/sys/kernel/printk
# an RCU stall ends the run too (oops, soft lockup: kernel command line)
echo 1 > /proc/sys/kernel/panic_on_rcu_stall 2>/dev/null

M=/lib/modules
mode=$(cat /mode)

check() {
	name=$1
	shift
	if "$@"; then
		echo "GUEST: ok $name"
	else
		echo "GUEST: not ok $name"
	fi
}

show_proc() {
	echo "GUEST: --- /proc/anchormap ($1) ---"
	sed 's/^/proc: /' /proc/anchormap
}

# /proc/anchormap holds the header and exactly $1 map lines (or >= 1 for "some")
proc_maps() {
	[ -r /proc/anchormap ] || return 1
	head -n 1 /proc/anchormap | grep -q '^name  *len  *capacity  *segments  *slots  *deleted  *bytes  *longest_probe  *contended  *entries  *index_used  *index_bytes  *retired_bytes  *rebuilds$' || return 1
	lines=$(($(wc -l < /proc/anchormap) - 1))
	if [ "$1" = some ]; then
		[ "$lines" -ge 1 ]
	else
		[ "$lines" -eq "$1" ]
	fi
}

# the debug-kernel lane: the kernel log must show that its checkers are on
if [ -r /expect ]; then
	while IFS= read -r want; do
		[ -n "$want" ] && check "kernel log has '$want'" sh -c 'dmesg | grep -qF "$1"' sh "$want"
	done < /expect
fi

check "insmod anchormap" insmod $M/anchormap.ko
show_proc "anchormap loaded"
check "proc shows only the header" proc_maps 0

case $mode in
test)
	check "insmod test_anchormap" insmod $M/test_anchormap.ko $(cat /test_args)
	show_proc "test_anchormap loaded"
	check "proc lists the test's live maps" proc_maps some
	check "rmmod test_anchormap" rmmod test_anchormap
	;;
demo)
	check "insmod registry_demo" insmod $M/registry_demo.ko
	sleep 3
	show_proc "registry_demo running"
	check "proc lists the demo's map" proc_maps some
	sleep 3
	check "rmmod registry_demo" rmmod registry_demo
	;;
bench)
	# runs the whole benchmark at load time (bench/kernel/bench_anchormap.c)
	check "insmod bench_anchormap" insmod $M/bench_anchormap.ko $(cat /bench_args)
	check "rmmod bench_anchormap" rmmod bench_anchormap
	;;
esac

show_proc "client unloaded"
check "proc lists no map after the client left" proc_maps 0
check "rmmod anchormap" rmmod anchormap
check "proc entry gone after rmmod" test ! -e /proc/anchormap
echo "GUEST: done"
poweroff -f
