/* Linux port of the tinyconv runner (aarch64 under qemu-aarch64, or the build machine):
 * the protocol runs over stdin/stdout; faults (SIGSEGV, SIGILL, SIGBUS, SIGFPE) are reported as
 * a FAULT frame. Instruction counts come from the harness's QEMU plugin (linux/icount_plugin.c):
 * when TINYCONV_ICOUNT_FILE names the file the plugin writes, tcr_port_counter issues the marker
 * system call and reads the exact count back; otherwise counters are kind NONE. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../port.h"
#include "../protocol.h"

extern void tcr_send_fault(uint8_t kind, const uint32_t values[7]);

static uint8_t inbuf[4096];
static ssize_t in_n, in_pos;

static void on_fault(int sig, siginfo_t *si, void *ctx)
{
    uint32_t v[7] = {0, 0, 0, 0, 0, 0, 0};
    (void)ctx;
    v[4] = (uint32_t)(uintptr_t)si->si_addr;
    v[6] = (uint32_t)sig;
    tcr_send_fault(TCR_FAULT_SIGNAL, v);
    _exit(3);
}

#define STACK_PAINT_BYTES (256u * 1024u)

__attribute__((noinline)) static void prefault_stack(void)
{
    volatile uint8_t big[STACK_PAINT_BYTES + 8192u];
    big[0] = 0;
    big[sizeof big - 1] = 0;
    for (uint32_t i = 0; i < sizeof big; i += 4096) big[i] = 0;
}

#define TCR_ICOUNT_SYSCALL 0x7C01 /* unused by Linux; the plugin records the count on it */
static volatile const uint64_t *icount; /* the plugin's shared counter, 0 when not counting */

static void map_icount(void)
{
    const char *path = getenv("TINYCONV_ICOUNT_FILE");
    int fd;
    void *p;
    if (!path || !*path) return;
    fd = open(path, O_RDONLY);
    if (fd < 0) return;
    p = mmap(0, 4096, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p != MAP_FAILED) icount = (volatile const uint64_t *)p;
}

void tcr_port_init(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, 0);
    sigaction(SIGILL, &sa, 0);
    sigaction(SIGBUS, &sa, 0);
    sigaction(SIGFPE, &sa, 0);
    signal(SIGPIPE, SIG_DFL);
    prefault_stack();
    map_icount();
}

int tcr_port_getc(void)
{
    if (in_pos >= in_n) {
        do {
            in_n = read(0, inbuf, sizeof inbuf);
        } while (in_n < 0);
        in_pos = 0;
        if (in_n == 0) return -1;
    }
    return inbuf[in_pos++];
}

void tcr_port_write(const uint8_t *data, uint32_t n)
{
    while (n) {
        ssize_t k = write(1, data, n);
        if (k <= 0) _exit(5);
        data += k;
        n -= (uint32_t)k;
    }
}

void tcr_port_exit(int code) { _exit(code); }

uint8_t tcr_port_counter_kind(void) { return icount ? TCR_COUNTER_INSTRUCTIONS : TCR_COUNTER_NONE; }
uint32_t tcr_port_counter_hz(void) { return 0; }
uint64_t tcr_port_counter(void)
{
    if (!icount) return 0;
    syscall(TCR_ICOUNT_SYSCALL);
    return *icount;
}

/* Stack high-water: paint STACK_PAINT_BYTES below the caller's frame, scan after the run. */
static volatile uint8_t *paint_lo, *paint_hi;

__attribute__((noinline)) void tcr_port_stack_paint(void)
{
    uint8_t *fp = (uint8_t *)__builtin_frame_address(0);
    paint_hi = fp - 32; /* this leaf keeps its state in registers */
    paint_lo = paint_hi - STACK_PAINT_BYTES;
    for (volatile uint8_t *p = paint_lo; p < paint_hi; p++) *p = 0xC5;
}

__attribute__((noinline)) uint32_t tcr_port_stack_used(uint32_t *painted)
{
    volatile uint8_t *p = paint_lo;
    while (p < paint_hi && *p == 0xC5) p++;
    *painted = STACK_PAINT_BYTES;
    return (uint32_t)(paint_hi - p);
}
