// Command hostagent is a host agent in Go over libpodvisor, the same as examples/c/host_agent.c:
// it applies a pod manifest, watches the pod until it runs, prints the pod's logs, and deletes
// it again.
//
// It connects to running masters (those of `podvisor cluster up` or `make demo`):
//
//	hostagent -masters 127.0.0.1:23790,127.0.0.1:23791,127.0.0.1:23792
//
// or, without -masters, starts an embedded cluster in this process: one store master, the
// controllers and a node agent. The node agent needs the static podvisor agent
// (PODVISOR_AGENT) and a cache holding images/busybox (PODVISOR_CACHE, default
// ~/.cache/podvisor).
//
// The pods the manifests create are deleted at the end, whatever happened; other objects they
// hold stay. The exit status is 0 when the pod ran, its logs were read and it did not fail.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"podvisor.example/go/podvisor"
)

const builtinPod = `apiVersion: v1
kind: Pod
metadata:
  name: hello-go
spec:
  runtimeClassName: namespaces
  containers:
    - name: hello
      image: busybox
      command: [/bin/busybox, sh, -c]
      args: ['echo hello from a Go host agent; echo running in $(hostname); exec sleep 600']
`

type settings struct {
	masters, manifest, podFlag string
	timeout                    time.Duration
	namespace, pod             string // the pod followed, from the apply's summary
}

func main() {
	var s settings
	flag.StringVar(&s.masters, "masters", "", "client addresses of running masters, comma-separated; an embedded cluster when empty")
	flag.StringVar(&s.manifest, "manifest", "", "a pod manifest file; a built-in busybox pod when empty")
	flag.StringVar(&s.podFlag, "pod", "", "which of the pods the manifests create to follow; the first when empty")
	flag.DurationVar(&s.timeout, "timeout", 120*time.Second, "how long to wait for each step and each store call")
	flag.Parse()
	if s.timeout <= 0 || s.timeout > time.Hour {
		fmt.Fprintln(os.Stderr, "hostagent: -timeout takes a duration from 1ms to 1h")
		os.Exit(2)
	}
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "hostagent: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	if err := run(s); err != nil {
		fmt.Fprintf(os.Stderr, "hostagent: %v\n", err)
		os.Exit(1)
	}
}

// closers stops what was started, last first.
type closers []func() error

func (c *closers) add(f func() error) { *c = append(*c, f) }

func (c *closers) close() {
	for i := len(*c) - 1; i >= 0; i-- {
		if err := (*c)[i](); err != nil {
			fmt.Fprintf(os.Stderr, "hostagent: stopping: %v\n", err)
		}
	}
}

func run(s settings) (runErr error) {
	fmt.Printf("libpodvisor %s (ABI %d)\n", podvisor.Version(), podvisor.ABIVersion())
	if podvisor.ABIVersion() != podvisor.HeaderABIVersion {
		return fmt.Errorf("built for ABI %d, loaded ABI %d", podvisor.HeaderABIVersion, podvisor.ABIVersion())
	}
	var stop closers
	defer stop.close()

	endpoints := strings.Split(s.masters, ",")
	if s.masters == "" {
		endpoint, err := startMaster(&stop)
		if err != nil {
			return err
		}
		endpoints = []string{endpoint}
	}
	client, err := podvisor.ConnectTimeout(endpoints, s.timeout)
	if err != nil {
		return fmt.Errorf("connecting to %v: %w", endpoints, err)
	}
	stop.add(client.Close)
	if s.masters == "" {
		if err := startWorkers(client, &stop); err != nil {
			return err
		}
	}

	var summary string
	if s.manifest != "" {
		summary, err = client.ApplyFile(s.manifest, "host-agent-go")
	} else {
		summary, err = client.Apply(builtinPod, "host-agent-go")
	}
	if err != nil {
		return fmt.Errorf("applying the manifests: %w", err)
	}
	fmt.Printf("applied:\n%s\n", summary)
	pods := appliedPods(summary)
	defer func() {
		if err := deletePods(client, pods, s.timeout); err != nil && runErr == nil {
			runErr = err
		}
	}()
	for _, p := range pods {
		if s.podFlag == "" || s.podFlag == p[1] {
			s.namespace, s.pod = p[0], p[1]
			break
		}
	}
	if s.pod == "" {
		if s.podFlag != "" {
			return fmt.Errorf("the manifests create no pod %q", s.podFlag)
		}
		return errors.New("the manifests create no pod")
	}

	if err := watchUntilRunning(client, s); err != nil {
		return err
	}
	if err := printLogs(client, s); err != nil {
		return err
	}
	// A pod that ran and ended badly, or is failing already, is a failure too.
	if phase, err := podPhase(client, s); err != nil {
		return err
	} else if phase == "Failed" {
		return fmt.Errorf("pod %s failed", s.pod)
	}
	return nil
}

// appliedPods reads the namespace and name of each pod an apply summary names
// ("pod/<namespace>/<name> <outcome>" lines).
func appliedPods(summary string) [][2]string {
	var pods [][2]string
	for _, line := range strings.Split(summary, "\n") {
		ref, _, _ := strings.Cut(line, " ")
		parts := strings.Split(ref, "/")
		if len(parts) == 3 && parts[0] == "pod" {
			pods = append(pods, [2]string{parts[1], parts[2]})
		}
	}
	return pods
}

// startMaster starts a one-member store in this process and waits for it to lead.
func startMaster(stop *closers) (string, error) {
	if os.Getenv("PODVISOR_AGENT") == "" {
		return "", errors.New("without -masters, PODVISOR_AGENT must name the static podvisor agent (vmm/agent/build-static prints it)")
	}
	dir, err := os.MkdirTemp("", "podvisor-host-agent-go-")
	if err != nil {
		return "", err
	}
	stop.add(func() error { return os.RemoveAll(dir) })
	peer, client := freeAddr(), freeAddr()
	master, err := podvisor.StartMaster(podvisor.MasterOptions{
		ID:      1,
		DataDir: filepath.Join(dir, "master"),
		Members: []string{fmt.Sprintf("1=%s,%s", peer, client)},
	})
	if err != nil {
		return "", fmt.Errorf("starting the embedded master: %w", err)
	}
	stop.add(master.Close)
	fmt.Printf("embedded master serving clients on %s\n", client)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		leader, err := master.IsLeader()
		if err != nil {
			return "", err
		}
		if leader {
			return client, nil
		}
		if time.Now().After(deadline) {
			return "", errors.New("the embedded master elected no leader in 10 s")
		}
	}
}

// startWorkers starts the controllers and a node agent in this process.
func startWorkers(client *podvisor.Client, stop *closers) error {
	controllers, err := client.StartControllers("host-agent-go", false)
	if err != nil {
		return fmt.Errorf("starting the controllers: %w", err)
	}
	stop.add(controllers.Close)
	cache := os.Getenv("PODVISOR_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "podvisor")
	}
	state, err := os.MkdirTemp("", "podvisor-host-agent-go-node-")
	if err != nil {
		return err
	}
	stop.add(func() error { return os.RemoveAll(state) })
	node, err := client.StartNodeAgent(podvisor.NodeAgentOptions{
		Name:        "host-agent-go",
		StateDir:    state,
		AgentBinary: os.Getenv("PODVISOR_AGENT"),
		CacheDir:    cache,
	})
	if err != nil {
		return fmt.Errorf("starting the node agent: %w", err)
	}
	stop.add(node.Close)
	if addr, err := node.Address(); err == nil {
		fmt.Printf("embedded node agent host-agent-go serving logs on %s\n", addr)
	}
	return nil
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// podPhase reads the pod's status.phase ("" when it has none yet).
func podPhase(client *podvisor.Client, s settings) (string, error) {
	raw, err := client.GetObject("Pod", s.namespace, s.pod)
	if err != nil {
		return "", err
	}
	var pod struct {
		Status struct {
			Phase string `json:"phase"`
		} `json:"status"`
	}
	if err := json.Unmarshal(raw, &pod); err != nil {
		return "", fmt.Errorf("decoding pod %s: %w", s.pod, err)
	}
	return pod.Status.Phase, nil
}

// watchUntilRunning follows the namespace's pods until this one runs or has run.
func watchUntilRunning(client *podvisor.Client, s settings) error {
	// List, then watch from the list's revision, so no change between the two is missed.
	_, revision, err := client.ListObjects("Pod", s.namespace)
	if err != nil {
		return err
	}
	watch, err := client.WatchObjects("Pod", s.namespace, revision)
	if err != nil {
		return err
	}
	defer watch.Close()
	deadline := time.Now().Add(s.timeout)
	last := "-"
	for {
		phase, err := podPhase(client, s)
		if err != nil {
			return err
		}
		if phase != last {
			fmt.Printf("pod %s/%s: %s\n", s.namespace, s.pod, phase)
			last = phase
		}
		switch phase {
		case "Running", "Succeeded":
			return nil
		case "Failed":
			return fmt.Errorf("pod %s failed", s.pod)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pod %s did not run within %v", s.pod, s.timeout)
		}
		// Wake on the next change, or look again after a second.
		if _, err := watch.Next(time.Second); err != nil && !errors.Is(err, &podvisor.Error{Code: podvisor.ErrTimeout}) {
			return fmt.Errorf("watching pods: %w", err)
		}
	}
}

// printLogs prints the pod's logs once its container has written something.
func printLogs(client *podvisor.Client, s settings) error {
	deadline := time.Now().Add(s.timeout)
	for {
		text, err := client.PodLogs(s.namespace, s.pod, "")
		if err == nil && text != "" {
			fmt.Printf("----- logs of pod %s\n%s-----\n", s.pod, text)
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("no log lines")
			}
			return fmt.Errorf("reading the logs of pod %s: %w", s.pod, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// deletePods deletes the pods and waits until their node agents have removed them.
func deletePods(client *podvisor.Client, pods [][2]string, timeout time.Duration) error {
	var failed error
	for _, p := range pods {
		if err := deletePod(client, p[0], p[1], timeout); err != nil && failed == nil {
			failed = err
		}
	}
	return failed
}

// deletePod deletes one pod and waits until its node agent has removed it.
func deletePod(client *podvisor.Client, namespace, name string, timeout time.Duration) error {
	notFound := &podvisor.Error{Code: podvisor.ErrNotFound}
	if err := client.DeleteObject("Pod", namespace, name); errors.Is(err, notFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("deleting pod %s: %w", name, err)
	}
	for deadline := time.Now().Add(timeout); ; time.Sleep(200 * time.Millisecond) {
		_, err := client.GetObject("Pod", namespace, name)
		if errors.Is(err, notFound) {
			fmt.Printf("pod %s/%s deleted\n", namespace, name)
			return nil
		}
		if err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pod %s still there %v after its delete", name, timeout)
		}
	}
}
