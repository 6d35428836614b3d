/**
 * The lab: dvmm inside QEMU VMs whose /dev/kvm has hardware-virtualization (SVM) semantics, for
 * machines whose own /dev/kvm is nested PVM (ring-0 guest code ~1000x slow) or missing.
 *
 * <h2>How a run goes</h2>
 * <ol>
 * <li>{@link dev.dvmm.hv.lab.QemuBinary} finds qemu-system-x86_64 (7.2+; installs Debian's
 *     qemu-system-x86 on first use when root) and checks that it runs; {@link dev.dvmm.hv.lab.Lab}
 *     refuses N VMs whose memory exceeds MemAvailable.</li>
 * <li>{@link dev.dvmm.hv.lab.LabImage} builds the L1 image once per machine into
 *     {@code ~/.cache/dvmm/lab/<recipe hash>/} ($DVMM_LAB_CACHE or --cache-dir to move it):
 *     {@code apt-get download} of linux-image-6.1.0-*-amd64 (via the linux-image-amd64
 *     metapackage) and busybox-static, {@code dpkg-deb -x} into a scratch directory (the host's
 *     /boot and dpkg database stay untouched), the ELF vmlinux unpacked from the bzImage (booted
 *     through PVH: saves the guest's ~3.5 s xz decompression under emulation), and an uncompressed
 *     initramfs (busybox, the init script {@code init.sh} beside this package, 19 modules in
 *     dependency order read from their .modinfo: virtio, virtio-console, 9p, virtio-net, overlay,
 *     irqbypass, kvm, ccp, kvm-amd).</li>
 * <li>Each VM: {@code qemu-system-x86_64 -cpu max} without -enable-kvm (TCG, emulated SVM with
 *     nested paging), -nodefaults, no NIC unless N > 1. The host's root is exported read-only
 *     over virtio-9p (cache=loose); the guest init mounts it under an overlay with a tmpfs upper
 *     layer (writes stay in guest RAM), fresh tmpfs on /run and /tmp, and switch_roots into it: the
 *     command sees the host's JDK, glibc, Maven repository and the repo at the same paths. A
 *     second 9p share per VM (the run directory, read-write) carries env, command and hosts in and
 *     a status file out.</li>
 * <li>Three virtio-serial ports per VM (dvmm.control, dvmm.stdout, dvmm.stderr) are UNIX sockets
 *     the lab listens on before QEMU starts; stdout and stderr stream to the caller's streams
 *     (lines prefixed "[rank] " when N > 1); the control port carries boot events and
 *     "exit STATUS". The status file on the share is the fallback. A guest write to a virtio port
 *     returns only once QEMU has taken the data, so the exit line is out before poweroff.</li>
 * <li>With N > 1, {@link dev.dvmm.hv.lab.LabSwitch} is a learning Ethernet switch in the lab's
 *     JVM; every VM's {@code -netdev stream} connects to it over a UNIX socket. No frame ever
 *     reaches the host's IP stack (no multicast, no host addresses); inside, host k is
 *     {@code lab<k>} at 10.77.0.(k+1)/24 (in /etc/hosts of each guest).</li>
 * </ol>
 *
 * <h2>What the command inside gets</h2>
 * Root, working directory = the caller's, stdin = /dev/null, environment: PATH, HOME, USER, LANG,
 * LC_ALL, TZ, TERM, JAVA_HOME, MAVEN_OPTS, CI and DVMM_* of the caller (nothing else: no secrets),
 * --env extras, and DVMM_LAB=1, DVMM_LAB_RANK, DVMM_LAB_HOSTS, DVMM_LAB_CPUS, DVMM_LAB_ADDRESS,
 * DVMM_LAB_PEERS (every host's address in rank order, this host's included). Busybox applets
 * (ping, nc, ip...) are appended to PATH from /run/dvmm-lab/bin.
 *
 * <h2>Exit status</h2>
 * The command's status (with N > 1 the first non-zero in rank order); 125
 * ({@link dev.dvmm.hv.lab.Lab#LAB_FAILURE}) when the lab itself fails, with one line on stderr
 * ("dvmm lab: ..."): QEMU missing or broken, not enough memory, image build failure, guest init
 * failure, guest crash (panic=-1 ends QEMU; the console log path is given), time limit. When one
 * of several VMs fails, the others are stopped.
 *
 * <h2>Recognising PVM ({@link dev.dvmm.hv.lab.HostMode})</h2>
 * On the build machines (host kernel 6.18 under Firecracker): /dev/kvm exists, /sys/module/kvm and
 * /sys/module/kvm_pvm exist (built in; there is no /proc/modules), /proc/cpuinfo has "hypervisor"
 * but neither vmx nor svm, the kernel command line has nested_pvm=1. Inside a lab VM:
 * /sys/module/kvm_amd and the svm flag.
 *
 * <h2>Measured here</h2>
 * 2 cores shared with other work (load average 6-7 during most measurements, so take the ranges):
 * <ul>
 * <li>First use (image not cached): image build 20 s (download ~75 MB, unpack, xz), then boot.</li>
 * <li>Cached: lab start to command start 6.0-9.8 s for 1 VM (1.0-1.8 s of it QEMU start and
 *     firmware, kernel to init 1.8-2.6 s, module loading 1.2-2 s, mounts and switch_root 0.3-0.5 s);
 *     2 VMs: 6.1 s both (one vCPU each).</li>
 * <li>{@code java -version} inside (JDK 25 over 9p cache=loose): 1.8 s first, 1.2 s warm on a quiet
 *     machine; 5-20 s under load average 7. From a tmpfs copy (what packing the JDK into the
 *     initramfs would give): 1.1 s, but copying the 303 MB JDK in costs 7 s, so the JDK stays on
 *     9p. cache=none: 3.3 s first, and a {@code find} over the repo is ~6x slower: loose is the
 *     default.</li>
 * <li>Ping between two lab VMs: 3-20 ms round trip.</li>
 * </ul>
 */
package dev.dvmm.hv.lab;
