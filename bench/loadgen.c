/*
 * The load generator in C: the same command line and JSON output as bench/load.ts, on one
 * epoll loop. bench/run.ts builds it with the system's C compiler when there is one (Debian:
 * `apt-get install -y gcc`) and uses load.ts otherwise. Why: the Deno generator needs more
 * than a core to read 1,000 sockets at 200 msg/s, which added 25-400 ms to the p99 of both
 * servers (ngircd's most of all); this one reads them with a fraction of a core.
 *
 * Receivers connect a few at a time and are retried (ngircd's listen backlog is 10); the clock
 * starts once every receiver has joined; senders keep at most WINDOW frames unanswered where
 * the server answers (the chat); every goodbye (`"type":"bye"`, IRC `ERROR :`) is counted.
 * Markers "bmk|<send µs>|<index>|" are found by a byte state machine, so no read is parsed
 * beyond what it takes to find them, and a marker split between two reads still counts.
 *
 * Build: cc -O2 -o loadgen bench/loadgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { JSON, WS, IRC };
enum { RECEIVER, SENDER, IDLE };
#define CONNECT_CONCURRENCY 8
#define CONNECT_TRIES 5
#define READY_TIMEOUT_US 15000000.0
static int WINDOW = 200;
#define CHUNK 50

static int proto = JSON, port = 0, N = 100, S = 4, M = 1000, ROOMS = 1, idle_mode = 0;
/* --ports P1,P2,…: receivers spread over several servers (a cluster's nodes); senders on P1. */
static int ports[16], nports = 0;
static double RATE = 0, SLOW = 0, TIMEOUT_S = 120;
static const char *TAG = "b";

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static double cpu_s(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

/* A streaming matcher for one fixed pattern (no pattern here overlaps itself usefully). */
typedef struct { const char *pat; int len, at; } Matcher;
static int feed(Matcher *m, char c) {
  if (c == m->pat[m->at]) {
    if (++m->at == m->len) { m->at = 0; return 1; }
    return 0;
  }
  m->at = c == m->pat[0] ? 1 : 0;
  return 0;
}

typedef struct {
  int fd, role, index, tries;
  int joined, closed, stopped, ws_open;
  double started; /* when this attempt connected */
  /* marker parser: 0 none, 1 in micros, 2 in index */
  int mstate;
  double micros;
  long idx;
  Matcher mark, ready, ack, err, bye, hs;
  int bye_seen, bye_len;
  char bye_text[100];
  long received, replies, sent;
  double last_at;
  char *out;
  size_t out_len, out_cap;
  char name[64], room[64];
  /* IRC: the end of NAMES of this connection's own channel (the chat's IRC listener also
     sends one for #general at login). */
  char ready_pat[160];
  /* An idle WebSocket's frame parser, to answer pings as every WebSocket library does (a
     socket that answers none is dropped by the server's idle timeout, 45 s by default). */
  unsigned char wsh[14];
  int wsh_len, ws_op;
  long ws_left;
  unsigned char ping[125];
  int ping_len;
} Conn;

static Conn *conns;
static int nconns;
static int ep;
static double *lat;
static long nlat, cap_lat;
static double *first_at, *last_of;

static void room_of(int i, char *out) {
  if (ROOMS == 1) snprintf(out, 64, "%sroom", TAG);
  else snprintf(out, 64, "%sroom%d", TAG, i % ROOMS);
}

static void arm(Conn *c) {
  struct epoll_event ev = {.events = EPOLLIN | (c->out_len ? EPOLLOUT : 0), .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void flush_out(Conn *c) {
  while (c->out_len > 0) {
    ssize_t n = write(c->fd, c->out, c->out_len);
    if (n < 0) {
      if (errno == EAGAIN) break;
      c->closed = 1;
      c->out_len = 0;
      return;
    }
    memmove(c->out, c->out + n, c->out_len - n);
    c->out_len -= n;
  }
  arm(c);
}

static void put(Conn *c, const char *data, size_t len) {
  if (c->out_len + len > c->out_cap) {
    c->out_cap = (c->out_len + len) * 2;
    c->out = realloc(c->out, c->out_cap);
  }
  memcpy(c->out + c->out_len, data, len);
  c->out_len += len;
}

/* One frame (a JSON line, an IRC line, or the text of one WebSocket message). */
static void send_text(Conn *c, const char *text, size_t len) {
  if (proto == WS) {
    /* A client frame must be masked: a zero mask key leaves the payload as it is. */
    unsigned char h[14];
    size_t hl;
    if (len > 0 && text[len - 1] == '\n') len--;
    h[0] = 0x81;
    if (len < 126) { h[1] = 0x80 | len; hl = 2; }
    else if (len < 65536) { h[1] = 0x80 | 126; h[2] = len >> 8; h[3] = len; hl = 4; }
    else { h[1] = 0x80 | 127; for (int k = 0; k < 8; k++) h[2 + k] = (uint64_t)len >> (56 - 8 * k); hl = 10; }
    memset(h + hl, 0, 4);
    put(c, (char *)h, hl + 4);
  }
  put(c, text, len);
}

static void login(Conn *c) {
  char buf[512];
  int n;
  if (proto == IRC) {
    n = snprintf(buf, sizeof buf, "NICK %s\r\nUSER %s 0 * :%s\r\n", c->name, c->name, c->name);
    if (c->role != IDLE) n += snprintf(buf + n, sizeof buf - n, "JOIN #%s\r\n", c->room);
    put(c, buf, n);
  } else {
    n = snprintf(buf, sizeof buf, "{\"username\":\"%s\"}\n", c->name);
    send_text(c, buf, n);
    if (c->role != IDLE) {
      n = snprintf(buf, sizeof buf, "{\"type\":\"join\",\"room\":\"%s\"}\n", c->room);
      send_text(c, buf, n);
    }
  }
  flush_out(c);
}

static int port_of(Conn *c) {
  if (nports == 0 || c->role == SENDER) return nports ? ports[0] : port;
  return ports[c->index % nports];
}

static int open_conn(Conn *c) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port_of(c))};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { close(fd); return -1; }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, O_NONBLOCK);
  c->fd = fd;
  c->closed = c->joined = c->ws_open = c->mstate = 0;
  c->mark.at = c->ready.at = c->ack.at = c->err.at = c->bye.at = c->hs.at = 0;
  c->out_len = 0;
  c->started = now_us();
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  if (proto == WS) {
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     port_of(c));
    put(c, req, n);
    flush_out(c);
  } else login(c);
  return 0;
}

static void drop(Conn *c) {
  if (c->fd >= 0) { epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL); close(c->fd); }
  c->fd = -1;
  c->closed = 1;
}

static void arrived(Conn *c, double t) {
  c->received++;
  c->last_at = t;
  if (nlat == cap_lat) { cap_lat = cap_lat ? cap_lat * 2 : 1 << 20; lat = realloc(lat, cap_lat * sizeof *lat); }
  lat[nlat++] = (t - c->micros) / 1000.0;
  if (c->idx >= 0 && c->idx < M) {
    if (t < first_at[c->idx]) first_at[c->idx] = t;
    if (t > last_of[c->idx]) last_of[c->idx] = t;
  }
}

/* One byte of a receiver's stream through the marker parser; *t is read once per chunk. */
static inline void marker_byte(Conn *c, char ch, double *t) {
  if (c->mstate == 0) {
    if (feed(&c->mark, ch)) { c->mstate = 1; c->micros = 0; c->idx = 0; }
  } else if (ch >= '0' && ch <= '9') {
    if (c->mstate == 1) c->micros = c->micros * 10 + (ch - '0');
    else c->idx = c->idx * 10 + (ch - '0');
  } else if (c->mstate == 1 && ch == '|') c->mstate = 2;
  else {
    if (*t == 0) *t = now_us();
    arrived(c, *t);
    c->mstate = 0;
  }
}

/*
 * A joined receiver's chunk: memmem jumps from marker to marker (a byte-by-byte parse of
 * 360 MB of frames cost the generator ~3 s of CPU in a burst); only a marker's digits and a
 * marker split across two reads go through the byte parser.
 */
static void receiver_bytes(Conn *c, const char *b, ssize_t n) {
  double t = 0;
  ssize_t i = 0;
  while (i < n && (c->mstate != 0 || c->mark.at != 0)) marker_byte(c, b[i++], &t);
  while (i < n) {
    const char *p = memmem(b + i, n - i, "bmk|", 4);
    if (p == NULL) {
      /* A marker may begin in the last three bytes and end in the next read. */
      for (i = n - 3 > i ? n - 3 : i; i < n; i++) feed(&c->mark, b[i]);
      break;
    }
    c->mstate = 1;
    c->micros = 0;
    c->idx = 0;
    c->mark.at = 0;
    for (i = p - b + 4; i < n && c->mstate != 0; i++) marker_byte(c, b[i], &t);
  }
  if (!c->bye_seen) {
    const char *p = memmem(b, n, c->bye.pat, c->bye.len);
    if (p != NULL) {
      c->bye_seen = 2;
      for (p += c->bye.len; p < b + n && *p != '\n' && c->bye_len < (int)sizeof c->bye_text - 1; p++) {
        c->bye_text[c->bye_len++] = *p;
      }
    }
  }
}

/* One byte of an idle WebSocket's input: frames are parsed, pings answered with pongs. */
static void ws_idle_byte(Conn *c, unsigned char ch) {
  if (c->ws_left > 0) {
    if (c->ws_op == 9 && c->ping_len < 125) c->ping[c->ping_len++] = ch;
    if (--c->ws_left > 0) return;
  } else {
    c->wsh[c->wsh_len++] = ch;
    if (c->wsh_len < 2) return;
    int len7 = c->wsh[1] & 0x7f;
    int need = len7 == 126 ? 4 : len7 == 127 ? 10 : 2;
    if (c->wsh_len < need) return;
    long len = len7;
    if (len7 == 126) len = (c->wsh[2] << 8) | c->wsh[3];
    else if (len7 == 127) { len = 0; for (int k = 2; k < 10; k++) len = (len << 8) | c->wsh[k]; }
    c->ws_op = c->wsh[0] & 0x0f;
    c->wsh_len = 0;
    c->ping_len = 0;
    c->ws_left = len;
    if (len > 0) return;
  }
  if (c->ws_op == 9) {
    unsigned char h[6] = {0x8A, (unsigned char)(0x80 | c->ping_len), 0, 0, 0, 0};
    put(c, (char *)h, 6);
    put(c, (char *)c->ping, c->ping_len);
    flush_out(c);
  }
}

static void on_bytes(Conn *c, const char *b, ssize_t n) {
  if (c->joined && c->role == RECEIVER) {
    if (!c->stopped) receiver_bytes(c, b, n);
    return;
  }
  for (ssize_t i = 0; i < n; i++) {
    char ch = b[i];
    if (proto == WS && !c->ws_open) {
      if (feed(&c->hs, ch)) { c->ws_open = 1; login(c); }
      continue;
    }
    if (proto == WS && c->role == IDLE) ws_idle_byte(c, (unsigned char)ch);
    if (c->bye_seen == 1) {
      if (ch == '\n' || c->bye_len == (int)sizeof c->bye_text - 1) c->bye_seen = 2;
      else c->bye_text[c->bye_len++] = ch;
    } else if (!c->bye_seen && feed(&c->bye, ch)) c->bye_seen = 1;
    if (!c->joined) {
      if (feed(&c->ready, ch)) c->joined = 1;
      continue;
    }
    if (c->role == SENDER && (feed(&c->ack, ch) || feed(&c->err, ch))) c->replies++;
  }
}

static char rbuf[256 * 1024];

/* One turn of the loop: waits up to `ms` and handles what is ready. */
static void poll_once(int ms) {
  struct epoll_event evs[512];
  int n = epoll_wait(ep, evs, 512, ms);
  for (int k = 0; k < n; k++) {
    Conn *c = evs[k].data.ptr;
    if (c->fd < 0) continue;
    if (evs[k].events & EPOLLOUT) flush_out(c);
    if (!(evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
    if (c->stopped) continue; /* a slow reader keeps its socket open and reads nothing */
    for (;;) {
      ssize_t r = read(c->fd, rbuf, sizeof rbuf);
      if (r > 0) { on_bytes(c, rbuf, r); if (r < (ssize_t)sizeof rbuf) break; continue; }
      if (r < 0 && errno == EAGAIN) break;
      drop(c);
      break;
    }
  }
}

static void init_conn(Conn *c, int role, int index) {
  memset(c, 0, sizeof *c);
  c->fd = -1;
  c->role = role;
  c->index = index;
  if (role == SENDER) snprintf(c->name, 64, "%ss%d", TAG, index);
  else snprintf(c->name, 64, "%sr%d", TAG, index);
  room_of(index, c->room);
  c->mark = (Matcher){"bmk|", 4, 0};
  snprintf(c->ready_pat, sizeof c->ready_pat, " 366 %s #%s ", c->name, c->room);
  c->ready = proto == IRC ? (Matcher){c->ready_pat, (int)strlen(c->ready_pat), 0}
                          : (Matcher){"\"type\":\"joined\"", 15, 0};
  if (role == IDLE) c->ready = proto == IRC ? (Matcher){" 001 ", 5, 0} : (Matcher){"\"type\":\"welcome\"", 16, 0};
  c->ack = (Matcher){"\"type\":\"ack\"", 12, 0};
  c->err = (Matcher){"\"type\":\"error\"", 14, 0};
  c->bye = proto == IRC ? (Matcher){"ERROR :", 7, 0} : (Matcher){"\"type\":\"bye\"", 12, 0};
  c->hs = (Matcher){"\r\n\r\n", 4, 0};
}

/* Connects conns[from..to) with at most CONNECT_CONCURRENCY logging in at once; returns joined. */
static int connect_all(int from, int to) {
  int next = from, active = 0, done = 0;
  while (next < to || active > 0) {
    while (active < CONNECT_CONCURRENCY && next < to) {
      Conn *c = &conns[next++];
      while (c->tries < CONNECT_TRIES && open_conn(c) < 0) { c->tries++; usleep(100000 << c->tries); }
      if (c->fd >= 0) active++;
    }
    poll_once(5);
    double t = now_us();
    active = 0;
    for (int i = from; i < next; i++) {
      Conn *c = &conns[i];
      if (c->joined && !c->closed) continue;            /* done */
      if (c->fd < 0 && c->tries >= CONNECT_TRIES) continue; /* given up */
      if (c->closed || c->fd < 0 || t - c->started > READY_TIMEOUT_US) {
        drop(c);
        while (++c->tries < CONNECT_TRIES) {
          usleep(100000 << c->tries);
          if (open_conn(c) == 0) { active++; break; }
        }
        continue;
      }
      active++; /* still logging in */
    }
  }
  for (int i = from; i < to; i++) done += conns[i].joined && !conns[i].closed;
  return done;
}

static void message(char *out, long i) {
  int n = snprintf(out, 65, "bmk|%.0f|%ld|", now_us(), i);
  memset(out + n, 'x', 64 - n);
  out[64] = 0;
}

static void send_message(Conn *c, long i) {
  char text[65], frame[256];
  int n;
  message(text, i);
  if (proto == IRC) n = snprintf(frame, sizeof frame, "PRIVMSG #%s :%s\r\n", c->room, text);
  else n = snprintf(frame, sizeof frame, "{\"type\":\"message\",\"room\":\"%s\",\"message\":\"%s\"}\n", c->room, text);
  send_text(c, frame, n);
  c->sent++;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double pct(double *v, long n, double p) {
  if (n == 0) return -1;
  long i = (long)(p / 100 * n);
  return v[i < n ? i : n - 1];
}
static volatile sig_atomic_t stop_idle = 0;
static void on_term(int s) { (void)s; stop_idle = 1; }

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp(a, "--idle")) { idle_mode = 1; continue; }
    if (!strcmp(a, "--proto")) proto = !strcmp(v, "ws") ? WS : !strcmp(v, "irc") ? IRC : JSON;
    else if (!strcmp(a, "--port")) port = atoi(v);
    else if (!strcmp(a, "--ports")) {
      char *list = strdup(v), *save = NULL;
      for (char *t = strtok_r(list, ",", &save); t && nports < 16; t = strtok_r(NULL, ",", &save)) {
        ports[nports++] = atoi(t);
      }
      free(list);
    }
    else if (!strcmp(a, "--receivers")) N = atoi(v);
    else if (!strcmp(a, "--senders")) S = atoi(v);
    else if (!strcmp(a, "--messages")) M = atoi(v);
    else if (!strcmp(a, "--rate")) RATE = atof(v);
    else if (!strcmp(a, "--rooms")) ROOMS = atoi(v);
    else if (!strcmp(a, "--slow")) SLOW = atof(v);
    else if (!strcmp(a, "--timeout")) TIMEOUT_S = atof(v);
    else if (!strcmp(a, "--tag")) TAG = v;
    else if (!strcmp(a, "--host")) { /* loopback only */ }
    else { fprintf(stderr, "unknown option %s\n", a); return 2; }
    i++;
  }
  if (getenv("LOADGEN_WINDOW")) WINDOW = atoi(getenv("LOADGEN_WINDOW"));
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl = {65536, 65536};
  setrlimit(RLIMIT_NOFILE, &rl);
  ep = epoll_create1(0);
  nconns = N + S;
  conns = calloc(nconns, sizeof *conns);
  first_at = malloc(sizeof(double) * (M > 0 ? M : 1));
  last_of = calloc(M > 0 ? M : 1, sizeof(double));
  for (int i = 0; i < M; i++) first_at[i] = 1e300;
  for (int i = 0; i < N; i++) init_conn(&conns[i], idle_mode ? IDLE : RECEIVER, i);
  for (int i = 0; i < S; i++) init_conn(&conns[N + i], SENDER, i);

  double started = now_us();
  int joined = connect_all(0, N);
  double setup_ms = (now_us() - started) / 1000;
  if (idle_mode) {
    printf("{\"proto\":\"%s\",\"connections\":%d,\"setup_ms\":%.0f}\n",
           proto == WS ? "ws" : proto == IRC ? "irc" : "json", joined, setup_ms);
    fflush(stdout);
    signal(SIGTERM, on_term);
    while (!stop_idle) poll_once(200); /* answers PINGs never asked for: keeps reading */
    return 0;
  }
  if (connect_all(N, N + S) < S) { fprintf(stderr, "a sender could not connect and join\n"); return 1; }
  for (double until = now_us() + 300000; now_us() < until;) poll_once(10);

  Conn *senders = &conns[N];
  int slow = (int)(N * SLOW);
  /* The runner counts the server's CPU from this line on (not the logins). */
  printf("start\n");
  fflush(stdout);
  double cpu0 = cpu_s();
  double t0 = now_us();
  long share = (M + S - 1) / S;
  long *next = calloc(S, sizeof(long));
  for (int s = 0; s < S; s++) next[s] = s * share;
  long i = 0; /* open loop: messages sent so far */
  for (;;) {
    int left = 0, wrote = 0;
    if (RATE == 0) {
      for (int s = 0; s < S; s++) {
        Conn *c = &senders[s];
        long to = (s + 1) * share < M ? (s + 1) * share : M;
        if (next[s] >= to || c->closed) continue;
        left = 1;
        if (c->out_len > 64 * 1024) continue; /* TCP backpressure (IRC has no acks) */
        if (proto != IRC && c->sent - c->replies > WINDOW - CHUNK) continue;
        for (int k = 0; k < CHUNK && next[s] < to; k++) send_message(c, next[s]++);
        flush_out(c);
        wrote = 1;
      }
      /* Every sender waiting (window or backpressure): sleep until something arrives. */
      poll_once(left && !wrote ? 5 : 0);
    } else {
      double t = now_us();
      while (i < M && t >= t0 + i * 1e6 / RATE) {
        if (slow > 0 && i == M / 5) {
          for (int k = 0; k < slow; k++) {
            conns[k].stopped = 1; /* reads nothing more: out of the loop, socket kept open */
            if (conns[k].fd >= 0) epoll_ctl(ep, EPOLL_CTL_DEL, conns[k].fd, NULL);
          }
        }
        Conn *c = &senders[i % S];
        if (proto != IRC && c->sent - c->replies >= WINDOW) break;
        send_message(c, i++);
        flush_out(c);
      }
      left = i < M;
      /* Rounded up: a message sent up to 1 ms late is stamped when sent, so no latency hides. */
      double wait = left ? (t0 + i * 1e6 / RATE - now_us()) / 1000 : 0;
      poll_once(wait > 0 ? (int)wait + 1 : 0);
    }
    if (!left) break;
  }
  double sent_ms = (now_us() - t0) / 1000;

  long expected = 0;
  int active = 0;
  for (int r = slow; r < N; r++) if (conns[r].joined) active++;
  long per_room = ROOMS == 1 ? N : N / ROOMS;
  expected = ROOMS == 1 ? (long)M * active : (long)((double)M * per_room * active / N);
  double deadline = now_us() + TIMEOUT_S * 1e6, last_change = now_us();
  long last_total = -1, total = 0;
  while (now_us() < deadline) {
    total = 0;
    for (int r = slow; r < N; r++) total += conns[r].received;
    if (total >= expected) break;
    if (total != last_total) { last_total = total; last_change = now_us(); }
    else if (now_us() - last_change > 5e6) break;
    poll_once(20);
  }
  double gen_cpu = cpu_s() - cpu0;
  double last_at = t0;
  total = 0;
  for (int r = slow; r < N; r++) {
    total += conns[r].received;
    if (conns[r].last_at > last_at) last_at = conns[r].last_at;
  }
  double done_ms = (last_at - t0) / 1000;
  qsort(lat, nlat, sizeof *lat, cmp);
  double *spread = malloc(sizeof(double) * (M > 0 ? M : 1));
  long ns = 0;
  for (int k = 0; k < M; k++) if (first_at[k] < 1e300) spread[ns++] = (last_of[k] - first_at[k]) / 1000;
  qsort(spread, ns, sizeof *spread, cmp);
  int byes = 0, slow_dropped = 0;
  const char *bye = "";
  for (int k = 0; k < nconns; k++) if (conns[k].bye_seen) { byes++; if (!*bye) bye = conns[k].bye_text; }
  for (int k = 0; k < slow; k++) slow_dropped += conns[k].closed;
  double wall = done_ms > sent_ms ? done_ms : sent_ms;
  /* the bye text is JSON-escaped by dropping what would need escaping */
  char clean[100];
  int cl = 0;
  for (const char *p = bye; *p && cl < 99; p++) if (*p != '"' && *p != '\\' && (unsigned char)*p >= 32) clean[cl++] = *p;
  clean[cl] = 0;
  printf("{\"proto\":\"%s\",\"generator\":\"c\",\"receivers\":%d,\"joined\":%d,\"senders\":%d,"
         "\"messages\":%d,\"rate\":%g,\"setup_ms\":%.0f,\"send_ms\":%.0f,\"completion_ms\":%.0f,"
         "\"expected\":%ld,\"delivered\":%ld,\"deliveries_per_s\":%.0f,\"achieved_rate\":%.0f,"
         "\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"spread_p50_ms\":%.2f,\"spread_p99_ms\":%.2f,"
         "\"gen_cpu_s\":%.2f,\"gen_cpu_pct\":%.0f,\"byes\":%d,\"bye\":\"%s\",\"slow\":%d,"
         "\"slow_dropped\":%d}\n",
         proto == WS ? "ws" : proto == IRC ? "irc" : "json", N, joined, S, M, RATE, setup_ms, sent_ms,
         done_ms, expected, total, total / (done_ms > 0 ? done_ms / 1000 : 1), M / (sent_ms / 1000),
         pct(lat, nlat, 50), pct(lat, nlat, 99), pct(spread, ns, 50), pct(spread, ns, 99), gen_cpu,
         gen_cpu * 1e5 / (wall > 0 ? wall : 1), byes, clean, slow, slow_dropped);
  return 0;
}
