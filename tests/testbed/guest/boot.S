/* SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Entry of the testbed guest: a multiboot (version 1) header, a stack, and a
 * jump into C. QEMU's multiboot loader (-kernel, <os><kernel> in libvirt)
 * finds the header in the first 8 KiB of the file, loads the ELF segments
 * and enters `start` in 32-bit protected mode, paging off, interrupts off,
 * with EAX = 0x2BADB002 and EBX = the physical address of the multiboot
 * information structure.
 */

#define MB_MAGIC        0x1BADB002
#define MB_FLAGS        0x00000002      /* bit 1: give us mem_lower/mem_upper */

        .section .text
        .globl start
        .align 4
multiboot_header:
        .long MB_MAGIC
        .long MB_FLAGS
        .long -(MB_MAGIC + MB_FLAGS)

start:
        cli
        movl    $stack_top, %esp
        xorl    %ebp, %ebp
        pushl   %ebx                    /* guest_main(magic, info) */
        pushl   %eax
        call    guest_main
        /* guest_main does not return; if it did, halt for good. */
1:      cli
        hlt
        jmp     1b

        .section .bss
        .align 16
stack_bottom:
        .skip   16384
stack_top:

        .section .note.GNU-stack, "", @progbits
