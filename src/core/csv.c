/*
 * csv.c — RFC 4180 fields with the formula-injection guard (see csv.h).
 */
#include "core/csv.h"

#include <string.h>

static bool starts_formula(const char *s)
{
    return *s == '=' || *s == '+' || *s == '-' || *s == '@' || *s == '\t' || *s == '\r';
}

void csv_field(struct buf *b, const char *text, bool first)
{
    if (!first)
        buf_putc(b, ',');
    if (!text)
        return;
    bool quote = strpbrk(text, ",\"\r\n") != NULL;
    if (quote)
        buf_putc(b, '"');
    if (starts_formula(text))
        buf_putc(b, '\'');
    for (const char *p = text; *p; p++) {
        if (*p == '"')
            buf_putc(b, '"');
        buf_putc(b, *p);
    }
    if (quote)
        buf_putc(b, '"');
}

void csv_end_row(struct buf *b)
{
    buf_puts(b, "\r\n");
}
