/* Ports and addresses shared by the test guests and dev.dvmm.hv.guests.TestGuest. */
#define CONSOLE_PORT   0x3f8    /* byte writes go to the VMM's console (8250 THR compatible) */
#define EXIT_PORT      0x501    /* 32-bit write: this vCPU stops with that status */
#define BENCH_PORT     0x510    /* writes are counted and ignored: the exit benchmark's target */
#define MMIO_EXIT      0xfe000000 /* 32-bit MMIO write: same as EXIT_PORT, usable from ring 3 (IOPL is
                                     not honoured on nested PVM hosts, so ring 3 cannot use `out`) */

#define RESULTS        0x7000   /* 64 bytes of results per vCPU */
#define DATA           0x200000 /* shared data page */
#define PATTERN        0x300000 /* memory-pattern region */
#define KSTACK_TOP     0x70000  /* ring-0 stack of vCPU i: KSTACK_TOP - i * 0x1000 */
#define USTACK_TOP     0x90000  /* ring-3 stack of vCPU i: USTACK_TOP - i * 0x1000 */
#define IDT_BASE       0x2000
#define SEL_KCODE      0x08
#define SEL_UDATA      0x1b
#define SEL_UCODE      0x23

/* Test ids (RDI at entry) */
#define T_HELLO        0
#define T_COUNTERS     1
#define T_EXCEPTIONS   2
#define T_SPIN         3
#define T_PATTERN      4
#define T_PIO_LOOP     5
#define T_USER_INT     6
#define T_HANDOFF      7
#define START_GATE     (DATA + 0x3000)  /* vCPUs arrived at the start barrier */
#define RING           (DATA + 0x1000)  /* 64 quadword slots */
#define RING_HEAD      (DATA + 0x2000)
#define RING_TAIL      (DATA + 0x2040)
