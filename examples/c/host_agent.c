/*
 * A host agent in C over libpodvisor: it applies a pod manifest, watches the pod until it
 * runs, prints the pod's logs, and deletes it again.
 *
 * It either connects to running masters (those of `podvisor cluster up` or `make demo`):
 *
 *     host_agent --masters 127.0.0.1:23790,127.0.0.1:23791,127.0.0.1:23792
 *
 * or, without --masters, starts an embedded cluster in this process: one store master, the
 * controllers and a node agent. The node agent needs the static podvisor agent
 * (PODVISOR_AGENT, as `vmm/agent/build-static` prints it) and a cache holding
 * images/busybox (PODVISOR_CACHE, default ~/.cache/podvisor; `examples/images/build-busybox`
 * makes it).
 *
 * Other flags: --manifest FILE (manifests to apply; a built-in busybox pod otherwise), --pod NAME
 * (which of the pods the manifests create to follow; the first by default), --timeout SECONDS
 * (for each step and each store call, 120 by default). The pods the manifests create are
 * deleted at the end, whatever happened; other objects they hold stay. Exit status 0 when the
 * pod ran, its logs were read and it did not fail; 1 otherwise; 2 for bad usage.
 *
 * Build: cc -I include examples/c/host_agent.c target/debug/libpodvisor.a -lm -ldl ...,
 * or with -lpodvisor against the shared library; `make examples` does both.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "podvisor.h"

static const char BUILTIN_POD[] =
    "apiVersion: v1\n"
    "kind: Pod\n"
    "metadata:\n"
    "  name: hello-c\n"
    "spec:\n"
    "  runtimeClassName: namespaces\n"
    "  containers:\n"
    "    - name: hello\n"
    "      image: busybox\n"
    "      command: [/bin/busybox, sh, -c]\n"
    "      args: ['echo hello from a C host agent; echo running in $(hostname); exec sleep 600']\n";

struct settings {
    const char *masters;
    const char *manifest;
    const char *pod_flag;
    int timeout_s;
    /* The pod followed, from the apply's summary. */
    char namespace_[64];
    char pod[254];
};

/* An embedded cluster: what this process started, stopped in reverse order. */
struct embedded {
    podvisor_master *master;
    podvisor_controllers *controllers;
    podvisor_node_agent *node;
    char data_dir[64];
    char state_dir[80];
};

/* Prints the failed call with libpodvisor's code and message; returns 0 on success. */
static int check(const char *what, podvisor_error_code code) {
    if (code == PODVISOR_OK) {
        return 0;
    }
    const char *message = podvisor_last_error_message();
    fprintf(stderr, "host_agent: %s: %s: %s\n", what, podvisor_error_name(code),
            message ? message : "(no message)");
    return -1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int free_port(void) {
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

/* Copies the string value of the first `"key": "value"` of `json` into `out`. */
static int json_string(const char *json, const char *key, char *out, size_t out_len) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\"", key);
    const char *at = strstr(json, pattern);
    if (at == NULL) {
        return -1;
    }
    at += strlen(pattern);
    while (*at == ' ' || *at == ':' || *at == '\n' || *at == '\t') {
        at++;
    }
    if (*at != '"') {
        return -1;
    }
    at++;
    size_t n = strcspn(at, "\"");
    if (n >= out_len) {
        n = out_len - 1;
    }
    memcpy(out, at, n);
    out[n] = '\0';
    return 0;
}

/* Starts a one-master store, the controllers and a node agent in this process. */
static int start_embedded(struct embedded *e, const char **endpoint_out) {
    static char member[96], endpoint[48];
    if (getenv("PODVISOR_AGENT") == NULL) {
        fprintf(stderr, "host_agent: without --masters, PODVISOR_AGENT must name the static "
                        "podvisor agent (vmm/agent/build-static prints it)\n");
        return -1;
    }
    strcpy(e->data_dir, "/tmp/podvisor-host-agent-XXXXXX");
    if (mkdtemp(e->data_dir) == NULL) {
        perror("host_agent: mkdtemp");
        return -1;
    }
    snprintf(e->state_dir, sizeof e->state_dir, "%s/node", e->data_dir);

    int client_port = free_port();
    snprintf(member, sizeof member, "1=127.0.0.1:%d,127.0.0.1:%d", free_port(), client_port);
    snprintf(endpoint, sizeof endpoint, "127.0.0.1:%d", client_port);
    const char *members[1] = {member};
    podvisor_master_options mopts;
    if (check("podvisor_master_options_init", podvisor_master_options_init(&mopts, sizeof mopts))) {
        return -1;
    }
    mopts.id = 1;
    mopts.data_dir = e->data_dir;
    mopts.members = members;
    mopts.members_len = 1;
    if (check("starting the embedded master", podvisor_master_start(&mopts, &e->master))) {
        return -1;
    }
    printf("embedded master serving clients on %s\n", endpoint);
    double deadline = now_s() + 10;
    bool leader = false;
    while (!leader && now_s() < deadline) {
        if (check("podvisor_master_is_leader", podvisor_master_is_leader(e->master, &leader))) {
            return -1;
        }
        usleep(20 * 1000);
    }
    if (!leader) {
        fprintf(stderr, "host_agent: the embedded master elected no leader in 10 s\n");
        return -1;
    }
    *endpoint_out = endpoint;
    return 0;
}

static int start_embedded_workers(struct embedded *e, podvisor_client *client) {
    const char *agent = getenv("PODVISOR_AGENT");
    const char *cache = getenv("PODVISOR_CACHE");
    char default_cache[512];
    if (cache == NULL) {
        snprintf(default_cache, sizeof default_cache, "%s/.cache/podvisor",
                 getenv("HOME") ? getenv("HOME") : "/root");
        cache = default_cache;
    }
    podvisor_controllers_options copts;
    if (check("podvisor_controllers_options_init",
              podvisor_controllers_options_init(&copts, sizeof copts))) {
        return -1;
    }
    copts.identity = "host-agent-c";
    if (check("starting the controllers", podvisor_controllers_start(client, &copts, &e->controllers))) {
        return -1;
    }
    podvisor_node_agent_options nopts;
    if (check("podvisor_node_agent_options_init",
              podvisor_node_agent_options_init(&nopts, sizeof nopts))) {
        return -1;
    }
    nopts.name = "host-agent-c";
    nopts.state_dir = e->state_dir;
    nopts.agent_binary = agent;
    nopts.cache_dir = cache;
    if (check("starting the node agent", podvisor_node_agent_start(client, &nopts, &e->node))) {
        return -1;
    }
    char *addr = NULL;
    if (podvisor_node_agent_address(e->node, &addr) == PODVISOR_OK) {
        printf("embedded node agent %s serving logs on %s\n", nopts.name, addr);
        podvisor_free(addr);
    }
    return 0;
}

static void stop_embedded(struct embedded *e) {
    check("stopping the node agent", podvisor_node_agent_free(e->node));
    check("stopping the controllers", podvisor_controllers_free(e->controllers));
    check("stopping the master", podvisor_master_free(e->master));
    if (e->data_dir[0] != '\0') {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->data_dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "host_agent: could not remove %s\n", e->data_dir);
        }
    }
}

/* The pod's phase, or "" when it cannot be read. */
static void pod_phase(podvisor_client *client, const struct settings *s, char *phase, size_t len) {
    char *json = NULL;
    phase[0] = '\0';
    if (podvisor_objects_get(client, "Pod", s->namespace_, s->pod, &json) == PODVISOR_OK) {
        json_string(json, "phase", phase, len);
        podvisor_free(json);
    }
}

/* Watches the pod until it runs (or has run to completion); 0 when it did. */
static int watch_until_running(podvisor_client *client, const struct settings *s) {
    podvisor_object_watch *watch = NULL;
    char *json = NULL;
    uint64_t revision = 0;
    char phase[32] = "";
    char last[32] = "";

    /* List first, then watch from the list's revision: no change is missed in between. */
    if (check("listing pods", podvisor_objects_list(client, "Pod", s->namespace_, &json, &revision))) {
        return -1;
    }
    podvisor_free(json);
    if (check("watching pods", podvisor_objects_watch(client, "Pod", s->namespace_, revision, &watch))) {
        return -1;
    }
    double deadline = now_s() + s->timeout_s;
    int result = -1;
    for (;;) {
        pod_phase(client, s, phase, sizeof phase);
        if (strcmp(phase, last) != 0) {
            printf("pod %s/%s: %s\n", s->namespace_, s->pod, phase[0] ? phase : "(no phase yet)");
            strcpy(last, phase);
        }
        if (strcmp(phase, "Running") == 0 || strcmp(phase, "Succeeded") == 0) {
            result = 0;
            break;
        }
        if (strcmp(phase, "Failed") == 0) {
            fprintf(stderr, "host_agent: pod %s failed\n", s->pod);
            break;
        }
        if (now_s() > deadline) {
            fprintf(stderr, "host_agent: pod %s did not run within %d s\n", s->pod, s->timeout_s);
            break;
        }
        /* Wake on the next change of any pod of the namespace, or re-check after a second. */
        podvisor_error_code code = podvisor_object_watch_next(watch, 1000, &json);
        if (code == PODVISOR_OK) {
            podvisor_free(json);
            json = NULL;
        } else if (code != PODVISOR_ETIMEOUT) {
            check("waiting for a pod change", code);
            break;
        }
    }
    podvisor_object_watch_free(watch);
    return result;
}

/* Prints the pod's logs once the container has written something. */
static int print_logs(podvisor_client *client, const struct settings *s) {
    double deadline = now_s() + s->timeout_s;
    for (;;) {
        char *text = NULL;
        podvisor_error_code code = podvisor_pod_logs(client, s->namespace_, s->pod, NULL, &text);
        if (code == PODVISOR_OK && text[0] != '\0') {
            printf("----- logs of pod %s\n%s-----\n", s->pod, text);
            podvisor_free(text);
            return 0;
        }
        podvisor_free(text);
        if (now_s() > deadline) {
            if (code == PODVISOR_OK) {
                fprintf(stderr, "host_agent: pod %s wrote no log within %d s\n", s->pod, s->timeout_s);
            } else {
                check("reading the pod's logs", code);
            }
            return -1;
        }
        usleep(200 * 1000);
    }
}

/* Calls `fn` with the namespace and name of each pod an apply summary names
 * ("pod/<namespace>/<name> <outcome>" lines); stops at the first non-zero result. */
static int each_pod(const char *summary, int (*fn)(const char *ns, const char *name, void *arg),
                    void *arg) {
    const char *line = summary;
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char ns[64], name[254];
        if (sscanf(line, "pod/%63[^/]/%253[^ \n]", ns, name) == 2 && len > 4) {
            int r = fn(ns, name, arg);
            if (r != 0) {
                return r;
            }
        }
        line = end ? end + 1 : NULL;
    }
    return 0;
}

/* Picks the pod to follow: --pod, or the first the manifests create. */
static int pick_pod(const char *ns, const char *name, void *arg) {
    struct settings *s = arg;
    if (s->pod_flag == NULL || strcmp(s->pod_flag, name) == 0) {
        snprintf(s->namespace_, sizeof s->namespace_, "%s", ns);
        snprintf(s->pod, sizeof s->pod, "%s", name);
        return 1;
    }
    return 0;
}

struct deleter {
    podvisor_client *client;
    int timeout_s;
    int failed;
};

/* Deletes one pod and waits until its node agent has removed it. */
static int delete_pod(const char *ns, const char *name, void *arg) {
    struct deleter *d = arg;
    podvisor_error_code code = podvisor_objects_delete(d->client, "Pod", ns, name);
    if (code == PODVISOR_ENOTFOUND) {
        return 0;
    }
    if (check("deleting a pod", code)) {
        d->failed = 1;
        return 0;
    }
    double deadline = now_s() + d->timeout_s;
    char *json = NULL;
    while ((code = podvisor_objects_get(d->client, "Pod", ns, name, &json)) == PODVISOR_OK) {
        podvisor_free(json);
        json = NULL;
        if (now_s() > deadline) {
            fprintf(stderr, "host_agent: pod %s/%s still there %d s after its delete\n", ns,
                    name, d->timeout_s);
            d->failed = 1;
            return 0;
        }
        usleep(200 * 1000);
    }
    if (code != PODVISOR_ENOTFOUND) {
        check("waiting for a pod to go", code);
        d->failed = 1;
        return 0;
    }
    printf("pod %s/%s deleted\n", ns, name);
    return 0;
}

/* Splits "a,b,c" into a NULL-terminated array of copies; NULL for an empty item. */
static char **split_endpoints(const char *list, size_t *n) {
    size_t cap = 1;
    for (const char *c = list; *c; c++) {
        cap += *c == ',';
    }
    char **out = calloc(cap + 1, sizeof *out);
    char *copy = strdup(list);
    if (out == NULL || copy == NULL) {
        free(out);
        free(copy);
        return NULL;
    }
    *n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        out[(*n)++] = strdup(tok);
    }
    free(copy);
    return out;
}

static int run(struct settings *s) {
    struct embedded e;
    const char *endpoint = NULL;
    char **endpoints = NULL;
    size_t n = 0;
    podvisor_client *client = NULL;
    char *summary = NULL;
    int status = 1;

    memset(&e, 0, sizeof e);
    printf("libpodvisor %s (ABI %u)\n", podvisor_version(), podvisor_abi_version());
    if (podvisor_abi_version() != PODVISOR_ABI_VERSION) {
        fprintf(stderr, "host_agent: built for ABI %d, loaded ABI %u\n", PODVISOR_ABI_VERSION,
                podvisor_abi_version());
        return 1;
    }
    if (s->masters == NULL) {
        if (start_embedded(&e, &endpoint) != 0) {
            goto out;
        }
        endpoints = split_endpoints(endpoint, &n);
    } else {
        endpoints = split_endpoints(s->masters, &n);
    }
    if (endpoints == NULL) {
        fprintf(stderr, "host_agent: out of memory\n");
        goto out;
    }

    podvisor_client_options copts;
    if (check("podvisor_client_options_init", podvisor_client_options_init(&copts, sizeof copts))) {
        goto out;
    }
    copts.endpoints = (const char *const *)endpoints;
    copts.endpoints_len = n;
    copts.timeout_ms = (uint32_t)s->timeout_s * 1000;
    if (check("connecting to the masters", podvisor_client_connect(&copts, &client))) {
        goto out;
    }
    if (s->masters == NULL && start_embedded_workers(&e, client) != 0) {
        goto out;
    }

    podvisor_error_code code =
        s->manifest ? podvisor_objects_apply_file(client, s->manifest, "host-agent-c", &summary)
                    : podvisor_objects_apply(client, BUILTIN_POD, strlen(BUILTIN_POD),
                                             "host-agent-c", &summary);
    if (check("applying the manifests", code)) {
        goto out;
    }
    printf("applied:\n%s\n", summary);
    if (each_pod(summary, pick_pod, s) == 0) {
        fprintf(stderr, "host_agent: the manifests create %s\n",
                s->pod_flag ? "no pod of that --pod name" : "no pod");
        goto out;
    }

    if (watch_until_running(client, s) == 0 && print_logs(client, s) == 0) {
        /* A pod that ran and ended badly, or is failing already, is a failure too. */
        char phase[32];
        pod_phase(client, s, phase, sizeof phase);
        if (strcmp(phase, "Failed") == 0) {
            fprintf(stderr, "host_agent: pod %s failed\n", s->pod);
        } else {
            status = 0;
        }
    }

out:
    if (summary != NULL) {
        struct deleter d = {client, s->timeout_s, 0};
        each_pod(summary, delete_pod, &d);
        if (d.failed) {
            status = 1;
        }
        podvisor_free(summary);
    }
    podvisor_client_free(client);
    if (s->masters == NULL) {
        stop_embedded(&e);
    }
    for (size_t i = 0; endpoints && endpoints[i]; i++) {
        free(endpoints[i]);
    }
    free(endpoints);
    return status;
}

static int usage(const char *why) {
    fprintf(stderr,
            "host_agent: %s\n"
            "usage: host_agent [--masters ADDR[,ADDR...]] [--manifest FILE] [--pod NAME]\n"
            "                  [--timeout SECONDS]\n",
            why);
    return 2;
}

int main(int argc, char **argv) {
    struct settings s = {NULL, NULL, NULL, 120, "", ""};
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            usage("applies a pod, waits until it runs, prints its logs and deletes it");
            return 0;
        }
        if (i + 1 >= argc) {
            return usage("every flag takes a value");
        }
        const char *value = argv[++i];
        if (strcmp(flag, "--masters") == 0) {
            s.masters = value;
        } else if (strcmp(flag, "--manifest") == 0) {
            s.manifest = value;
        } else if (strcmp(flag, "--pod") == 0) {
            s.pod_flag = value;
        } else if (strcmp(flag, "--timeout") == 0) {
            char *end = NULL;
            long secs = strtol(value, &end, 10);
            if (*value == '\0' || *end != '\0' || secs <= 0 || secs > 3600) {
                return usage("--timeout takes a whole number of seconds from 1 to 3600");
            }
            s.timeout_s = (int)secs;
        } else {
            return usage("unknown flag");
        }
    }
    return run(&s);
}
