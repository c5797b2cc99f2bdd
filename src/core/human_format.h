/*
 * human_format.h — the one place where amounts, prices and dates are written for people:
 * pages and emails alike, so a customer never sees "3.00 USD / monthly" in one place and
 * "$3.00 / month" in another. The words come from the message table (core/messages.h:
 * "date.*", "price.*"), so a process must have loaded it first; dates are UTC calendar days.
 */
#ifndef USHER_CORE_HUMAN_FORMAT_H
#define USHER_CORE_HUMAN_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/* Bytes enough for any output below, NUL included. */
#define FORMAT_PRICE_MAX 64
#define FORMAT_DATE_MAX 48

/* amount (minor units) of currency: "$12.00", "€1,250.00", "¥500", "CHF 3.50". */
void format_money(int64_t amount, const char *currency, char *out, size_t size);
/* "$12.00 / month" (cycle "monthly" or anything else) or "$120.00 / year" ("annual"). */
void format_price(int64_t amount, const char *currency, const char *cycle, char *out, size_t size);
/* "1234567" → "1,234,567". */
void format_thousands(uint64_t v, char *out, size_t size);
/* "2 January 2027" (UTC); "" when t cannot be represented. */
void format_long_date(int64_t t, char *out, size_t size);

#endif
