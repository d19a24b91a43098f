/* Board port for MPS2/MPS3 boards in QEMU (and the same code on silicon with a CMSDK-like UART):
 * CMSDK APB UART, SysTick counter, semihosting exit, stack painting. */
#include <stdint.h>

#include "../port.h"
#include "../protocol.h"

#ifndef TCR_UART_BASE
#define TCR_UART_BASE 0x40004000u
#endif
#ifndef TCR_CPU_HZ
#define TCR_CPU_HZ 25000000u
#endif

#define UART_DATA (*(volatile uint32_t *)(TCR_UART_BASE + 0x0u))
#define UART_STATE (*(volatile uint32_t *)(TCR_UART_BASE + 0x4u))
#define UART_CTRL (*(volatile uint32_t *)(TCR_UART_BASE + 0x8u))
#define UART_BAUDDIV (*(volatile uint32_t *)(TCR_UART_BASE + 0x10u))

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static volatile uint32_t systick_wraps;

void SysTick_Handler(void) { systick_wraps++; }

void tcr_port_init(void)
{
    UART_BAUDDIV = 16u;
    UART_CTRL = 0x3u; /* TX and RX enable, no interrupts */
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0u;
    SYST_CSR = 0x7u; /* processor clock, interrupt, enable */
    /* CVR reads 0 until the first reload. */
    {
        uint32_t spin = 0;
        while (SYST_CVR == 0u && ++spin < 1000000u) {
        }
    }
}

int tcr_port_getc(void)
{
    while (!(UART_STATE & 0x2u)) {
    }
    return (int)(UART_DATA & 0xFFu);
}

void tcr_port_write(const uint8_t *data, uint32_t n)
{
    while (n--) {
        while (UART_STATE & 0x1u) {
        }
        UART_DATA = *data++;
    }
}

void tcr_port_exit(int code)
{
    /* Semihosting SYS_EXIT_EXTENDED: r0 = 0x20, r1 -> {ADP_Stopped_ApplicationExit, code}. */
    volatile uint32_t block[2] = {0x20026u, (uint32_t)code};
    register uint32_t r0 __asm("r0") = 0x20u;
    register volatile uint32_t *r1 __asm("r1") = block;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) {
    }
}

uint8_t tcr_port_counter_kind(void) { return TCR_COUNTER_SYSTICK; }
uint32_t tcr_port_counter_hz(void) { return TCR_CPU_HZ; }

uint64_t tcr_port_counter(void)
{
    uint32_t w1, w2, v;
    do {
        w1 = systick_wraps;
        v = SYST_CVR;
        w2 = systick_wraps;
    } while (w1 != w2);
    /* A wrap that happened between reading CVR and servicing the interrupt shows as COUNTFLAG. */
    return ((uint64_t)w1 << 24) + (uint64_t)(0x00FFFFFFu - v);
}

/* newlib-nano hooks in case anything pulls them in. */
void _exit(int code) { tcr_port_exit(code); }
