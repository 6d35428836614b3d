/* 64-bit test guest. The VMM enters at `entry` in long mode (ring 0, paging on, GDT set), with
 * RDI = test id, RSI = vCPU index, RDX = parameter, RCX = number of vCPUs. Hot loops run in ring 3, because on nested PVM
 * hosts ring-0 code is about 1000x slower (MACHINES.md); ring 3 leaves through the MMIO exit register. */
#include "ports.h"
        .code64
        .text
        .globl entry
entry:
        movq    %rsi, %r12              /* vCPU index */
        movq    %rdx, %r13              /* parameter */
        movq    %rcx, %r15              /* vCPU count */
        movq    %rsi, %r14
        shlq    $6, %r14
        addq    $RESULTS, %r14          /* this vCPU's results */
        cmpq    $T_HELLO, %rdi
        je      hello
        cmpq    $T_COUNTERS, %rdi
        je      counters
        cmpq    $T_EXCEPTIONS, %rdi
        je      exceptions
        cmpq    $T_SPIN, %rdi
        je      spin
        cmpq    $T_PATTERN, %rdi
        je      pattern
        cmpq    $T_PIO_LOOP, %rdi
        je      pio_loop
        cmpq    $T_USER_INT, %rdi
        je      user_int
        cmpq    $T_HANDOFF, %rdi
        je      handoff
        movl    $0xbad, %eax
        jmp     exit

/* exit with status %eax (works in ring 0 and ring 3) */
exit:
        movw    $EXIT_PORT, %dx
        outl    %eax, %dx
        hlt
        jmp     exit

/* ring 3: wait until all R15 vCPUs have arrived, so that they really run at the same time (on
 * several nodes, each starts when its node has its first pages) */
start_barrier:
        lock incq START_GATE
1:      cmpq    %r15, START_GATE
        jae     2f
        pause
        jmp     1b
2:      ret

/* exit from ring 3 with status %eax: an MMIO write (port I/O from ring 3 needs IOPL, see ports.h) */
uexit:
        movq    $MMIO_EXIT, %rbx
        movl    %eax, (%rbx)
1:      jmp     1b

/* enter ring 3 at %rax with this vCPU's user stack; registers other than rax/rcx/rsp survive */
to_user:
        movq    %r12, %rcx
        shlq    $12, %rcx
        negq    %rcx
        addq    $USTACK_TOP, %rcx
        pushq   $SEL_UDATA
        pushq   %rcx
        pushq   $0x3002                 /* IOPL=3 (honoured on hardware KVM only), IF=0 */
        pushq   $SEL_UCODE
        pushq   %rax
        iretq

hello:
        leaq    hello_msg(%rip), %rsi
        movw    $CONSOLE_PORT, %dx
1:      lodsb
        testb   %al, %al
        jz      2f
        outb    %al, %dx
        jmp     1b
2:      movb    %r12b, %al
        addb    $'0', %al
        outb    %al, %dx
        movb    $'\n', %al
        outb    %al, %dx
        movl    $0x42, %eax
        jmp     exit

/* ring 3: N x (lock xadd on DATA+0) and N x (spinlock DATA+0x40 around a plain increment of DATA+0x80) */
counters:
        leaq    counters_user(%rip), %rax
        jmp     to_user
counters_user:
        call    start_barrier
        movq    %r13, %rcx
1:      movq    $1, %rax
        lock xaddq %rax, DATA
2:      movl    $1, %eax
        xchgl   %eax, DATA+0x40
        testl   %eax, %eax
        jz      3f
        pause
        jmp     2b
3:      movq    DATA+0x80, %rax
        incq    %rax
        movq    %rax, DATA+0x80
        movl    $0, DATA+0x40
        decq    %rcx
        jnz     1b
        lock incq DATA+0xc0
        xorl    %eax, %eax
        jmp     uexit

/* ring 0: #UD, #DE and #BP (int3), each caught by an IDT handler that records vector and pushed RIP.
 * #BP is a trap: the CPU pushes the address after the int3 (recorded at DATA, DATA+8, DATA+16). Some
 * nested hosts cannot emulate int3; the VMM then injects the #BP itself. */
exceptions:
        leaq    ud_handler(%rip), %rax
        movq    $6, %rbx
        call    set_gate
        leaq    de_handler(%rip), %rax
        movq    $0, %rbx
        call    set_gate
        leaq    bp_handler(%rip), %rax
        movq    $3, %rbx
        call    set_gate
        lidt    idt_descriptor(%rip)
        leaq    ud_site(%rip), %rax
        movq    %rax, 16(%r14)          /* where #UD must be reported */
ud_site:
        ud2
        leaq    de_site(%rip), %rax
        movq    %rax, 40(%r14)          /* where #DE must be reported */
        xorq    %rcx, %rcx
        xorq    %rdx, %rdx
        movq    $7, %rax
de_site:
        divq    %rcx                    /* 48 f7 f1: 3 bytes */
        leaq    bp_after(%rip), %rax
        movq    %rax, DATA + 16         /* the RIP #BP must push */
        int3
bp_after:
        movq    $3, 48(%r14)            /* all three handlers returned here */
        movl    $0x60, %eax
        jmp     exit

/* gate for vector %rbx -> handler %rax: 64-bit interrupt gate, DPL 0 */
set_gate:
        movq    %rbx, %rdi
        shlq    $4, %rdi
        addq    $IDT_BASE, %rdi
        movw    %ax, (%rdi)
        movw    $SEL_KCODE, 2(%rdi)
        movw    $0x8e00, 4(%rdi)
        shrq    $16, %rax
        movw    %ax, 6(%rdi)
        shrq    $16, %rax
        movl    %eax, 8(%rdi)
        movl    $0, 12(%rdi)
        ret

ud_handler:
        movq    $6, 0(%r14)
        movq    (%rsp), %rax            /* RIP pushed by the CPU */
        movq    %rax, 8(%r14)
        addq    $2, (%rsp)              /* skip ud2 */
        iretq
bp_handler:
        movq    $3, DATA
        movq    (%rsp), %rax
        movq    %rax, DATA + 8
        iretq
de_handler:
        movq    $0, 24(%r14)
        movq    (%rsp), %rax
        movq    %rax, 32(%r14)
        addq    $3, (%rsp)              /* skip div %rcx */
        iretq

/* ring 3: count forever at DATA+0x100 + 8*vcpu until the VMM stops us */
spin:
        leaq    spin_user(%rip), %rax
        jmp     to_user
spin_user:
        leaq    DATA+0x100(,%r12,8), %rbx
1:      incq    (%rbx)
        jmp     1b

/* ring 3: fill N quadwords of this vCPU's slice of PATTERN with (i * golden) ^ (vcpu << 56) */
pattern:
        leaq    pattern_user(%rip), %rax
        jmp     to_user
pattern_user:
        movq    %r13, %rcx
        movq    %r12, %rbx
        imulq   %r13, %rbx
        leaq    PATTERN(,%rbx,8), %rdi  /* vCPU i writes quadwords [i*N, (i+1)*N) */
        movq    %r12, %r8
        shlq    $56, %r8
        xorq    %rsi, %rsi              /* i */
        movabsq $0x9e3779b97f4a7c15, %r9
1:      movq    %rsi, %rax
        imulq   %r9, %rax
        xorq    %r8, %rax
        movq    %rax, (%rdi,%rsi,8)
        incq    %rsi
        cmpq    %rcx, %rsi
        jb      1b
        xorl    %eax, %eax
        jmp     uexit

/* ring 0 (port I/O needs it on PVM hosts): N port writes to BENCH_PORT, each one a VM exit */
pio_loop:
        movq    %r13, %rcx
        movw    $BENCH_PORT, %dx
1:      outb    %al, %dx
        decq    %rcx
        jnz     1b
        xorl    %eax, %eax
        jmp     exit

/* ring 3 -> ring 0 through an exception (#UD; RSP0 from the TSS at address 0): the handler records the
 * interrupted CS and exits with status 0x80. Not `int n`: on nested PVM hosts a software interrupt from
 * ring 3 through a DPL-3 gate triple-faults, while exceptions from ring 3 are delivered (HOSTS.md). */
user_int:
        leaq    user_trap_handler(%rip), %rax
        movq    $6, %rbx
        call    set_gate
        lidt    idt_descriptor(%rip)
        movq    %r12, %rax
        shlq    $12, %rax
        negq    %rax
        addq    $KSTACK_TOP, %rax
        movq    %rax, 4                 /* TSS.RSP0 (the TSS descriptor has base 0) */
        leaq    user_int_user(%rip), %rax
        jmp     to_user
user_int_user:
        ud2
1:      jmp     1b
user_trap_handler:
        movq    8(%rsp), %rax           /* CS of the interrupted code */
        movq    %rax, 0(%r14)
        movl    $0x80, %eax
        jmp     exit

/* ring 3: vCPU 0 produces 1..N into a 64-slot ring, vCPU 1 consumes and checks the order; the
 * consumer exits with the number of items out of order, and stores the sum it saw at RESULTS+64. */
handoff:
        leaq    handoff_user(%rip), %rax
        jmp     to_user
handoff_user:
        call    start_barrier
        cmpq    $0, %r12
        je      producer
        cmpq    $1, %r12
        je      consumer
        xorl    %eax, %eax
        jmp     uexit
producer:
        movq    $1, %rsi                /* next item */
1:      movq    RING_HEAD, %rax
2:      movq    RING_TAIL, %rbx
        movq    %rax, %rcx
        subq    %rbx, %rcx
        cmpq    $64, %rcx
        jb      3f
        pause
        jmp     2b
3:      movq    %rax, %rcx
        andq    $63, %rcx
        movq    %rsi, RING(,%rcx,8)
        incq    %rax
        movq    %rax, RING_HEAD         /* TSO: the slot is visible before the new head */
        incq    %rsi
        cmpq    %r13, %rsi
        jbe     1b
        xorl    %eax, %eax
        jmp     uexit
consumer:
        movq    $1, %rsi                /* expected item */
        xorq    %r8, %r8                /* out-of-order count */
        xorq    %r9, %r9                /* sum */
1:      movq    RING_TAIL, %rbx
2:      movq    RING_HEAD, %rax
        cmpq    %rbx, %rax
        jne     3f
        pause
        jmp     2b
3:      movq    %rbx, %rcx
        andq    $63, %rcx
        movq    RING(,%rcx,8), %rdx
        addq    %rdx, %r9
        cmpq    %rsi, %rdx
        je      4f
        incq    %r8
4:      incq    %rbx
        movq    %rbx, RING_TAIL
        incq    %rsi
        cmpq    %r13, %rsi
        jbe     1b
        movq    %r9, RESULTS + 64
        movl    %r8d, %eax
        jmp     uexit

        .p2align 3
idt_descriptor:
        .word   256 * 16 - 1
        .quad   IDT_BASE
hello_msg:
        .asciz  "Hello from long mode on vCPU "
