// SPDX-License-Identifier: Apache-2.0
/*
 * picket_bpf: a thin N-API layer over Debian's libbpf. It does only what C
 * must do: open/configure/load/attach a BPF object (to tracepoints and
 * cgroups), read its maps and program stats, and drain a BPF ring buffer into
 * a caller-provided (shared) buffer.
 * bpf/index.ts owns the API, defaults, validation and error wording.
 *
 * Order of use, as in libbpf-bootstrap: open, configure, load, attach, poll;
 * one cleanup path (close). Every error names the step and the object, and
 * carries `errno` and `step` properties for the TypeScript side.
 *
 * The ring reader maps the ring itself (as libbpf's ringbuf.c does) instead
 * of using ring_buffer__consume(): libbpf's callback API consumes a record
 * before the callback can refuse it, so a full destination buffer would lose
 * records. Here a record that does not fit simply stays in the ring.
 *
 * Thread safety: the module is context-aware (one instance per worker
 * thread); object handles belong to the thread that opened them; a ring
 * reader is opened per thread from a map fd. The only global is the libbpf
 * log capture, guarded by a mutex.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <node_api.h>

#define MAX_LINKS 64
#define LOG_CAP (256 * 1024)

/* ---- libbpf log capture (the verifier log arrives through here) ---- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[LOG_CAP];
static size_t log_len;
static int log_capturing;

static int log_cb(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || !log_capturing)
		return 0;
	if (log_len < LOG_CAP - 1) {
		int n = vsnprintf(log_buf + log_len, LOG_CAP - log_len, fmt, ap);
		if (n > 0)
			log_len += (size_t)n < LOG_CAP - log_len ? (size_t)n : LOG_CAP - 1 - log_len;
	}
	return 0;
}

static void log_begin(void)
{
	pthread_mutex_lock(&log_mu);
	log_len = 0;
	log_buf[0] = 0;
	log_capturing = 1;
}

/* Returns the tail of the captured log (static storage, valid until log_end). */
static const char *log_tail(size_t max)
{
	return log_len > max ? log_buf + log_len - max : log_buf;
}

static void log_end(void)
{
	log_capturing = 0;
	pthread_mutex_unlock(&log_mu);
}

/* ---- helpers ---- */

#define NAPI_CALL(env, call)                                           \
	do {                                                           \
		if ((call) != napi_ok) {                               \
			napi_throw_error((env), NULL, "N-API call failed: " #call); \
			return NULL;                                   \
		}                                                      \
	} while (0)

static napi_value throw_errno(napi_env env, const char *step, int err, const char *fmt, ...)
{
	char msg[8192];
	va_list ap;
	napi_value error, m, v;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (err && n > 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(err));
	napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
	napi_create_error(env, NULL, m, &error);
	napi_create_int32(env, err, &v);
	napi_set_named_property(env, error, "errno", v);
	napi_create_string_utf8(env, step, NAPI_AUTO_LENGTH, &v);
	napi_set_named_property(env, error, "step", v);
	napi_throw(env, error);
	return NULL;
}

static int get_string(napi_env env, napi_value v, char *buf, size_t cap)
{
	size_t len;

	if (napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok) {
		napi_throw_type_error(env, NULL, "expected a string argument");
		return -1;
	}
	return 0;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv)
{
	size_t argc = want;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
		napi_throw_type_error(env, NULL, "missing arguments");
		return -1;
	}
	return 0;
}

/* ---- BPF object handle ---- */

struct obj {
	struct bpf_object *obj;
	struct bpf_link *links[MAX_LINKS];
	int nlinks;
	int loaded;
	char path[512];
};

static void obj_close(struct obj *o)
{
	for (int i = 0; i < o->nlinks; i++)
		bpf_link__destroy(o->links[i]);
	o->nlinks = 0;
	if (o->obj)
		bpf_object__close(o->obj);
	o->obj = NULL;
}

static void obj_finalize(napi_env env, void *data, void *hint)
{
	struct obj *o = data;

	obj_close(o);
	free(o);
}

static struct obj *get_obj(napi_env env, napi_value v)
{
	struct obj *o = NULL;

	if (napi_get_value_external(env, v, (void **)&o) != napi_ok || !o) {
		napi_throw_type_error(env, NULL, "expected a BPF object handle");
		return NULL;
	}
	if (!o->obj) {
		napi_throw_error(env, NULL, "the BPF object is closed");
		return NULL;
	}
	return o;
}

static napi_value js_open(napi_env env, napi_callback_info info)
{
	napi_value argv[1], ext;
	struct obj *o;
	int err;

	if (get_args(env, info, 1, argv))
		return NULL;
	o = calloc(1, sizeof(*o));
	if (!o)
		return throw_errno(env, "open", ENOMEM, "open: out of memory");
	if (get_string(env, argv[0], o->path, sizeof(o->path))) {
		free(o);
		return NULL;
	}
	log_begin();
	o->obj = bpf_object__open_file(o->path, NULL);
	err = o->obj ? 0 : errno;
	if (!o->obj) {
		napi_value r = throw_errno(env, "open", err, "open %s: %s", o->path, log_tail(2048));
		log_end();
		free(o);
		return r;
	}
	log_end();
	NAPI_CALL(env, napi_create_external(env, o, obj_finalize, NULL, &ext));
	return ext;
}

static struct bpf_map *find_map(napi_env env, struct obj *o, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(o->obj, name);

	if (!m)
		throw_errno(env, "map", ENOENT, "map %s not found in %s", name, o->path);
	return m;
}

/* setGlobal(handle, section, varName, Uint8Array): patch a global variable
 * in .rodata/.data/.bss before load. Offset and size come from the object's
 * own BTF (compiled in with -g), not from the kernel's. */
static napi_value js_set_global(napi_env env, napi_callback_info info)
{
	napi_value argv[4];
	char sec[64], var[128];
	struct obj *o;
	struct bpf_map *map;
	const struct btf *btf;
	const struct btf_type *t;
	const struct btf_var_secinfo *vs;
	napi_typedarray_type tt;
	size_t len, bo, msize;
	void *data;
	napi_value ab;
	int id;

	if (get_args(env, info, 4, argv) || !(o = get_obj(env, argv[0])))
		return NULL;
	if (get_string(env, argv[1], sec, sizeof(sec)) || get_string(env, argv[2], var, sizeof(var)))
		return NULL;
	if (napi_get_typedarray_info(env, argv[3], &tt, &len, &data, &ab, &bo) != napi_ok || tt != napi_uint8_array)
		return (napi_throw_type_error(env, NULL, "setGlobal: value must be a Uint8Array"), NULL);
	if (o->loaded)
		return throw_errno(env, "configure", EBUSY, "configure %s: %s.%s can only be set before load", o->path, sec, var);
	btf = bpf_object__btf(o->obj);
	if (!btf)
		return throw_errno(env, "configure", ENOENT, "configure %s: object has no BTF (build it with clang -g)", o->path);
	id = btf__find_by_name_kind(btf, sec, BTF_KIND_DATASEC);
	if (id < 0)
		return throw_errno(env, "configure", ENOENT, "configure %s: no %s section", o->path, sec);
	map = NULL;
	bpf_object__for_each_map(map, o->obj) {
		const char *mn = bpf_map__name(map);
		size_t ml = strlen(mn), sl = strlen(sec);
		/* internal maps are named "<obj prefix><sec>", e.g. "net_bpf.rodata" */
		if (ml >= sl && strcmp(mn + ml - sl, sec) == 0)
			break;
	}
	if (!map)
		return throw_errno(env, "configure", ENOENT, "configure %s: no map for %s", o->path, sec);
	t = btf__type_by_id(btf, id);
	vs = btf_var_secinfos(t);
	for (int i = 0; i < btf_vlen(t); i++, vs++) {
		const struct btf_type *vt = btf__type_by_id(btf, vs->type);
		const char *name = btf__name_by_offset(btf, vt->name_off);
		const void *init;
		void *copy;
		int err;

		if (strcmp(name, var) != 0)
			continue;
		if (vs->size != len)
			return throw_errno(env, "configure", EINVAL, "configure %s: %s is %u bytes in the object, got %zu (events.h and the loader disagree)",
					   o->path, var, vs->size, len);
		init = bpf_map__initial_value(map, &msize);
		if (!init || vs->offset + len > msize)
			return throw_errno(env, "configure", EINVAL, "configure %s: %s lies outside %s", o->path, var, sec);
		copy = malloc(msize);
		if (!copy)
			return throw_errno(env, "configure", ENOMEM, "configure: out of memory");
		memcpy(copy, init, msize);
		memcpy((char *)copy + vs->offset, data, len);
		err = bpf_map__set_initial_value(map, copy, msize);
		free(copy);
		if (err)
			return throw_errno(env, "configure", -err, "configure %s: set %s", o->path, var);
		return NULL;
	}
	return throw_errno(env, "configure", ENOENT, "configure %s: variable %s not found in %s", o->path, var, sec);
}

static napi_value js_set_max_entries(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	char name[128];
	struct obj *o;
	struct bpf_map *map;
	uint32_t n;
	int err;

	if (get_args(env, info, 3, argv) || !(o = get_obj(env, argv[0])) || get_string(env, argv[1], name, sizeof(name)))
		return NULL;
	NAPI_CALL(env, napi_get_value_uint32(env, argv[2], &n));
	if (!(map = find_map(env, o, name)))
		return NULL;
	err = bpf_map__set_max_entries(map, n);
	if (err)
		return throw_errno(env, "configure", -err, "configure %s: max_entries of %s = %u", o->path, name, n);
	return NULL;
}

static napi_value js_load(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	struct obj *o;
	int err;

	if (get_args(env, info, 1, argv) || !(o = get_obj(env, argv[0])))
		return NULL;
	log_begin();
	err = bpf_object__load(o->obj);
	if (err) {
		napi_value r = throw_errno(env, "load", -err, "load %s: %s\nlibbpf/verifier log (tail):\n%s", o->path,
					   "the kernel refused the object", log_tail(3000));
		log_end();
		return r;
	}
	log_end();
	o->loaded = 1;
	return NULL;
}

/* The program to attach, or NULL with an exception pending. */
static struct bpf_program *attach_prog(napi_env env, struct obj *o, const char *prog_name)
{
	struct bpf_program *prog;

	if (o->nlinks >= MAX_LINKS) {
		throw_errno(env, "attach", ENOSPC, "attach %s: too many links", o->path);
		return NULL;
	}
	prog = bpf_object__find_program_by_name(o->obj, prog_name);
	if (!prog)
		throw_errno(env, "attach", ENOENT, "attach %s: program %s not found", o->path, prog_name);
	return prog;
}

/* Keep the link for close(), or throw `err` (errno right after the attach). */
static napi_value keep_link(napi_env env, struct obj *o, struct bpf_link *link, int err, const char *prog_name, const char *target)
{
	if (!link)
		return throw_errno(env, "attach", err, "attach %s to %s", prog_name, target);
	o->links[o->nlinks++] = link;
	return NULL;
}

/* attachTracepoint(handle, progName, category, name) */
static napi_value js_attach_tp(napi_env env, napi_callback_info info)
{
	napi_value argv[4];
	char prog_name[128], cat[128], name[128], target[300];
	struct obj *o;
	struct bpf_program *prog;
	struct bpf_link *link;
	int err;

	if (get_args(env, info, 4, argv) || !(o = get_obj(env, argv[0])))
		return NULL;
	if (get_string(env, argv[1], prog_name, sizeof(prog_name)) || get_string(env, argv[2], cat, sizeof(cat)) ||
	    get_string(env, argv[3], name, sizeof(name)))
		return NULL;
	if (!(prog = attach_prog(env, o, prog_name)))
		return NULL;
	log_begin();
	link = bpf_program__attach_tracepoint(prog, cat, name);
	err = link ? 0 : errno;
	log_end();
	snprintf(target, sizeof(target), "tracepoint %s:%s", cat, name);
	return keep_link(env, o, link, err, prog_name, target);
}

/* attachCgroup(handle, progName, cgroupDir): a BPF link (BPF_LINK_CREATE), so
 * it runs beside programs others attached to the same cgroup instead of
 * replacing them, and it detaches when the handle closes or the process dies. */
static napi_value js_attach_cgroup(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	char prog_name[128], dir[512], target[600];
	struct obj *o;
	struct bpf_program *prog;
	struct bpf_link *link;
	int fd, err;

	if (get_args(env, info, 3, argv) || !(o = get_obj(env, argv[0])))
		return NULL;
	if (get_string(env, argv[1], prog_name, sizeof(prog_name)) || get_string(env, argv[2], dir, sizeof(dir)))
		return NULL;
	if (!(prog = attach_prog(env, o, prog_name)))
		return NULL;
	snprintf(target, sizeof(target), "cgroup %s", dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return keep_link(env, o, NULL, errno, prog_name, target);
	log_begin();
	link = bpf_program__attach_cgroup(prog, fd);
	err = link ? 0 : errno;
	log_end();
	close(fd);
	return keep_link(env, o, link, err, prog_name, target);
}

/* reuseMap(handle, mapName, fd): before load, make the object use a map
 * another object already created (two objects writing one ring). */
static napi_value js_reuse_map(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	char name[128];
	struct obj *o;
	struct bpf_map *map;
	int32_t fd;
	int err;

	if (get_args(env, info, 3, argv) || !(o = get_obj(env, argv[0])) || get_string(env, argv[1], name, sizeof(name)))
		return NULL;
	NAPI_CALL(env, napi_get_value_int32(env, argv[2], &fd));
	if (o->loaded)
		return throw_errno(env, "configure", EBUSY, "configure %s: map %s can only be shared before load", o->path, name);
	if (!(map = find_map(env, o, name)))
		return NULL;
	err = bpf_map__reuse_fd(map, fd);
	if (err)
		return throw_errno(env, "configure", -err, "configure %s: reuse fd %d for map %s", o->path, fd, name);
	return NULL;
}

static napi_value js_map_fd(napi_env env, napi_callback_info info)
{
	napi_value argv[2], r;
	char name[128];
	struct obj *o;
	struct bpf_map *map;

	if (get_args(env, info, 2, argv) || !(o = get_obj(env, argv[0])) || get_string(env, argv[1], name, sizeof(name)))
		return NULL;
	if (!(map = find_map(env, o, name)))
		return NULL;
	NAPI_CALL(env, napi_create_int32(env, bpf_map__fd(map), &r));
	return r;
}

/* mapUpdate(handle, mapName, key, value) / mapDelete(handle, mapName, key):
 * for maps user space fills after load (the file probe's path rules). */
static napi_value map_op(napi_env env, napi_callback_info info, int update)
{
	napi_value argv[4], ab;
	char name[128];
	struct obj *o;
	struct bpf_map *map;
	napi_typedarray_type tt;
	size_t klen, vlen = 0, bo;
	void *key, *value = NULL;
	int err;

	if (get_args(env, info, update ? 4 : 3, argv) || !(o = get_obj(env, argv[0])) || get_string(env, argv[1], name, sizeof(name)))
		return NULL;
	if (napi_get_typedarray_info(env, argv[2], &tt, &klen, &key, &ab, &bo) != napi_ok || tt != napi_uint8_array)
		return (napi_throw_type_error(env, NULL, "map: key must be a Uint8Array"), NULL);
	if (update && (napi_get_typedarray_info(env, argv[3], &tt, &vlen, &value, &ab, &bo) != napi_ok || tt != napi_uint8_array))
		return (napi_throw_type_error(env, NULL, "map: value must be a Uint8Array"), NULL);
	if (!(map = find_map(env, o, name)))
		return NULL;
	if (klen != bpf_map__key_size(map) || (update && vlen != bpf_map__value_size(map)))
		return throw_errno(env, "map", EINVAL, "map %s: key/value of %zu/%zu bytes, the map takes %u/%u (events.h and the loader disagree)",
				   name, klen, vlen, bpf_map__key_size(map), bpf_map__value_size(map));
	err = update ? bpf_map_update_elem(bpf_map__fd(map), key, value, BPF_ANY) : bpf_map_delete_elem(bpf_map__fd(map), key);
	if (err && !(err == -ENOENT && !update))
		return throw_errno(env, "map", errno, "map %s: %s", name, update ? "update" : "delete");
	return NULL;
}

static napi_value js_map_update(napi_env env, napi_callback_info info)
{
	return map_op(env, info, 1);
}

static napi_value js_map_delete(napi_env env, napi_callback_info info)
{
	return map_op(env, info, 0);
}

/* progRun(handle, progName): run a program from user space (BPF_PROG_RUN),
 * for the syscall programs that do periodic work in the kernel, such as the
 * network probe's fold sweep. Returns the program's return value. */
static napi_value js_prog_run(napi_env env, napi_callback_info info)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);
	napi_value argv[2], r;
	char name[128];
	struct obj *o;
	struct bpf_program *prog;
	int err;

	if (get_args(env, info, 2, argv) || !(o = get_obj(env, argv[0])) || get_string(env, argv[1], name, sizeof(name)))
		return NULL;
	prog = bpf_object__find_program_by_name(o->obj, name);
	if (!prog)
		return throw_errno(env, "run", ENOENT, "run: program %s not found in %s", name, o->path);
	err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);
	if (err)
		return throw_errno(env, "run", errno, "run %s in %s", name, o->path);
	NAPI_CALL(env, napi_create_uint32(env, opts.retval, &r));
	return r;
}

/* readPercpuArray(handle, mapName, n): sum each of the first n u64 slots over all CPUs. */
static napi_value js_read_percpu(napi_env env, napi_callback_info info)
{
	napi_value argv[3], arr, v;
	char name[128];
	struct obj *o;
	struct bpf_map *map;
	uint32_t n;
	int ncpu, fd;
	__u64 *vals;

	if (get_args(env, info, 3, argv) || !(o = get_obj(env, argv[0])) || get_string(env, argv[1], name, sizeof(name)))
		return NULL;
	NAPI_CALL(env, napi_get_value_uint32(env, argv[2], &n));
	if (!(map = find_map(env, o, name)))
		return NULL;
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return throw_errno(env, "read", -ncpu, "read %s: cannot count possible CPUs", name);
	vals = calloc(ncpu, sizeof(__u64));
	if (!vals)
		return throw_errno(env, "read", ENOMEM, "read: out of memory");
	fd = bpf_map__fd(map);
	NAPI_CALL(env, napi_create_array_with_length(env, n, &arr));
	for (uint32_t k = 0; k < n; k++) {
		double sum = 0;

		if (bpf_map_lookup_elem(fd, &k, vals) == 0)
			for (int c = 0; c < ncpu; c++)
				sum += (double)vals[c];
		napi_create_double(env, sum, &v);
		napi_set_element(env, arr, k, v);
	}
	free(vals);
	return arr;
}

static void set_num(napi_env env, napi_value obj, const char *key, double d)
{
	napi_value v;

	napi_create_double(env, d, &v);
	napi_set_named_property(env, obj, key, v);
}

static napi_value js_prog_stats(napi_env env, napi_callback_info info)
{
	napi_value argv[1], arr, item, v;
	struct obj *o;
	struct bpf_program *prog;
	uint32_t i = 0;

	if (get_args(env, info, 1, argv) || !(o = get_obj(env, argv[0])))
		return NULL;
	NAPI_CALL(env, napi_create_array(env, &arr));
	bpf_object__for_each_program(prog, o->obj) {
		struct bpf_prog_info pi;
		__u32 len = sizeof(pi);
		int fd = bpf_program__fd(prog);

		memset(&pi, 0, sizeof(pi));
		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &pi, &len))
			continue;
		napi_create_object(env, &item);
		napi_create_string_utf8(env, bpf_program__name(prog), NAPI_AUTO_LENGTH, &v);
		napi_set_named_property(env, item, "name", v);
		set_num(env, item, "runCount", (double)pi.run_cnt);
		set_num(env, item, "runTimeNs", (double)pi.run_time_ns);
		set_num(env, item, "recursionMisses", (double)pi.recursion_misses);
		set_num(env, item, "id", pi.id);
		napi_set_element(env, arr, i++, item);
	}
	return arr;
}

static napi_value js_close(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	struct obj *o = NULL;

	if (get_args(env, info, 1, argv))
		return NULL;
	if (napi_get_value_external(env, argv[0], (void **)&o) == napi_ok && o)
		obj_close(o);
	return NULL;
}

/* ---- ring buffer reader ---- */

struct ring {
	int map_fd;
	int epoll_fd;
	unsigned long *consumer_pos;
	unsigned long *producer_pos;
	unsigned char *data;
	size_t mask;
	size_t page_size;
	size_t size;
};

static void ring_free(struct ring *r)
{
	if (r->consumer_pos)
		munmap(r->consumer_pos, r->page_size);
	if (r->producer_pos)
		munmap(r->producer_pos, r->page_size + 2 * r->size);
	if (r->epoll_fd >= 0)
		close(r->epoll_fd);
	r->consumer_pos = NULL;
	r->producer_pos = NULL;
	r->epoll_fd = -1;
}

static void ring_finalize(napi_env env, void *data, void *hint)
{
	ring_free(data);
	free(data);
}

static napi_value js_ring_open(napi_env env, napi_callback_info info)
{
	napi_value argv[1], ext;
	struct bpf_map_info mi;
	struct epoll_event ev;
	__u32 len = sizeof(mi);
	struct ring *r;
	int32_t fd;
	void *p;

	if (get_args(env, info, 1, argv))
		return NULL;
	NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
	memset(&mi, 0, sizeof(mi));
	if (bpf_obj_get_info_by_fd(fd, &mi, &len))
		return throw_errno(env, "ring", errno, "ring: fd %d is not a BPF map", fd);
	if (mi.type != BPF_MAP_TYPE_RINGBUF)
		return throw_errno(env, "ring", EINVAL, "ring: map %s (fd %d) is not a ring buffer", mi.name, fd);
	r = calloc(1, sizeof(*r));
	if (!r)
		return throw_errno(env, "ring", ENOMEM, "ring: out of memory");
	r->map_fd = fd;
	r->epoll_fd = -1;
	r->page_size = sysconf(_SC_PAGESIZE);
	r->size = mi.max_entries;
	r->mask = mi.max_entries - 1;
	p = mmap(NULL, r->page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int err = errno;
		free(r);
		return throw_errno(env, "ring", err, "ring: mmap consumer page of %s", mi.name);
	}
	r->consumer_pos = p;
	/* producer page + data mapped twice back to back, so a record that wraps
	 * around the end reads as one contiguous span */
	p = mmap(NULL, r->page_size + 2 * r->size, PROT_READ, MAP_SHARED, fd, r->page_size);
	if (p == MAP_FAILED) {
		int err = errno;
		ring_free(r);
		free(r);
		return throw_errno(env, "ring", err, "ring: mmap data of %s", mi.name);
	}
	r->producer_pos = p;
	r->data = (unsigned char *)p + r->page_size;
	r->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.fd = fd;
	if (r->epoll_fd < 0 || epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, fd, &ev)) {
		int err = errno;
		ring_free(r);
		free(r);
		return throw_errno(env, "ring", err, "ring: epoll on %s", mi.name);
	}
	NAPI_CALL(env, napi_create_external(env, r, ring_finalize, NULL, &ext));
	return ext;
}

static struct ring *get_ring(napi_env env, napi_value v)
{
	struct ring *r = NULL;

	if (napi_get_value_external(env, v, (void **)&r) != napi_ok || !r) {
		napi_throw_type_error(env, NULL, "expected a ring handle");
		return NULL;
	}
	if (!r->consumer_pos) {
		napi_throw_error(env, NULL, "the ring is closed");
		return NULL;
	}
	return r;
}

static inline size_t ring_avail(struct ring *r)
{
	unsigned long prod = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);
	unsigned long cons = __atomic_load_n(r->consumer_pos, __ATOMIC_RELAXED);

	return prod - cons;
}

/* ringDrain(ring, Uint8Array dst, offset, length, timeoutMs, out Float64Array[2]) → bytes */
static napi_value js_ring_drain(napi_env env, napi_callback_info info)
{
	napi_value argv[6], result;
	struct ring *r;
	napi_typedarray_type tt;
	size_t dlen, bo, olen;
	unsigned char *dst;
	double *out;
	napi_value ab;
	uint32_t off, length;
	int32_t timeout;
	unsigned long cons, prod;
	size_t copied = 0;
	double records = 0;

	if (get_args(env, info, 6, argv) || !(r = get_ring(env, argv[0])))
		return NULL;
	if (napi_get_typedarray_info(env, argv[1], &tt, &dlen, (void **)&dst, &ab, &bo) != napi_ok || tt != napi_uint8_array)
		return (napi_throw_type_error(env, NULL, "ringDrain: destination must be a Uint8Array"), NULL);
	NAPI_CALL(env, napi_get_value_uint32(env, argv[2], &off));
	NAPI_CALL(env, napi_get_value_uint32(env, argv[3], &length));
	NAPI_CALL(env, napi_get_value_int32(env, argv[4], &timeout));
	if (napi_get_typedarray_info(env, argv[5], &tt, &olen, (void **)&out, &ab, &bo) != napi_ok || tt != napi_float64_array || olen < 2)
		return (napi_throw_type_error(env, NULL, "ringDrain: out must be a Float64Array of 2"), NULL);
	if ((size_t)off + length > dlen)
		return (napi_throw_range_error(env, NULL, "ringDrain: offset + length exceed the destination"), NULL);
	dst += off;

	if (ring_avail(r) == 0 && timeout > 0) {
		struct epoll_event ev;

		epoll_wait(r->epoll_fd, &ev, 1, timeout); /* EINTR or timeout: just look again */
	}
	cons = __atomic_load_n(r->consumer_pos, __ATOMIC_RELAXED);
	prod = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);
	while (cons < prod) {
		unsigned char *hdr = r->data + (cons & r->mask);
		__u32 len = __atomic_load_n((__u32 *)hdr, __ATOMIC_ACQUIRE);
		__u32 sample;

		if (len & BPF_RINGBUF_BUSY_BIT)
			break; /* reserved, not yet committed */
		sample = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
		if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
			if (copied + sample > length)
				break; /* doesn't fit: leave it for the next drain */
			memcpy(dst + copied, hdr + BPF_RINGBUF_HDR_SZ, sample);
			copied += sample;
			records++;
		}
		cons += (sample + BPF_RINGBUF_HDR_SZ + 7) & ~7UL;
		if (cons == prod)
			prod = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);
	}
	__atomic_store_n(r->consumer_pos, cons, __ATOMIC_RELEASE);
	out[0] = (double)copied;
	out[1] = records;
	NAPI_CALL(env, napi_create_double(env, (double)copied, &result));
	return result;
}

static napi_value js_ring_pending(napi_env env, napi_callback_info info)
{
	napi_value argv[1], v;
	struct ring *r;

	if (get_args(env, info, 1, argv) || !(r = get_ring(env, argv[0])))
		return NULL;
	NAPI_CALL(env, napi_create_double(env, (double)ring_avail(r), &v));
	return v;
}

static napi_value js_ring_close(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	struct ring *r = NULL;

	if (get_args(env, info, 1, argv))
		return NULL;
	if (napi_get_value_external(env, argv[0], (void **)&r) == napi_ok && r)
		ring_free(r);
	return NULL;
}

/* bootToWallNs(): CLOCK_REALTIME - CLOCK_BOOTTIME, read back to back. */
static napi_value js_boot_to_wall(napi_env env, napi_callback_info info)
{
	struct timespec a, b, c;
	napi_value v;
	double boot, wall;

	clock_gettime(CLOCK_BOOTTIME, &a);
	clock_gettime(CLOCK_REALTIME, &b);
	clock_gettime(CLOCK_BOOTTIME, &c);
	boot = ((double)a.tv_sec * 1e9 + a.tv_nsec + (double)c.tv_sec * 1e9 + c.tv_nsec) / 2;
	wall = (double)b.tv_sec * 1e9 + b.tv_nsec;
	NAPI_CALL(env, napi_create_double(env, wall - boot, &v));
	return v;
}

static napi_value js_boot_ns(napi_env env, napi_callback_info info)
{
	struct timespec a;
	napi_value v;

	clock_gettime(CLOCK_BOOTTIME, &a);
	NAPI_CALL(env, napi_create_double(env, (double)a.tv_sec * 1e9 + a.tv_nsec, &v));
	return v;
}

static napi_value js_libbpf_version(napi_env env, napi_callback_info info)
{
	napi_value v;

	NAPI_CALL(env, napi_create_string_utf8(env, libbpf_version_string(), NAPI_AUTO_LENGTH, &v));
	return v;
}

NAPI_MODULE_INIT()
{
	napi_property_descriptor props[] = {
		{ "open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL },
		{ "setGlobal", NULL, js_set_global, NULL, NULL, NULL, napi_default, NULL },
		{ "setMaxEntries", NULL, js_set_max_entries, NULL, NULL, NULL, napi_default, NULL },
		{ "load", NULL, js_load, NULL, NULL, NULL, napi_default, NULL },
		{ "attachTracepoint", NULL, js_attach_tp, NULL, NULL, NULL, napi_default, NULL },
		{ "attachCgroup", NULL, js_attach_cgroup, NULL, NULL, NULL, napi_default, NULL },
		{ "reuseMap", NULL, js_reuse_map, NULL, NULL, NULL, napi_default, NULL },
		{ "mapFd", NULL, js_map_fd, NULL, NULL, NULL, napi_default, NULL },
		{ "mapUpdate", NULL, js_map_update, NULL, NULL, NULL, napi_default, NULL },
		{ "mapDelete", NULL, js_map_delete, NULL, NULL, NULL, napi_default, NULL },
		{ "progRun", NULL, js_prog_run, NULL, NULL, NULL, napi_default, NULL },
		{ "readPercpuArray", NULL, js_read_percpu, NULL, NULL, NULL, napi_default, NULL },
		{ "progStats", NULL, js_prog_stats, NULL, NULL, NULL, napi_default, NULL },
		{ "close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL },
		{ "ringOpen", NULL, js_ring_open, NULL, NULL, NULL, napi_default, NULL },
		{ "ringDrain", NULL, js_ring_drain, NULL, NULL, NULL, napi_default, NULL },
		{ "ringPending", NULL, js_ring_pending, NULL, NULL, NULL, napi_default, NULL },
		{ "ringClose", NULL, js_ring_close, NULL, NULL, NULL, napi_default, NULL },
		{ "bootToWallNs", NULL, js_boot_to_wall, NULL, NULL, NULL, napi_default, NULL },
		{ "bootNs", NULL, js_boot_ns, NULL, NULL, NULL, napi_default, NULL },
		{ "libbpfVersion", NULL, js_libbpf_version, NULL, NULL, NULL, napi_default, NULL },
	};

	libbpf_set_print(log_cb);
	if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok)
		return NULL;
	return exports;
}
