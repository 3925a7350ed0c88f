/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/writer/mock.c - wrapped credential calls and store_save for
 * the writer tests (see mock.h).  Lives in its own object so that the
 * writer's calls reach the wrappers.
 */
#include <errno.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "privsep/privsep.h"
#include "storage/storage.h"
#include "tests/unit/writer/mock.h"

struct mock_state mock;

int __wrap_setresuid(uid_t r, uid_t e, uid_t s);
int __wrap_setresgid(gid_t r, gid_t e, gid_t s);
int __wrap_setgroups(size_t n, const gid_t *list);
int __wrap_getresuid(uid_t *r, uid_t *e, uid_t *s);
int __wrap_getresgid(gid_t *r, gid_t *e, gid_t *s);
uid_t __wrap_getuid(void);
gid_t __wrap_getgid(void);
uid_t __real_getuid(void);
gid_t __real_getgid(void);
bool __wrap_psep_uid_allowed(uint32_t uid);
bool __real_psep_uid_allowed(uint32_t uid);
int __wrap_store_save(const struct store_save_req *req,
		      struct store_save_result *out, const char **what_out);

void
mock_reset(void)
{
	memset(&mock, 0, sizeof(mock));
	mock.child_uid = (uid_t)-1;
	mock.child_gid = (gid_t)-1;
	mock.deny_uid = (uid_t)-1;
	mock.save_mark_fd = -1;
}

int
mock_call_index(const char *call)
{
	size_t i;

	for (i = 0; i < mock.ncalls; i++)
		if (strcmp(mock.calls[i], call) == 0)
			return (int)i;
	return -1;
}

static void
mock_log(const char *name, long a, long b, long c)
{
	if (mock.ncalls < MOCK_MAX_CALLS)
		snprintf(mock.calls[mock.ncalls++], sizeof(mock.calls[0]),
			 "%s %ld %ld %ld", name, a, b, c);
}

/* -1 (as a set*id argument) printed as -1, not 4294967295 */
static long
id_arg(unsigned int id)
{
	return id == (unsigned int)-1 ? -1L : (long)id;
}

static bool
mock_fails(const char *name, bool to_root)
{
	if (mock.fail_call == NULL || strcmp(mock.fail_call, name) != 0)
		return false;
	if (mock.fail_only_to_root && !to_root)
		return false;
	errno = EPERM;
	return true;
}

int
__wrap_setresuid(uid_t r, uid_t e, uid_t s)
{
	mock_log("setresuid", id_arg(r), id_arg(e), id_arg(s));
	if (mock_fails("setresuid", e == 0))
		return -1;
	if (mock.ignore_setresuid)
		return 0;
	if (r != (uid_t)-1)
		mock.now.ruid = r;
	if (e != (uid_t)-1)
		mock.now.euid = e;
	if (s != (uid_t)-1)
		mock.now.suid = s;
	return 0;
}

int
__wrap_setresgid(gid_t r, gid_t e, gid_t s)
{
	mock_log("setresgid", id_arg(r), id_arg(e), id_arg(s));
	if (mock_fails("setresgid", e == 0))
		return -1;
	if (r != (gid_t)-1)
		mock.now.rgid = r;
	if (e != (gid_t)-1)
		mock.now.egid = e;
	if (s != (gid_t)-1)
		mock.now.sgid = s;
	return 0;
}

int
__wrap_setgroups(size_t n, const gid_t *list)
{
	size_t i;

	mock_log("setgroups", (long)n, n > 0 ? (long)list[0] : -1,
		 n > 1 ? (long)list[n - 1] : -1);
	if (mock_fails("setgroups", n == 0))
		return -1;
	if (n > MOCK_MAX_GROUPS) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < n; i++)
		mock.now.groups[i] = list[i];
	mock.now.ngroups = n;
	return 0;
}

int
__wrap_getresuid(uid_t *r, uid_t *e, uid_t *s)
{
	*r = mock.now.ruid;
	*e = mock.now.euid;
	*s = mock.now.suid;
	return 0;
}

int
__wrap_getresgid(gid_t *r, gid_t *e, gid_t *s)
{
	*r = mock.now.rgid;
	*e = mock.now.egid;
	*s = mock.now.sgid;
	return 0;
}

uid_t
__wrap_getuid(void)
{
	return mock.child_uid != (uid_t)-1 ? mock.child_uid : __real_getuid();
}

gid_t
__wrap_getgid(void)
{
	return mock.child_gid != (gid_t)-1 ? mock.child_gid : __real_getgid();
}

bool
__wrap_psep_uid_allowed(uint32_t uid)
{
	if (mock.deny_uid != (uid_t)-1 && uid == mock.deny_uid)
		return false;
	return __real_psep_uid_allowed(uid);
}

int
__wrap_store_save(const struct store_save_req *req,
		  struct store_save_result *out, const char **what_out)
{
	mock.nsaves++;
	mock.save_creds = mock.now;
	if (mock.save_mark_fd >= 0 && write(mock.save_mark_fd, "s", 1) != 1)
		return -1;
	if (mock.save_errno != 0) {
		*what_out = "fsync";
		errno = mock.save_errno;
		return -1;
	}
	memset(out, 0, sizeof(*out));
	snprintf(out->filename, sizeof(out->filename), "1.M1P1Q1G%s.test,S=%llu",
		 req->guid, (unsigned long long)req->body_size);
	out->imap_uid = 1;
	out->size = req->body_size;
	out->modseq = 1;
	return 0;
}
