/* Board port for ST NUCLEO-L4R5ZI (STM32L4R5ZI): LPUART1 on PG7/PG8 is the ST-LINK virtual COM
 * port; the core runs from the 4 MHz MSI reset clock; DWT CYCCNT counts core cycles.
 * Cannot be tested in CI (no board); it builds with the same runner as the QEMU boards. */
#include <stdint.h>

#include "../port.h"
#include "../protocol.h"

#ifndef TCR_CPU_HZ
#define TCR_CPU_HZ 4000000u
#endif
#ifndef TCR_BAUD
#define TCR_BAUD 115200u
#endif

#define REG(a) (*(volatile uint32_t *)(a))
#define RCC_AHB2ENR REG(0x4002104Cu)
#define RCC_APB1ENR1 REG(0x40021058u)
#define RCC_APB1ENR2 REG(0x4002105Cu)
#define PWR_CR2 REG(0x40007004u)
#define GPIOG 0x48001800u
#define LPUART1 0x40008000u
#define LP_CR1 REG(LPUART1 + 0x00u)
#define LP_BRR REG(LPUART1 + 0x0Cu)
#define LP_ISR REG(LPUART1 + 0x1Cu)
#define LP_ICR REG(LPUART1 + 0x20u)
#define LP_RDR REG(LPUART1 + 0x24u)
#define LP_TDR REG(LPUART1 + 0x28u)
#define DEMCR REG(0xE000EDFCu)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)
#define AIRCR REG(0xE000ED0Cu)

void SysTick_Handler(void) {}

void tcr_port_init(void)
{
    RCC_APB1ENR1 |= 1u << 28; /* PWR */
    PWR_CR2 |= 1u << 9;       /* IOSV: VDDIO2 valid, port G usable */
    RCC_AHB2ENR |= 1u << 6;   /* GPIOG */
    RCC_APB1ENR2 |= 1u << 0;  /* LPUART1 */
    (void)RCC_APB1ENR2;
    /* PG7 = LPUART1_TX, PG8 = LPUART1_RX, alternate function 8. */
    REG(GPIOG + 0x00u) = (REG(GPIOG + 0x00u) & ~((3u << 14) | (3u << 16))) | (2u << 14) | (2u << 16);
    REG(GPIOG + 0x20u) = (REG(GPIOG + 0x20u) & ~(0xFu << 28)) | (8u << 28);
    REG(GPIOG + 0x24u) = (REG(GPIOG + 0x24u) & ~0xFu) | 8u;
    LP_BRR = (uint32_t)(((uint64_t)TCR_CPU_HZ * 256u + TCR_BAUD / 2u) / TCR_BAUD);
    LP_CR1 = (1u << 3) | (1u << 2) | 1u; /* TE, RE, UE */
    DEMCR |= 1u << 24;
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;
}

int tcr_port_getc(void)
{
    for (;;) {
        uint32_t isr = LP_ISR;
        if (isr & (1u << 3)) LP_ICR = 1u << 3; /* overrun: drop it, the frame CRC catches the loss */
        if (isr & (1u << 5)) return (int)(LP_RDR & 0xFFu);
    }
}

void tcr_port_write(const uint8_t *data, uint32_t n)
{
    while (n--) {
        while (!(LP_ISR & (1u << 7))) {
        }
        LP_TDR = *data++;
    }
    while (!(LP_ISR & (1u << 6))) { /* TC: last byte on the wire */
    }
}

void tcr_port_exit(int code)
{
    (void)code; /* no semihosting without a debugger: reset and wait for the next session */
    AIRCR = 0x05FA0004u;
    for (;;) {
    }
}

uint8_t tcr_port_counter_kind(void) { return TCR_COUNTER_CYCLES; }
uint32_t tcr_port_counter_hz(void) { return TCR_CPU_HZ; }

uint64_t tcr_port_counter(void)
{
    static uint32_t hi, last;
    uint32_t now = DWT_CYCCNT;
    if (now < last) hi++;
    last = now;
    return ((uint64_t)hi << 32) | now;
}

void _exit(int code) { tcr_port_exit(code); }
