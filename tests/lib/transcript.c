/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/transcript.c - run an LMTP transcript (format in transcript.h).
 *
 * Runs in:  test programs only.
 * Order:    C lines accumulate in one buffer; the buffer is sent in one
 *           write before any S or ! line runs, and at the end of the text.
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/lib/transcript.h"

struct buf {
	char *p;
	size_t len;
	size_t cap;
};

struct run {
	struct transcript_ctx *ctx;
	const char *name;
	unsigned lineno;
	struct buf out;           /* pending C block */
	bool dry;                 /* lint: check syntax, no connection */
	char *err;
	size_t errsize;
};

static int
buf_add(struct buf *b, const void *data, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + len + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL) {
			errno = ENOMEM;
			return -1;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return 0;
}

static void
buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static int
fail(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(struct run *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(r->err, r->errsize, "%s:%u: ", r->name, r->lineno);
	if (n < 0 || (size_t)n >= r->errsize)
		return -1;
	va_start(ap, fmt);
	vsnprintf(r->err + n, r->errsize - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Copy s into b, with ^.[$()|*+?{\ escaped when regex is set. */
static int
add_value(struct buf *b, const char *s, bool regex)
{
	for (; *s != '\0'; s++) {
		if (regex && strchr("^.[$()|*+?{}\\", *s) != NULL &&
		    buf_add(b, "\\", 1) < 0)
			return -1;
		if (buf_add(b, s, 1) < 0)
			return -1;
	}
	return 0;
}

/* Replace ${NAME} in in; result in *out (malloc'd). */
static int
substitute(struct run *r, const char *in, bool regex, char **out)
{
	struct buf b = { 0 };
	const char *p = in;
	size_t i;

	while (*p != '\0') {
		const char *end;

		if (p[0] != '$' || p[1] != '{') {
			if (buf_add(&b, p++, 1) < 0)
				goto oom;
			continue;
		}
		end = strchr(p, '}');
		if (end == NULL) {
			buf_free(&b);
			return fail(r, "unterminated ${ in \"%s\"", in);
		}
		for (i = 0; i < r->ctx->nvars; i++) {
			const char *n = r->ctx->vars[i].name;

			if (strlen(n) == (size_t)(end - p - 2) &&
			    strncmp(n, p + 2, (size_t)(end - p - 2)) == 0)
				break;
		}
		if (i == r->ctx->nvars) {
			buf_free(&b);
			return fail(r, "unknown variable %.*s", (int)(end - p + 1), p);
		}
		if (add_value(&b, r->ctx->vars[i].value, regex) < 0)
			goto oom;
		p = end + 1;
	}
	if (buf_add(&b, "", 0) < 0)
		goto oom;
	*out = b.p;
	return 0;
oom:
	buf_free(&b);
	return fail(r, "out of memory");
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode the escapes of a C line into b. */
static int
unescape(struct run *r, const char *s, struct buf *b)
{
	char ch;

	for (; *s != '\0'; s++) {
		ch = *s;
		if (ch == '\\') {
			s++;
			switch (*s) {
			case 'r': ch = '\r'; break;
			case 'n': ch = '\n'; break;
			case 't': ch = '\t'; break;
			case '0': ch = '\0'; break;
			case '\\': ch = '\\'; break;
			case 'x':
				if (hexval(s[1]) < 0 || hexval(s[2]) < 0)
					return fail(r, "bad \\x escape");
				ch = (char)(hexval(s[1]) * 16 + hexval(s[2]));
				s += 2;
				break;
			default:
				return fail(r, "unknown escape \\%c", *s ? *s : '0');
			}
		}
		if (buf_add(b, &ch, 1) < 0)
			return fail(r, "out of memory");
	}
	return 0;
}

static int
flush(struct run *r)
{
	int rc = 0;

	if (r->out.len == 0 || r->dry) {
		r->out.len = 0;
		return 0;
	}
	if (lmtpc_send(r->ctx->conn, r->out.p, r->out.len) < 0)
		rc = fail(r, "sending %zu bytes: %s", r->out.len,
			  lmtpc_strerror(errno));
	r->out.len = 0;
	return rc;
}

/* "C: ", "C+ ", "C* " lines. */
static int
do_send(struct run *r, char kind, const char *arg)
{
	struct buf one = { 0 };
	unsigned long count = 1, i;
	char *text = NULL, *end;
	int rc = -1;

	if (kind == '*') {
		errno = 0;
		count = strtoul(arg, &end, 10);
		if (errno != 0 || end == arg || *end != ' ')
			return fail(r, "C* needs a count and a text");
		arg = end + 1;
	}
	if (substitute(r, arg, false, &text) < 0)
		return -1;
	if (unescape(r, text, &one) < 0)
		goto out;
	if (kind == ':' && buf_add(&one, "\r\n", 2) < 0)
		goto oom;
	if (one.len > 0 && count > TRANSCRIPT_SEND_MAX / one.len) {
		fail(r, "C block larger than %u bytes", TRANSCRIPT_SEND_MAX);
		goto out;
	}
	for (i = 0; i < count; i++)
		if (buf_add(&r->out, one.p ? one.p : "", one.len) < 0)
			goto oom;
	if (r->out.len > TRANSCRIPT_SEND_MAX) {
		fail(r, "C block larger than %u bytes", TRANSCRIPT_SEND_MAX);
		goto out;
	}
	rc = 0;
	goto out;
oom:
	fail(r, "out of memory");
out:
	free(text);
	buf_free(&one);
	return rc;
}

/* Describe a failed read as "got ...". */
static int
fail_read(struct run *r, const char *expect, const struct lmtpc_reply *rep,
	  int err)
{
	if (err == EPROTO || err == EMSGSIZE)
		return fail(r, "expected %s, got %s: \"%s\"", expect,
			    lmtpc_strerror(err), rep->text);
	if (err != ETIMEDOUT)
		return fail(r, "expected %s, got %s", expect, lmtpc_strerror(err));
	return fail(r, "expected %s, got %s after %d ms", expect,
		    lmtpc_strerror(err), lmtpc_timeout(r->ctx->conn));
}

static int
do_expect(struct run *r, char kind, const char *arg)
{
	struct lmtpc_reply rep;
	char expect[600];
	char *pat = NULL;
	bool have_re = false;
	regex_t re;
	int rc = -1, e;

	if (flush(r) < 0)
		return -1;
	if (substitute(r, arg, kind == '~', &pat) < 0)
		return -1;
	snprintf(expect, sizeof(expect), kind == '~' ? "a reply matching /%s/" :
		 "a reply starting with \"%s\"", pat);
	if (kind == '~') {
		e = regcomp(&re, pat, REG_EXTENDED | REG_NEWLINE | REG_NOSUB);
		if (e != 0) {
			char msg[128];

			regerror(e, &re, msg, sizeof(msg));
			fail(r, "bad regex /%s/: %s", pat, msg);
			goto out;
		}
		have_re = true;
	}
	if (r->dry) {
		rc = 0;
		goto out;
	}
	if (lmtpc_read_reply(r->ctx->conn, &rep) < 0) {
		fail_read(r, expect, &rep, errno);
		goto out;
	}
	if (have_re ? regexec(&re, rep.text, 0, NULL, 0) != 0 :
	    strncmp(rep.text, pat, strlen(pat)) != 0) {
		fail(r, "expected %s, got \"%s\"", expect, rep.text);
		goto out;
	}
	rc = 0;
out:
	if (have_re)
		regfree(&re);
	free(pat);
	return rc;
}

static int
do_directive(struct run *r, const char *line)
{
	char *text = NULL;
	int rc = -1;

	if (flush(r) < 0)
		return -1;
	if (substitute(r, line, false, &text) < 0)
		return -1;
	if (strncmp(text, "!config", 7) == 0) {
		rc = 0;
	} else if (strncmp(text, "!timeout ", 9) == 0) {
		char *end;
		long ms = strtol(text + 9, &end, 10);

		if (ms <= 0 || *end != '\0')
			fail(r, "bad !timeout");
		else {
			if (!r->dry)
				lmtpc_set_timeout(r->ctx->conn, (int)ms);
			rc = 0;
		}
	} else if (r->dry) {
		rc = 0;
	} else if (strcmp(text, "!close") == 0) {
		int ms = lmtpc_timeout(r->ctx->conn);

		if (lmtpc_wait_closed(r->ctx->conn, ms) == 0)
			rc = 0;
		else if (errno == EPROTO)
			fail(r, "expected the server to close, got more data");
		else
			fail(r, "expected the server to close, got %s after %d ms",
			     lmtpc_strerror(errno), ms);
	} else if (r->ctx->directive != NULL) {
		char msg[TRANSCRIPT_ERR_MAX] = "";

		rc = r->ctx->directive(r->ctx, text, msg, sizeof(msg));
		if (rc < 0)
			fail(r, "%s: %s", text, msg[0] ? msg : "failed");
	} else {
		fail(r, "unknown directive %s", text);
	}
	free(text);
	return rc;
}

static int
run_line(struct run *r, const char *line)
{
	if (line[0] == '\0' || line[0] == '#')
		return 0;
	if (line[0] == '!')
		return do_directive(r, line);
	if ((line[0] == 'C' || line[0] == 'S') && line[1] != '\0' &&
	    (line[2] == ' ' || (line[2] == '\0' && line[1] == ':'))) {
		const char *arg = line[2] == ' ' ? line + 3 : line + 2;

		if (line[0] == 'C' && strchr(":+*", line[1]) != NULL)
			return do_send(r, line[1], arg);
		if (line[0] == 'S' && strchr(":~", line[1]) != NULL)
			return do_expect(r, line[1], arg);
	}
	return fail(r, "cannot parse line \"%s\"", line);
}

static int
run_text(struct transcript_ctx *ctx, const char *name, const char *text,
	 bool dry, char *err, size_t errsize)
{
	struct run r = { .ctx = ctx, .name = name, .err = err, .errsize = errsize,
			 .dry = dry };
	const char *p = text;
	char *line = NULL;
	int rc = 0;

	err[0] = '\0';
	while (rc == 0 && *p != '\0') {
		size_t n = strcspn(p, "\n");

		free(line);
		line = strndup(p, n);
		if (line == NULL)
			return fail(&r, "out of memory");
		if (n > 0 && line[n - 1] == '\r')
			line[n - 1] = '\0';
		r.lineno++;
		rc = run_line(&r, line);
		p += n;
		if (*p == '\n')
			p++;
	}
	if (rc == 0)
		rc = flush(&r);
	free(line);
	buf_free(&r.out);
	return rc;
}

int
transcript_run_text(struct transcript_ctx *ctx, const char *name,
		    const char *text, char *err, size_t errsize)
{
	return run_text(ctx, name, text, false, err, errsize);
}

int
transcript_lint_text(struct transcript_ctx *ctx, const char *name,
		     const char *text, char *err, size_t errsize)
{
	return run_text(ctx, name, text, true, err, errsize);
}

int
transcript_read_file(const char *path, char **out, size_t *len_out)
{
	struct stat st;
	char *p = NULL;
	size_t got = 0;
	ssize_t n;
	int fd, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		goto fail;
	p = malloc((size_t)st.st_size + 1);
	if (p == NULL)
		goto fail;
	while (got < (size_t)st.st_size) {
		n = read(fd, p + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	p[got] = '\0';
	close(fd);
	*out = p;
	if (len_out != NULL)
		*len_out = got;
	return 0;
fail:
	saved = errno;
	free(p);
	close(fd);
	errno = saved;
	return -1;
}

static int
run_file(struct transcript_ctx *ctx, const char *path, bool dry, char *err,
	 size_t errsize)
{
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char *text;
	int rc;

	if (transcript_read_file(path, &text, NULL) < 0) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	rc = run_text(ctx, name, text, dry, err, errsize);
	free(text);
	return rc;
}

int
transcript_run_file(struct transcript_ctx *ctx, const char *path, char *err,
		    size_t errsize)
{
	return run_file(ctx, path, false, err, errsize);
}

int
transcript_lint_file(struct transcript_ctx *ctx, const char *path, char *err,
		     size_t errsize)
{
	return run_file(ctx, path, true, err, errsize);
}

int
transcript_config(const char *path, char **out)
{
	struct buf b = { 0 };
	char *text, *p;

	if (transcript_read_file(path, &text, NULL) < 0)
		return -1;
	for (p = text; p != NULL && *p != '\0';) {
		size_t n = strcspn(p, "\n");

		if (strncmp(p, "!config ", 8) == 0) {
			size_t l = n;

			if (l > 0 && p[l - 1] == '\r')
				l--;
			if (buf_add(&b, p + 8, l - 8) < 0 || buf_add(&b, "\n", 1) < 0)
				goto oom;
		}
		p += n;
		if (*p == '\n')
			p++;
	}
	if (buf_add(&b, "", 0) < 0)
		goto oom;
	free(text);
	*out = b.p;
	return 0;
oom:
	free(text);
	buf_free(&b);
	errno = ENOMEM;
	return -1;
}
