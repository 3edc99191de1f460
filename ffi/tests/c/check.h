/* A few assertions for libpodvisor's C tests: each failure prints where and why, and the test
 * exits non-zero at the end if any failed. */
#ifndef PODVISOR_TEST_CHECK_H
#define PODVISOR_TEST_CHECK_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "podvisor.h"

static int check_failures __attribute__((unused));

/* Checks that `got` is `want`; for a failure code, also that there is a message and, when
 * `want_arg` is not NULL, that the failing argument is `want_arg`. */
static inline void check_code(const char *file, int line, const char *call, int got, int want,
                       const char *want_arg) {
    const char *message = podvisor_last_error_message();
    const char *arg = podvisor_last_error_argument();
    if (got != want) {
        fprintf(stderr, "%s:%d: %s returned %s, want %s (message: %s)\n", file, line, call,
                podvisor_error_name(got), podvisor_error_name(want), message ? message : "none");
        check_failures++;
        return;
    }
    if (podvisor_last_error_code() != (podvisor_error_code)want) {
        fprintf(stderr, "%s:%d: %s: last error code is %s, want %s\n", file, line, call,
                podvisor_error_name(podvisor_last_error_code()), podvisor_error_name(want));
        check_failures++;
    }
    if (want == PODVISOR_OK) {
        if (message != NULL) {
            fprintf(stderr, "%s:%d: %s succeeded but left a message: %s\n", file, line, call,
                    message);
            check_failures++;
        }
        return;
    }
    if (message == NULL || message[0] == '\0') {
        fprintf(stderr, "%s:%d: %s failed with %s but gave no message\n", file, line, call,
                podvisor_error_name(got));
        check_failures++;
    }
    if (want_arg != NULL && (arg == NULL || strcmp(arg, want_arg) != 0)) {
        fprintf(stderr, "%s:%d: %s blamed argument %s, want %s (message: %s)\n", file, line,
                call, arg ? arg : "none", want_arg, message ? message : "none");
        check_failures++;
    }
}

#define EXPECT(call, want, want_arg) check_code(__FILE__, __LINE__, #call, (call), (want), (want_arg))
#define EXPECT_OK(call) EXPECT(call, PODVISOR_OK, NULL)

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);        \
            check_failures++;                                                               \
        }                                                                                   \
    } while (0)

#define CHECK_DONE(name)                                                                    \
    do {                                                                                    \
        if (check_failures) {                                                               \
            fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);              \
            return 1;                                                                       \
        }                                                                                   \
        printf("%s: all checks passed\n", name);                                            \
        return 0;                                                                           \
    } while (0)

/* A loopback TCP port nothing listens on now, or 0. */
static inline int free_port(void) {
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int port = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0) {
        port = ntohs(addr.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

#endif
