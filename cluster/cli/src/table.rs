//! The tables `podvisor get` prints: one row per object, columns as kubectl users expect.

use std::time::SystemTime;

use podvisor_cluster::objects::{Condition, ContainerState, Kind, Object, PowerState, Timestamp};

/// Columns of `kind`'s table.
pub fn header(kind: Kind, all_namespaces: bool) -> Vec<&'static str> {
    let mut h = match kind {
        Kind::Node => vec!["NAME", "STATUS", "KVM", "RUNTIME-CLASSES", "AGENT", "AGE"],
        Kind::Pod => vec!["NAME", "PHASE", "NODE", "IP", "RESTARTS", "RUNTIME", "AGE"],
        Kind::VirtualMachine => vec!["NAME", "DESIRED", "POWER", "NODE", "IP", "REASON", "AGE"],
        Kind::Service => vec!["NAME", "VIP", "POOL", "PORTS", "SELECTOR", "AGE"],
        Kind::IPPool => vec!["NAME", "PURPOSE", "ADDRESSES", "USABLE", "ALLOCATED", "AGE"],
    };
    if all_namespaces && kind.is_namespaced() {
        h.insert(0, "NAMESPACE");
    }
    h
}

/// One row for `obj`.
pub fn row(obj: &Object, all_namespaces: bool) -> Vec<String> {
    let meta = obj.meta();
    let age = age(meta.creation_timestamp.as_ref());
    let mut r = match obj {
        Object::Node(n) => vec![
            meta.name.clone(),
            if n.is_ready() {
                "Ready".into()
            } else {
                "NotReady".into()
            },
            n.status.kvm.clone(),
            n.status
                .runtime_classes
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(","),
            n.status.agent_address.clone(),
            age,
        ],
        Object::Pod(p) => {
            let restarts: u32 = p
                .status
                .container_statuses
                .iter()
                .map(|c| c.restart_count)
                .sum();
            let mut phase = format!("{:?}", p.status.phase);
            if meta.deletion_timestamp.is_some() {
                phase = "Terminating".into();
            } else if let Some(reason) =
                p.status
                    .container_statuses
                    .iter()
                    .find_map(|c| match &c.state {
                        ContainerState::Terminated { reason, .. } if !reason.is_empty() => {
                            Some(reason)
                        }
                        _ => None,
                    })
            {
                phase = format!("{phase} ({reason})");
            }
            vec![
                meta.name.clone(),
                phase,
                dash(&p.spec.node_name),
                dash(&p.status.pod_ip),
                restarts.to_string(),
                p.spec
                    .runtime_class_name
                    .map_or("-", |c| c.as_str())
                    .to_string(),
                age,
            ]
        }
        Object::VirtualMachine(v) => {
            let reason = Condition::find(&v.status.conditions, "Ready")
                .or_else(|| v.status.conditions.first())
                .map(|c| c.reason.clone())
                .unwrap_or_default();
            vec![
                meta.name.clone(),
                power(v.spec.power_state),
                power(v.status.power_state),
                dash(&v.spec.node_name),
                dash(&v.status.ip),
                dash(&reason),
                age,
            ]
        }
        Object::Service(s) => vec![
            meta.name.clone(),
            dash(&s.status.vip),
            dash(if s.status.ip_pool.is_empty() {
                &s.spec.ip_pool
            } else {
                &s.status.ip_pool
            }),
            s.spec
                .ports
                .iter()
                .map(|p| format!("{}/{}", p.port, p.protocol))
                .collect::<Vec<_>>()
                .join(","),
            s.spec
                .selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
            age,
        ],
        Object::IPPool(p) => {
            let mut ranges: Vec<String> = p.spec.cidrs.iter().map(ToString::to_string).collect();
            ranges.extend(
                p.spec
                    .ranges
                    .iter()
                    .map(|r| format!("{}-{}", r.start, r.end)),
            );
            vec![
                meta.name.clone(),
                format!("{:?}", p.spec.purpose),
                ranges.join(","),
                p.status.usable.to_string(),
                p.status.allocated.to_string(),
                age,
            ]
        }
    };
    if all_namespaces && obj.kind().is_namespaced() {
        r.insert(0, meta.namespace.clone());
    }
    r
}

fn power(p: PowerState) -> String {
    format!("{p:?}")
}

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

/// `5s`, `3m`, `2h`, `4d`, as kubectl shows an age.
pub fn age(created: Option<&Timestamp>) -> String {
    let Some(t) = created else { return "-".into() };
    let secs = SystemTime::now()
        .duration_since(t.0)
        .map_or(0, |d| d.as_secs());
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// Renders rows under a header, columns padded to their widest cell.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] + 3 - cell.chars().count();
                out.push_str(&" ".repeat(pad));
            }
        }
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}
