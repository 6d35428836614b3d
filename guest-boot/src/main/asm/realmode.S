/* Real-mode test guest, loaded at 0x7c00 with CS=0: prints a greeting, sums 1..100 and exits
 * through the debug-exit port with the sum (5050) as its status. */
#include "ports.h"
        .code16
        .text
        .globl entry
entry:
        cli
        xorw    %ax, %ax
        movw    %ax, %ds
        movw    $msg, %si
        movw    $CONSOLE_PORT, %dx
1:      lodsb
        testb   %al, %al
        jz      2f
        outb    %al, %dx
        jmp     1b
2:      xorl    %eax, %eax
        movl    $100, %ecx
3:      addl    %ecx, %eax
        loop    3b
        movw    $EXIT_PORT, %dx
        outl    %eax, %dx
        hlt
msg:    .asciz  "Hello from real mode\n"
