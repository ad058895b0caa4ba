B=build-gpu; mkdir -p /tmp/m; $B/vramfs /tmp/m 4G >/dev/null
dev=$(mountpoint -d /tmp/m); echo "bdi $dev: $(cat /sys/class/bdi/$dev/read_ahead_kb) KiB"
$B/tests/vramfs-iobench --dir /tmp/m --rw write --bs 1M --size 1G --direct 1 --jobs 4 >/dev/null
for ra in 128 1024 4096 128 1024; do echo $ra > /sys/class/bdi/$dev/read_ahead_kb
 for j in 1 4; do sync; echo 1 > /proc/sys/vm/drop_caches
 echo "ra $ra KiB buffered read 1M x$j: $($B/tests/vramfs-iobench --dir /tmp/m --rw read --bs 1M --size 1G --direct 0 --jobs $j)"; done; done
$B/vramfs status /tmp/m | tail -n1; fusermount3 -u /tmp/m
