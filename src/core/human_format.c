/*
 * human_format.c — money, prices and dates as customers read them (see human_format.h). The
 * words and their order (month names, "/ month", "2 January 2027") come from the message
 * table, which both usher serve and usher worker load at start, so pages and mails read alike
 * and a second language is a translation file.
 */
#include "core/human_format.h"

#include "core/messages.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Digits after the decimal point (ISO 4217; Stripe's zero-decimal list). */
static int currency_exponent(const char *cur)
{
    static const char *const zero[] = {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA",
                                       "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"};
    static const char *const three[] = {"BHD", "JOD", "KWD", "OMR", "TND"};
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++)
        if (!strcmp(cur, zero[i]))
            return 0;
    for (size_t i = 0; i < sizeof three / sizeof three[0]; i++)
        if (!strcmp(cur, three[i]))
            return 3;
    return 2;
}

static const char *currency_prefix(const char *cur)
{
    static const char *const symbols[][2] = {
        {"USD", "$"},   {"EUR", "€"},  {"GBP", "£"},   {"JPY", "¥"},
        {"CAD", "CA$"}, {"AUD", "A$"}, {"NZD", "NZ$"},
    };
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++)
        if (!strcmp(cur, symbols[i][0]))
            return symbols[i][1];
    return NULL;
}

/* "1234567" -> "1,234,567" */
void format_thousands(uint64_t v, char *out, size_t size)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%" PRIu64, v);
    size_t o = 0;
    for (int i = 0; i < n && o + 1 < size; i++) {
        if (i > 0 && (n - i) % 3 == 0 && o + 2 < size)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

void format_money(int64_t amount, const char *currency, char *out, size_t size)
{
    char cur[4] = "USD";
    if (currency && strlen(currency) == 3)
        for (int i = 0; i < 3; i++)
            cur[i] =
                (char)(currency[i] >= 'a' && currency[i] <= 'z' ? currency[i] - 32 : currency[i]);
    int exp = currency_exponent(cur);
    uint64_t scale = exp == 0 ? 1 : exp == 3 ? 1000 : 100;
    uint64_t a = amount < 0 ? (uint64_t)0 - (uint64_t)amount : (uint64_t)amount;
    char major[48];
    format_thousands(a / scale, major, sizeof major);
    char minor[8] = "";
    if (exp)
        snprintf(minor, sizeof minor, ".%0*" PRIu64, exp, a % scale);
    const char *symbol = currency_prefix(cur);
    if (symbol)
        snprintf(out, size, "%s%s%s%s", amount < 0 ? "-" : "", symbol, major, minor);
    else
        snprintf(out, size, "%s%s %s%s", amount < 0 ? "-" : "", cur, major, minor);
}

void format_price(int64_t amount, const char *currency, const char *cycle, char *out, size_t size)
{
    char money[FORMAT_PRICE_MAX];
    format_money(amount, currency, money, sizeof money);
    char *text = msg_format(cycle && !strcmp(cycle, "annual") ? MSG_ID("price.per_year")
                                                              : MSG_ID("price.per_month"),
                            json_pack("{s:s}", "amount", money));
    snprintf(out, size, "%s", text);
    free(text);
}

void format_long_date(int64_t t, char *out, size_t size)
{
    static const char *const months[] = {
        MSG_ID("date.january"), MSG_ID("date.february"), MSG_ID("date.march"),
        MSG_ID("date.april"),   MSG_ID("date.may"),      MSG_ID("date.june"),
        MSG_ID("date.july"),    MSG_ID("date.august"),   MSG_ID("date.september"),
        MSG_ID("date.october"), MSG_ID("date.november"), MSG_ID("date.december")};
    time_t tt = (time_t)t;
    struct tm tm;
    if (size == 0)
        return;
    if (!gmtime_r(&tt, &tm) || tm.tm_mon < 0 || tm.tm_mon > 11) {
        snprintf(out, size, "%s", "");
        return;
    }
    char *text = msg_format("date.long", json_pack("{s:i, s:s, s:I}", "day", tm.tm_mday, "month",
                                                   msg(months[tm.tm_mon]), "year",
                                                   (json_int_t)tm.tm_year + 1900));
    snprintf(out, size, "%s", text);
    free(text);
}
