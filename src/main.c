/*
 * main.c — subcommand dispatch and wiring.
 */
#include <stdio.h>

int main(void)
{
    puts("usher " USHER_VERSION);
    return 0;
}
