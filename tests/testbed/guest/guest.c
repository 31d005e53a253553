/* SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The testbed guest: a few hundred bytes of freestanding 32-bit code that
 * QEMU boots as a multiboot kernel, so a test VM needs no disk image. Two
 * behaviours, chosen on the kernel command line (libvirt <cmdline>):
 *
 *   (no dirty=, or dirty=0)  idle: `hlt` with interrupts off; the vCPU
 *                            sleeps and costs no host CPU.
 *   dirty=N                  writes one word into every 4 KiB page of N MiB
 *                            (from 2 MiB up), pass after pass, as fast as
 *                            the vCPU runs: every page is dirty again in
 *                            each pre-copy round. Burns one host core.
 *
 * N is clamped to the memory the guest has. One line on the first serial
 * port says what the guest is doing, e.g. "ferry-guest: dirty 48 MiB".
 */

#include <stdint.h>

#define MB_BOOT_MAGIC   0x2BADB002u
#define MB_INFO_MEMORY  (1u << 0)
#define MB_INFO_CMDLINE (1u << 2)

#define PAGE_SIZE       4096u
#define MIB             (1024u * 1024u)
#define DIRTY_START     (2u * MIB)      /* above the kernel, its stack and the info */

struct multiboot_info {
        uint32_t flags;
        uint32_t mem_lower;             /* KiB below 1 MiB */
        uint32_t mem_upper;             /* KiB above 1 MiB */
        uint32_t boot_device;
        uint32_t cmdline;               /* physical address of a C string */
};

void guest_main(uint32_t magic, const struct multiboot_info *info);

/* ---------------------------------------------------------------- serial */

#define COM1 0x3f8

static inline void outb(uint16_t port, uint8_t v) {
        __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port) {
        uint8_t v;
        __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
        return v;
}

static void serial_putc(char c) {
        /* Wait for the transmit holding register (QEMU's is always free). */
        for (int i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
                ;
        outb(COM1, (uint8_t) c);
}

static void serial_puts(const char *s) {
        for (; *s; s++) {
                if (*s == '\n')
                        serial_putc('\r');
                serial_putc(*s);
        }
}

static void serial_putu(uint32_t v) {
        char buf[11];
        int i = sizeof(buf);

        buf[--i] = '\0';
        do {
                buf[--i] = (char) ('0' + v % 10);
                v /= 10;
        } while (v && i > 0);
        serial_puts(&buf[i]);
}

/* ---------------------------------------------------------------- cmdline */

/* The value of "KEY=" as a decimal number, if KEY= starts a word of the
 * command line (QEMU passes the kernel's path first, then <cmdline>). */
static int cmdline_uint(const char *cmdline, const char *key, uint32_t *ret) {
        for (const char *p = cmdline; *p; p++) {
                if (p != cmdline && p[-1] != ' ')
                        continue;
                const char *k = key, *q = p;
                while (*k && *q == *k)
                        k++, q++;
                if (*k || *q != '=')
                        continue;
                q++;
                if (*q < '0' || *q > '9')
                        return 0;
                uint32_t v = 0;
                for (; *q >= '0' && *q <= '9'; q++) {
                        if (v > (UINT32_MAX - 9) / 10)
                                return 0;
                        v = v * 10 + (uint32_t) (*q - '0');
                }
                *ret = v;
                return 1;
        }
        return 0;
}

/* ---------------------------------------------------------------- loops */

static __attribute__((noreturn)) void idle(void) {
        for (;;)
                __asm__ volatile("cli; hlt");
}

static __attribute__((noreturn)) void dirty(uint32_t start, uint32_t end) {
        for (uint32_t pass = 1;; pass++)
                for (uint32_t a = start; a < end; a += PAGE_SIZE)
                        *(volatile uint32_t *) (uintptr_t) a = pass;
}

void guest_main(uint32_t magic, const struct multiboot_info *info) {
        uint32_t dirty_mib = 0, mem_end = 0;

        if (magic != MB_BOOT_MAGIC) {
                serial_puts("ferry-guest: not started by a multiboot loader\n");
                idle();
        }
        if ((info->flags & MB_INFO_CMDLINE) && info->cmdline)
                (void) cmdline_uint((const char *) (uintptr_t) info->cmdline, "dirty", &dirty_mib);
        if (info->flags & MB_INFO_MEMORY) {
                /* Contiguous memory from 1 MiB up; below 4 GiB it stays. */
                uint32_t upper_kib = info->mem_upper;
                if (upper_kib > 3u * 1024u * 1024u)
                        upper_kib = 3u * 1024u * 1024u;
                mem_end = MIB + upper_kib * 1024u;
        }

        if (dirty_mib == 0) {
                serial_puts("ferry-guest: idle\n");
                idle();
        }

        uint32_t avail = mem_end > DIRTY_START ? (mem_end - DIRTY_START) / MIB : 0;
        if (dirty_mib > avail) {
                serial_puts("ferry-guest: only ");
                serial_putu(avail);
                serial_puts(" MiB to dirty\n");
                dirty_mib = avail;
        }
        serial_puts("ferry-guest: dirty ");
        serial_putu(dirty_mib);
        serial_puts(" MiB\n");
        if (dirty_mib == 0)
                idle();
        dirty(DIRTY_START, DIRTY_START + dirty_mib * MIB);
}
