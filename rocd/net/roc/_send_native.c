/* A paced send loop in C for rocd's SendThread (see _send_native.py for why).
 *
 * A queue of datagrams, each with the CLOCK_MONOTONIC time (ns) it is due and the index
 * of its address in a route of SQ_ROUTES addresses. `sq_run` (called from a worker
 * thread, without the interpreter's lock) sleeps until the first datagram is due, sends
 * every datagram due by then in one sendmmsg, and so on until `sq_stop`. Everything is
 * under one mutex; the loop sleeps on a condition variable, so a stop is immediate.
 * Built by rocd.net.roc._send_native.build() (scripts/setup.sh).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define SQ_ROUTES 3
#define SQ_BATCH 64
#define SQ_SLACK_NS 100000 /* due within this: sent now */

typedef struct node {
    struct node *next;
    int64_t due_ns;
    int32_t route;
    uint32_t len;
    unsigned char data[];
} node;

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    node *head, *tail;
    int64_t queued;
    int stopping;
    struct sockaddr_storage route[SQ_ROUTES];
    socklen_t route_len[SQ_ROUTES]; /* 0: not sent */
    /* counters, read with sq_stats */
    int64_t sent, dropped, errors, bursts, late_ns;
} sq;

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

sq *sq_new(void) {
    sq *q = calloc(1, sizeof(sq));
    if (!q) return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&q->lock, NULL);
    return q;
}

void sq_free(sq *q) {
    node *n = q->head;
    while (n) {
        node *next = n->next;
        free(n);
        n = next;
    }
    pthread_cond_destroy(&q->wake);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

/* Queue one datagram (after those queued before); -1 when out of memory. */
int sq_push(sq *q, int64_t due_ns, int32_t route, const void *data, uint32_t len) {
    if (route < 0 || route >= SQ_ROUTES) return -1;
    node *n = malloc(sizeof(node) + len);
    if (!n) return -1;
    n->next = NULL;
    n->due_ns = due_ns;
    n->route = route;
    n->len = len;
    memcpy(n->data, data, len);
    pthread_mutex_lock(&q->lock);
    if (q->tail) q->tail->next = n; else q->head = n;
    int was_empty = q->tail == NULL;
    q->tail = n;
    q->queued++;
    if (was_empty) pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
    return 0;
}

/* The oldest datagram not sent, removed (0) or -1 when none; copies at most `cap` bytes
 * into `out` and returns its whole length in *len. For what is left after a stop. */
int sq_pop(sq *q, int64_t *due_ns, int32_t *route, void *out, uint32_t cap, uint32_t *len) {
    pthread_mutex_lock(&q->lock);
    node *n = q->head;
    if (n) {
        q->head = n->next;
        if (!q->head) q->tail = NULL;
        q->queued--;
    }
    pthread_mutex_unlock(&q->lock);
    if (!n) return -1;
    *due_ns = n->due_ns;
    *route = n->route;
    *len = n->len;
    memcpy(out, n->data, n->len < cap ? n->len : cap);
    free(n);
    return 0;
}

void sq_set_route(sq *q, int32_t index, const void *addr, uint32_t len) {
    if (index < 0 || index >= SQ_ROUTES || len > sizeof(struct sockaddr_storage)) return;
    pthread_mutex_lock(&q->lock);
    memcpy(&q->route[index], addr, len);
    q->route_len[index] = len;
    pthread_mutex_unlock(&q->lock);
}

int64_t sq_queued(sq *q) {
    pthread_mutex_lock(&q->lock);
    int64_t n = q->queued;
    pthread_mutex_unlock(&q->lock);
    return n;
}

void sq_stats(sq *q, int64_t *out) {
    pthread_mutex_lock(&q->lock);
    out[0] = q->sent;
    out[1] = q->dropped;
    out[2] = q->errors;
    out[3] = q->bursts;
    out[4] = q->late_ns;
    pthread_mutex_unlock(&q->lock);
}

void sq_stop(sq *q) {
    pthread_mutex_lock(&q->lock);
    q->stopping = 1;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
}

void sq_reset(sq *q) {
    pthread_mutex_lock(&q->lock);
    q->stopping = 0;
    pthread_mutex_unlock(&q->lock);
}

/* Send the datagrams of `batch` (count n): one sendmmsg, and past a datagram the kernel
 * refused, the rest again. */
static void send_batch(sq *q, int fd, struct mmsghdr *msgs, int n) {
    int i = 0;
    while (i < n) {
        int r = sendmmsg(fd, msgs + i, n - i, MSG_DONTWAIT);
        if (r > 0) {
            q->sent += r;
            i += r;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else {
            if (errno == EAGAIN || errno == EWOULDBLOCK) q->dropped++; else q->errors++;
            i++; /* that one is lost, as a full buffer drops it */
        }
    }
}

/* Until sq_stop: send each datagram at its time (see the top). */
void sq_run(sq *q, int fd) {
    struct mmsghdr msgs[SQ_BATCH];
    struct iovec iov[SQ_BATCH];
    struct sockaddr_storage addr[SQ_BATCH];
    node *taken[SQ_BATCH];
    pthread_mutex_lock(&q->lock);
    while (!q->stopping) {
        node *n = q->head;
        if (!n) {
            pthread_cond_wait(&q->wake, &q->lock);
            continue;
        }
        int64_t now = now_ns();
        int64_t wait = n->due_ns - now;
        if (wait > SQ_SLACK_NS) {
            struct timespec t = {n->due_ns / 1000000000, n->due_ns % 1000000000};
            pthread_cond_timedwait(&q->wake, &q->lock, &t);
            continue; /* woken for a stop, a push, or at the time: look again */
        }
        if (-wait > q->late_ns) q->late_ns = -wait;
        int count = 0;
        int64_t limit = n->due_ns;
        memset(msgs, 0, sizeof(msgs));
        while (q->head && q->head->due_ns <= limit && count < SQ_BATCH) {
            node *m = q->head;
            q->head = m->next;
            if (!q->head) q->tail = NULL;
            q->queued--;
            socklen_t alen = q->route_len[m->route];
            if (alen == 0) { /* no address for it (now): not sent */
                free(m);
                continue;
            }
            memcpy(&addr[count], &q->route[m->route], alen);
            iov[count].iov_base = m->data;
            iov[count].iov_len = m->len;
            msgs[count].msg_hdr.msg_name = &addr[count];
            msgs[count].msg_hdr.msg_namelen = alen;
            msgs[count].msg_hdr.msg_iov = &iov[count];
            msgs[count].msg_hdr.msg_iovlen = 1;
            taken[count++] = m;
        }
        q->bursts++;
        pthread_mutex_unlock(&q->lock);
        int64_t sent0 = q->sent, dropped0 = q->dropped, errors0 = q->errors;
        /* counters are written here only, read under the lock: update them after */
        sq tmp;
        tmp.sent = tmp.dropped = tmp.errors = 0;
        if (count) send_batch(&tmp, fd, msgs, count);
        for (int i = 0; i < count; i++) free(taken[i]);
        pthread_mutex_lock(&q->lock);
        q->sent = sent0 + tmp.sent;
        q->dropped = dropped0 + tmp.dropped;
        q->errors = errors0 + tmp.errors;
    }
    pthread_mutex_unlock(&q->lock);
}
