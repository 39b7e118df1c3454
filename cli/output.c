/*
 * output.c - what `gust` prints: error lines, pretty JSON, aligned tables.
 *
 * Text that came from a server or from etcd is passed through cli_put_safe
 * before it reaches a terminal, so a hostile entity name cannot send escape
 * sequences. JSON output is escaped by the encoder and needs no such care.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_error(const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	fputs("error: ", stderr);
	/* Messages often quote what a server or a file said: keep it one line. */
	cli_put_safe(stderr, n >= 0 ? msg : "out of memory (formatting an error)");
	fputc('\n', stderr);
	if (n >= 0)
		free(msg);
}

int cli_print_json(FILE *out, const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
	if (s == NULL) {
		cli_error("cannot encode the answer as JSON");
		return CLI_EFAIL;
	}
	fputs(s, out);
	fputc('\n', out);
	free(s);
	return CLI_OK;
}

void cli_print_raw(FILE *out, const cli_resp *r)
{
	fwrite(r->body, 1, r->len, out);
	if (r->len == 0 || r->body[r->len - 1] != '\n')
		fputc('\n', out);
}

void cli_put_safe(FILE *out, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		fputc(ch < 0x20 || ch == 0x7f ? '?' : ch, out);
	}
}

/* Display width of s: UTF-8 continuation bytes take no column. Good enough for
 * names and kinds; East Asian wide characters would misalign by design. */
static size_t width(const char *s)
{
	size_t w = 0;
	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

struct cli_table {
	size_t ncols;
	size_t nrows; /* including the header row */
	size_t cap;
	char **cells; /* nrows * ncols */
	size_t *widths;
};

cli_table *cli_table_new(size_t ncols, const char *const *headers)
{
	cli_table *t = calloc(1, sizeof(*t));
	if (t == NULL || (t->widths = calloc(ncols, sizeof(size_t))) == NULL) {
		free(t);
		cli_error("out of memory");
		return NULL;
	}
	t->ncols = ncols;
	if (cli_table_add(t, headers) != CLI_OK) {
		cli_table_free(t);
		return NULL;
	}
	return t;
}

int cli_table_add(cli_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **n = reallocarray(t->cells, cap * t->ncols, sizeof(char *));
		if (n == NULL)
			goto oom;
		t->cells = n;
		t->cap = cap;
	}
	char **row = t->cells + t->nrows * t->ncols;
	for (size_t i = 0; i < t->ncols; i++) {
		if ((row[i] = strdup(cells[i] != NULL ? cells[i] : "-")) == NULL) {
			while (i > 0)
				free(row[--i]);
			goto oom;
		}
		size_t w = width(row[i]);
		if (w > t->widths[i])
			t->widths[i] = w;
	}
	t->nrows++;
	return CLI_OK;
oom:
	cli_error("out of memory");
	return CLI_EFAIL;
}

void cli_table_print(FILE *out, const cli_table *t)
{
	for (size_t r = 0; r < t->nrows; r++) {
		char **row = t->cells + r * t->ncols;
		for (size_t i = 0; i < t->ncols; i++) {
			cli_put_safe(out, row[i]);
			if (i + 1 < t->ncols)
				fprintf(out, "%*s", (int)(t->widths[i] - width(row[i]) + 2), "");
		}
		fputc('\n', out);
	}
}

void cli_table_free(cli_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->widths);
	free(t);
}
