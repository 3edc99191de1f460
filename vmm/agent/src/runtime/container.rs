//! Containers as the agent runs them: their init, their processes, output and exit.
//!
//! A container is a `container-init` process in fresh mount, pid, uts and ipc namespaces, under
//! its own cgroup. Its process and every exec'd process get three pipes; two reader threads per
//! process stream the output to the host, and the exit is reported only after both streams hit
//! end of file, so no byte is lost or reordered behind the exit.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::reaper::Reaper;
use super::{CONFIG_FD, ExecConfig, InitConfig, REPORT_FD, Report, START_FD, sys};
use crate::cgroup::Cgroup;
use crate::protocol::{
    AgentError, AgentMessage, ContainerSpec, ErrorKind, ExitStatus, FrameReader, FrameWriter,
    MAX_CHUNK_LEN, ProcessRef, ProcessSpec, Stream,
};

/// Where the agent sends messages to the host.
pub type Outbox = Arc<Mutex<FrameWriter<Box<dyn Write + Send>>>>;

/// How long destroy waits for the processes of a container to go.
const DESTROY_TIMEOUT: Duration = Duration::from_secs(10);

fn sys_err(what: impl std::fmt::Display) -> AgentError {
    AgentError::new(ErrorKind::System, what.to_string())
}

/// The end of a process, shared between the thread that learns it and those that wait for it.
#[derive(Default)]
pub struct ExitCell {
    status: Mutex<Option<ExitStatus>>,
    cond: Condvar,
}

impl ExitCell {
    fn set(&self, status: ExitStatus) {
        *self.status.lock().expect("exit lock is never poisoned") = Some(status);
        self.cond.notify_all();
    }

    /// The status, once known.
    pub fn get(&self) -> Option<ExitStatus> {
        *self.status.lock().expect("exit lock is never poisoned")
    }

    /// Waits for the status, at most `timeout` when given.
    pub fn wait(&self, timeout: Option<Duration>) -> Option<ExitStatus> {
        let guard = self.status.lock().expect("exit lock is never poisoned");
        match timeout {
            None => *self
                .cond
                .wait_while(guard, |s| s.is_none())
                .expect("exit lock"),
            Some(t) => {
                *self
                    .cond
                    .wait_timeout_while(guard, t, |s| s.is_none())
                    .expect("exit lock")
                    .0
            }
        }
    }
}

/// One process of a container.
pub struct Process {
    /// Its pid in the agent's pid namespace, 0 until started.
    pub pid: Mutex<i32>,
    /// Feeds its stdin, in order; `None` closes it.
    pub stdin: Mutex<Option<Sender<Option<Vec<u8>>>>>,
    /// Its end.
    pub exit: Arc<ExitCell>,
}

/// One container.
pub struct Container {
    /// The container-init process, in the agent's pid namespace.
    pub init_pid: i32,
    /// The container's cgroup.
    pub cgroup: Cgroup,
    /// Writing one byte here starts the process; dropping it aborts a container never started.
    start: Mutex<Option<File>>,
    /// The container's process.
    pub main: Arc<Process>,
    /// Exec'd processes by exec id.
    pub execs: Mutex<HashMap<String, Arc<Process>>>,
    /// The init's end (raw status), taken by the monitor.
    init_exit: Mutex<Option<Receiver<i32>>>,
    report: Mutex<Option<FrameReader<File>>>,
    stdio: Mutex<Option<StdioReaders>>,
}

struct StdioReaders {
    readers: Vec<JoinHandle<()>>,
}

/// Pipes for one process: what the child gets and what the agent keeps.
struct Stdio {
    child: [File; 3],
    stdin: Option<File>,
    stdout: File,
    stderr: File,
}

fn stdio(with_stdin: bool) -> Result<Stdio, AgentError> {
    let (in_r, in_w) = if with_stdin {
        let (r, w) = sys::pipe().map_err(sys_err)?;
        (r, Some(w))
    } else {
        (File::open("/dev/null").map_err(sys_err)?, None)
    };
    let (out_r, out_w) = sys::pipe().map_err(sys_err)?;
    let (err_r, err_w) = sys::pipe().map_err(sys_err)?;
    Ok(Stdio {
        child: [in_r, out_w, err_w],
        stdin: in_w,
        stdout: out_r,
        stderr: err_r,
    })
}

fn send_config<T: serde::Serialize>(cfg: &T) -> Result<File, AgentError> {
    let (r, w) = sys::pipe().map_err(sys_err)?;
    let mut w = FrameWriter::new(w);
    w.write(cfg).map_err(sys_err)?;
    Ok(r)
}

fn spawn_stdin_writer(mut pipe: File) -> Sender<Option<Vec<u8>>> {
    let (tx, rx) = channel::<Option<Vec<u8>>>();
    thread::spawn(move || {
        while let Ok(Some(data)) = rx.recv() {
            if pipe.write_all(&data).is_err() {
                break;
            }
        }
    });
    tx
}

fn spawn_reader(
    mut pipe: File,
    process: ProcessRef,
    stream: Stream,
    out: Outbox,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = vec![0u8; MAX_CHUNK_LEN];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let msg = AgentMessage::Output {
                        process: process.clone(),
                        stream,
                        data: buf[..n].to_vec(),
                    };
                    if out.lock().expect("outbox lock").write(&msg).is_err() {
                        break;
                    }
                }
            }
        }
    })
}

impl Container {
    /// Creates the container: cgroup, namespaces and root, leaving its process waiting for
    /// [`Container::start`].
    pub fn create(
        spec: &ContainerSpec,
        parent: &Cgroup,
        reaper: &Reaper,
        out: &Outbox,
    ) -> Result<Arc<Self>, AgentError> {
        let root = std::path::Path::new(&spec.rootfs);
        if !root.is_absolute() || !root.is_dir() {
            return Err(AgentError::new(
                ErrorKind::InvalidArgument,
                format!("rootfs {} is not a directory", spec.rootfs),
            ));
        }
        if spec.process.args.is_empty() {
            return Err(AgentError::new(ErrorKind::InvalidArgument, "empty command"));
        }

        let cgroup = parent
            .child_for(
                &format!("ctr-{}", spec.id),
                spec.limits.cpu_millis.is_some(),
            )
            .map_err(|e| AgentError::new(ErrorKind::InvalidArgument, e.to_string()))?;
        cgroup.create().map_err(sys_err)?;
        if let Err(e) = cgroup.set_limits(&spec.limits) {
            let _ = cgroup.remove(Duration::from_secs(1));
            return Err(sys_err(e));
        }

        let result = Self::spawn_init(spec, cgroup.clone(), reaper, out);
        if result.is_err() {
            cgroup.kill_all();
            let _ = cgroup.remove(DESTROY_TIMEOUT);
        }
        result
    }

    fn spawn_init(
        spec: &ContainerSpec,
        cgroup: Cgroup,
        reaper: &Reaper,
        out: &Outbox,
    ) -> Result<Arc<Self>, AgentError> {
        let cfg = InitConfig {
            rootfs: spec.rootfs.clone(),
            hostname: spec.hostname.clone(),
            cgroup_procs: cgroup
                .procs_files()
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            process: spec.process.clone(),
        };
        let config = send_config(&cfg)?;
        let (report_r, report_w) = sys::pipe().map_err(sys_err)?;
        let (start_r, start_w) = sys::pipe().map_err(sys_err)?;
        let io = stdio(spec.process.stdin)?;
        let flags =
            libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
        let fds = [
            (0, io.child[0].as_raw_fd()),
            (1, io.child[1].as_raw_fd()),
            (2, io.child[2].as_raw_fd()),
            (CONFIG_FD, config.as_raw_fd()),
            (REPORT_FD, report_w.as_raw_fd()),
            (START_FD, start_r.as_raw_fd()),
        ];
        let (init_pid, init_exit) = reaper
            .spawn(|| sys::spawn_self(flags, "container-init", &fds))
            .map_err(sys_err)?;
        drop((io.child, config, report_w, start_r));

        let mut report = FrameReader::new(report_r);
        match report.read::<Report>() {
            Ok(Report::Ready) => {}
            Ok(Report::Failed(msg)) => {
                let _ = init_exit.recv();
                return Err(sys_err(format!("container {}: {msg}", spec.id)));
            }
            other => {
                let _ = init_exit.recv();
                return Err(sys_err(format!(
                    "container {}: init ended early ({other:?})",
                    spec.id
                )));
            }
        }

        let me = ProcessRef::main(&spec.id);
        let readers = vec![
            spawn_reader(io.stdout, me.clone(), Stream::Stdout, out.clone()),
            spawn_reader(io.stderr, me, Stream::Stderr, out.clone()),
        ];
        Ok(Arc::new(Self {
            init_pid,
            cgroup,
            start: Mutex::new(Some(start_w)),
            main: Arc::new(Process {
                pid: Mutex::new(0),
                stdin: Mutex::new(io.stdin.map(spawn_stdin_writer)),
                exit: Arc::default(),
            }),
            execs: Mutex::new(HashMap::new()),
            init_exit: Mutex::new(Some(init_exit)),
            report: Mutex::new(Some(report)),
            stdio: Mutex::new(Some(StdioReaders { readers })),
        }))
    }

    /// Starts the container's process and a monitor that reports its end.
    pub fn start(self: &Arc<Self>, id: &str, out: &Outbox) -> Result<(), AgentError> {
        let Some(mut start) = self.start.lock().expect("start lock").take() else {
            return Err(AgentError::new(
                ErrorKind::InvalidState,
                format!("{id} already started"),
            ));
        };
        start.write_all(&[1]).map_err(sys_err)?;
        drop(start);

        let mut report = self
            .report
            .lock()
            .expect("report lock")
            .take()
            .expect("report kept");
        match report.read::<Report>() {
            Ok(Report::Started(_)) => {
                *self.main.pid.lock().expect("pid lock") = self.main_pid().unwrap_or(0);
            }
            Ok(Report::Failed(msg)) => return Err(sys_err(format!("starting {id}: {msg}"))),
            other => return Err(sys_err(format!("starting {id}: {other:?}"))),
        }

        let me = self.clone();
        let (id, out) = (id.to_owned(), out.clone());
        thread::spawn(move || me.monitor(&id, report, &out));
        Ok(())
    }

    /// The container's process, found as the only child of its init.
    fn main_pid(&self) -> Option<i32> {
        let p = format!("/proc/{0}/task/{0}/children", self.init_pid);
        fs::read_to_string(p)
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    fn monitor(&self, id: &str, mut report: FrameReader<File>, out: &Outbox) {
        let reported = match report.read::<Report>() {
            Ok(Report::MainExited(raw)) => Some(ExitStatus::from_wait_status(raw)),
            _ => None,
        };
        let init_raw = self
            .init_exit
            .lock()
            .expect("init lock")
            .take()
            .and_then(|r| r.recv().ok());
        let mut status = reported.unwrap_or_else(|| {
            // The init itself was killed (stop after the grace period, destroy), and with it
            // the whole pid namespace.
            init_raw
                .map(ExitStatus::from_wait_status)
                .unwrap_or(ExitStatus::Signal {
                    signal: libc::SIGKILL,
                    oom_killed: false,
                })
        });
        if let ExitStatus::Signal {
            signal: libc::SIGKILL,
            oom_killed,
        } = &mut status
        {
            *oom_killed = self.cgroup.oom_kills().unwrap_or(0) > 0;
        }
        self.finish_output();
        self.main.exit.set(status);
        let _ = out
            .lock()
            .expect("outbox lock")
            .write(&AgentMessage::Exited {
                process: ProcessRef::main(id),
                status,
            });
    }

    fn finish_output(&self) {
        if let Some(s) = self.stdio.lock().expect("stdio lock").take() {
            for r in s.readers {
                let _ = r.join();
            }
        }
    }

    /// Whether the container's process was started and is still running.
    pub fn running(&self) -> bool {
        *self.main.pid.lock().expect("pid lock") != 0 && self.main.exit.get().is_none()
    }

    /// Runs another process in the running container.
    pub fn exec(
        self: &Arc<Self>,
        id: &str,
        exec_id: &str,
        spec: &ProcessSpec,
        reaper: &Reaper,
        out: &Outbox,
    ) -> Result<(), AgentError> {
        if !self.running() {
            return Err(AgentError::new(
                ErrorKind::InvalidState,
                format!("{id} is not running"),
            ));
        }
        if spec.args.is_empty() {
            return Err(AgentError::new(ErrorKind::InvalidArgument, "empty command"));
        }
        let mut execs = self.execs.lock().expect("execs lock");
        if execs.contains_key(exec_id) {
            return Err(AgentError::new(
                ErrorKind::AlreadyExists,
                format!("exec {exec_id} already exists in {id}"),
            ));
        }
        let cfg = ExecConfig {
            init_pid: self.init_pid,
            cgroup_procs: self
                .cgroup
                .procs_files()
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            process: spec.clone(),
        };
        let config = send_config(&cfg)?;
        let (report_r, report_w) = sys::pipe().map_err(sys_err)?;
        let io = stdio(spec.stdin)?;
        let fds = [
            (0, io.child[0].as_raw_fd()),
            (1, io.child[1].as_raw_fd()),
            (2, io.child[2].as_raw_fd()),
            (CONFIG_FD, config.as_raw_fd()),
            (REPORT_FD, report_w.as_raw_fd()),
        ];
        let (_shim, shim_exit) = reaper
            .spawn(|| sys::spawn_self(0, "exec-in", &fds))
            .map_err(sys_err)?;
        drop((io.child, config, report_w));

        let pid = match FrameReader::new(report_r).read::<Report>() {
            Ok(Report::Started(pid)) => pid,
            Ok(Report::Failed(msg)) => return Err(sys_err(format!("exec in {id}: {msg}"))),
            other => return Err(sys_err(format!("exec in {id}: {other:?}"))),
        };
        let me = ProcessRef::exec(id, exec_id);
        let readers = [
            spawn_reader(io.stdout, me.clone(), Stream::Stdout, out.clone()),
            spawn_reader(io.stderr, me.clone(), Stream::Stderr, out.clone()),
        ];
        let process = Arc::new(Process {
            pid: Mutex::new(pid),
            stdin: Mutex::new(io.stdin.map(spawn_stdin_writer)),
            exit: Arc::default(),
        });
        execs.insert(exec_id.to_owned(), process.clone());

        let out = out.clone();
        thread::spawn(move || {
            let raw = shim_exit.recv().unwrap_or(0);
            for r in readers {
                let _ = r.join();
            }
            let status = ExitStatus::from_wait_status(raw);
            process.exit.set(status);
            let _ = out
                .lock()
                .expect("outbox lock")
                .write(&AgentMessage::Exited {
                    process: me,
                    status,
                });
        });
        Ok(())
    }

    /// Looks up a process of the container.
    pub fn process(&self, exec_id: Option<&str>) -> Option<Arc<Process>> {
        match exec_id {
            None => Some(self.main.clone()),
            Some(e) => self.execs.lock().expect("execs lock").get(e).cloned(),
        }
    }

    /// Sends SIGTERM, waits up to `grace`, then kills the whole container.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] for a container that was never started: it has no process
    /// to stop and is removed instead.
    pub fn stop(&self, grace: Duration) -> Result<ExitStatus, AgentError> {
        if self.start.lock().expect("start lock").is_some() {
            return Err(AgentError::new(
                ErrorKind::InvalidState,
                "the container was never started; remove it instead",
            ));
        }
        let pid = *self.main.pid.lock().expect("pid lock");
        if pid != 0 && self.main.exit.get().is_none() {
            let _ = sys::kill(pid, libc::SIGTERM);
            if let Some(s) = self.main.exit.wait(Some(grace)) {
                return Ok(s);
            }
        }
        self.kill();
        Ok(self
            .main
            .exit
            .wait(Some(DESTROY_TIMEOUT))
            .unwrap_or(ExitStatus::Signal {
                signal: libc::SIGKILL,
                oom_killed: false,
            }))
    }

    /// Kills every process of the container.
    fn kill(&self) {
        let _ = sys::kill(self.init_pid, libc::SIGKILL);
        self.cgroup.kill_all();
    }

    /// Kills what is left and releases the cgroup. Mounts and namespaces go with the processes.
    pub fn destroy(&self) -> Result<(), AgentError> {
        // A container never started: closing its start pipe lets its init exit.
        let never_started = self.start.lock().expect("start lock").take().is_some();
        self.kill();
        if never_started {
            if let Some(rx) = self.init_exit.lock().expect("init lock").take() {
                let _ = rx.recv_timeout(DESTROY_TIMEOUT);
            }
            self.finish_output();
        } else {
            let _ = self.main.exit.wait(Some(DESTROY_TIMEOUT));
        }
        for p in self.execs.lock().expect("execs lock").values() {
            let _ = p.exit.wait(Some(DESTROY_TIMEOUT));
        }
        self.cgroup.remove(DESTROY_TIMEOUT).map_err(sys_err)
    }
}
