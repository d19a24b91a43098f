#include <stdio.h>
#include <stdlib.h>

#include "platform.h"

void platform_write(const char *text) { fputs(text, stdout); }

void platform_exit(int code)
{
    fflush(stdout);
    exit(code);
}
