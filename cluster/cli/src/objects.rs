//! The object verbs: `apply`, `get`, `describe` and `delete`, as kubectl users know them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use podvisor_cluster::objects::{Condition, ContainerState, Kind, Object, read_manifest_path};
use podvisor_cluster::registry::{Deleted, Registry, RegistryError};

use crate::error::{CliError, Result, one_line};
use crate::progress::Progress;
use crate::table;

/// `podvisor apply`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  podvisor apply -f examples/manifests\n  \
    podvisor apply -f examples/manifests --dry-run\n  podvisor apply -f manifests/ --prune")]
pub struct ApplyArgs {
    /// A manifest file (YAML or JSON, one or more documents) or a folder of them.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Show what would change, with a diff, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete objects an earlier apply of this set made that are no longer in the manifests.
    #[arg(long)]
    pub prune: bool,
    /// The apply set pruning is limited to.
    #[arg(long, default_value = "default")]
    pub set: String,
}

/// Output formats of `get`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    /// A table.
    Table,
    /// YAML documents.
    Yaml,
    /// JSON (a list when several objects).
    Json,
}

/// `podvisor get`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  podvisor get nodes\n  podvisor get pods -A\n  \
    podvisor get pod web -o yaml\n  podvisor get vm demo-vm -o json"
)]
pub struct GetArgs {
    /// The kind: nodes (no), pods (po), virtualmachines (vm), services (svc), ippools (pool).
    pub kind: String,
    /// One object's name; every object of the kind when omitted.
    pub name: Option<String>,
    /// The namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// The output format.
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// `podvisor describe`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  podvisor describe vm demo-vm\n  podvisor describe node node-1"
)]
pub struct DescribeArgs {
    /// The kind.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
}

/// `podvisor delete`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  podvisor delete pod batch\n  \
    podvisor delete pod web --wait=false")]
pub struct DeleteArgs {
    /// The kind.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Wait until the object's finalizers are cleared and it is gone.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub wait: bool,
    /// How long to wait.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// Parses a kind name (any case, plural, or kubectl's short names).
///
/// # Errors
/// [`CliError::Usage`] naming the known kinds.
pub fn parse_kind(text: &str) -> Result<Kind> {
    text.parse::<Kind>()
        .map_err(|e| CliError::Usage(e.to_string()))
}

/// Reads every manifest of the given paths.
///
/// # Errors
/// [`CliError::Manifest`] naming the file and document that fails to parse or validate.
pub fn read_manifests(paths: &[PathBuf]) -> Result<Vec<Object>> {
    let mut objects = Vec::new();
    for p in paths {
        let read = read_manifest_path(p).map_err(|e| CliError::Manifest(one_line(&e)))?;
        objects.extend(read);
    }
    Ok(objects)
}

/// Applies manifests; prints one line per object, and the diffs on a dry run.
///
/// # Errors
/// A manifest that does not parse, or the first write that fails.
pub fn apply(registry: &Registry, args: &ApplyArgs) -> Result<()> {
    let objects = read_manifests(&args.files)?;
    let actions = registry.apply(&objects, &args.set, args.prune, args.dry_run)?;
    let suffix = if args.dry_run { " (dry run)" } else { "" };
    for a in &actions {
        println!("{}{suffix}", a.summary());
        if args.dry_run && !a.diff.is_empty() {
            print!("{}", a.diff);
            if !a.diff.ends_with('\n') {
                println!();
            }
        }
    }
    Ok(())
}

/// Prints objects as a table, YAML or JSON.
///
/// # Errors
/// An unknown kind, a missing object, store failures.
pub fn get(registry: &Registry, args: &GetArgs) -> Result<()> {
    let kind = parse_kind(&args.kind)?;
    let objects = match &args.name {
        Some(name) => vec![registry.get(kind, &args.namespace, name)?],
        None => {
            let ns = (!args.all_namespaces).then_some(args.namespace.as_str());
            registry.list(kind, ns)?.0
        }
    };
    print!(
        "{}",
        format_objects(kind, &objects, args.output, args.all_namespaces)
    );
    Ok(())
}

/// Formats objects the way `get` prints them.
pub fn format_objects(kind: Kind, objects: &[Object], output: Output, all_ns: bool) -> String {
    match output {
        Output::Table => {
            if objects.is_empty() {
                return format!("No {} found.\n", kind.plural());
            }
            let rows: Vec<Vec<String>> = objects.iter().map(|o| table::row(o, all_ns)).collect();
            table::render(&table::header(kind, all_ns), &rows)
        }
        Output::Yaml => objects
            .iter()
            .map(|o| format!("---\n{}", o.to_yaml()))
            .collect(),
        Output::Json => {
            let values: Vec<serde_json::Value> =
                objects.iter().map(Object::to_json_value).collect();
            let value = match values.len() {
                1 => values.into_iter().next().unwrap_or_default(),
                _ => serde_json::json!({"apiVersion": "v1", "kind": "List", "items": values}),
            };
            format!(
                "{}\n",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            )
        }
    }
}

/// Prints one object for a person: its metadata, conditions and, for pods, containers, then
/// its spec and status as YAML.
///
/// # Errors
/// An unknown kind, a missing object, store failures.
pub fn describe(registry: &Registry, args: &DescribeArgs) -> Result<()> {
    let kind = parse_kind(&args.kind)?;
    let obj = registry.get(kind, &args.namespace, &args.name)?;
    print!("{}", describe_text(&obj));
    Ok(())
}

fn describe_text(obj: &Object) -> String {
    let m = obj.meta();
    let mut out = format!("Kind:         {}\nName:         {}\n", obj.kind(), m.name);
    if obj.kind().is_namespaced() {
        out += &format!("Namespace:    {}\n", m.namespace);
    }
    let labels: Vec<String> = m.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    out += &format!(
        "Labels:       {}\n",
        if labels.is_empty() {
            "<none>".into()
        } else {
            labels.join(",")
        }
    );
    out += &format!("UID:          {}\n", m.uid);
    out += &format!("Generation:   {}\n", m.generation);
    out += &format!("Version:      {}\n", m.resource_version);
    if let Some(t) = &m.creation_timestamp {
        out += &format!("Created:      {t} ({} ago)\n", table::age(Some(t)));
    }
    if let Some(t) = &m.deletion_timestamp {
        out += &format!(
            "Deleting:     since {t}, waiting for {}\n",
            m.finalizers.join(",")
        );
    } else if !m.finalizers.is_empty() {
        out += &format!("Finalizers:   {}\n", m.finalizers.join(","));
    }
    let conditions: &[Condition] = match obj {
        Object::Node(n) => &n.status.conditions,
        Object::Pod(p) => &p.status.conditions,
        Object::VirtualMachine(v) => &v.status.conditions,
        Object::Service(s) => &s.status.conditions,
        Object::IPPool(p) => &p.status.conditions,
    };
    if let Object::Pod(p) = obj {
        out += &format!("Phase:        {:?}\n", p.status.phase);
        if !p.status.reason.is_empty() {
            out += &format!("Reason:       {}: {}\n", p.status.reason, p.status.message);
        }
        out += "Containers:\n";
        for c in &p.status.container_statuses {
            let state = match &c.state {
                ContainerState::Waiting { reason } => format!("Waiting ({reason})"),
                ContainerState::Running { started_at } => format!("Running since {started_at}"),
                ContainerState::Terminated {
                    exit_code,
                    reason,
                    finished_at,
                    ..
                } => {
                    format!("Terminated: {reason}, exit code {exit_code}, at {finished_at}")
                }
                ContainerState::Unknown => "Unknown".into(),
            };
            out += &format!("  {}: {state}, restarts {}\n", c.name, c.restart_count);
        }
    }
    out += "Conditions:\n";
    if conditions.is_empty() {
        out += "  <none>\n";
    }
    for c in conditions {
        out += &format!("  {} = {:?}", c.type_, c.status);
        if !c.reason.is_empty() {
            out += &format!(" ({})", c.reason);
        }
        out += "\n";
        if !c.message.is_empty() {
            out += &format!("    {}\n", c.message);
        }
    }
    // Spec and status, as the object's YAML has them.
    let yaml = obj.to_yaml();
    if let Some(at) = yaml.find("\nspec:") {
        for line in yaml[at + 1..].lines() {
            out += line;
            out.push('\n');
        }
    }
    out
}

/// Deletes an object; with finalizers, marks it and waits until they are cleared.
///
/// # Errors
/// An unknown kind, a missing object, a timeout while waiting, store failures.
pub fn delete(registry: &Registry, args: &DeleteArgs) -> Result<()> {
    let kind = parse_kind(&args.kind)?;
    let shown = if kind.is_namespaced() {
        format!(
            "{}/{}/{}",
            kind.as_str().to_lowercase(),
            args.namespace,
            args.name
        )
    } else {
        format!("{}/{}", kind.as_str().to_lowercase(), args.name)
    };
    match registry.delete(kind, &args.namespace, &args.name)? {
        Deleted::Removed => {
            println!("{shown} deleted");
            return Ok(());
        }
        Deleted::Pending(obj) => {
            let finalizers = obj.meta().finalizers.join(",");
            if !args.wait {
                println!("{shown} marked for deletion; waiting for finalizers {finalizers}");
                return Ok(());
            }
            let mut progress = Progress::new(format!("waiting for finalizers {finalizers}"));
            let deadline = Instant::now() + args.timeout;
            loop {
                match registry.get(kind, &args.namespace, &args.name) {
                    Err(RegistryError::NotFound { .. }) => break,
                    Err(e) => return Err(e.into()),
                    Ok(_) if Instant::now() >= deadline => {
                        progress.fail();
                        return Err(CliError::Timeout(format!(
                            "{shown} still has finalizers {finalizers} after {}",
                            humantime::format_duration(args.timeout)
                        )));
                    }
                    Ok(_) => {
                        progress.tick();
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
            progress.done();
            println!("{shown} deleted");
        }
    }
    Ok(())
}
