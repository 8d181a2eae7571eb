/*
 * openloop: HTTP/1.1 GET requests sent on a fixed schedule, whatever the answers do.
 *
 * Request k is due at start + k / rate and goes out on connection k mod C, even
 * while earlier requests on that connection still wait for their answer
 * (HTTP/1.1 pipelining keeps answers in order). Latency is measured from the
 * time a request was DUE, not from when it could be written, so a server that
 * queues is charged for the queue (no coordinated omission, as in wrk2).
 * Neither wrk (closed loop) nor h2load --rps (which sends in bursts and waits
 * for answers) measures this.
 *
 *   openloop HOST PORT RATE SECONDS WARMUP CONNECTIONS PATHS_FILE [HEADER_LINE]
 *
 * Prints one JSON object. Built by the suite with the system C compiler.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_PENDING 65536 /* requests in flight on one connection */
#define READ_CHUNK 65536

typedef struct {
    int fd;
    char *out;            /* bytes still to write */
    size_t out_len, out_cap;
    char *in;             /* bytes read, not yet parsed */
    size_t in_len, in_cap;
    uint64_t *due;        /* due time of each request in flight, FIFO */
    size_t head, count;
} conn_t;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void append(char **buf, size_t *len, size_t *cap, const char *data, size_t n) {
    if (*len + n > *cap) {
        *cap = (*len + n) * 2;
        *buf = realloc(*buf, *cap);
        if (!*buf) die("realloc");
    }
    memcpy(*buf + *len, data, n);
    *len += n;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static uint32_t pct(const uint32_t *v, size_t n, double share) {
    if (n == 0) return 0;
    size_t rank = (size_t)((share / 100.0) * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return v[rank - 1];
}

/* Parse complete answers at the front of c->in; returns -1 on a malformed one. */
static int parse(conn_t *c, uint64_t t, uint64_t measure_from, uint32_t **lat, size_t *nlat,
                 size_t *cap, uint64_t *non2xx, uint64_t *done) {
    size_t off = 0;
    for (;;) {
        char *base = c->in + off;
        size_t avail = c->in_len - off;
        char *end = memmem(base, avail, "\r\n\r\n", 4);
        if (!end) break;
        size_t head_len = (size_t)(end - base) + 4;
        long body = 0;
        for (char *p = base; p < end; p++) {
            if ((p == base || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
                body = strtol(p + 15, NULL, 10);
                break;
            }
        }
        if (avail < head_len + (size_t)body) break;
        if (c->count == 0) return -1;
        uint64_t due = c->due[c->head];
        c->head = (c->head + 1) % MAX_PENDING;
        c->count--;
        int status = (avail > 12) ? atoi(base + 9) : 0;
        (*done)++;
        if (due >= measure_from) {
            if (status < 200 || status > 299) (*non2xx)++;
            if (*nlat == *cap) {
                *cap *= 2;
                *lat = realloc(*lat, *cap * sizeof(uint32_t));
                if (!*lat) die("realloc");
            }
            (*lat)[(*nlat)++] = (uint32_t)((t - due) / 1000);
        }
        off += head_len + (size_t)body;
    }
    if (off) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    return 0;
}

static void flush(conn_t *c) {
    while (c->out_len) {
        ssize_t n = write(c->fd, c->out, c->out_len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            die("write");
        }
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
}

int main(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: openloop HOST PORT RATE SECONDS WARMUP CONNECTIONS PATHS [HEADER]\n");
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    double rate = atof(argv[3]), seconds = atof(argv[4]), warmup = atof(argv[5]);
    int nconn = atoi(argv[6]);
    const char *header = argc > 8 ? argv[8] : NULL;

    /* Requests, formatted once. */
    FILE *f = fopen(argv[7], "r");
    if (!f) die("paths");
    size_t nreq = 0, req_cap = 1024;
    char **reqs = malloc(req_cap * sizeof(char *));
    size_t *req_len = malloc(req_cap * sizeof(size_t));
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0]) continue;
        if (nreq == req_cap) {
            req_cap *= 2;
            reqs = realloc(reqs, req_cap * sizeof(char *));
            req_len = realloc(req_len, req_cap * sizeof(size_t));
        }
        char buf[8192];
        int n = snprintf(buf, sizeof buf, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n%s%s\r\n", line, host,
                         port, header ? header : "", header ? "\r\n" : "");
        reqs[nreq] = strdup(buf);
        req_len[nreq++] = (size_t)n;
    }
    fclose(f);
    if (!nreq) {
        fprintf(stderr, "no paths\n");
        return 2;
    }

    int ep = epoll_create1(0);
    conn_t *conns = calloc((size_t)nconn, sizeof(conn_t));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &addr.sin_addr);
    for (int i = 0; i < nconn; i++) {
        conn_t *c = &conns[i];
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0) die("nonblock");
        c->due = malloc(MAX_PENDING * sizeof(uint64_t));
        c->in_cap = READ_CHUNK * 2;
        c->in = malloc(c->in_cap);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct epoll_event tev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);

    size_t lat_cap = (size_t)(rate * seconds) + 1024, nlat = 0;
    uint32_t *lat = malloc(lat_cap * sizeof(uint32_t));
    uint64_t non2xx = 0, done = 0, sent = 0, late = 0, overflow = 0;
    uint64_t interval = (uint64_t)(1e9 / rate);
    uint64_t start = now_ns() + 1000000;
    uint64_t measure_from = start + (uint64_t)(warmup * 1e9);
    uint64_t stop = measure_from + (uint64_t)(seconds * 1e9);
    uint64_t drain_until = stop + 2000000000ull;
    uint64_t k = 0;
    struct epoll_event events[64];

    for (;;) {
        uint64_t t = now_ns();
        /* Everything due by now goes out, on its connection. */
        while (start + k * interval <= t && start + k * interval < stop) {
            uint64_t due = start + k * interval;
            conn_t *c = &conns[k % (uint64_t)nconn];
            if (c->count == MAX_PENDING) {
                overflow++;
            } else {
                size_t r = k % nreq;
                append(&c->out, &c->out_len, &c->out_cap, reqs[r], req_len[r]);
                c->due[(c->head + c->count) % MAX_PENDING] = due;
                c->count++;
                sent++;
                if (t - due > 100000) late++; /* written >100 us after due: the client lagged */
            }
            k++;
        }
        for (int i = 0; i < nconn; i++) flush(&conns[i]);
        int in_flight = 0;
        for (int i = 0; i < nconn; i++) in_flight += conns[i].count > 0;
        if (t >= stop && (!in_flight || t >= drain_until)) break;

        uint64_t next = start + k * interval;
        if (next >= stop) next = t + 1000000; /* draining: wake every ms */
        struct itimerspec its = {0};
        its.it_value.tv_sec = (time_t)(next / 1000000000ull);
        its.it_value.tv_nsec = (long)(next % 1000000000ull);
        timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        int n = epoll_wait(ep, events, 64, 100);
        t = now_ns();
        for (int e = 0; e < n; e++) {
            uint32_t id = events[e].data.u32;
            if (id == UINT32_MAX) {
                uint64_t expirations;
                if (read(tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN) die("timer");
                continue;
            }
            conn_t *c = &conns[id];
            for (;;) {
                if (c->in_cap - c->in_len < READ_CHUNK) {
                    c->in_cap *= 2;
                    c->in = realloc(c->in, c->in_cap);
                }
                ssize_t r = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
                if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
                if (r <= 0) {
                    fprintf(stderr, "connection closed by the server\n");
                    return 1;
                }
                c->in_len += (size_t)r;
            }
            if (parse(c, t, measure_from, &lat, &nlat, &lat_cap, &non2xx, &done) < 0) {
                fprintf(stderr, "answer without a request\n");
                return 1;
            }
        }
    }
    uint64_t unanswered = 0;
    for (int i = 0; i < nconn; i++) unanswered += conns[i].count;
    qsort(lat, nlat, sizeof(uint32_t), cmp_u32);
    printf("{\"target_rps\": %.1f, \"achieved_rps\": %.1f, \"requests\": %zu, \"non_2xx\": %llu, "
           "\"unanswered\": %llu, \"client_late\": %llu, \"overflow\": %llu, "
           "\"latency_us\": {\"p50\": %u, \"p90\": %u, \"p99\": %u, \"p999\": %u, \"max\": %u}}\n",
           rate, (double)nlat / seconds, nlat, (unsigned long long)non2xx,
           (unsigned long long)unanswered, (unsigned long long)late,
           (unsigned long long)overflow, pct(lat, nlat, 50), pct(lat, nlat, 90),
           pct(lat, nlat, 99), pct(lat, nlat, 99.9), nlat ? lat[nlat - 1] : 0);
    return 0;
}
