//! Pod and container status as kubelet reports it: each container's state with exit code,
//! reason (Completed, Error, OOMKilled, SandboxDied) and times, and the pod's phase derived
//! from them.

use podvisor_sandbox::ExitStatus;

use crate::objects::{ContainerState, ContainerStatus, PodPhase, Timestamp};

/// What the worker knows of one container.
#[derive(Debug, Clone)]
pub struct ContainerRun {
    name: String,
    state: ContainerState,
    /// How often it was started again.
    pub restart_count: u32,
    /// Whether its last run ended with exit code 0.
    last_succeeded: Option<bool>,
    /// Whether it was ever started: until then its pod is Pending.
    started: bool,
}

impl ContainerRun {
    /// A container not started yet.
    pub fn waiting(name: &str, reason: &str) -> Self {
        ContainerRun {
            name: name.to_string(),
            state: ContainerState::Waiting {
                reason: reason.to_string(),
            },
            restart_count: 0,
            last_succeeded: None,
            started: false,
        }
    }

    /// Whether the container runs now.
    pub fn is_running(&self) -> bool {
        matches!(self.state, ContainerState::Running { .. })
    }

    /// The container started now.
    pub fn running(&mut self) {
        self.state = ContainerState::Running {
            started_at: Timestamp::now(),
        };
        self.started = true;
    }

    /// The container could not be started.
    pub fn fail_to_start(&mut self, reason: &str) {
        self.state = ContainerState::Waiting {
            reason: reason.to_string(),
        };
        self.last_succeeded = Some(false);
    }

    /// The container ended with `status`; returns whether it succeeded (exit code 0).
    pub fn terminated(&mut self, status: ExitStatus) -> bool {
        let (exit_code, signal, reason) = exit_details(status);
        let started_at = match &self.state {
            ContainerState::Running { started_at } => Some(*started_at),
            _ => None,
        };
        self.state = ContainerState::Terminated {
            exit_code,
            signal,
            reason: reason.to_string(),
            started_at,
            finished_at: Timestamp::now(),
        };
        self.last_succeeded = Some(exit_code == 0);
        exit_code == 0
    }

    /// The sandbox died under the container: it ended with code 137 and reason SandboxDied.
    pub fn sandbox_died(&mut self) {
        let started_at = match &self.state {
            ContainerState::Running { started_at } => Some(*started_at),
            _ => None,
        };
        self.state = ContainerState::Terminated {
            exit_code: 137,
            signal: None,
            reason: "SandboxDied".into(),
            started_at,
            finished_at: Timestamp::now(),
        };
        self.last_succeeded = Some(false);
    }

    /// The status to report.
    pub fn status(&self) -> ContainerStatus {
        ContainerStatus {
            name: self.name.clone(),
            state: self.state.clone(),
            restart_count: self.restart_count,
        }
    }
}

/// Exit code (128 + signal for signals), signal and reason of an exit.
pub fn exit_details(status: ExitStatus) -> (i32, Option<i32>, &'static str) {
    match status {
        ExitStatus::Code(0) => (0, None, "Completed"),
        ExitStatus::Code(c) => (c, None, "Error"),
        ExitStatus::Signal { signal, oom_killed } => (
            128 + signal,
            Some(signal),
            if oom_killed { "OOMKilled" } else { "Error" },
        ),
    }
}

/// The pod's phase from its containers, as kubelet derives it: Pending until a container has
/// been started (a container that cannot be created keeps it Pending, its waiting reason says
/// why); Running while any runs or will restart; Succeeded when all ended with 0; Failed when
/// all ended and one did not, or the sandbox failed.
pub fn pod_phase(runs: &[&ContainerRun], will_restart: bool, sandbox_failed: bool) -> PodPhase {
    if runs.iter().any(|r| r.is_running()) {
        return PodPhase::Running;
    }
    if sandbox_failed {
        return PodPhase::Failed;
    }
    if !runs.iter().any(|r| r.started) {
        return PodPhase::Pending;
    }
    if will_restart {
        return PodPhase::Running;
    }
    if runs.iter().any(|r| r.last_succeeded.is_none()) {
        return PodPhase::Pending;
    }
    if runs.iter().all(|r| r.last_succeeded == Some(true)) {
        PodPhase::Succeeded
    } else {
        PodPhase::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_oom_kill_is_reported_as_oomkilled() {
        let mut run = ContainerRun::waiting("c", "ContainerCreating");
        run.running();
        assert!(!run.terminated(ExitStatus::Signal {
            signal: 9,
            oom_killed: true
        }));
        match run.status().state {
            ContainerState::Terminated {
                exit_code, reason, ..
            } => {
                assert_eq!((exit_code, reason.as_str()), (137, "OOMKilled"));
            }
            other => panic!("unexpected state {other:?}"),
        }
    }

    #[test]
    fn test_sandbox_death_is_never_succeeded() {
        let mut a = ContainerRun::waiting("a", "");
        a.running();
        a.terminated(ExitStatus::Code(0));
        let mut b = ContainerRun::waiting("b", "");
        b.running();
        b.sandbox_died();
        assert_eq!(pod_phase(&[&a, &b], false, true), PodPhase::Failed);
        assert_eq!(pod_phase(&[&a], false, false), PodPhase::Succeeded);
    }

    #[test]
    fn test_phase_is_running_while_a_restart_is_due() {
        let mut a = ContainerRun::waiting("a", "");
        a.running();
        a.terminated(ExitStatus::Code(1));
        assert_eq!(pod_phase(&[&a], true, false), PodPhase::Running);
        assert_eq!(pod_phase(&[&a], false, false), PodPhase::Failed);
    }

    #[test]
    fn test_phase_stays_pending_while_no_container_could_be_created() {
        let mut a = ContainerRun::waiting("a", "ContainerCreating");
        a.fail_to_start("CreateContainerError: image not found");
        assert_eq!(pod_phase(&[&a], true, false), PodPhase::Pending);
        assert_eq!(pod_phase(&[&a], false, false), PodPhase::Pending);
        match a.status().state {
            ContainerState::Waiting { reason } => {
                assert!(reason.starts_with("CreateContainerError"))
            }
            other => panic!("unexpected state {other:?}"),
        }
    }

    #[test]
    fn test_phase_is_running_once_one_container_started() {
        let mut a = ContainerRun::waiting("a", "");
        a.running();
        let mut b = ContainerRun::waiting("b", "");
        b.fail_to_start("CreateContainerError: image not found");
        assert_eq!(pod_phase(&[&a, &b], true, false), PodPhase::Running);
        a.terminated(ExitStatus::Code(1));
        a.fail_to_start("CreateContainerError: image not found");
        assert_eq!(pod_phase(&[&a, &b], true, false), PodPhase::Running);
    }
}
