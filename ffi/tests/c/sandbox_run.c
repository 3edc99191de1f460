/* Runs real containers through the C API: a namespace sandbox with the busybox image, a
 * container whose output is read back, exec'd processes with stdin and a signal, exit statuses,
 * the container log, and the sandbox destroyed. A micro-VM sandbox must be refused at once with
 * PODVISOR_EUNSUPPORTED where the host cannot give one (no hardware-assisted KVM, no vsock).
 *
 * The namespace part needs the static agent (PODVISOR_AGENT), the busybox OCI image
 * (PODVISOR_TEST_IMAGE) and root; without them it is skipped, saying why. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* Generous: a loaded 2-core machine runs other tests besides this one. */
#define LONG_MS 30000

static char state_dir[] = "/tmp/podvisor-sandbox-run-XXXXXX";

static double now_secs(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Everything a process wrote, until it exited. */
struct output {
    char out[4096];
    size_t out_len;
    char err[4096];
    size_t err_len;
};

static void append(char *buf, size_t *len, const uint8_t *data, size_t n) {
    if (*len + n >= 4096) {
        n = 4095 - *len;
    }
    memcpy(buf + *len, data, n);
    *len += n;
    buf[*len] = '\0';
}

/* Reads the process's output until PODVISOR_EDONE, then waits for its status. */
static void collect(podvisor_process *process, struct output *got, podvisor_exit_status *status) {
    podvisor_stream stream;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc;
    memset(got, 0, sizeof *got);
    while ((rc = podvisor_process_read(process, LONG_MS, &stream, &data, &len)) == PODVISOR_OK) {
        CHECK(len > 0 && data[len] == '\0');
        if (stream == PODVISOR_STREAM_STDOUT) {
            append(got->out, &got->out_len, data, len);
        } else {
            CHECK(stream == PODVISOR_STREAM_STDERR);
            append(got->err, &got->err_len, data, len);
        }
        podvisor_free(data);
    }
    EXPECT(rc, PODVISOR_EDONE, NULL);
    /* Reading past the end stays done; the status is there at once. */
    EXPECT(podvisor_process_read(process, 0, &stream, &data, &len), PODVISOR_EDONE, NULL);
    EXPECT_OK(podvisor_exit_status_init(status, sizeof *status));
    EXPECT_OK(podvisor_process_wait(process, 0, status));
}

static void test_micro_vm_is_refused(void) {
    podvisor_sandbox_options opts;
    podvisor_sandbox *sandbox = NULL;
    double started = now_secs();
    EXPECT_OK(podvisor_sandbox_options_init(&opts, sizeof opts));
    opts.id = "micro-vm";
    opts.isolation = PODVISOR_ISOLATION_MICROVM;
    opts.state_dir = state_dir;
    opts.guest_kernel = "/nonexistent/vmlinux";
    opts.guest_initramfs = "/nonexistent/initramfs";
    if (podvisor_sandbox_check_host(&opts) == PODVISOR_OK) {
        printf("sandbox_run: this host can run micro-VM sandboxes; refusal not checked\n");
        return;
    }
    EXPECT(podvisor_sandbox_check_host(&opts), PODVISOR_EUNSUPPORTED, NULL);
    EXPECT(podvisor_sandbox_create(&opts, &sandbox), PODVISOR_EUNSUPPORTED, NULL);
    CHECK(sandbox == NULL);
    CHECK(strstr(podvisor_last_error_message(), "micro-VM") != NULL);
    printf("sandbox_run: micro-VM refused: %s\n", podvisor_last_error_message());
    CHECK(now_secs() - started < 10.0);
}

static podvisor_process *start(podvisor_sandbox *sandbox, const char *image, const char *name,
                               const char **args, size_t args_len) {
    podvisor_container_options opts;
    podvisor_process *process = NULL;
    EXPECT_OK(podvisor_container_options_init(&opts, sizeof opts));
    opts.name = name;
    opts.image = image;
    opts.args = args;
    opts.args_len = args_len;
    EXPECT_OK(podvisor_sandbox_create_container(sandbox, &opts));
    EXPECT_OK(podvisor_sandbox_start(sandbox, name, &process));
    return process;
}

static podvisor_process *exec(podvisor_sandbox *sandbox, const char **args, size_t args_len,
                              bool stdin) {
    podvisor_exec_options opts;
    podvisor_process *process = NULL;
    EXPECT_OK(podvisor_exec_options_init(&opts, sizeof opts));
    opts.args = args;
    opts.args_len = args_len;
    opts.stdin = stdin;
    EXPECT_OK(podvisor_sandbox_exec(sandbox, "shell", &opts, &process));
    return process;
}

/* The container's own process: both streams, in order, and its exit code. */
static void test_main_process(podvisor_sandbox *sandbox, const char *image) {
    const char *args[] = {"sh", "-c", "echo hello from the pod; echo oops >&2; exit 3"};
    podvisor_exit_status status;
    struct output got;
    char *log = NULL;
    podvisor_process *hello = start(sandbox, image, "hello", args, 3);
    if (hello == NULL) {
        return;
    }
    collect(hello, &got, &status);
    CHECK(strcmp(got.out, "hello from the pod\n") == 0);
    CHECK(strcmp(got.err, "oops\n") == 0);
    CHECK(!status.signaled && status.code == 3 && !status.oom_killed);

    /* The container's output also went to its log. */
    EXPECT_OK(podvisor_sandbox_log_path(sandbox, "hello", &log));
    if (log != NULL) {
        char line[512] = {0};
        FILE *f = fopen(log, "r");
        CHECK(f != NULL);
        if (f != NULL) {
            CHECK(fread(line, 1, sizeof line - 1, f) > 0);
            CHECK(strstr(line, " stdout F hello from the pod") != NULL);
            fclose(f);
        }
        podvisor_free(log);
    }
    EXPECT_OK(podvisor_process_free(hello));
    EXPECT_OK(podvisor_sandbox_remove_container(sandbox, "hello"));
    EXPECT(podvisor_sandbox_start(sandbox, "hello", NULL), PODVISOR_ENOTFOUND, NULL);
}

/* Processes exec'd into a running container: output, stdin, a signal. */
static void test_exec(podvisor_sandbox *sandbox) {
    const char *echo[] = {"echo", "exec says hi"};
    const char *cat[] = {"cat"};
    const char *missing[] = {"/no/such/program"};
    const char *sleep_args[] = {"sleep", "1000"};
    podvisor_exit_status status;
    struct output got;
    podvisor_stream stream;
    uint8_t *data = NULL;
    size_t len = 0;
    podvisor_process *p;

    p = exec(sandbox, echo, 2, false);
    if (p != NULL) {
        collect(p, &got, &status);
        CHECK(strcmp(got.out, "exec says hi\n") == 0 && got.err_len == 0);
        CHECK(!status.signaled && status.code == 0);
        EXPECT_OK(podvisor_process_free(p));
    }

    /* A program that is not there: the call succeeds, the process exits 127 and says why. */
    p = exec(sandbox, missing, 1, false);
    if (p != NULL) {
        collect(p, &got, &status);
        CHECK(!status.signaled && status.code == 127);
        CHECK(strstr(got.err, "/no/such/program") != NULL);
        EXPECT_OK(podvisor_process_free(p));
    }

    p = exec(sandbox, cat, 1, true);
    if (p != NULL) {
        EXPECT_OK(podvisor_process_write_stdin(p, (const uint8_t *)"ping\n", 5));
        EXPECT_OK(podvisor_process_write_stdin(p, (const uint8_t *)"pong\n", 5));
        EXPECT_OK(podvisor_process_close_stdin(p));
        collect(p, &got, &status);
        CHECK(strcmp(got.out, "ping\npong\n") == 0);
        CHECK(!status.signaled && status.code == 0);
        EXPECT_OK(podvisor_process_free(p));
    }

    p = exec(sandbox, sleep_args, 2, false);
    if (p != NULL) {
        EXPECT(podvisor_process_read(p, 0, &stream, &data, &len), PODVISOR_ETIMEOUT, NULL);
        EXPECT(podvisor_process_wait(p, 50, NULL), PODVISOR_ETIMEOUT, NULL);
        EXPECT_OK(podvisor_process_signal(p, SIGTERM));
        EXPECT_OK(podvisor_exit_status_init(&status, sizeof status));
        EXPECT_OK(podvisor_process_wait(p, LONG_MS, &status));
        CHECK(status.signaled && status.signal == SIGTERM && status.code == 0);
        /* Once it has exited, the status stays; signalling it fails. */
        EXPECT_OK(podvisor_process_wait(p, 0, &status));
        CHECK(podvisor_process_signal(p, SIGTERM) != PODVISOR_OK);
        EXPECT_OK(podvisor_process_free(p));
    }
    CHECK(data == NULL);
}

static void test_namespaces(const char *agent, const char *image) {
    const char *forever[] = {"sleep", "1000"};
    podvisor_sandbox_options opts;
    podvisor_sandbox *sandbox = NULL;
    podvisor_sandbox *second = NULL;
    podvisor_process *shell;
    podvisor_exit_status status;
    char *path = NULL;

    EXPECT_OK(podvisor_sandbox_options_init(&opts, sizeof opts));
    opts.id = "c-run";
    opts.state_dir = state_dir;
    opts.agent_binary = agent;
    EXPECT_OK(podvisor_sandbox_check_host(&opts));
    EXPECT_OK(podvisor_sandbox_create(&opts, &sandbox));
    if (sandbox == NULL) {
        return;
    }
    EXPECT(podvisor_sandbox_create(&opts, &second), PODVISOR_EEXISTS, "opts->id");
    CHECK(second == NULL);

    test_main_process(sandbox, image);
    shell = start(sandbox, image, "shell", forever, 2);
    test_exec(sandbox);

    /* Stopping the container ends its process; the handle sees the same status. */
    EXPECT_OK(podvisor_exit_status_init(&status, sizeof status));
    EXPECT_OK(podvisor_sandbox_stop_container(sandbox, "shell", 200, &status));
    CHECK(status.signaled);
    if (shell != NULL) {
        EXPECT_OK(podvisor_process_wait(shell, LONG_MS, &status));
        CHECK(status.signaled);
    }

    EXPECT_OK(podvisor_sandbox_destroy(sandbox));
    EXPECT(podvisor_sandbox_destroy(sandbox), PODVISOR_ESTATE, NULL);
    EXPECT(podvisor_sandbox_log_path(sandbox, "shell", &path), PODVISOR_ESTATE, NULL);
    CHECK(path == NULL);
    if (shell != NULL) {
        EXPECT(podvisor_process_signal(shell, SIGKILL), PODVISOR_ESTATE, NULL);
        EXPECT_OK(podvisor_process_free(shell));
    }
    EXPECT_OK(podvisor_sandbox_free(sandbox));

    /* Freeing a sandbox that was not destroyed destroys it, and its directory goes. */
    EXPECT_OK(podvisor_sandbox_create(&opts, &second));
    if (second != NULL) {
        shell = start(second, image, "shell", forever, 2);
        EXPECT_OK(podvisor_sandbox_free(second));
        if (shell != NULL) {
            EXPECT(podvisor_process_close_stdin(shell), PODVISOR_ESTATE, NULL);
            EXPECT_OK(podvisor_process_free(shell));
        }
    }
}

int main(void) {
    const char *agent = getenv("PODVISOR_AGENT");
    const char *image = getenv("PODVISOR_TEST_IMAGE");
    CHECK(mkdtemp(state_dir) != NULL);

    test_micro_vm_is_refused();
    if (agent == NULL || image == NULL || geteuid() != 0) {
        printf("sandbox_run: namespace sandbox skipped: %s\n",
               geteuid() != 0 ? "not root" : "set PODVISOR_AGENT and PODVISOR_TEST_IMAGE");
    } else {
        test_namespaces(agent, image);
    }
    rmdir(state_dir);
    CHECK_DONE("sandbox_run");
}
