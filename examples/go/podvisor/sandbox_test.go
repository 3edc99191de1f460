package podvisor

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

// readAll reads a process's output until it is done.
func readAll(t *testing.T, p *Process) (stdout, stderr string) {
	t.Helper()
	for {
		data, isErr, err := p.Read(30 * time.Second)
		if errors.Is(err, &Error{Code: ErrDone}) {
			return stdout, stderr
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if isErr {
			stderr += string(data)
		} else {
			stdout += string(data)
		}
	}
}

func TestMicroVMSandboxIsRefusedWhereTheHostCannotRunIt(t *testing.T) {
	_, err := CreateSandbox(SandboxOptions{
		ID: "go-vm", Isolation: MicroVM, StateDir: t.TempDir(),
		GuestKernel: "/nonexistent/vmlinux", GuestInitrd: "/nonexistent/initramfs",
	})
	if !errors.Is(err, &Error{Code: ErrUnsupported}) {
		t.Fatalf("want ErrUnsupported (no vsock in the VMM yet), got %v", err)
	}
}

func TestNamespaceSandboxRunsExecsSignalsAndDestroys(t *testing.T) {
	agent, image := os.Getenv("PODVISOR_AGENT"), os.Getenv("PODVISOR_TEST_IMAGE")
	if agent == "" || image == "" || os.Geteuid() != 0 {
		t.Skip("needs root, PODVISOR_AGENT and PODVISOR_TEST_IMAGE (make test-ffi sets them)")
	}
	s, err := CreateSandbox(SandboxOptions{ID: "go-run", StateDir: t.TempDir(), AgentBinary: agent})
	if err != nil {
		t.Fatalf("CreateSandbox: %v", err)
	}
	defer s.Close()

	main, err := s.Run(ContainerOptions{
		Name: "main", Image: image, Args: []string{"sh", "-c", "echo up; echo warn >&2; sleep 1000"},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	defer main.Close()
	// stdout and stderr are two pipes: "warn" may come before or after "up".
	var earlyOut, earlyErr string
	for earlyOut != "up\n" {
		data, isErr, err := main.Read(30 * time.Second)
		if err != nil {
			t.Fatalf("Read: %q %v (so far %q, %q)", data, err, earlyOut, earlyErr)
		}
		if isErr {
			earlyErr += string(data)
		} else {
			earlyOut += string(data)
		}
		if len(earlyOut) > 3 || len(earlyErr) > 5 {
			t.Fatalf("unexpected output %q, %q", earlyOut, earlyErr)
		}
	}

	cat, err := s.Exec("main", ExecOptions{Args: []string{"cat"}, Stdin: true})
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	defer cat.Close()
	if err := cat.WriteStdin([]byte("through stdin\n")); err != nil {
		t.Fatalf("WriteStdin: %v", err)
	}
	if err := cat.CloseStdin(); err != nil {
		t.Fatalf("CloseStdin: %v", err)
	}
	if out, _ := readAll(t, cat); out != "through stdin\n" {
		t.Fatalf("cat wrote %q", out)
	}
	if st, err := cat.Wait(-1); err != nil || st.Signaled || st.Code != 0 {
		t.Fatalf("cat: %+v %v", st, err)
	}

	sleeper, err := s.Exec("main", ExecOptions{Args: []string{"sleep", "1000"}})
	if err != nil {
		t.Fatalf("Exec sleep: %v", err)
	}
	defer sleeper.Close()
	if _, err := sleeper.Wait(10 * time.Millisecond); !errors.Is(err, &Error{Code: ErrTimeout}) {
		t.Fatalf("Wait on a sleeper: %v", err)
	}
	if err := sleeper.Signal(int(syscall.SIGKILL)); err != nil {
		t.Fatalf("Signal: %v", err)
	}
	if st, err := sleeper.Wait(30 * time.Second); err != nil || !st.Signaled || st.Signal != int(syscall.SIGKILL) {
		t.Fatalf("sleeper: %+v %v", st, err)
	}

	if _, err := s.Stop("main", 100*time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, stderr := readAll(t, main); earlyErr+stderr != "warn\n" {
		t.Fatalf("main wrote %q to stderr", earlyErr+stderr)
	}
	if err := s.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if err := s.Destroy(); !errors.Is(err, &Error{Code: ErrState}) {
		t.Fatalf("second Destroy: %v", err)
	}
}
