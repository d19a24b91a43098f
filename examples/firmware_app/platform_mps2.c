/* QEMU mps2-an386 (Cortex-M4F): vector table, reset, CMSDK UART0 for text, semihosting exit. */
#include <stdint.h>

#include "platform.h"

extern uint32_t __stack_top, __data_load, __data_start, __data_end, __bss_start, __bss_end;
extern int main(void);

#define UART_DATA (*(volatile uint32_t *)0x40004000u)
#define UART_STATE (*(volatile uint32_t *)0x40004004u)
#define UART_CTRL (*(volatile uint32_t *)0x40004008u)
#define UART_BAUDDIV (*(volatile uint32_t *)0x40004010u)

void Reset_Handler(void) __attribute__((noreturn));
void Fault_Handler(void) __attribute__((noreturn));

void Reset_Handler(void)
{
    uint32_t *src = &__data_load, *dst = &__data_start;
    while (dst < &__data_end) *dst++ = *src++;
    for (dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: enable the FPU (hard-float ABI) */
    __asm volatile("dsb\n\tisb" ::: "memory");
    UART_BAUDDIV = 16u;
    UART_CTRL = 1u; /* TX enable */
    platform_exit(main());
}

void Fault_Handler(void)
{
    platform_write("fault\n");
    platform_exit(99);
}

typedef void (*vector_fn)(void);
__attribute__((section(".isr_vector"), used)) const vector_fn vectors[16] = {
    (vector_fn)(uintptr_t)&__stack_top, Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
};

void platform_write(const char *text)
{
    for (; *text; text++) {
        while (UART_STATE & 0x1u) {
        }
        UART_DATA = (uint32_t)(uint8_t)*text;
    }
}

void platform_exit(int code)
{
    /* Semihosting SYS_EXIT_EXTENDED (QEMU -semihosting-config enable=on): the exit code reaches the host. */
    volatile uint32_t block[2] = {0x20026u, (uint32_t)code};
    register uint32_t r0 __asm("r0") = 0x20u;
    register volatile uint32_t *r1 __asm("r1") = block;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) {
    }
}
