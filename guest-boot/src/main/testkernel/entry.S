/* dvmm test kernel: entry points, AP trampoline, interrupt stubs, ring-3 entry and return. */
        .code64
        .section .text.entry, "ax"
        .globl _start
_start:                                 /* 64-bit boot protocol: RSI = zero page */
        cli
        leaq    boot_stack_top(%rip), %rsp
        movq    %rsi, %rdi
        call    kmain
1:      hlt
        jmp     1b

        .text
/* Loads the kernel GDT, reloads every segment register, and loads TR (rdi = gdtr, rsi = TR selector). */
        .globl  load_gdt
load_gdt:
        lgdt    (%rdi)
        movw    $0x10, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %ss
        xorw    %ax, %ax
        movw    %ax, %fs
        movw    %ax, %gs
        ltr     %si
        popq    %rax                    /* far return to reload CS */
        pushq   $0x08
        pushq   %rax
        lretq

/* Interrupt stubs: push a vector (and a zero error code where the CPU pushes none), then common. */
        .macro  STUB vec
        .globl  isr_\vec
isr_\vec:
        .if (\vec == 8) || (\vec >= 10 && \vec <= 14) || (\vec == 17)
        .else
        pushq   $0
        .endif
        pushq   $\vec
        jmp     isr_common
        .endm
        STUB 0
        STUB 6
        STUB 8
        STUB 13
        STUB 14
        STUB 0x40
        STUB 0x41
        STUB 0x42
        STUB 0x43
        STUB 0xff

isr_common:                             /* frame: vector, error, rip, cs, rflags, rsp, ss */
        pushq   %rax
        pushq   %rcx
        pushq   %rdx
        pushq   %rsi
        pushq   %rdi
        pushq   %r8
        pushq   %r9
        pushq   %r10
        pushq   %r11
        movq    %rsp, %rdi              /* struct frame * */
        call    interrupt
        popq    %r11
        popq    %r10
        popq    %r9
        popq    %r8
        popq    %rdi
        popq    %rsi
        popq    %rdx
        popq    %rcx
        popq    %rax
        addq    $16, %rsp
        iretq

/* int enter_user(void (*fn)(long), long arg, unsigned long user_stack_top, unsigned long *save)
 * Runs fn(arg) in ring 3 (IF=0). fn returns to user_return, whose ud2 traps to ring 0, where the #UD
 * handler calls leave_user(save) to come back here. */
        .globl  enter_user
enter_user:
        pushq   %rbx
        pushq   %rbp
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        movq    %rsp, (%rcx)
        leaq    user_return(%rip), %rax
        subq    $8, %rdx
        movq    %rax, (%rdx)            /* fn's return address on the user stack */
        pushq   $0x1b                   /* SS: user data */
        pushq   %rdx                    /* RSP */
        pushq   $0x2                    /* RFLAGS: IF=0 */
        pushq   $0x23                   /* CS: user code */
        pushq   %rdi                    /* RIP = fn */
        movq    %rsi, %rdi
        iretq

        .globl  user_return
user_return:
        ud2

/* void leave_user(unsigned long saved_rsp): resumes enter_user's caller in ring 0. */
        .globl  leave_user
leave_user:
        movq    %rdi, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbp
        popq    %rbx
        xorl    %eax, %eax
        ret

/* AP start-up: copied to TRAMPOLINE (0x8000); the SIPI vector 0x08 starts APs there in real mode. */
        .globl  trampoline_start, trampoline_end, tramp_cr3, tramp_stack, tramp_entry
        .set    TRAMP, 0x8000
        .code16
trampoline_start:
        cli
        xorw    %ax, %ax
        movw    %ax, %ds
        lgdtl   (tramp_gdtr - trampoline_start + TRAMP)
        movl    %cr0, %eax
        orl     $1, %eax
        movl    %eax, %cr0
        ljmpl   $0x08, $(tramp32 - trampoline_start + TRAMP)
        .code32
tramp32:
        movw    $0x10, %ax
        movw    %ax, %ds
        movw    %ax, %ss
        movl    %cr4, %eax
        orl     $0x20, %eax             /* PAE */
        movl    %eax, %cr4
        movl    (tramp_cr3 - trampoline_start + TRAMP), %eax
        movl    %eax, %cr3
        movl    $0xc0000080, %ecx       /* EFER.LME */
        rdmsr
        orl     $0x100, %eax
        wrmsr
        movl    %cr0, %eax
        orl     $0x80000000, %eax
        movl    %eax, %cr0
        ljmpl   $0x18, $(tramp64 - trampoline_start + TRAMP)
        .code64
tramp64:
        movq    (tramp_stack - trampoline_start + TRAMP), %rsp
        movq    (tramp_entry - trampoline_start + TRAMP), %rax
        jmp     *%rax
        .p2align 3
tramp_gdt:
        .quad   0
        .quad   0x00cf9a000000ffff      /* 0x08 32-bit code */
        .quad   0x00cf92000000ffff      /* 0x10 data */
        .quad   0x00af9a000000ffff      /* 0x18 64-bit code */
tramp_gdtr:
        .word   4 * 8 - 1
        .long   tramp_gdt - trampoline_start + TRAMP
        .p2align 3
tramp_cr3:      .quad 0
tramp_stack:    .quad 0
tramp_entry:    .quad 0
trampoline_end:

        .bss
        .p2align 12
        .space  16384
boot_stack_top:
