//! The options structs of sandboxes, containers and exec'd processes, and their reading into
//! the configurations of `podvisor_sandbox`.
//!
//! Each struct starts with its size and has an init function; the readers below check every
//! field and name the failing one as the header spells it (`opts->args`).

use std::ffi::c_char;
use std::mem::offset_of;
use std::net::Ipv4Addr;
use std::path::{Component, Path, PathBuf};

use ::podvisor_sandbox::{
    Cgroup, ContainerConfig, GuestConfig, ImageSource, Isolation, Limits, LogPolicy, NetworkConfig,
    ProcessSpec, SandboxConfig,
};

use crate::boundary::{arg_non_empty_str, arg_opt_str, arg_str_array, call};
use crate::error::{FfiError, FfiResult, podvisor_error_code};
use crate::options::{self, Input, Options};
use podvisor_error_code::*;

/// How a sandbox isolates its containers from the host. Passed as an `int32_t`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum podvisor_isolation {
    /// Linux namespaces and cgroups on the host; needs root.
    PODVISOR_ISOLATION_NAMESPACES = 0,
    /// A micro-VM of podvisor's VMM; needs hardware-assisted KVM and a guest image.
    PODVISOR_ISOLATION_MICROVM = 1,
}

/// How to create a sandbox. Initialise with `podvisor_sandbox_options_init`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct podvisor_sandbox_options {
    /// `sizeof(podvisor_sandbox_options)`, set by `podvisor_sandbox_options_init`.
    pub struct_size: usize,
    /// The sandbox's name, unique on the host: letters, digits, `-`, `_` and `.`, at most 128
    /// bytes. Required; borrowed for the call.
    pub id: *const c_char,
    /// A `podvisor_isolation`; default `PODVISOR_ISOLATION_NAMESPACES`.
    pub isolation: i32,
    /// Where sandboxes keep their state; `<state_dir>/<id>/` holds the container roots and
    /// logs and is removed when the sandbox is destroyed. Required; borrowed.
    pub state_dir: *const c_char,
    /// The static podvisor agent binary, run as PID 1 of the sandbox. Required for namespace
    /// isolation, unused for micro-VMs (the agent is in the guest image). Borrowed.
    pub agent_binary: *const c_char,
    /// The cgroup the sandbox's group is made under, as `/proc/self/cgroup` spells paths
    /// (`"/podvisor"`), resolved in each mounted hierarchy; NULL for the caller's own group.
    /// Borrowed.
    pub cgroup_parent: *const c_char,
    /// The host bridge to attach the sandbox's network to, or NULL for loopback only.
    /// Borrowed.
    pub bridge: *const c_char,
    /// With `bridge`: the sandbox's IPv4 address and prefix (`"10.88.0.5/24"`). Borrowed.
    pub address: *const c_char,
    /// With `bridge`: the IPv4 gateway (`"10.88.0.1"`). Borrowed.
    pub gateway: *const c_char,
    /// Micro-VM: the guest kernel. Borrowed.
    pub guest_kernel: *const c_char,
    /// Micro-VM: the initramfs holding the agent as `/init`. Borrowed.
    pub guest_initramfs: *const c_char,
    /// Micro-VM: vCPUs, 1 to 255; default 1.
    pub guest_vcpus: u32,
    /// Micro-VM: guest memory in MiB; default 256.
    pub guest_memory_mib: u32,
    /// The size a container log grows to before it is rotated, in bytes; default 10 MiB.
    pub log_max_bytes: u64,
    /// Rotated logs kept per container besides the current one; default 3.
    pub log_max_files: u32,
}

// SAFETY: repr(C), starts with `struct_size: usize`.
unsafe impl Options for podvisor_sandbox_options {
    const NAME: &'static str = "podvisor_sandbox_options";
    const KNOWN_SIZES: &'static [usize] = &[size_of::<podvisor_sandbox_options>()];

    fn defaults() -> Self {
        let logs = LogPolicy::default();
        Self {
            struct_size: size_of::<Self>(),
            id: std::ptr::null(),
            isolation: podvisor_isolation::PODVISOR_ISOLATION_NAMESPACES as i32,
            state_dir: std::ptr::null(),
            agent_binary: std::ptr::null(),
            cgroup_parent: std::ptr::null(),
            bridge: std::ptr::null(),
            address: std::ptr::null(),
            gateway: std::ptr::null(),
            guest_kernel: std::ptr::null(),
            guest_initramfs: std::ptr::null(),
            guest_vcpus: 1,
            guest_memory_mib: 256,
            log_max_bytes: logs.max_bytes,
            log_max_files: logs.max_files,
        }
    }
}

// SAFETY: pointers and integers only (the isolation is an `int32_t` checked against the enum),
// for which any value C stores is valid.
unsafe impl Input for podvisor_sandbox_options {}

/// A container to create in a sandbox. Initialise with `podvisor_container_options_init`.
///
/// Its root comes from exactly one of `image` (an OCI image layout, unpacked for the
/// container) and `rootfs` (a ready directory, used in place).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct podvisor_container_options {
    /// `sizeof(podvisor_container_options)`, set by `podvisor_container_options_init`.
    pub struct_size: usize,
    /// The container's name, unique in the sandbox (letters, digits, `-`, `_`, `.`).
    /// Required; borrowed for the call.
    pub name: *const c_char,
    /// An OCI image layout directory, or NULL when `rootfs` is given. Borrowed.
    pub image: *const c_char,
    /// The image's `org.opencontainers.image.ref.name` in the layout, or NULL for its first
    /// manifest. Borrowed.
    pub image_ref: *const c_char,
    /// A ready root directory, or NULL when `image` is given. Borrowed.
    pub rootfs: *const c_char,
    /// The program and its arguments (`args_len` strings), or NULL with 0 for the image's
    /// entrypoint and command. Borrowed.
    pub args: *const *const c_char,
    /// The number of strings in `args`.
    pub args_len: usize,
    /// `NAME=value` pairs, the whole environment (`env_len` strings), or NULL with 0 for the
    /// image's. Borrowed.
    pub env: *const *const c_char,
    /// The number of strings in `env`.
    pub env_len: usize,
    /// The working directory inside the container, or NULL for the image's (else `/`).
    /// Borrowed.
    pub cwd: *const c_char,
    /// `uid[:gid]` or a user name of the root's `/etc/passwd`, or NULL for the image's (else
    /// root). Borrowed.
    pub user: *const c_char,
    /// The container's host name, or NULL for its name. Borrowed.
    pub hostname: *const c_char,
    /// Whether the host writes the process's stdin (`podvisor_process_write_stdin`); if
    /// not, it reads `/dev/null`. Default false.
    pub stdin: bool,
    /// The memory limit in bytes, or 0 for none.
    pub memory_bytes: u64,
    /// The CPU limit in thousandths of a CPU, or 0 for none.
    pub cpu_millis: u64,
}

// SAFETY: repr(C), starts with `struct_size: usize`.
unsafe impl Options for podvisor_container_options {
    const NAME: &'static str = "podvisor_container_options";
    const KNOWN_SIZES: &'static [usize] = &[size_of::<podvisor_container_options>()];

    fn defaults() -> Self {
        Self {
            struct_size: size_of::<Self>(),
            name: std::ptr::null(),
            image: std::ptr::null(),
            image_ref: std::ptr::null(),
            rootfs: std::ptr::null(),
            args: std::ptr::null(),
            args_len: 0,
            env: std::ptr::null(),
            env_len: 0,
            cwd: std::ptr::null(),
            user: std::ptr::null(),
            hostname: std::ptr::null(),
            stdin: false,
            memory_bytes: 0,
            cpu_millis: 0,
        }
    }
}

// SAFETY: pointers and integers, for which any value C stores is valid, and the one bool,
// `stdin`, listed so that it is read as a byte.
unsafe impl Input for podvisor_container_options {
    const BOOL_FIELDS: &'static [usize] = &[offset_of!(podvisor_container_options, stdin)];
}

/// A process to run in a running container. Initialise with `podvisor_exec_options_init`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct podvisor_exec_options {
    /// `sizeof(podvisor_exec_options)`, set by `podvisor_exec_options_init`.
    pub struct_size: usize,
    /// The program and its arguments (`args_len` strings, at least one); a program without
    /// `/` is searched in `PATH`. Required; borrowed for the call.
    pub args: *const *const c_char,
    /// The number of strings in `args`.
    pub args_len: usize,
    /// `NAME=value` pairs, the whole environment, or NULL with 0 for none. Borrowed.
    pub env: *const *const c_char,
    /// The number of strings in `env`.
    pub env_len: usize,
    /// The working directory, or NULL for `/`. Borrowed.
    pub cwd: *const c_char,
    /// `uid[:gid]` or a user name, or NULL for root. Borrowed.
    pub user: *const c_char,
    /// Whether the host writes the process's stdin; if not, it reads `/dev/null`.
    pub stdin: bool,
}

// SAFETY: repr(C), starts with `struct_size: usize`.
unsafe impl Options for podvisor_exec_options {
    const NAME: &'static str = "podvisor_exec_options";
    const KNOWN_SIZES: &'static [usize] = &[size_of::<podvisor_exec_options>()];

    fn defaults() -> Self {
        Self {
            struct_size: size_of::<Self>(),
            args: std::ptr::null(),
            args_len: 0,
            env: std::ptr::null(),
            env_len: 0,
            cwd: std::ptr::null(),
            user: std::ptr::null(),
            stdin: false,
        }
    }
}

// SAFETY: pointers and integers, for which any value C stores is valid, and the one bool,
// `stdin`, listed so that it is read as a byte.
unsafe impl Input for podvisor_exec_options {
    const BOOL_FIELDS: &'static [usize] = &[offset_of!(podvisor_exec_options, stdin)];
}

/// Reads a string array that may be absent: length 0 gives an empty list, whatever the pointer.
///
/// # Safety
/// As for [`arg_str_array`].
unsafe fn arg_opt_str_array<'a>(
    p: *const *const c_char,
    len: usize,
    name: &'static str,
) -> FfiResult<Vec<&'a str>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: forwarded contract.
    unsafe { arg_str_array(p, len, name) }
}

fn owned(items: Vec<&str>) -> Vec<String> {
    items.into_iter().map(str::to_owned).collect()
}

/// Reads the process fields the container and exec options share.
///
/// # Safety
/// Every pointer is NULL or valid as the header documents for the options structs.
#[allow(clippy::too_many_arguments)]
unsafe fn process_spec(
    args: *const *const c_char,
    args_len: usize,
    args_required: bool,
    env: *const *const c_char,
    env_len: usize,
    cwd: *const c_char,
    user: *const c_char,
    stdin: bool,
) -> FfiResult<ProcessSpec> {
    // SAFETY: forwarded contract.
    let (args, env, cwd, user) = unsafe {
        (
            if args_required {
                arg_str_array(args, args_len, "opts->args")?
            } else {
                arg_opt_str_array(args, args_len, "opts->args")?
            },
            arg_opt_str_array(env, env_len, "opts->env")?,
            arg_opt_str(cwd, "opts->cwd")?,
            arg_opt_str(user, "opts->user")?,
        )
    };
    Ok(ProcessSpec {
        args: owned(args),
        env: owned(env),
        cwd: cwd.unwrap_or_default().to_owned(),
        user: user.unwrap_or_default().to_owned(),
        stdin,
    })
}

fn isolation(value: i32) -> FfiResult<Isolation> {
    match value {
        0 => Ok(Isolation::Namespaces),
        1 => Ok(Isolation::MicroVm),
        other => Err(FfiError::arg(
            PODVISOR_EINVAL,
            "opts->isolation",
            format!("opts->isolation {other} is not a podvisor_isolation"),
        )),
    }
}

/// Resolves a cgroup path in every hierarchy the caller's own group lives in.
fn cgroup_parent(path: &str) -> FfiResult<Cgroup> {
    let name = "opts->cgroup_parent";
    let escapes = Path::new(path)
        .components()
        .any(|c| !matches!(c, Component::RootDir | Component::Normal(_)));
    if !path.starts_with('/') || escapes || path.contains(':') || path.contains('\n') {
        return Err(FfiError::arg(
            PODVISOR_EINVAL,
            name,
            format!("{name} {path:?} is not an absolute cgroup path without `..`"),
        ));
    }
    let read = |file: &str| {
        std::fs::read_to_string(file).map_err(|e| FfiError::os(&format!("reading {file}"), &e))
    };
    let own = read("/proc/self/cgroup")?;
    let mountinfo = read("/proc/self/mountinfo")?;
    // The caller's `/proc/self/cgroup` with every hierarchy's path replaced by `path`.
    let moved: String = own
        .lines()
        .filter_map(|line| line.rsplit_once(':'))
        .map(|(hierarchy, _)| format!("{hierarchy}:{path}\n"))
        .collect();
    Cgroup::from_proc(&moved, &mountinfo).map_err(|e| {
        FfiError::arg(
            PODVISOR_EUNSUPPORTED,
            name,
            format!("no cgroup hierarchy for {name} {path:?}: {e}"),
        )
    })
}

fn ipv4(text: &str, name: &'static str) -> FfiResult<Ipv4Addr> {
    text.parse().map_err(|_| {
        FfiError::arg(
            PODVISOR_EINVAL,
            name,
            format!("{name} {text:?} is not an IPv4 address"),
        )
    })
}

/// Reads the network fields: none without a bridge, else an address with prefix and a gateway.
///
/// # Safety
/// The string fields of `opts` are NULL or NUL-terminated.
unsafe fn network(opts: &podvisor_sandbox_options) -> FfiResult<Option<NetworkConfig>> {
    // SAFETY: forwarded contract.
    let Some(bridge) = (unsafe { arg_opt_str(opts.bridge, "opts->bridge") })? else {
        return Ok(None);
    };
    // SAFETY: forwarded contract.
    let (address, gateway) = unsafe {
        (
            arg_non_empty_str(opts.address, "opts->address")?,
            arg_non_empty_str(opts.gateway, "opts->gateway")?,
        )
    };
    let bad_cidr = || {
        FfiError::arg(
            PODVISOR_EINVAL,
            "opts->address",
            format!("opts->address {address:?} is not an IPv4 address with a prefix (a.b.c.d/n)"),
        )
    };
    let (ip, prefix) = address.split_once('/').ok_or_else(bad_cidr)?;
    let prefix_len = prefix
        .parse::<u8>()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(bad_cidr)?;
    Ok(Some(NetworkConfig {
        bridge: bridge.to_owned(),
        address: ipv4(ip, "opts->address")?,
        prefix_len,
        gateway: ipv4(gateway, "opts->gateway")?,
        host_netns: None,
    }))
}

/// Reads the micro-VM fields; `None` unless a kernel or an initramfs is named.
///
/// # Safety
/// The string fields of `opts` are NULL or NUL-terminated.
unsafe fn guest(opts: &podvisor_sandbox_options) -> FfiResult<Option<GuestConfig>> {
    // SAFETY: forwarded contract.
    let (kernel, initramfs) = unsafe {
        (
            arg_opt_str(opts.guest_kernel, "opts->guest_kernel")?,
            arg_opt_str(opts.guest_initramfs, "opts->guest_initramfs")?,
        )
    };
    let vcpus = u8::try_from(opts.guest_vcpus)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| {
            FfiError::arg(
                PODVISOR_EINVAL,
                "opts->guest_vcpus",
                format!("opts->guest_vcpus is {}, not 1 to 255", opts.guest_vcpus),
            )
        })?;
    if opts.guest_memory_mib == 0 {
        return Err(FfiError::arg(
            PODVISOR_EINVAL,
            "opts->guest_memory_mib",
            "opts->guest_memory_mib is 0",
        ));
    }
    if kernel.is_none() && initramfs.is_none() {
        return Ok(None);
    }
    Ok(Some(GuestConfig {
        kernel: PathBuf::from(kernel.unwrap_or_default()),
        initramfs: PathBuf::from(initramfs.unwrap_or_default()),
        modules: Vec::new(),
        vcpus,
        memory_mib: opts.guest_memory_mib,
    }))
}

/// Reads a sandbox options argument into the configuration `Sandbox::create` takes.
///
/// # Safety
/// `opts` is NULL or readable for its `struct_size`, and its strings NULL or NUL-terminated.
pub(super) unsafe fn sandbox_config(
    opts: *const podvisor_sandbox_options,
) -> FfiResult<SandboxConfig> {
    // SAFETY: forwarded contract.
    let opts = unsafe { options::read(opts, "opts") }?;
    let isolation = isolation(opts.isolation)?;
    // SAFETY: forwarded contract.
    let (id, state_dir, agent, cgroup) = unsafe {
        (
            arg_non_empty_str(opts.id, "opts->id")?,
            arg_non_empty_str(opts.state_dir, "opts->state_dir")?,
            match isolation {
                Isolation::Namespaces => {
                    Some(arg_non_empty_str(opts.agent_binary, "opts->agent_binary")?)
                }
                Isolation::MicroVm => arg_opt_str(opts.agent_binary, "opts->agent_binary")?,
            },
            arg_opt_str(opts.cgroup_parent, "opts->cgroup_parent")?,
        )
    };
    if opts.log_max_bytes == 0 {
        return Err(FfiError::arg(
            PODVISOR_EINVAL,
            "opts->log_max_bytes",
            "opts->log_max_bytes is 0",
        ));
    }
    let agent = PathBuf::from(agent.unwrap_or_default());
    if isolation == Isolation::Namespaces && !agent.is_file() {
        return Err(FfiError::arg(
            PODVISOR_ENOTFOUND,
            "opts->agent_binary",
            format!("opts->agent_binary {} is not a file", agent.display()),
        ));
    }
    let mut config = SandboxConfig::new(id, isolation, PathBuf::from(state_dir), agent);
    config.cgroup_parent = cgroup.map(cgroup_parent).transpose()?;
    // SAFETY: forwarded contract.
    config.network = unsafe { network(&opts) }?;
    // SAFETY: forwarded contract.
    config.guest = unsafe { guest(&opts) }?;
    config.logs = LogPolicy {
        max_bytes: opts.log_max_bytes,
        max_files: opts.log_max_files,
    };
    Ok(config)
}

/// Reads a container options argument; the second value names the image field for errors.
///
/// # Safety
/// `opts` is NULL or readable for its `struct_size`, and its strings and arrays valid as the
/// header documents.
pub(super) unsafe fn container_config(
    opts: *const podvisor_container_options,
) -> FfiResult<(ContainerConfig, &'static str)> {
    // SAFETY: forwarded contract.
    let opts = unsafe { options::read(opts, "opts") }?;
    // SAFETY: forwarded contract.
    let (name, image, image_ref, rootfs, hostname) = unsafe {
        (
            arg_non_empty_str(opts.name, "opts->name")?,
            arg_opt_str(opts.image, "opts->image")?,
            arg_opt_str(opts.image_ref, "opts->image_ref")?,
            arg_opt_str(opts.rootfs, "opts->rootfs")?,
            arg_opt_str(opts.hostname, "opts->hostname")?,
        )
    };
    let (source, image_arg) = match (image, rootfs) {
        (Some(dir), None) if !dir.is_empty() => (
            ImageSource::OciLayout {
                dir: PathBuf::from(dir),
                reference: image_ref.map(str::to_owned),
            },
            "opts->image",
        ),
        (None, Some(dir)) if !dir.is_empty() => {
            (ImageSource::Rootfs(PathBuf::from(dir)), "opts->rootfs")
        }
        (None, None) => {
            return Err(FfiError::arg(
                PODVISOR_ENULL,
                "opts->image",
                "opts->image and opts->rootfs are both NULL: name one",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(FfiError::arg(
                PODVISOR_EINVAL,
                "opts->rootfs",
                "opts->image and opts->rootfs are both set: name only one",
            ));
        }
        (_, Some(_)) => return Err(empty("opts->rootfs")),
        (Some(_), None) => return Err(empty("opts->image")),
    };
    let mut config = ContainerConfig::new(name, source);
    config.hostname = hostname.unwrap_or_default().to_owned();
    // SAFETY: forwarded contract.
    config.process = unsafe {
        process_spec(
            opts.args,
            opts.args_len,
            false,
            opts.env,
            opts.env_len,
            opts.cwd,
            opts.user,
            opts.stdin,
        )
    }?;
    config.limits = Limits {
        memory_bytes: (opts.memory_bytes != 0).then_some(opts.memory_bytes),
        cpu_millis: (opts.cpu_millis != 0).then_some(opts.cpu_millis),
    };
    Ok((config, image_arg))
}

fn empty(name: &'static str) -> FfiError {
    FfiError::arg(PODVISOR_EINVAL, name, format!("{name} is empty"))
}

/// Reads an exec options argument into the process to run.
///
/// # Safety
/// As for [`container_config`].
pub(super) unsafe fn exec_spec(opts: *const podvisor_exec_options) -> FfiResult<ProcessSpec> {
    // SAFETY: forwarded contract.
    let opts = unsafe { options::read(opts, "opts") }?;
    // SAFETY: forwarded contract.
    unsafe {
        process_spec(
            opts.args,
            opts.args_len,
            true,
            opts.env,
            opts.env_len,
            opts.cwd,
            opts.user,
            opts.stdin,
        )
    }
}

/// Fills `opts` with the defaults: no id or directories, namespace isolation, the caller's
/// cgroup, loopback only, 1 vCPU and 256 MiB for a micro-VM, logs of 10 MiB with 3 rotated.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts` is NULL; `PODVISOR_EINVAL` if
/// `struct_size` is not a size this library knows.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_sandbox_options_init(
    opts: *mut podvisor_sandbox_options,
    struct_size: usize,
) -> podvisor_error_code {
    // SAFETY: `opts` is NULL or writable for `struct_size` bytes (header contract).
    call(|| unsafe { options::init(opts, struct_size, "opts") })
}

/// Fills `opts` with the defaults: no name or image, the image's process, no stdin, no limits.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts` is NULL; `PODVISOR_EINVAL` if
/// `struct_size` is not a size this library knows.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_container_options_init(
    opts: *mut podvisor_container_options,
    struct_size: usize,
) -> podvisor_error_code {
    // SAFETY: `opts` is NULL or writable for `struct_size` bytes (header contract).
    call(|| unsafe { options::init(opts, struct_size, "opts") })
}

/// Fills `opts` with the defaults: no arguments, an empty environment, `/`, root, no stdin.
///
/// Returns `PODVISOR_OK`; `PODVISOR_ENULL` if `opts` is NULL; `PODVISOR_EINVAL` if
/// `struct_size` is not a size this library knows.
///
/// Blocks: no. Threads: any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn podvisor_exec_options_init(
    opts: *mut podvisor_exec_options,
    struct_size: usize,
) -> podvisor_error_code {
    // SAFETY: `opts` is NULL or writable for `struct_size` bytes (header contract).
    call(|| unsafe { options::init(opts, struct_size, "opts") })
}
