/*
 * fastudp: IPv4 UDP sockets for the TFTP service and multicast imaging
 * without dgram's per-packet overhead. Node's dgram allocates a 64 KiB buffer and builds an `rinfo`
 * object with two strings for every datagram received, and a SendWrap plus
 * argument normalisation for every datagram sent; for TFTP's lock-step
 * transfers that is a fifth of the server's CPU per block.
 *
 * This addon does only the I/O; all protocol logic stays in TypeScript
 * (src/net/udp.ts wraps it, src/net/tftp-server.ts uses it):
 *   - receive: the socket is watched by a uv_poll handle on Node's own loop;
 *     when readable, one recvmmsg() takes up to BATCH datagrams into a
 *     process-wide arena shared with JavaScript (an external ArrayBuffer),
 *     their sources and lengths go into a Uint32Array, and JavaScript is
 *     called once for the batch. The arena is only valid during that call.
 *   - send: one sendmsg() straight from the caller's buffers (head + body,
 *     no copy). The socket is non-blocking: the result is 0 or an errno, and
 *     on EAGAIN the caller queues a copy and asks to be told when the socket
 *     is writable (want_writable).
 *
 * JavaScript API (see src/net/udp.ts for the typed wrapper):
 *   init() -> { arena: ArrayBuffer, meta: ArrayBuffer, batch, slot }
 *   open(ip, port, mode?, peerIp?, peerPort?) -> [handle, boundPort]
 *                       throws Error with .code (EADDRINUSE...). mode 3: a
 *                       socket that shares its address (SO_REUSEADDR before
 *                       bind: several multicast receivers on one group and
 *                       port). mode 0: a
 *                       plain socket; 1: the port must be free, then it is
 *                       opened to sockets of the same user (SO_REUSEPORT,
 *                       set after bind); 2: joins such a port and connect()s
 *                       to the peer, so the kernel hands it that peer's
 *                       datagrams straight away (early demux, a cached
 *                       route) and everyone else's to the mode-1 socket
 *                       (Linux skips connected sockets when it picks a
 *                       reuseport socket for a stranger, and scores the
 *                       connected one higher for its peer)
 *   start(handle, onRead(n), onWritable())    onRead(n): n >= 0 datagrams, n < 0 = -errno
 *   send(handle, ip, port, head, body?) -> 0 | errno   (to a connected
 *                       socket's own peer without an address: the cached route)
 *   send_segments(handle, ip, port, buf, segment) -> datagrams sent | -errno
 *                       buf holds consecutive datagrams of `segment` bytes
 *                       (the last may be shorter): one sendmsg() with
 *                       UDP_SEGMENT (the kernel cuts it: generic segmentation
 *                       offload), or one sendmmsg() where GSO is refused. A
 *                       GSO send is all or nothing; sendmmsg may stop early
 *                       (then fewer than all are counted)
 *   setopt(handle, opt, a, b?) -> 0 | throws    multicast and buffer options
 *                       (OPT_* below): join a group on an interface, the
 *                       interface, TTL and loopback of sent multicast,
 *                       IP_MULTICAST_ALL off, receive/send buffer sizes
 *                       (forced past rmem_max when allowed), SO_RXQ_OVFL
 *   rx_ring(handle, ring, present, state)    the multicast receiver's fast path
 *                       (src/multicast/receiver.ts): DATA datagrams of the
 *                       session named in `state` go straight into their slot
 *                       of `ring` (a Buffer of W blocks), with their slot in
 *                       `present` (a Uint8Array of W) set and the counters in
 *                       `state` (a Uint32Array, layout RX_* below) updated;
 *                       JavaScript sees only the other datagrams, and is
 *                       called after a batch when there are some or when
 *                       RX_FLUSH_AT contiguous blocks wait to be delivered.
 *                       rx_ring(handle, null) detaches
 *   rx_dropped(handle) -> datagrams the kernel dropped for want of buffer
 *                       space on this socket (SO_RXQ_OVFL; 0 until enabled)
 *   want_writable(handle, on)
 *   close(handle)
 *   busy_poll(micros)   after a datagram, keep Node's loop polling instead of
 *                       sleeping for this long (0 = off): a sleeping server
 *                       must be woken per packet, which costs more than the
 *                       packet itself on virtual machines
 * Addresses are IPv4 as unsigned 32-bit integers in host order.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#define BATCH 32
#define SLOT 65536 /* larger than any UDP payload: nothing is ever truncated */
#define META_FIELDS 3 /* per datagram: source ip, source port, length */
#define CTRL_SPACE 64 /* room for an SO_RXQ_OVFL control message per datagram */
#define MAX_SEGMENTS 64 /* datagrams per send_segments() call (the kernel's UDP_MAX_SEGMENTS) */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif
#ifndef IP_MULTICAST_ALL
#define IP_MULTICAST_ALL 49
#endif

enum {
  OPT_JOIN = 1,          /* a = group, b = interface address (0: the kernel's choice) */
  OPT_MULTICAST_IF = 2,  /* a = interface address */
  OPT_MULTICAST_TTL = 3, /* a = 0..255 */
  OPT_MULTICAST_LOOP = 4,/* a = 0|1 */
  OPT_MULTICAST_ALL = 5, /* a = 0|1 */
  OPT_RCVBUF = 6,        /* a = bytes */
  OPT_SNDBUF = 7,        /* a = bytes */
  OPT_RXQ_OVFL = 8,      /* a = 0|1 */
  OPT_LEAVE = 9          /* a = group, b = interface address */
};

typedef struct {
  uv_idle_t spin;      /* active while busy-polling: libuv then polls with a zero timeout */
  int spin_init;
  uint64_t spin_ns;    /* how long to keep polling after the last datagram (0 = never) */
  uint64_t last_rx;    /* uv_hrtime() of the last datagram received */
  unsigned char *arena;
  uint32_t *meta;
  struct mmsghdr msgs[BATCH];
  struct iovec iovs[BATCH];
  struct sockaddr_in addrs[BATCH];
  unsigned char ctrl[BATCH][CTRL_SPACE];
  struct mmsghdr out[MAX_SEGMENTS];
  struct iovec out_iovs[MAX_SEGMENTS];
} instance_t;

/* rx_ring state: a Uint32Array shared with JavaScript (src/multicast/receiver.ts RX). */
enum {
  RX_SESSION_HI, RX_SESSION_LO, RX_SENDER_IP, RX_BLOCKS, RX_BS, RX_LAST_LEN, RX_W,
  RX_DELIVERED, /* written by JavaScript as it delivers */
  RX_CONTIG, RX_HIGHEST, RX_RECEIVED, RX_DUPS, RX_SEQ_LOST, RX_MAX_SEQ, RX_HAVE_SEQ,
  RX_FLUSH_AT, RX_BAD, RX_FOREIGN, RX_ENABLED, RX_FIELDS
};
#define DATA_WORD 0x464d0102u

typedef struct sock_s {
  napi_env env;
  instance_t *inst;
  int fd;
  int polling; /* uv_poll_init done */
  int closed;  /* close() called (or finalised) */
  int owners;  /* the JS handle, and the poll handle while libuv holds it */
  int events;
  int connected;       /* mode 2: connect()ed to peer_ip:peer_port */
  int want_ovfl;       /* SO_RXQ_OVFL on: read the drop counter from each batch */
  int no_gso;          /* the kernel refused UDP_SEGMENT once: sendmmsg from then on */
  uint32_t dropped;    /* the last SO_RXQ_OVFL counter seen */
  unsigned char *rx_ring; size_t rx_ring_len;
  uint8_t *rx_present; size_t rx_present_len;
  uint32_t *rx_st;
  napi_ref rx_refs[3];
  uint32_t peer_ip;
  uint32_t peer_port;
  uv_poll_t poll;
  napi_ref on_read;
  napi_ref on_writable;
  napi_async_context actx;
} sock_t;

#define CHECK(call)                                                          \
  do {                                                                       \
    if ((call) != napi_ok) {                                                 \
      const napi_extended_error_info *info_ = NULL;                          \
      napi_get_last_error_info(env, &info_);                                 \
      napi_throw_error(env, NULL,                                            \
                       info_ && info_->error_message ? info_->error_message  \
                                                     : "fastudp: N-API call failed"); \
      return NULL;                                                           \
    }                                                                        \
  } while (0)

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s %s", syscall, strerror(err));
  napi_value code = NULL, text = NULL, error = NULL, num = NULL, sc = NULL;
  const char *name = err == EADDRINUSE ? "EADDRINUSE"
                     : err == EACCES ? "EACCES"
                     : err == EADDRNOTAVAIL ? "EADDRNOTAVAIL"
                     : err == EINVAL ? "EINVAL"
                     : err == EMFILE ? "EMFILE"
                     : err == ENFILE ? "ENFILE"
                     : err == EPERM ? "EPERM"
                     : "EIO";
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  napi_create_int32(env, -err, &num);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, error, "errno", num);
  napi_set_named_property(env, error, "syscall", sc);
  napi_throw(env, error);
  return NULL;
}

static void instance_release(uv_handle_t *h) {
  free(h->data);
}

/* The environment is going away (process exit, or a worker thread ending). */
static void instance_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  instance_t *inst = data;
  free(inst->arena);
  free(inst->meta);
  inst->arena = NULL;
  inst->meta = NULL;
  if (inst->spin_init) {
    uv_idle_stop(&inst->spin);
    uv_close((uv_handle_t *)&inst->spin, instance_release); /* spin.data == inst */
  } else {
    free(inst);
  }
}

static void noop_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)data;
  (void)hint;
}

static instance_t *instance(napi_env env) {
  instance_t *inst = NULL;
  if (napi_get_instance_data(env, (void **)&inst) != napi_ok) return NULL;
  return inst;
}

static napi_value Init(napi_env env, napi_callback_info info) {
  (void)info;
  instance_t *inst = instance(env);
  if (inst == NULL) {
    inst = calloc(1, sizeof *inst);
    if (inst == NULL) return throw_errno(env, "calloc", ENOMEM);
    inst->arena = malloc((size_t)BATCH * SLOT);
    inst->meta = calloc(BATCH * META_FIELDS, sizeof(uint32_t));
    if (inst->arena == NULL || inst->meta == NULL) {
      free(inst->arena);
      free(inst->meta);
      free(inst);
      return throw_errno(env, "malloc", ENOMEM);
    }
    for (int i = 0; i < BATCH; i++) {
      inst->iovs[i].iov_base = inst->arena + (size_t)i * SLOT;
      inst->iovs[i].iov_len = SLOT;
    }
    CHECK(napi_set_instance_data(env, inst, instance_free, NULL));
  }
  napi_value result, arena, meta, batch, slot;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_external_arraybuffer(env, inst->arena, (size_t)BATCH * SLOT, noop_finalize, NULL, &arena));
  CHECK(napi_create_external_arraybuffer(env, inst->meta, BATCH * META_FIELDS * sizeof(uint32_t), noop_finalize, NULL, &meta));
  CHECK(napi_create_uint32(env, BATCH, &batch));
  CHECK(napi_create_uint32(env, SLOT, &slot));
  CHECK(napi_set_named_property(env, result, "arena", arena));
  CHECK(napi_set_named_property(env, result, "meta", meta));
  CHECK(napi_set_named_property(env, result, "batch", batch));
  CHECK(napi_set_named_property(env, result, "slot", slot));
  return result;
}

static void release(sock_t *s) {
  if (--s->owners == 0) free(s);
}

static void on_spin(uv_idle_t *h) {
  instance_t *inst = h->data;
  if (uv_hrtime() - inst->last_rx > inst->spin_ns) uv_idle_stop(h);
}

static void on_closed(uv_handle_t *h) {
  release(h->data);
}

/* Stops polling and closes the fd. The struct is freed once libuv lets go of the poll handle. */
static void sock_close(sock_t *s) {
  if (s->closed) return;
  s->closed = 1;
  napi_env env = s->env;
  for (int i = 0; i < 3; i++)
    if (s->rx_refs[i]) napi_delete_reference(env, s->rx_refs[i]);
  s->rx_st = NULL;
  if (s->on_read) napi_delete_reference(env, s->on_read);
  if (s->on_writable) napi_delete_reference(env, s->on_writable);
  if (s->actx) napi_async_destroy(env, s->actx);
  s->on_read = s->on_writable = NULL;
  s->actx = NULL;
  if (s->polling) {
    uv_poll_stop(&s->poll);
    close(s->fd);
    s->fd = -1;
    uv_close((uv_handle_t *)&s->poll, on_closed);
  } else {
    close(s->fd);
    s->fd = -1;
  }
}

/* The handle object was garbage collected. */
static void sock_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  sock_t *s = data;
  sock_close(s);
  release(s);
}

static sock_t *get_sock(napi_env env, napi_value v) {
  sock_t *s = NULL;
  if (napi_get_value_external(env, v, (void **)&s) != napi_ok || s == NULL) {
    napi_throw_type_error(env, NULL, "fastudp: not a socket handle");
    return NULL;
  }
  if (s->closed) {
    napi_throw_error(env, "ERR_SOCKET_DGRAM_NOT_RUNNING", "fastudp: socket is closed");
    return NULL;
  }
  return s;
}

/* Fetches up to `max` arguments, requires `min`, and resolves argv[0] to an open socket; NULL (with a JS exception) otherwise. */
static sock_t *sock_args(napi_env env, napi_callback_info info, size_t min, size_t max, napi_value *argv, size_t *argc, const char *usage) {
  *argc = max;
  if (napi_get_cb_info(env, info, argc, argv, NULL, NULL) != napi_ok || *argc < min) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  return get_sock(env, argv[0]);
}

static napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t ip = 0, port = 0, mode = 0, peer_ip = 0, peer_port = 0;
  if (argc < 2 || napi_get_value_uint32(env, argv[0], &ip) != napi_ok || napi_get_value_uint32(env, argv[1], &port) != napi_ok ||
      port > 65535 || (argc >= 3 && (napi_get_value_uint32(env, argv[2], &mode) != napi_ok || mode > 3)) ||
      (mode == 2 && (argc < 5 || napi_get_value_uint32(env, argv[3], &peer_ip) != napi_ok ||
                     napi_get_value_uint32(env, argv[4], &peer_port) != napi_ok || port == 0 || peer_port == 0 ||
                     peer_port > 65535))) {
    napi_throw_type_error(env, NULL, "fastudp.open(ip, port, mode?, peerIp?, peerPort?): numbers; mode 0-3; mode 2 needs a port and a peer");
    return NULL;
  }
  if (instance(env) == NULL) {
    napi_throw_error(env, NULL, "fastudp: init() first");
    return NULL;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  const int one = 1;
  const char *failed = NULL;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(ip);
  if (mode == 2 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) failed = "setsockopt(SO_REUSEPORT)";
  else if (mode == 3 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) failed = "setsockopt(SO_REUSEADDR)";
  else if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) failed = "bind";
  else if (mode == 1 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) failed = "setsockopt(SO_REUSEPORT)";
  else if (mode == 2) {
    struct sockaddr_in pa;
    memset(&pa, 0, sizeof pa);
    pa.sin_family = AF_INET;
    pa.sin_port = htons((uint16_t)peer_port);
    pa.sin_addr.s_addr = htonl(peer_ip);
    if (connect(fd, (struct sockaddr *)&pa, sizeof pa) != 0) failed = "connect";
  }
  socklen_t len = sizeof sa;
  if (failed == NULL && getsockname(fd, (struct sockaddr *)&sa, &len) != 0) failed = "getsockname";
  if (failed != NULL) {
    int err = errno;
    close(fd);
    return throw_errno(env, failed, err);
  }
  sock_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    close(fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  s->env = env;
  s->inst = instance(env);
  s->fd = fd;
  s->owners = 1;
  s->connected = mode == 2;
  s->peer_ip = peer_ip;
  s->peer_port = peer_port;
  napi_value handle, bound, result;
  if (napi_create_external(env, s, sock_finalize, NULL, &handle) != napi_ok) {
    close(fd);
    free(s);
    napi_throw_error(env, NULL, "fastudp: napi_create_external failed");
    return NULL;
  }
  CHECK(napi_create_uint32(env, ntohs(sa.sin_port), &bound));
  CHECK(napi_create_array_with_length(env, 2, &result));
  CHECK(napi_set_element(env, result, 0, handle));
  CHECK(napi_set_element(env, result, 1, bound));
  return result;
}

/* Calls a JS callback from the loop, as Node's own handles do (microtasks and nextTicks run after it). */
static void call_js(sock_t *s, napi_ref ref, size_t argc, napi_value *argv) {
  napi_env env = s->env;
  napi_value fn, recv, ignored;
  if (ref == NULL || napi_get_reference_value(env, ref, &fn) != napi_ok || fn == NULL) return;
  napi_get_global(env, &recv);
  napi_status st = napi_make_callback(env, s->actx, recv, fn, argc, argv, &ignored);
  if (st == napi_pending_exception) {
    napi_value err;
    if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
  }
}

static uint32_t be32(const unsigned char *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/*
 * One datagram for the rx ring: 0 = not a DATA datagram (JavaScript gets it),
 * 1 = consumed, 2 = consumed and enough contiguous blocks wait for delivery.
 * Mirrors MulticastReceiver.takeData() in src/multicast/receiver.ts.
 */
static int rx_data(sock_t *s, const unsigned char *d, uint32_t len, uint32_t src) {
  uint32_t *st = s->rx_st;
  if (be32(d) != DATA_WORD) return 0;
  if (src != st[RX_SENDER_IP] || be32(d + 4) != st[RX_SESSION_HI] || be32(d + 8) != st[RX_SESSION_LO]) {
    st[RX_FOREIGN]++;
    return 1;
  }
  st[RX_RECEIVED]++;
  uint32_t seq = be32(d + 16);
  if (!st[RX_HAVE_SEQ]) {
    st[RX_MAX_SEQ] = seq;
    st[RX_HAVE_SEQ] = 1;
  } else {
    uint32_t gap = seq - st[RX_MAX_SEQ];
    if (gap > 0 && gap < 0x80000000u) {
      st[RX_SEQ_LOST] += gap - 1;
      st[RX_MAX_SEQ] = seq;
    }
  }
  uint32_t b = be32(d + 12), blocks = st[RX_BLOCKS], w = st[RX_W], bs = st[RX_BS];
  if (b >= blocks) return 1;
  if (b >= st[RX_HIGHEST]) st[RX_HIGHEST] = b + 1;
  uint32_t contig = st[RX_CONTIG], delivered = st[RX_DELIVERED];
  if (b < contig || (uint64_t)b >= (uint64_t)delivered + w) {
    st[RX_DUPS]++;
    return 1;
  }
  uint32_t slot = b % w;
  if (slot >= s->rx_present_len || (size_t)(slot + 1) * bs > s->rx_ring_len) return 1;
  if (s->rx_present[slot]) {
    st[RX_DUPS]++;
    return 1;
  }
  if (len - 20 != (b == blocks - 1 ? st[RX_LAST_LEN] : bs)) {
    st[RX_BAD]++;
    return 1;
  }
  memcpy(s->rx_ring + (size_t)slot * bs, d + 20, len - 20);
  s->rx_present[slot] = 1;
  if (b == contig) {
    uint64_t end = (uint64_t)delivered + w;
    if (end > blocks) end = blocks;
    uint32_t c = contig + 1;
    while (c < end && s->rx_present[c % w]) c++;
    st[RX_CONTIG] = c;
    if (c - delivered >= st[RX_FLUSH_AT] || c == blocks) return 2;
  }
  return 1;
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sock_t *s = h->data;
  if (s->closed) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (status < 0) {
    napi_value n;
    napi_create_int32(env, status, &n); /* libuv errors are already negative errnos */
    call_js(s, s->on_read, 1, &n);
  } else {
    if ((events & UV_READABLE) && !s->closed) {
      instance_t *inst = s->inst;
      for (int i = 0; i < BATCH; i++) {
        struct msghdr *m = &inst->msgs[i].msg_hdr;
        m->msg_name = &inst->addrs[i];
        m->msg_namelen = sizeof inst->addrs[i];
        m->msg_iov = &inst->iovs[i];
        m->msg_iovlen = 1;
        m->msg_control = s->want_ovfl ? inst->ctrl[i] : NULL;
        m->msg_controllen = s->want_ovfl ? CTRL_SPACE : 0;
        m->msg_flags = 0;
      }
      int n = recvmmsg(s->fd, inst->msgs, BATCH, MSG_DONTWAIT, NULL);
      int report = 1;
      if (n < 0) {
        n = -errno;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) report = 0;
        /* A connected socket's peer went away (ICMP port unreachable): not a socket failure. */
        if (errno == ECONNREFUSED && s->connected) report = 0;
      } else {
        int k = 0;
        if (s->want_ovfl) {
          for (int i = 0; i < n; i++) {
            struct msghdr *m = &inst->msgs[i].msg_hdr;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
              if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL && c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
                uint32_t v;
                memcpy(&v, CMSG_DATA(c), sizeof v);
                s->dropped = v;
              }
            }
          }
        }
        int want_flush = 0;
        for (int i = 0; i < n; i++) {
          /* Only IPv4 sources can reach an AF_INET socket; anything else is skipped. */
          if (inst->addrs[i].sin_family != AF_INET) continue;
          if (s->rx_st != NULL && s->rx_st[RX_ENABLED] && inst->msgs[i].msg_len >= 20) {
            int r = rx_data(s, inst->arena + (size_t)i * SLOT, inst->msgs[i].msg_len, ntohl(inst->addrs[i].sin_addr.s_addr));
            if (r != 0) {
              if (r == 2) want_flush = 1;
              continue;
            }
          }
          if (k != i) memmove(inst->arena + (size_t)k * SLOT, inst->arena + (size_t)i * SLOT, inst->msgs[i].msg_len);
          inst->meta[k * META_FIELDS] = ntohl(inst->addrs[i].sin_addr.s_addr);
          inst->meta[k * META_FIELDS + 1] = ntohs(inst->addrs[i].sin_port);
          inst->meta[k * META_FIELDS + 2] = inst->msgs[i].msg_len;
          k++;
        }
        n = k;
        if (n == 0 && !want_flush) report = 0;
        if (n > 0 && inst->spin_ns > 0) {
          inst->last_rx = uv_hrtime();
          if (inst->spin_init && !uv_is_active((uv_handle_t *)&inst->spin)) uv_idle_start(&inst->spin, on_spin);
        }
      }
      if (report) {
        napi_value arg;
        napi_create_int32(env, n, &arg);
        call_js(s, s->on_read, 1, &arg);
      }
    }
    if ((events & UV_WRITABLE) && !s->closed) call_js(s, s->on_writable, 0, NULL);
  }
  napi_close_handle_scope(env, scope);
}

static napi_value Start(napi_env env, napi_callback_info info) {
  size_t argc;
  napi_value argv[3];
  sock_t *s = sock_args(env, info, 3, 3, argv, &argc, "fastudp.start(handle, onRead, onWritable)");
  if (s == NULL) return NULL;
  if (s->polling) {
    napi_throw_error(env, NULL, "fastudp: already started");
    return NULL;
  }
  napi_valuetype t1, t2;
  CHECK(napi_typeof(env, argv[1], &t1));
  CHECK(napi_typeof(env, argv[2], &t2));
  if (t1 != napi_function || t2 != napi_function) {
    napi_throw_type_error(env, NULL, "fastudp.start: callbacks must be functions");
    return NULL;
  }
  uv_loop_t *loop = NULL;
  CHECK(napi_get_uv_event_loop(env, &loop));
  napi_value resource, name;
  CHECK(napi_create_object(env, &resource));
  CHECK(napi_create_string_utf8(env, "FASTUDP", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, resource, name, &s->actx));
  CHECK(napi_create_reference(env, argv[1], 1, &s->on_read));
  CHECK(napi_create_reference(env, argv[2], 1, &s->on_writable));
  int r = uv_poll_init(loop, &s->poll, s->fd);
  if (r != 0) return throw_errno(env, "uv_poll_init", -r);
  s->poll.data = s;
  s->polling = 1;
  s->owners++;
  s->events = UV_READABLE;
  r = uv_poll_start(&s->poll, s->events, on_poll);
  if (r != 0) return throw_errno(env, "uv_poll_start", -r);
  return NULL;
}

static napi_value WantWritable(napi_env env, napi_callback_info info) {
  size_t argc;
  napi_value argv[2];
  sock_t *s = sock_args(env, info, 2, 2, argv, &argc, "fastudp.want_writable(handle, on)");
  if (s == NULL) return NULL;
  bool on = false;
  CHECK(napi_get_value_bool(env, argv[1], &on));
  if (!s->polling) return NULL;
  int events = on ? (UV_READABLE | UV_WRITABLE) : UV_READABLE;
  if (events != s->events) {
    s->events = events;
    int r = uv_poll_start(&s->poll, events, on_poll);
    if (r != 0) return throw_errno(env, "uv_poll_start", -r);
  }
  return NULL;
}

static napi_value Send(napi_env env, napi_callback_info info) {
  size_t argc;
  napi_value argv[5];
  sock_t *s = sock_args(env, info, 4, 5, argv, &argc, "fastudp.send(handle, ip, port, head, body?)");
  if (s == NULL) return NULL;
  uint32_t ip = 0, port = 0;
  if (napi_get_value_uint32(env, argv[1], &ip) != napi_ok || napi_get_value_uint32(env, argv[2], &port) != napi_ok || port == 0 ||
      port > 65535) {
    napi_throw_type_error(env, NULL, "fastudp.send: bad ip or port");
    return NULL;
  }
  struct iovec iov[2];
  int niov = 1;
  bool is_buf = false;
  CHECK(napi_is_buffer(env, argv[3], &is_buf));
  if (!is_buf) {
    napi_throw_type_error(env, NULL, "fastudp.send: head must be a Buffer");
    return NULL;
  }
  CHECK(napi_get_buffer_info(env, argv[3], &iov[0].iov_base, &iov[0].iov_len));
  if (argc >= 5) {
    CHECK(napi_is_buffer(env, argv[4], &is_buf));
    if (is_buf) {
      CHECK(napi_get_buffer_info(env, argv[4], &iov[1].iov_base, &iov[1].iov_len));
      if (iov[1].iov_len > 0) niov = 2;
    }
  }
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(ip);
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  if (!s->connected || ip != s->peer_ip || port != s->peer_port) {
    mh.msg_name = &sa;
    mh.msg_namelen = sizeof sa;
  }
  mh.msg_iov = iov;
  mh.msg_iovlen = niov;
  ssize_t r;
  do {
    r = sendmsg(s->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (r < 0 && errno == EINTR);
  napi_value result;
  CHECK(napi_create_int32(env, r < 0 ? errno : 0, &result));
  return result;
}


static int get_u32(napi_env env, napi_value v, uint32_t *out) {
  return napi_get_value_uint32(env, v, out) == napi_ok;
}

/* send_segments(handle, ip, port, buf, segment) -> datagrams sent | -errno */
static napi_value SendSegments(napi_env env, napi_callback_info info) {
  size_t argc;
  napi_value argv[5];
  sock_t *s = sock_args(env, info, 5, 5, argv, &argc, "fastudp.send_segments(handle, ip, port, buf, segment)");
  if (s == NULL) return NULL;
  uint32_t ip = 0, port = 0, seg = 0;
  bool is_buf = false;
  void *data = NULL;
  size_t len = 0;
  CHECK(napi_is_buffer(env, argv[3], &is_buf));
  if (!get_u32(env, argv[1], &ip) || !get_u32(env, argv[2], &port) || port == 0 || port > 65535 || !is_buf ||
      !get_u32(env, argv[4], &seg) || seg == 0 || seg > 65507) {
    napi_throw_type_error(env, NULL, "fastudp.send_segments: bad ip, port, buffer or segment size");
    return NULL;
  }
  CHECK(napi_get_buffer_info(env, argv[3], &data, &len));
  size_t count = (len + seg - 1) / seg;
  if (count == 0 || count > MAX_SEGMENTS) {
    napi_throw_range_error(env, NULL, "fastudp.send_segments: 1 to 64 datagrams per call");
    return NULL;
  }
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(ip);
  int sent = -1;
  int err = 0;
  if (!s->no_gso && count > 1 && len <= 65000) {
    struct iovec iov = {data, len};
    union {
      char buf[CMSG_SPACE(sizeof(uint16_t))];
      struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_name = &sa;
    mh.msg_namelen = sizeof sa;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof ctl.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t gso = (uint16_t)seg;
    memcpy(CMSG_DATA(c), &gso, sizeof gso);
    ssize_t r;
    do {
      r = sendmsg(s->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    if (r >= 0) sent = (int)count;
    else if (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT || errno == EOPNOTSUPP) s->no_gso = 1; /* fall through to sendmmsg */
    else err = errno;
  }
  if (sent < 0 && err == 0) {
    instance_t *inst = s->inst;
    for (size_t i = 0; i < count; i++) {
      size_t off = i * seg;
      inst->out_iovs[i].iov_base = (char *)data + off;
      inst->out_iovs[i].iov_len = off + seg <= len ? seg : len - off;
      struct msghdr *m = &inst->out[i].msg_hdr;
      memset(m, 0, sizeof *m);
      m->msg_name = &sa;
      m->msg_namelen = sizeof sa;
      m->msg_iov = &inst->out_iovs[i];
      m->msg_iovlen = 1;
    }
    int r;
    do {
      r = sendmmsg(s->fd, inst->out, (unsigned)count, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    if (r >= 0) sent = r;
    else err = errno;
  }
  napi_value result;
  CHECK(napi_create_int32(env, sent >= 0 ? sent : -err, &result));
  return result;
}

/* setopt(handle, opt, a, b?): multicast and buffer options (OPT_* above). */
static napi_value SetOpt(napi_env env, napi_callback_info info) {
  size_t argc;
  napi_value argv[4];
  sock_t *s = sock_args(env, info, 3, 4, argv, &argc, "fastudp.setopt(handle, opt, a, b?)");
  if (s == NULL) return NULL;
  uint32_t opt = 0, a = 0, b = 0;
  if (!get_u32(env, argv[1], &opt) || !get_u32(env, argv[2], &a) || (argc >= 4 && !get_u32(env, argv[3], &b))) {
    napi_throw_type_error(env, NULL, "fastudp.setopt: numbers expected");
    return NULL;
  }
  int r = -1;
  const char *name = "setsockopt";
  int v = (int)a;
  switch (opt) {
    case OPT_JOIN:
    case OPT_LEAVE: {
      struct ip_mreqn mr;
      memset(&mr, 0, sizeof mr);
      mr.imr_multiaddr.s_addr = htonl(a);
      mr.imr_address.s_addr = htonl(b);
      name = opt == OPT_JOIN ? "setsockopt(IP_ADD_MEMBERSHIP)" : "setsockopt(IP_DROP_MEMBERSHIP)";
      r = setsockopt(s->fd, IPPROTO_IP, opt == OPT_JOIN ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, &mr, sizeof mr);
      break;
    }
    case OPT_MULTICAST_IF: {
      struct ip_mreqn mr;
      memset(&mr, 0, sizeof mr);
      mr.imr_address.s_addr = htonl(a);
      name = "setsockopt(IP_MULTICAST_IF)";
      r = setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr);
      break;
    }
    case OPT_MULTICAST_TTL:
      name = "setsockopt(IP_MULTICAST_TTL)";
      r = a > 255 ? (errno = EINVAL, -1) : setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_TTL, &v, sizeof v);
      break;
    case OPT_MULTICAST_LOOP:
      name = "setsockopt(IP_MULTICAST_LOOP)";
      r = setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &v, sizeof v);
      break;
    case OPT_MULTICAST_ALL:
      name = "setsockopt(IP_MULTICAST_ALL)";
      r = setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_ALL, &v, sizeof v);
      break;
    case OPT_RCVBUF:
    case OPT_SNDBUF:
      /* The FORCE variants pass net.core.[rw]mem_max when the process may (CAP_NET_ADMIN); otherwise the capped one. */
      name = opt == OPT_RCVBUF ? "setsockopt(SO_RCVBUF)" : "setsockopt(SO_SNDBUF)";
      r = setsockopt(s->fd, SOL_SOCKET, opt == OPT_RCVBUF ? SO_RCVBUFFORCE : SO_SNDBUFFORCE, &v, sizeof v);
      if (r != 0) r = setsockopt(s->fd, SOL_SOCKET, opt == OPT_RCVBUF ? SO_RCVBUF : SO_SNDBUF, &v, sizeof v);
      break;
    case OPT_RXQ_OVFL:
      name = "setsockopt(SO_RXQ_OVFL)";
      r = setsockopt(s->fd, SOL_SOCKET, SO_RXQ_OVFL, &v, sizeof v);
      if (r == 0) s->want_ovfl = v != 0;
      break;
    default:
      errno = EINVAL;
  }
  if (r != 0) return throw_errno(env, name, errno);
  return NULL;
}

/* rx_ring(handle, ring, present, state) or rx_ring(handle, null): see the header. */
static napi_value RxRing(napi_env env, napi_callback_info info) {
  size_t argc;
  napi_value argv[4];
  sock_t *s = sock_args(env, info, 2, 4, argv, &argc, "fastudp.rx_ring(handle, ring, present, state) | rx_ring(handle, null)");
  if (s == NULL) return NULL;
  for (int i = 0; i < 3; i++) {
    if (s->rx_refs[i]) napi_delete_reference(env, s->rx_refs[i]);
    s->rx_refs[i] = NULL;
  }
  s->rx_st = NULL;
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[1], &t));
  if (t == napi_null) return NULL;
  bool is_buf = false;
  CHECK(napi_is_buffer(env, argv[1], &is_buf));
  napi_typedarray_type pt, stt;
  size_t plen = 0, stlen = 0, off = 0;
  void *pdata = NULL, *stdata = NULL;
  napi_value ab;
  bool is_ta1 = false, is_ta2 = false;
  if (argc == 4) {
    CHECK(napi_is_typedarray(env, argv[2], &is_ta1));
    CHECK(napi_is_typedarray(env, argv[3], &is_ta2));
  }
  if (!is_buf || !is_ta1 || !is_ta2) {
    napi_throw_type_error(env, NULL, "fastudp.rx_ring: (handle, Buffer, Uint8Array, Uint32Array)");
    return NULL;
  }
  CHECK(napi_get_typedarray_info(env, argv[2], &pt, &plen, &pdata, &ab, &off));
  CHECK(napi_get_typedarray_info(env, argv[3], &stt, &stlen, &stdata, &ab, &off));
  if (pt != napi_uint8_array || stt != napi_uint32_array || stlen < RX_FIELDS) {
    napi_throw_type_error(env, NULL, "fastudp.rx_ring: present must be a Uint8Array, state a Uint32Array of RX_FIELDS");
    return NULL;
  }
  void *ring = NULL;
  size_t ring_len = 0;
  CHECK(napi_get_buffer_info(env, argv[1], &ring, &ring_len));
  for (int i = 0; i < 3; i++) CHECK(napi_create_reference(env, argv[i + 1], 1, &s->rx_refs[i]));
  s->rx_ring = ring;
  s->rx_ring_len = ring_len;
  s->rx_present = pdata;
  s->rx_present_len = plen;
  s->rx_st = stdata;
  return NULL;
}

static napi_value RxDropped(napi_env env, napi_callback_info info) {
  size_t argc;
  napi_value argv[1];
  sock_t *s = sock_args(env, info, 1, 1, argv, &argc, "fastudp.rx_dropped(handle)");
  if (s == NULL) return NULL;
  napi_value r;
  CHECK(napi_create_uint32(env, s->dropped, &r));
  return r;
}

/* busy_poll(micros): after a datagram, keep the loop polling (no sleep) this long. 0 turns it off. */
static napi_value BusyPoll(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t us = 0;
  if (argc < 1 || napi_get_value_uint32(env, argv[0], &us) != napi_ok || us > 1000000) {
    napi_throw_type_error(env, NULL, "fastudp.busy_poll(micros): 0-1000000");
    return NULL;
  }
  instance_t *inst = instance(env);
  if (inst == NULL) {
    napi_throw_error(env, NULL, "fastudp: init() first");
    return NULL;
  }
  if (!inst->spin_init) {
    uv_loop_t *loop = NULL;
    CHECK(napi_get_uv_event_loop(env, &loop));
    uv_idle_init(loop, &inst->spin);
    uv_unref((uv_handle_t *)&inst->spin); /* never keeps the process alive */
    inst->spin.data = inst;
    inst->spin_init = 1;
  }
  inst->spin_ns = (uint64_t)us * 1000;
  if (us == 0) uv_idle_stop(&inst->spin);
  return NULL;
}

static napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **)&s) != napi_ok || s == NULL) {
    napi_throw_type_error(env, NULL, "fastudp.close(handle)");
    return NULL;
  }
  sock_close(s);
  return NULL;
}

static napi_value Errno(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value r, v;
  CHECK(napi_create_object(env, &r));
#define E(name)                                  \
  CHECK(napi_create_int32(env, name, &v));        \
  CHECK(napi_set_named_property(env, r, #name, v));
  E(EAGAIN)
  E(EWOULDBLOCK)
  E(ENOBUFS)
  E(EMSGSIZE)
  E(ECONNREFUSED)
#undef E
  return r;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"init", NULL, Init, NULL, NULL, NULL, napi_default, NULL},
      {"open", NULL, Open, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, Start, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, Send, NULL, NULL, NULL, napi_default, NULL},
      {"send_segments", NULL, SendSegments, NULL, NULL, NULL, napi_default, NULL},
      {"setopt", NULL, SetOpt, NULL, NULL, NULL, napi_default, NULL},
      {"rx_dropped", NULL, RxDropped, NULL, NULL, NULL, napi_default, NULL},
      {"rx_ring", NULL, RxRing, NULL, NULL, NULL, napi_default, NULL},
      {"want_writable", NULL, WantWritable, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, Close, NULL, NULL, NULL, napi_default, NULL},
      {"busy_poll", NULL, BusyPoll, NULL, NULL, NULL, napi_default, NULL},
      {"errno", NULL, Errno, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
