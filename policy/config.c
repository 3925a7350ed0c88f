/* SPDX-License-Identifier: MIT */
/*
 * policy/config.c - the stowd.conf parser: `key = value` lines, comments,
 * `name [label] { ... }` blocks (kinds from a block table), `!include`.
 *
 * Runs in:  the supervisor (start, reload, `stowd -t/-n`), tests.
 * Trust:    the files are admin-controlled but still parsed defensively:
 *           bounded line length, include depth and loop checks, every value
 *           through the settings table.  Any error stops the load with
 *           "FILE:LINE: message"; nothing is half-applied (the caller gets
 *           either the whole new settings or a zeroed struct).
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy_int.h"
#include "privsep/privsep.h"

/* The block kinds of stowd.conf; a new one goes before the terminator. */
const struct policy_block_def policy_blocks[] = {
	{ "replica", POLICY_LABEL_REQUIRED, policy_replica_open, policy_replica_set,
	  policy_replica_close },
	{ NULL, POLICY_LABEL_NONE, NULL, NULL, NULL },
};

/* Where a setting was last assigned; seq orders assignments. */
struct cfg_loc {
	const char *file;
	unsigned line;
	unsigned long seq;
};

struct cfg_pos {
	const char *file;
	unsigned line;
};

struct cfg_file_id {
	dev_t dev;
	ino_t ino;
};

struct cfg_ctx {
	struct policy_settings *s;
	const struct policy_block_def *blocks;
	void *arg;
	struct cfg_loc *locs;          /* one per row of policy_setting_defs */
	unsigned long seq;
	char **files;                  /* every file name read, owned */
	size_t n_files;
	struct cfg_file_id open[POLICY_INCLUDE_MAX + 1];
	size_t depth;                  /* files open now (include stack) */
	const struct policy_block_def *block;  /* open block or NULL */
	size_t block_depth;            /* depth of the file that opened it */
	struct cfg_pos block_pos;
	struct cfg_pos first_replica;  /* the first closed `replica` block */
	bool top_optional;             /* a missing top file means defaults */
	char *err;
};

static int cfg_read_file(struct cfg_ctx *ctx, const char *path,
			 const char *written, const struct cfg_pos *from);

static int __attribute__((format(printf, 3, 4)))
cfg_error(struct cfg_ctx *ctx, const struct cfg_pos *pos, const char *fmt, ...)
{
	char *msg;
	va_list ap;
	int saved = errno;

	if (ctx->err != NULL)
		return -1;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		fatal("vasprintf");
	va_end(ap);
	if (pos->line > 0)
		xasprintf(&ctx->err, "%s:%u: %s", pos->file, pos->line, msg);
	else
		xasprintf(&ctx->err, "%s: %s", pos->file, msg);
	free(msg);
	errno = saved;
	return -1;
}

/* ---- text helpers ------------------------------------------------------ */

static char *
trim(char *p)
{
	size_t n;

	p += strspn(p, " \t");
	n = strlen(p);
	while (n > 0 && strchr(" \t\r\n", p[n - 1]) != NULL)
		p[--n] = '\0';
	return p;
}

/* Cut a `#` comment that starts the text or follows a blank. */
static void
strip_comment(char *p)
{
	char *h;

	for (h = strchr(p, '#'); h != NULL; h = strchr(h + 1, '#')) {
		if (h == p || h[-1] == ' ' || h[-1] == '\t') {
			*h = '\0';
			return;
		}
	}
}

/* A value in double quotes loses them: `""` is the empty value. */
static char *
unquote(char *v)
{
	size_t n = strlen(v);

	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v[n - 1] = '\0';
		return v + 1;
	}
	return v;
}

/* ---- settings and blocks ----------------------------------------------- */

static int
cfg_block_setting(struct cfg_ctx *ctx, const struct cfg_pos *pos, const char *key,
		  const char *value)
{
	const char *why = "invalid value";

	errno = 0;
	if (ctx->block->set == NULL) {
		errno = ENOENT;
	} else if (ctx->block->set(ctx->s, ctx->arg, key, value, &why) == 0) {
		return 0;
	}
	if (errno == ENOENT)
		return cfg_error(ctx, pos, "unknown setting '%s' in block '%s'", key,
				 ctx->block->name);
	return cfg_error(ctx, pos, "invalid value for '%s' in block '%s': %s", key,
			 ctx->block->name, why);
}

static int
cfg_setting(struct cfg_ctx *ctx, const struct cfg_pos *pos, const char *key,
	    const char *value)
{
	const struct policy_setting_def *d;
	const char *why = "invalid value";
	char allowed[128];

	if (ctx->block != NULL)
		return cfg_block_setting(ctx, pos, key, value);
	d = policy_setting_find(key);
	if (d == NULL)
		return cfg_error(ctx, pos, "unknown setting '%s'", key);
	if (policy_setting_apply(ctx->s, d, value, &why) < 0) {
		allowed[0] = '\0';
		if (errno == ERANGE)
			policy_setting_allowed_text(d, allowed, sizeof(allowed));
		if (allowed[0] != '\0')
			return cfg_error(ctx, pos, "invalid value for '%s': %s (allowed: %s)",
					 key, why, allowed);
		return cfg_error(ctx, pos, "invalid value for '%s': %s", key, why);
	}
	ctx->locs[d - policy_setting_defs] = (struct cfg_loc){
		pos->file, pos->line, ++ctx->seq };
	return 0;
}

static const struct policy_block_def *
cfg_block_find(const struct cfg_ctx *ctx, const char *name)
{
	const struct policy_block_def *b;

	for (b = ctx->blocks; b->name != NULL; b++)
		if (strcmp(b->name, name) == 0)
			return b;
	return NULL;
}

static int
cfg_block_open(struct cfg_ctx *ctx, const struct cfg_pos *pos, const char *name,
	       const char *label)
{
	const struct policy_block_def *b = cfg_block_find(ctx, name);
	const char *why = "invalid block";

	if (b == NULL)
		return cfg_error(ctx, pos, "unknown block '%s'", name);
	if (ctx->block != NULL)
		return cfg_error(ctx, pos, "block '%s' not allowed inside block '%s'",
				 name, ctx->block->name);
	if (label == NULL && b->label == POLICY_LABEL_REQUIRED)
		return cfg_error(ctx, pos, "block '%s' needs a name: %s NAME {", name,
				 name);
	if (label != NULL && b->label == POLICY_LABEL_NONE)
		return cfg_error(ctx, pos, "block '%s' takes no name", name);
	if (b->open != NULL && b->open(ctx->s, ctx->arg, label, &why) < 0)
		return cfg_error(ctx, pos, "block '%s': %s", name, why);
	ctx->block = b;
	ctx->block_depth = ctx->depth;
	ctx->block_pos = *pos;
	return 0;
}

static int
cfg_block_close(struct cfg_ctx *ctx, const struct cfg_pos *pos)
{
	const struct policy_block_def *b = ctx->block;
	const char *why = "invalid block";

	if (b == NULL || ctx->block_depth != ctx->depth)
		return cfg_error(ctx, pos, "unmatched '}'");
	ctx->block = NULL;
	if (b->close != NULL && b->close(ctx->s, ctx->arg, &why) < 0)
		return cfg_error(ctx, pos, "block '%s': %s", b->name, why);
	if (strcmp(b->name, "replica") == 0 && ctx->first_replica.file == NULL)
		ctx->first_replica = ctx->block_pos;
	return 0;
}

/* ---- includes ---------------------------------------------------------- */

/* arg relative to the directory of the including file.  Caller frees. */
static char *
cfg_include_path(const char *from, const char *arg)
{
	const char *slash = strrchr(from, '/');
	char *path;

	if (arg[0] == '/' || slash == NULL)
		return xstrdup(arg);
	xasprintf(&path, "%.*s/%s", (int)(slash - from), from, arg);
	return path;
}

/* glob(3) error callback: a missing directory is no match, anything else
 * (EACCES...) aborts the include. */
static int
cfg_glob_err(const char *path, int err)
{
	(void)path;
	return err != ENOENT && err != ENOTDIR;
}

static int
cfg_include(struct cfg_ctx *ctx, const struct cfg_pos *pos, const char *arg)
{
	char *path = cfg_include_path(pos->file, arg);
	glob_t g = { 0 };
	bool globbed = false;
	size_t i;
	int ret = -1, r;

	if (strpbrk(arg, "*?[") == NULL) {
		ret = cfg_read_file(ctx, path, arg, pos);
		goto out;
	}
	/* A pattern (conf.d/\*.conf) may match nothing; matches are read in
	 * sorted order. */
	r = glob(path, 0, cfg_glob_err, &g);
	globbed = true;
	if (r == GLOB_NOMATCH) {
		ret = 0;
		goto out;
	}
	if (r != 0) {
		cfg_error(ctx, pos, "cannot read include '%s'%s", arg,
			  r == GLOB_ABORTED ? ": directory not readable" : "");
		goto out;
	}
	for (i = 0; i < g.gl_pathc; i++)
		if (cfg_read_file(ctx, g.gl_pathv[i], g.gl_pathv[i], pos) < 0)
			goto out;
	ret = 0;
out:
	if (globbed)
		globfree(&g);
	free(path);
	return ret;
}

static int
cfg_directive(struct cfg_ctx *ctx, const struct cfg_pos *pos, char *p)
{
	size_t n = strcspn(p, " \t");
	char *arg = unquote(trim(p + n));

	p[n] = '\0';
	if (strcmp(p, "!include") != 0)
		return cfg_error(ctx, pos, "unknown directive '%s'", p);
	if (arg[0] == '\0')
		return cfg_error(ctx, pos, "!include needs a file name");
	return cfg_include(ctx, pos, arg);
}

/* ---- lines and files --------------------------------------------------- */

/* `name {` or `name label {`; rest points after name. */
static int
cfg_block_line(struct cfg_ctx *ctx, const struct cfg_pos *pos, char *name,
	       char *rest)
{
	char *label = NULL;
	size_t n;

	rest += strspn(rest, " \t");
	if (*rest != '{') {
		label = rest;
		n = strcspn(rest, " \t{}=");
		rest += n;
		rest += strspn(rest, " \t");
		if (n == 0 || *rest != '{')
			return cfg_error(ctx, pos, "missing '='");
		label[n] = '\0';
	}
	if (trim(rest + 1)[0] != '\0')
		return cfg_error(ctx, pos, "unexpected text after '{'");
	return cfg_block_open(ctx, pos, name, label);
}

static int
cfg_line(struct cfg_ctx *ctx, const struct cfg_pos *pos, char *line)
{
	char *p = trim(line), *key_end;
	size_t n;

	strip_comment(p);
	p = trim(p);
	if (*p == '\0')
		return 0;
	if (*p == '!')
		return cfg_directive(ctx, pos, p);
	if (strcmp(p, "}") == 0)
		return cfg_block_close(ctx, pos);
	n = strcspn(p, " \t={}");
	if (n == 0)
		return cfg_error(ctx, pos, p[0] == '=' ? "missing setting name"
						      : "syntax error");
	key_end = p + n;
	key_end += strspn(key_end, " \t");
	if (*key_end != '=') {
		char *rest = key_end;

		p[n] = '\0';
		if (*rest == '\0')
			return cfg_error(ctx, pos, "missing '='");
		return cfg_block_line(ctx, pos, p, rest);
	}
	p[n] = '\0';
	return cfg_setting(ctx, pos, p, unquote(trim(key_end + 1)));
}

static int
cfg_read_lines(struct cfg_ctx *ctx, FILE *f, const char *name)
{
	struct cfg_pos pos = { name, 0 };
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	int ret = -1;

	while ((n = getline(&buf, &cap, f)) >= 0) {
		pos.line++;
		if (n > POLICY_LINE_MAX) {
			cfg_error(ctx, &pos, "line too long");
			goto out;
		}
		if (strlen(buf) != (size_t)n) {
			cfg_error(ctx, &pos, "NUL byte in line");
			goto out;
		}
		if (cfg_line(ctx, &pos, buf) < 0)
			goto out;
	}
	if (ferror(f)) {
		cfg_error(ctx, &pos, "read error: %s", strerror(errno));
		goto out;
	}
	if (ctx->block != NULL && ctx->block_depth == ctx->depth) {
		cfg_error(ctx, &ctx->block_pos, "unterminated block '%s'",
			  ctx->block->name);
		goto out;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

/* Check a freshly opened file against the include stack and push it. */
static int
cfg_push(struct cfg_ctx *ctx, int fd, const char *written,
	 const struct cfg_pos *where)
{
	struct stat st;
	size_t i;

	if (fstat(fd, &st) < 0)
		return cfg_error(ctx, where, "cannot stat '%s': %s", written,
				 strerror(errno));
	if (!S_ISREG(st.st_mode) && where->line == 0)
		return cfg_error(ctx, where, "not a regular file");
	if (!S_ISREG(st.st_mode))
		return cfg_error(ctx, where, "'%s' is not a regular file", written);
	for (i = 0; i < ctx->depth; i++)
		if (ctx->open[i].dev == st.st_dev && ctx->open[i].ino == st.st_ino)
			return cfg_error(ctx, where, "include loop: '%s'", written);
	if (ctx->depth == POLICY_INCLUDE_MAX + 1)
		return cfg_error(ctx, where, "includes nested too deeply (max %d)",
				 POLICY_INCLUDE_MAX);
	ctx->open[ctx->depth++] = (struct cfg_file_id){ st.st_dev, st.st_ino };
	return 0;
}

/*
 * Read one file.  from is the !include line (NULL for the top file);
 * written is the name as the admin wrote it, for messages.
 */
static int
cfg_read_file(struct cfg_ctx *ctx, const char *path, const char *written,
	      const struct cfg_pos *from)
{
	struct cfg_pos top = { path, 0 };
	const struct cfg_pos *where = from != NULL ? from : &top;
	char *name;
	FILE *f = NULL;
	int fd, ret = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (from == NULL && errno == ENOENT && ctx->top_optional)
			return 0;
		if (from != NULL)
			return cfg_error(ctx, from, "cannot open include '%s': %s",
					 written, strerror(errno));
		return cfg_error(ctx, &top, "cannot open: %s", strerror(errno));
	}
	if (cfg_push(ctx, fd, written, where) < 0) {
		close(fd);
		return -1;
	}
	f = fdopen(fd, "r");
	if (f == NULL) {
		close(fd);
		cfg_error(ctx, where, "cannot read '%s': %s", written, strerror(errno));
		goto out;
	}
	name = xstrdup(path);
	ctx->files = xrealloc(ctx->files, (ctx->n_files + 1) * sizeof(*ctx->files));
	ctx->files[ctx->n_files++] = name;
	ret = cfg_read_lines(ctx, f, name);
out:
	if (f != NULL)
		fclose(f);
	ctx->depth--;
	return ret;
}

/* ---- whole load -------------------------------------------------------- */

/* Cross-field rules, blamed on the setting assigned last. */
static int
cfg_cross_check(struct cfg_ctx *ctx, const char *path)
{
	const struct cfg_loc *la, *lb, *l;
	struct cfg_pos pos = { path, 0 };
	const char *why = "invalid combination";
	char *va, *vb;
	size_t a, b;
	int ret;

	if (policy_settings_check(ctx->s, &a, &b, &why) == 0)
		return 0;
	la = &ctx->locs[a];
	lb = &ctx->locs[b];
	l = la->seq > lb->seq ? la : lb;
	if (l->seq > 0)
		pos = (struct cfg_pos){ l->file, l->line };
	va = policy_setting_format(ctx->s, &policy_setting_defs[a]);
	vb = policy_setting_format(ctx->s, &policy_setting_defs[b]);
	ret = cfg_error(ctx, &pos, "%s (%s = %s, %s = %s)", why,
			policy_setting_defs[a].name, va, policy_setting_defs[b].name, vb);
	free(va);
	free(vb);
	return ret;
}

/* Rules between replica blocks and settings: replicas are reached over
 * TLS, and sync acks cannot outnumber the replicas. */
static int
cfg_repl_check(struct cfg_ctx *ctx, const char *path)
{
	const struct policy_settings *s = ctx->s;
	const struct policy_setting_def *d;
	const struct cfg_loc *l;
	struct cfg_pos pos = { path, 0 };

	if (s->n_replicas > 0 &&
	    (s->replication_tls_cert[0] == '\0' || s->replication_tls_key[0] == '\0' ||
	     s->replication_tls_ca[0] == '\0')) {
		if (ctx->first_replica.file != NULL)
			pos = ctx->first_replica;
		return cfg_error(ctx, &pos, "replica '%s' needs replication_tls_cert, "
				 "replication_tls_key and replication_tls_ca",
				 s->replicas[0].name);
	}
	if (s->replication_sync_acks > s->n_replicas) {
		d = policy_setting_find("replication_sync_acks");
		l = &ctx->locs[d - policy_setting_defs];
		if (l->seq > 0)
			pos = (struct cfg_pos){ l->file, l->line };
		return cfg_error(ctx, &pos, "replication_sync_acks = %u but only %zu "
				 "replica block%s", s->replication_sync_acks,
				 s->n_replicas, s->n_replicas == 1 ? "" : "s");
	}
	return 0;
}

int
policy_config_load_blocks(const char *path, bool required, struct policy_settings *s,
			  const struct policy_block_def *blocks, void *arg,
			  char **err_out)
{
	struct policy_settings tmp;
	struct cfg_ctx ctx;
	size_t i;
	int ret;

	*err_out = NULL;
	policy_settings_defaults(&tmp);
	memset(&ctx, 0, sizeof(ctx));
	ctx.s = &tmp;
	ctx.blocks = blocks;
	ctx.arg = arg;
	ctx.locs = xcalloc(policy_n_setting_defs, sizeof(*ctx.locs));
	ctx.top_optional = !required;
	ret = cfg_read_file(&ctx, path, path, NULL);
	if (ret == 0)
		ret = cfg_cross_check(&ctx, path);
	if (ret == 0)
		ret = cfg_repl_check(&ctx, path);
	if (ret == 0) {
		*s = tmp;
	} else {
		/* *s holds nothing to free: clearing it again is harmless,
		 * forgetting to is no leak. */
		policy_settings_clear(&tmp);
		memset(s, 0, sizeof(*s));
		*err_out = ctx.err;
		ctx.err = NULL;
	}
	for (i = 0; i < ctx.n_files; i++)
		free(ctx.files[i]);
	free(ctx.files);
	free(ctx.locs);
	free(ctx.err);
	if (ret < 0)
		errno = EINVAL;
	return ret;
}

int
policy_config_load(const char *path, bool required, struct policy_settings *s,
		   char **err_out)
{
	return policy_config_load_blocks(path, required, s, policy_blocks, NULL,
					 err_out);
}
