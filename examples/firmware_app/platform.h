/* What the application needs from the board: write text, stop with an exit code. */
#ifndef PLATFORM_H
#define PLATFORM_H

void platform_write(const char *text);
void platform_exit(int code) __attribute__((noreturn));

#endif
