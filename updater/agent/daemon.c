/* updater/agent/daemon.c — cairn-updated's main loop: jittered checks, backoff, post-boot gate, and the local control socket.
 * This loop is the daemon's top level, so it is where the agent's errors are logged (one line each). */
#include "agent.h"
#include "measure.h"
#include "clock.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "fileio.h"
#include "log.h"
#include "parse.h"

#define CMD_MAX 256

/* Every agent message is logged through here. The agent escapes what came from outside where it puts it in a
 * message; should a control character still be there, the whole line is escaped, so no one can forge a line. */
static void log_agent(const char *msg) {
        for (const char *p = msg; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                        char buf[AGENT_ERROR_MAX * 4];
                        log_msg("%s", log_safe(buf, sizeof buf, msg));
                        return;
                }
        log_msg("%s", msg);
}

static uint32_t rnd32(void) {
        uint32_t v;
        if (getrandom(&v, sizeof v, GRND_NONBLOCK) != sizeof v)
                v = (uint32_t)time(NULL) ^ (uint32_t)getpid();
        return v;
}

static int listen_socket(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        int r = mkdir_parents(path, false);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        (void)unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
                return negative_errno();
        (void)chmod(path, 0600);
        if (listen(fd, 8) < 0)
                return negative_errno();
        return TAKE_FD(fd);
}

static void send_str(int fd, const char *s) {
        size_t n = strlen(s);
        while (n > 0) {
                ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return;
                }
                s += w;
                n -= (size_t)w;
        }
}

static void send_line(int fd, const char *fmt, ...) _printf_(2, 3);
static void send_line(int fd, const char *fmt, ...) {
        char buf[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        for (char *p = buf; *p; p++)
                if (*p == '\n')
                        *p = ' ';
        strcat(buf, "\n");
        send_str(fd, buf);
}

typedef struct Client {
        int fd;
} Client;

static void client_progress(void *ud, const AgentState *s) {
        Client *c = ud;
        send_line(c->fd, "PROGRESS %s %u %u", agent_status_name(s->status), s->chunks_done, s->chunks_total);
}

/* While the post-boot gate has not run yet this boot (HEALTH_DELAY), a check or update asked for meanwhile runs it
 * first, so the booted slot is judged (and a rollback noticed) before anything is decided about the other. */
static int run_post_boot(Agent *a) {
        if (!agent_post_boot_pending(a))
                return 0;
        int r = agent_post_boot(a);
        if (r < 0)
                log_agent(agent_error(a));
        return r;
}

static void handle_client(Agent *a, int fd) {
        struct timeval tv = { .tv_sec = 5 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char cmd[CMD_MAX];
        size_t len = 0;
        while (len < sizeof cmd - 1) {
                ssize_t n = recv(fd, cmd + len, sizeof cmd - 1 - len, 0);
                if (n <= 0)
                        break;
                len += (size_t)n;
                if (memchr(cmd, '\n', len))
                        break;
        }
        cmd[len] = 0;
        char *nl = strchr(cmd, '\n');
        if (!nl) {
                send_line(fd, "ERROR request not understood");
                return;
        }
        *nl = 0;
        int r;
        if (strcmp(cmd, "status") == 0 || strcmp(cmd, "status json") == 0) {
                _cleanup_free_ char *text = NULL;
                r = agent_status_text_full(agent_state(a), agent_config(a), agent_reboot_view(a),
                                           strcmp(cmd, "status json") == 0, true, time(NULL), &text);
                if (r >= 0)
                        r = measure_status_merge(&text, agent_state_dir(a), strcmp(cmd, "status json") == 0);
                if (r < 0) {
                        send_line(fd, "ERROR %s", strerror(-r));
                        return;
                }
                send_str(fd, text);
                send_line(fd, "OK");
        } else if (strcmp(cmd, "check") == 0) {
                AgentOffer offer;
                r = run_post_boot(a);
                if (r >= 0)
                        r = agent_check(a, true, &offer);
                if (r < 0) {
                        log_agent(agent_error(a));
                        send_line(fd, "ERROR %s", agent_error(a));
                } else if (r > 0 && agent_state_is_failed(agent_state(a), offer.version))
                        send_line(fd, "OK update available: %s (it failed to boot before: installed only by "
                                      "cairnctl update --force)", offer.version);
                else if (r > 0)
                        send_line(fd, "OK update available: %s", offer.version);
                else if (offer.update)
                        send_line(fd, "OK %s offered; not applicable (running %s, staged %s)", offer.version,
                                  agent_state(a)->current_version,
                                  agent_state(a)->staged_version[0] ? agent_state(a)->staged_version : "none");
                else
                        send_line(fd, "OK no update");
        } else if (strcmp(cmd, "update") == 0 || strcmp(cmd, "update force") == 0) {
                Client c = { .fd = fd };
                r = run_post_boot(a);
                if (r < 0) {
                        send_line(fd, "ERROR %s", agent_error(a));
                        return;
                }
                agent_set_progress(a, client_progress, &c);
                r = agent_update(a, true, strcmp(cmd, "update force") == 0);
                agent_set_progress(a, NULL, NULL);
                if (r == -ECANCELED) {
                        log_agent(agent_error(a));
                        send_line(fd, "ERROR cairn-updated is stopping: %s", agent_error(a));
                } else if (r < 0) {
                        log_agent(agent_error(a));
                        send_line(fd, "ERROR %s", agent_error(a));
                } else if (r > 0)
                        send_line(fd, "OK updated to %s (slot %c); reboot to use it", agent_state(a)->staged_version,
                                  agent_state(a)->staged_slot == 0 ? 'A' : 'B');
                else if (agent_error(a)[0])
                        send_line(fd, "OK no update: %s", agent_error(a));
                else
                        send_line(fd, "OK no update");
        } else if (strcmp(cmd, "reboot") == 0) {
                /* Now, without waiting for the window, through the strategy's lock and hooks (reboot.c). */
                r = run_post_boot(a);
                if (r >= 0)
                        r = agent_reboot_request(a);
                if (r < 0)
                        send_line(fd, "ERROR %s", agent_error(a)[0] ? agent_error(a) : strerror(-r));
                else
                        send_line(fd, "OK %s", agent_state(a)->lock_note[0] ? agent_state(a)->lock_note
                                                                             : "reboot requested");
        } else if (strcmp(cmd, "mark-good") == 0) {
                r = agent_mark_good(a);
                if (r < 0)
                        send_line(fd, "ERROR %s", agent_error(a));
                else
                        send_line(fd, "OK marked the booted slot good");
        } else if (strcmp(cmd, "rollback") == 0) {
                r = agent_rollback(a);
                if (r < 0)
                        send_line(fd, "ERROR %s", agent_error(a));
                else
                        send_line(fd, "OK the other slot boots next");
        } else
                send_line(fd, "ERROR unknown command \"%.64s\"", cmd);
}

int agent_daemon_run(Agent *a, const AgentDaemonOptions *o) {
        const AgentConfig *cfg = agent_config(a);
        int r;
        /* SIGTERM/SIGINT stay pending (blocked) until the loop below reads them; meanwhile every long loop of the
         * agent sees them through agent_cancelled() and stops at its next checkpoint. Children get a clean mask
         * (agent_child_reset_signals). */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        agent_cancel_watch(&mask);
        signal(SIGPIPE, SIG_IGN);
        agent_reboot_set_log(a, log_agent);
        if (o->once) {
                r = agent_post_boot(a);
                if (r < 0)
                        log_agent(agent_error(a));
                if (r != -ECANCELED) {
                        r = agent_update(a, false, false);
                        if (r < 0)
                                log_agent(agent_error(a));
                }
                if (agent_cancelled())
                        log_msg("stopped by a signal; the state is saved");
                return r;
        }

        _cleanup_close_ int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (sfd < 0)
                return log_error_errno(negative_errno(), "signalfd");
        _cleanup_close_ int lfd = listen_socket(o->socket_path);
        if (lfd < 0)
                return log_error_errno(lfd, "cannot listen on \"%s\"", o->socket_path);
        log_msg("listening on \"%s\"; server \"%s\", group %s, running %s", o->socket_path, cfg->server, cfg->group,
                agent_state(a)->current_version);

        /* Two timers: the post-boot gate (judge a freshly booted slot soon, HEALTH_DELAY) and the update
         * checks (FIRST_CHECK_DELAY, then CHECK_INTERVAL). A check waits until the gate has run. */
        int64_t gate_at = mono_ms() + (int64_t)cfg->health_delay * 1000;
        int64_t next = mono_ms() + (int64_t)agent_jitter(cfg->first_check_delay, 50, rnd32()) * 1000;
        if (next < gate_at)
                next = gate_at;
        for (;;) {
                int64_t due = agent_post_boot_pending(a) && gate_at < next ? gate_at : next;
                int64_t reboot_due = agent_reboot_due_ms(a); /* the reboot lifecycle's next step (reboot.c) */
                if (reboot_due >= 0 && reboot_due < due)
                        due = reboot_due;
                int64_t wait = due - mono_ms();
                if (wait < 0)
                        wait = 0;
                struct pollfd pfd[2] = { { .fd = sfd, .events = POLLIN }, { .fd = lfd, .events = POLLIN } };
                int n = poll(pfd, 2, (int)MIN(wait, (int64_t)INT32_MAX));
                if (n < 0 && errno != EINTR)
                        return log_error_errno(negative_errno(), "poll");
                if (n > 0 && (pfd[0].revents & POLLIN)) {
                        struct signalfd_siginfo si = { 0 };
                        if (read(sfd, &si, sizeof si) != (ssize_t)sizeof si)
                                si.ssi_signo = 0; /* cannot happen for a signalfd with a signal pending */
                        log_msg("stopping on signal %u", si.ssi_signo);
                        (void)agent_save(a);
                        (void)unlink(o->socket_path);
                        return 0;
                }
                if (n > 0 && (pfd[1].revents & POLLIN)) {
                        int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                        if (cfd >= 0) {
                                handle_client(a, cfd);
                                close(cfd);
                        }
                        continue;
                }
                if (reboot_due >= 0 && mono_ms() >= reboot_due) {
                        agent_reboot_tick(a);
                        continue;
                }
                if (agent_post_boot_pending(a) && mono_ms() >= gate_at && gate_at < next) {
                        /* The gate alone, ahead of the first check. */
                        if (run_post_boot(a) < 0) {
                                gate_at = mono_ms() + (int64_t)agent_backoff(1, cfg->backoff_base, cfg->backoff_max,
                                                                            rnd32()) * 1000;
                        }
                        continue;
                }
                if (mono_ms() < next)
                        continue;
                /* Scheduled work. */
                bool failed = run_post_boot(a) < 0;
                if (!failed) {
                        r = agent_update(a, false, false);
                        if (r == -ECANCELED) {
                                log_agent(agent_error(a));
                                continue; /* the signal is read at the top of the loop */
                        } else if (r < 0) {
                                log_agent(agent_error(a));
                                failed = true;
                        } else if (r > 0)
                                log_msg("updated to %s; reboot pending", agent_state(a)->staged_version);
                        else if (agent_error(a)[0])
                                log_agent(agent_error(a));
                }
                unsigned delay;
                if (failed) {
                        unsigned f = agent_state(a)->failures ? agent_state(a)->failures : 1;
                        delay = agent_backoff(f, cfg->backoff_base, cfg->backoff_max, rnd32());
                        log_msg("next try in %u s (failure %u)", delay, f);
                } else {
                        /* The server's PollInterval, when it sent one, wins over CHECK_INTERVAL (as update_engine
                         * does), so a fleet's check rate can be steered per channel. */
                        unsigned pi = agent_poll_interval(a);
                        delay = agent_jitter(pi ? MAX(pi, AGENT_POLL_INTERVAL_MIN) : cfg->check_interval, 10, rnd32());
                        log_msg("next check in %u s%s", delay, pi ? " (the server's PollInterval)" : "");
                }
                next = mono_ms() + (int64_t)delay * 1000;
        }
}
