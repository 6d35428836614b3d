#!/bin/busybox sh
# dvmm lab guest init. PID 1 twice: "stage 1" inside the initramfs loads the modules, mounts the
# host's root read-only (9p) under a tmpfs overlay and switches to it; "stage 2" runs the command
# there and reports its status. Everything the host decides comes from the run share (9p tag
# dvmm_run): env (shell exports), command (a shell script), modules (insmod order).
B=/bin/busybox
SHARE=/run/dvmm-lab/share

now() { read -r up _ < /proc/uptime; echo "$up"; }

# Events on the control port are what the host waits for; the console log is for people.
event() {
  echo "dvmm-lab: $(now) $*" > /dev/console
  [ -c /dev/dvmm-control ] && echo "event $(now) $*" > /dev/dvmm-control
}

fail() {
  echo "dvmm-lab: FAILED: $*" > /dev/console
  [ -c /dev/dvmm-control ] && echo "fail $*" > /dev/dvmm-control
  $B sync
  $B poweroff -f
  while :; do $B sleep 60; done
}

finish() {
  [ -d "$SHARE" ] && echo "$1" > "$SHARE/status"
  [ -c /dev/dvmm-control ] && echo "exit $1" > /dev/dvmm-control
  $B sync
  $B poweroff -f
  while :; do $B sleep 60; done
}

stage1() {
  $B mkdir -p /proc /sys /dev /bin /sbin /usr/bin /usr/sbin
  $B mount -t proc proc /proc
  $B mount -t sysfs sysfs /sys
  $B mount -t devtmpfs devtmpfs /dev
  $B --install -s
  echo "dvmm-lab: $(now) init" > /dev/console

  for m in $(cat /lib/dvmm-lab/modules); do
    insmod "/lib/dvmm-lab/$m.ko" 2>/dev/console || fail "insmod $m"
  done

  # Virtio ports appear asynchronously after the driver probes; name them by their QEMU names.
  i=0
  while [ ! -c /dev/dvmm-control ] || [ ! -c /dev/dvmm-stdout ] || [ ! -c /dev/dvmm-stderr ]; do
    for p in /sys/class/virtio-ports/vport*; do
      [ -f "$p/name" ] || continue
      n=$(cat "$p/name")
      case "$n" in dvmm.*) ln -sf "/dev/${p##*/}" "/dev/dvmm-${n#dvmm.}" ;; esac
    done
    i=$((i + 1)); [ $i -gt 500 ] && fail "virtio ports dvmm.* did not appear"
    [ -c /dev/dvmm-control ] && [ -c /dev/dvmm-stdout ] && [ -c /dev/dvmm-stderr ] || usleep 10000
  done
  event modules

  [ -c /dev/kvm ] || fail "no /dev/kvm after loading kvm-amd (does the L1 CPU have SVM?)"

  mkdir -p /lower /rw /newroot /share
  mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=262144 dvmm_run /share \
    || fail "mount of the run share failed"
  . /share/env
  mount -t 9p -o "trans=virtio,version=9p2000.L,ro,msize=262144,cache=$DVMM_LAB_ROOT_CACHE" \
    dvmm_root /lower || fail "mount of the host root (9p) failed"
  mount -t tmpfs -o mode=755 rw /rw
  mkdir -p /rw/upper /rw/work
  mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
    || fail "overlay mount of the host root failed"
  event root

  # A clean runtime world: host's /run, /tmp and device nodes stay on the host, except the directories
  # in DVMM_LAB_KEEP (a checkout under /tmp), which are set aside first and put back on top.
  k=0
  for d in $DVMM_LAB_KEEP; do
    mkdir -p /keep/$k && mount --bind "/newroot$d" /keep/$k || fail "cannot keep $d"
    k=$((k + 1))
  done
  mount -t tmpfs -o mode=755 run /newroot/run
  mount -t tmpfs -o mode=1777 tmp /newroot/tmp
  k=0
  for d in $DVMM_LAB_KEEP; do
    mkdir -p "/newroot$d" && mount --move /keep/$k "/newroot$d" || fail "cannot restore $d"
    k=$((k + 1))
  done
  mkdir -p /newroot/run/dvmm-lab /newroot$SHARE
  cp /bin/busybox /init /newroot/run/dvmm-lab/
  # Applet links made when the image was built, pointing at /run/dvmm-lab/busybox.
  cp -a /lab-bin /newroot/run/dvmm-lab/bin
  mount --move /share /newroot$SHARE
  mount --move /dev /newroot/dev
  mkdir -p /newroot/dev/pts /newroot/dev/shm
  mount -t devpts -o mode=620,ptmxmode=666 devpts /newroot/dev/pts
  mount -t tmpfs -o mode=1777 shm /newroot/dev/shm
  mount --move /proc /newroot/proc
  mount --move /sys /newroot/sys

  ip link set lo up
  if [ -n "$DVMM_LAB_ADDRESS" ]; then
    ip addr add "$DVMM_LAB_ADDRESS/$DVMM_LAB_PREFIX" dev eth0 || fail "ip addr add $DVMM_LAB_ADDRESS"
    ip link set eth0 up || fail "eth0 did not come up"
  fi
  hostname "lab$DVMM_LAB_RANK"
  [ -n "$DVMM_LAB_HOSTS_FILE" ] && cat "/newroot$SHARE/hosts" >> /newroot/etc/hosts
  # The host name must resolve even on a single host (Log4j and the JDK look it up).
  grep -q "lab$DVMM_LAB_RANK" /newroot/etc/hosts 2>/dev/null || echo "127.0.1.1 lab$DVMM_LAB_RANK" >> /newroot/etc/hosts

  exec switch_root /newroot /run/dvmm-lab/busybox sh /run/dvmm-lab/init stage2
  fail "switch_root failed"
}

stage2() {
  . "$SHARE/env"
  export PATH="$PATH:/run/dvmm-lab/bin"
  cd "$DVMM_LAB_CWD" 2>/dev/null || cd /
  sh=/bin/sh; [ -x "$sh" ] || sh=/run/dvmm-lab/bin/sh
  event start
  "$sh" "$SHARE/command" </dev/null >/dev/dvmm-stdout 2>/dev/dvmm-stderr
  rc=$?
  event end
  finish "$rc"
}

case "$1" in
  stage2) stage2 ;;
  *) stage1 ;;
esac
