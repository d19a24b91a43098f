/* Cortex-M startup for the tinyconv runner: vector table, Reset_Handler (copy .data, zero .bss,
 * enable FPU/MVE), and fault handlers that report the fault as a protocol frame, then exit. */
#include <stdint.h>
#include <string.h>

#include "../protocol.h"

extern uint32_t __stack_top, __stack_limit;
extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end;
extern int main(void);
extern void tcr_send_fault(uint8_t kind, const uint32_t values[7]);
extern void tcr_port_exit(int code) __attribute__((noreturn));
extern void SysTick_Handler(void);

void Reset_Handler(void) __attribute__((noreturn));
void Fault_Handler(void) __attribute__((naked));
void Default_Handler(void);

void Reset_Handler(void)
{
    uint32_t *src = &__data_load, *dst = &__data_start;
    while (dst < &__data_end) *dst++ = *src++;
    for (dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
    /* CPACR: full access to CP10/CP11 (FPU and, on Armv8.1-M, MVE) before any FP instruction. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm volatile("dsb\n\tisb" ::: "memory");
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
    /* Armv8-M stack limit: a stack overflow becomes a UsageFault (STKOF) instead of silent corruption. */
    __asm volatile("msr msplim, %0" ::"r"(&__stack_limit));
#endif
    (void)main();
    tcr_port_exit(0);
}

/* Called with the stacked exception frame (r0-r3, r12, lr, pc, xpsr). */
void Fault_Report(uint32_t *frame) __attribute__((used, noreturn));
void Fault_Report(uint32_t *frame)
{
    uint32_t v[7];
    v[0] = frame[6];                          /* pc */
    v[1] = frame[5];                          /* lr */
    v[2] = *(volatile uint32_t *)0xE000ED28u; /* CFSR */
    v[3] = *(volatile uint32_t *)0xE000ED2Cu; /* HFSR */
    v[4] = *(volatile uint32_t *)0xE000ED34u; /* MMFAR */
    v[5] = *(volatile uint32_t *)0xE000ED38u; /* BFAR */
    v[6] = 0;
    tcr_send_fault(TCR_FAULT_HARDFAULT, v);
    tcr_port_exit(3);
}

void Fault_Handler(void)
{
    __asm volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "b Fault_Report\n\t");
}

void Default_Handler(void)
{
    uint32_t v[7] = {0, 0, 0, 0, 0, 0, 0};
    __asm volatile("mrs %0, ipsr" : "=r"(v[6]));
    tcr_send_fault(TCR_FAULT_HARDFAULT, v);
    tcr_port_exit(4);
}

typedef void (*vector_fn)(void);

__attribute__((section(".isr_vector"), used)) const vector_fn tcr_vectors[16 + 32] = {
    (vector_fn)(uintptr_t)&__stack_top,
    Reset_Handler,
    Fault_Handler,  /* NMI */
    Fault_Handler,  /* HardFault */
    Fault_Handler,  /* MemManage */
    Fault_Handler,  /* BusFault */
    Fault_Handler,  /* UsageFault */
    Fault_Handler,  /* SecureFault (v8-M) */
    0, 0, 0,
    Default_Handler, /* SVC */
    Default_Handler, /* DebugMon */
    0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
    [16 ... 47] = Default_Handler,
};
