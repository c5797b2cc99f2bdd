/*
 * csv.h — writing CSV (RFC 4180) that is safe to open in a spreadsheet.
 *
 * Fields are separated by commas and rows end in CRLF. A field holding a comma, a double
 * quote, CR or LF is enclosed in double quotes with its quotes doubled. A field that starts
 * with '=', '+', '-', '@', TAB or CR would be read as a formula by spreadsheet programs
 * (CSV/formula injection, OWASP): it gets a leading apostrophe, which they show as text.
 * Text is passed through as bytes (UTF-8 in, UTF-8 out).
 */
#ifndef USHER_CORE_CSV_H
#define USHER_CORE_CSV_H

#include "core/buf.h"

#include <stdbool.h>

/* Appends one field; first is true for the first field of a row (no separator before it).
 * NULL is an empty field. */
void csv_field(struct buf *b, const char *text, bool first);
/* Ends the row (CRLF). */
void csv_end_row(struct buf *b);

#endif
