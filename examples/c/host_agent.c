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
 * Other flags: --manifest FILE (a pod manifest; a built-in busybox pod otherwise), --pod NAME
 * (the pod the manifest creates; "hello-c" by default), --namespace NS, --timeout SECONDS.
 * Exit status 0 when the pod ran and its logs were read, 1 otherwise, 2 for bad usage.
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
    const char *pod;
    const char *namespace_;
    int timeout_s;
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

/* Deletes the pod and waits until its node agent has removed it. */
static int delete_pod(podvisor_client *client, const struct settings *s) {
    if (check("deleting the pod", podvisor_objects_delete(client, "Pod", s->namespace_, s->pod))) {
        return -1;
    }
    double deadline = now_s() + s->timeout_s;
    char *json = NULL;
    podvisor_error_code code;
    while ((code = podvisor_objects_get(client, "Pod", s->namespace_, s->pod, &json)) == PODVISOR_OK) {
        podvisor_free(json);
        json = NULL;
        if (now_s() > deadline) {
            fprintf(stderr, "host_agent: pod %s still there %d s after its delete\n", s->pod,
                    s->timeout_s);
            return -1;
        }
        usleep(200 * 1000);
    }
    if (code != PODVISOR_ENOTFOUND) {
        return check("waiting for the pod to go", code);
    }
    printf("pod %s/%s deleted\n", s->namespace_, s->pod);
    return 0;
}

static int run(const struct settings *s) {
    struct embedded e;
    const char *endpoint = NULL;
    char endpoints_buf[512];
    const char *endpoints[8];
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
        endpoints[n++] = endpoint;
    } else {
        snprintf(endpoints_buf, sizeof endpoints_buf, "%s", s->masters);
        for (char *tok = strtok(endpoints_buf, ","); tok && n < 8; tok = strtok(NULL, ",")) {
            endpoints[n++] = tok;
        }
    }

    podvisor_client_options copts;
    if (check("podvisor_client_options_init", podvisor_client_options_init(&copts, sizeof copts))) {
        goto out;
    }
    copts.endpoints = endpoints;
    copts.endpoints_len = n;
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
    if (check("applying the manifest", code)) {
        goto out;
    }
    printf("applied:\n%s\n", summary);
    podvisor_free(summary);

    if (watch_until_running(client, s) == 0 && print_logs(client, s) == 0) {
        status = 0;
    }
    if (delete_pod(client, s) != 0) {
        status = 1;
    }

out:
    podvisor_client_free(client);
    if (s->masters == NULL) {
        stop_embedded(&e);
    }
    return status;
}

static int usage(const char *why) {
    fprintf(stderr,
            "host_agent: %s\n"
            "usage: host_agent [--masters ADDR[,ADDR...]] [--manifest FILE] [--pod NAME]\n"
            "                  [--namespace NS] [--timeout SECONDS]\n",
            why);
    return 2;
}

int main(int argc, char **argv) {
    struct settings s = {NULL, NULL, "hello-c", "default", 120};
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (i + 1 >= argc) {
            return usage("every flag takes a value");
        }
        const char *value = argv[++i];
        if (strcmp(flag, "--masters") == 0) {
            s.masters = value;
        } else if (strcmp(flag, "--manifest") == 0) {
            s.manifest = value;
        } else if (strcmp(flag, "--pod") == 0) {
            s.pod = value;
        } else if (strcmp(flag, "--namespace") == 0) {
            s.namespace_ = value;
        } else if (strcmp(flag, "--timeout") == 0) {
            s.timeout_s = atoi(value);
            if (s.timeout_s <= 0) {
                return usage("--timeout takes a positive number of seconds");
            }
        } else {
            return usage("unknown flag");
        }
    }
    return run(&s);
}
