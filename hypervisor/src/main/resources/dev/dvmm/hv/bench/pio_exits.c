/* The C baseline of `dvmm bench exits`: the same long-mode test guest (T_PIO_LOOP) run with raw
 * KVM ioctls and the smallest possible exit loop. Written for dvmm; compiled and run by the benchmark.
 * usage: pio_exits <longmode.bin> <exits> ; prints "exits=<n> ns=<elapsed ns of the run loop>" */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM (16u << 20)
#define LOAD 0x100000
#define GDT 0x500
#define PML4 0x10000
#define PDPT 0x11000
#define PD 0x12000
#define EXIT_PORT 0x501
#define BENCH_PORT 0x510

static void die(const char *what) { perror(what); exit(1); }

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int code64) {
    memset(s, 0, sizeof *s);
    s->limit = 0xffffffff; s->selector = sel; s->type = type; s->present = 1;
    s->s = 1; s->l = code64; s->db = !code64; s->g = 1;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s <longmode.bin> <exits>\n", argv[0]); return 2; }
    long n = atol(argv[2]);
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) die("/dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) die("KVM_CREATE_VM");
    uint8_t *mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) die("mmap");
    struct kvm_userspace_memory_region r = { .slot = 0, .guest_phys_addr = 0, .memory_size = MEM,
                                             .userspace_addr = (uint64_t)mem };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0) die("KVM_SET_USER_MEMORY_REGION");
    FILE *f = fopen(argv[1], "rb");
    if (!f) die(argv[1]);
    size_t len = fread(mem + LOAD, 1, MEM - LOAD, f);
    fclose(f);
    if (len == 0) die("empty guest");
    uint64_t gdt[] = {0, 0x00af9a000000ffffull, 0x00cf92000000ffffull, 0x00cff2000000ffffull,
                      0x00affa000000ffffull, 0x0000890000000067ull, 0};
    memcpy(mem + GDT, gdt, sizeof gdt);
    for (int g = 0; g < 4; g++) ((uint64_t *)(mem + PDPT))[g] = (PD + g * 0x1000) | 7;
    ((uint64_t *)(mem + PML4))[0] = PDPT | 7;
    for (int i = 0; i < 4 * 512; i++) ((uint64_t *)(mem + PD))[i] = ((uint64_t)i << 21) | 0x87;

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) die("KVM_CREATE_VCPU");
    int mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run *run = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) die("mmap kvm_run");
    struct { struct kvm_cpuid2 c; struct kvm_cpuid_entry2 e[256]; } cpuid = { .c.nent = 256 };
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid) < 0) die("KVM_GET_SUPPORTED_CPUID");
    if (ioctl(vcpu, KVM_SET_CPUID2, &cpuid) < 0) die("KVM_SET_CPUID2");

    struct kvm_sregs s;
    if (ioctl(vcpu, KVM_GET_SREGS, &s) < 0) die("KVM_GET_SREGS");
    seg(&s.cs, 0x08, 0xb, 1);
    seg(&s.ds, 0x10, 0x3, 0); s.es = s.fs = s.gs = s.ss = s.ds;
    memset(&s.tr, 0, sizeof s.tr);
    s.tr.selector = 0x28; s.tr.limit = 0x67; s.tr.type = 0xb; s.tr.present = 1;
    s.gdt.base = GDT; s.gdt.limit = 7 * 8 - 1;
    s.cr0 = 0x80010033; s.cr3 = PML4; s.cr4 = 0x620; s.efer = 0x500;
    if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0) die("KVM_SET_SREGS");
    struct kvm_regs regs = { .rip = LOAD, .rsp = 0x70000, .rdi = 5 /* T_PIO_LOOP */, .rsi = 0, .rdx = n, .rflags = 2 };
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");

    long exits = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
        if (run->exit_reason == KVM_EXIT_IO && run->io.port == BENCH_PORT) { exits++; continue; }
        if (run->exit_reason == KVM_EXIT_IO && run->io.port == EXIT_PORT) break;
        fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("exits=%ld ns=%lld\n", exits, (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
    return 0;
}
