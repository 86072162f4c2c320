// ambit_net: the socket operations Node.js lacks for in-pod capture (DESIGN §4).
// - Sockets are created inside a pod's network namespace: on a libuv threadpool thread (napi
//   async work) the thread enters the namespace with setns(2), creates the socket and returns to
//   its own namespace. A socket keeps the namespace it was created in, so Node can adopt the fd.
//   If a thread cannot return to its namespace the process aborts: a threadpool thread left in a
//   pod's namespace would silently misplace later work.
// - SO_MARK (the node proxy's packets bypass the pod's redirection), IP_TRANSPARENT (inbound
//   delivery keeps the client's address) and SO_ORIGINAL_DST (where a redirected connection was
//   going).
// - connectTcp completes the connection natively (poll with a timeout): Node emits no 'connect'
//   for an adopted fd.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <node_api.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

typedef enum { OP_LISTEN_TCP, OP_BIND_UDP, OP_CONNECT_TCP } op_kind;

typedef struct {
  op_kind kind;
  char netns[512];
  struct sockaddr_storage addr;
  socklen_t addr_len;
  struct sockaddr_storage bind_addr;
  socklen_t bind_len;
  int has_bind;
  int mark;
  int transparent;
  int backlog;
  int timeout_ms;
  int fd;   /* result */
  int err;  /* errno on failure */
  char where[64];
  napi_deferred deferred;
  napi_async_work work;
} op_t;

static int parse_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof(*ss));
  struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
  if (port < 0 || port > 65535) return -1;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    *len = sizeof(*v4);
    return 0;
  }
  if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    *len = sizeof(*v6);
    return 0;
  }
  return -1;
}

static int set_options(int fd, int family, const op_t *op) {
  int one = 1;
  if (op->mark > 0 && setsockopt(fd, SOL_SOCKET, SO_MARK, &op->mark, sizeof(op->mark)) < 0) return -1;
  if (op->transparent) {
    int r = family == AF_INET6 ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))
                               : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
    if (r < 0) return -1;
  }
  return 0;
}

/* Runs in the pod's namespace: creates the socket the op asks for. Sets op->fd or op->err. */
static void make_socket(op_t *op) {
  int family = op->addr.ss_family;
  int one = 1;
  int type = op->kind == OP_BIND_UDP ? SOCK_DGRAM : SOCK_STREAM;
  int fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) goto fail_nofd;
  if (set_options(fd, family, op) < 0) goto fail;
  if (op->kind == OP_LISTEN_TCP || op->kind == OP_BIND_UDP) {
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) goto fail;
    if (bind(fd, (struct sockaddr *)&op->addr, op->addr_len) < 0) goto fail;
    if (op->kind == OP_LISTEN_TCP && listen(fd, op->backlog) < 0) goto fail;
    op->fd = fd;
    return;
  }
  /* connect */
  if (op->has_bind) {
    setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&op->bind_addr, op->bind_len) < 0) goto fail;
  }
  if (connect(fd, (struct sockaddr *)&op->addr, op->addr_len) < 0) {
    if (errno != EINPROGRESS) goto fail;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int r;
    do r = poll(&p, 1, op->timeout_ms); while (r < 0 && errno == EINTR);
    if (r < 0) goto fail;
    if (r == 0) {
      errno = ETIMEDOUT;
      goto fail;
    }
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) goto fail;
    if (soerr != 0) {
      errno = soerr;
      goto fail;
    }
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  op->fd = fd;
  return;
fail:
  op->err = errno;
  close(fd);
  op->fd = -1;
  return;
fail_nofd:
  op->err = errno;
  op->fd = -1;
}

static void execute(napi_env env, void *data) {
  (void)env;
  op_t *op = (op_t *)data;
  op->fd = -1;
  char self[64];
  snprintf(self, sizeof(self), "/proc/self/task/%ld/ns/net", (long)syscall(SYS_gettid));
  int home = open(self, O_RDONLY | O_CLOEXEC);
  if (home < 0) {
    op->err = errno;
    snprintf(op->where, sizeof(op->where), "open own netns");
    return;
  }
  int target = open(op->netns, O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    op->err = errno;
    snprintf(op->where, sizeof(op->where), "open netns");
    close(home);
    return;
  }
  if (setns(target, CLONE_NEWNET) < 0) {
    op->err = errno;
    snprintf(op->where, sizeof(op->where), "setns");
    close(target);
    close(home);
    return;
  }
  make_socket(op);
  if (op->fd < 0) snprintf(op->where, sizeof(op->where), "socket");
  if (setns(home, CLONE_NEWNET) < 0) {
    fprintf(stderr, "ambit_net: cannot return a threadpool thread to its network namespace: %s\n", strerror(errno));
    abort();
  }
  close(target);
  close(home);
}

static const char *errno_name(int e) {
  switch (e) {
    case ECONNREFUSED: return "ECONNREFUSED";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ENETUNREACH: return "ENETUNREACH";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINVAL: return "EINVAL";
    case ECONNRESET: return "ECONNRESET";
    case EMFILE: return "EMFILE";
    default: return "EIO";
  }
}

static void complete(napi_env env, napi_status status, void *data) {
  op_t *op = (op_t *)data;
  if (status == napi_ok && op->fd >= 0) {
    napi_value v;
    napi_create_int32(env, op->fd, &v);
    napi_resolve_deferred(env, op->deferred, v);
  } else {
    char msg[700];
    snprintf(msg, sizeof(msg), "%s in %s: %s", op->where[0] ? op->where : "operation", op->netns,
             strerror(op->err ? op->err : EIO));
    napi_value m, code, err;
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
    napi_create_string_utf8(env, errno_name(op->err), NAPI_AUTO_LENGTH, &code);
    napi_create_error(env, code, m, &err);
    napi_set_named_property(env, err, "code", code);
    napi_reject_deferred(env, op->deferred, err);
  }
  napi_delete_async_work(env, op->work);
  free(op);
}

static napi_value throw_error(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

static int get_string(napi_env env, napi_value v, char *buf, size_t size) {
  size_t n;
  return napi_get_value_string_utf8(env, v, buf, size, &n) == napi_ok && n > 0 && n < size - 1 ? 0 : -1;
}

static int get_int(napi_env env, napi_value obj, const char *name, int dflt) {
  bool has = false;
  napi_value v;
  int32_t out = dflt;
  if (napi_has_named_property(env, obj, name, &has) != napi_ok || !has) return dflt;
  napi_get_named_property(env, obj, name, &v);
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_number) napi_get_value_int32(env, v, &out);
  else if (t == napi_boolean) {
    bool b;
    napi_get_value_bool(env, v, &b);
    out = b;
  }
  return out;
}

/* (kind, netns, host, port, opts) -> Promise<fd> */
static napi_value start_op(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5) return throw_error(env, "EINVAL", "expected (kind, netns, host, port, options)");
  op_t *op = calloc(1, sizeof(op_t));
  if (!op) return throw_error(env, "ENOMEM", "out of memory");
  int32_t kind = 0, port = -1;
  char host[128];
  napi_get_value_int32(env, argv[0], &kind);
  napi_get_value_int32(env, argv[3], &port);
  if (kind < OP_LISTEN_TCP || kind > OP_CONNECT_TCP || get_string(env, argv[1], op->netns, sizeof(op->netns)) < 0 ||
      get_string(env, argv[2], host, sizeof(host)) < 0 || parse_addr(host, port, &op->addr, &op->addr_len) < 0) {
    free(op);
    return throw_error(env, "EINVAL", "invalid namespace path, address or port");
  }
  op->kind = (op_kind)kind;
  op->mark = get_int(env, argv[4], "mark", 0);
  op->transparent = get_int(env, argv[4], "transparent", 0);
  op->backlog = get_int(env, argv[4], "backlog", 1024);
  op->timeout_ms = get_int(env, argv[4], "timeoutMs", 10000);
  bool has_bind = false;
  napi_has_named_property(env, argv[4], "bindHost", &has_bind);
  if (has_bind) {
    napi_value b;
    char bhost[128];
    napi_get_named_property(env, argv[4], "bindHost", &b);
    if (get_string(env, b, bhost, sizeof(bhost)) < 0 || parse_addr(bhost, 0, &op->bind_addr, &op->bind_len) < 0 ||
        op->bind_addr.ss_family != op->addr.ss_family) {
      free(op);
      return throw_error(env, "EINVAL", "invalid bindHost (an IP of the destination's family)");
    }
    op->has_bind = 1;
  }
  napi_value promise, name;
  napi_create_promise(env, &op->deferred, &promise);
  napi_create_string_utf8(env, "ambit_net", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, op, &op->work);
  napi_queue_async_work(env, op->work);
  return promise;
}

/* (fd) -> { host, port } | null */
static napi_value original_dst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, h, p;
  int32_t fd = -1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_get_null(env, &result);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return result;
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  char host[INET6_ADDRSTRLEN];
  int port;
  memset(&ss, 0, sizeof(ss));
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len) == 0 && ss.ss_family == AF_INET) {
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
    port = ntohs(v4->sin_port);
  } else {
    len = sizeof(ss);
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len) != 0 || ss.ss_family != AF_INET6) return result;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
    port = ntohs(v6->sin6_port);
  }
  napi_create_object(env, &result);
  napi_create_string_utf8(env, host, NAPI_AUTO_LENGTH, &h);
  napi_create_int32(env, port, &p);
  napi_set_named_property(env, result, "host", h);
  napi_set_named_property(env, result, "port", p);
  return result;
}

/* (fd, mark) -> undefined; throws on failure */
static napi_value set_mark(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1, mark = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &mark) != napi_ok)
    return throw_error(env, "EINVAL", "expected (fd, mark)");
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0) return throw_error(env, errno_name(errno), strerror(errno));
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"start", NULL, start_op, NULL, NULL, NULL, napi_default, NULL},
      {"originalDst", NULL, original_dst, NULL, NULL, NULL, napi_default, NULL},
      {"setMark", NULL, set_mark, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
