/*
 * messages.h — the message table: every customer-facing sentence the C code sends (a JSON
 * "error"/"message" field, a message page, a page title, an email subject), by stable id.
 *
 * This module owns templates/messages/en.json under the data dir (docs/translation.md): one
 * JSON object mapping ids such as "recovery.sent" or "code.incorrect" to the text. Texts take
 * named placeholders in Mustache style, {{seconds}} or {{date}}, filled by msg_format without
 * escaping (the page or JSON encoder that carries the text escapes it). The ids the code uses
 * are listed once in messages.c; loading fails when the file lacks one of them or holds one
 * the code does not use, so a translation can neither miss a sentence nor keep a dead one.
 * Sentences in templates/ stay there: the table is only for text chosen in C. Log lines and
 * operator CLI output are not customer-facing and do not go through it.
 *
 * Threads: messages_load runs once at start (main.c, before any thread); after that the table
 * is read-only and msg/msg_format may be called from any thread.
 */
#ifndef USHER_CORE_MESSAGES_H
#define USHER_CORE_MESSAGES_H

#include <jansson.h>
#include <stddef.h>

#define MESSAGES_FILE "templates/messages/en.json" /* relative to the data dir */
#define MESSAGES_MAX_BYTES (256 * 1024)

/*
 * Loads data_dir/MESSAGES_FILE, replacing a table loaded before. On failure returns USHER_EIO
 * (unreadable), USHER_EINVAL (not a JSON object of strings, an unbalanced placeholder, an id
 * missing or unknown) or USHER_ELIMIT, keeps the old table and, if error != NULL, sets *error
 * to a heap sentence naming the file and the id, which the caller frees.
 */
int messages_load(const char *data_dir, char **error);

/* As messages_load, from a file path. */
int messages_load_file(const char *path, char **error);

/* Frees the table (tests; the processes keep it until exit). */
void messages_unload(void);

/*
 * Marks a literal as a message id where it is chosen apart from the msg()/msg_format() call
 * that shows it (a table of ids, a reason handed up from a lower layer). It changes nothing in
 * the program; tests/unit/test_messages.c finds every msg("…"), msg_format("…") and
 * MSG_ID("…") in src/ and checks them against the table in both directions.
 */
#define MSG_ID(id) (id)

/* The text of id. Never NULL: before a load, or for an id not in the table, the id itself. */
const char *msg(const char *id);

/*
 * The text of id with each {{name}} replaced by vars' member name (a string as is, an integer
 * in decimal; a missing one leaves the placeholder empty). vars is stolen and may be NULL,
 * so a call reads msg_format("recovery.wait", json_pack("{s:I}", "seconds", n)). Returns a
 * heap string the caller frees.
 */
char *msg_format(const char *id, json_t *vars);

/* The ids the code uses, for tests: the count and the i-th id. */
size_t messages_id_count(void);
const char *messages_id(size_t i);

#endif
