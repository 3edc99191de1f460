//! [`Object`]: any one object of any kind, with what all kinds share (names, versions, the
//! store key) and the dispatch to each kind's validation.

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::ippool::IpPool;
use super::meta::{DEFAULT_NAMESPACE, ObjectMeta};
use super::node::Node;
use super::pod::Pod;
use super::service::Service;
use super::validation::{FieldPath, ValidationErrors};
use super::vm::VirtualMachine;

/// The kinds of object podvisor stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    /// A host.
    Node,
    /// An address pool.
    IPPool,
    /// A service with a VIP.
    Service,
    /// A pod.
    Pod,
    /// A virtual machine.
    VirtualMachine,
}

impl Kind {
    /// Every kind, in the order apply creates them: what others refer to comes first.
    pub const ALL: [Kind; 5] = [
        Kind::Node,
        Kind::IPPool,
        Kind::Service,
        Kind::Pod,
        Kind::VirtualMachine,
    ];

    /// The kind's name as manifests spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Node => "Node",
            Kind::IPPool => "IPPool",
            Kind::Service => "Service",
            Kind::Pod => "Pod",
            Kind::VirtualMachine => "VirtualMachine",
        }
    }

    /// The `apiVersion` manifests of this kind carry.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Node | Kind::Service | Kind::Pod => "v1",
            Kind::IPPool | Kind::VirtualMachine => "podvisor.io/v1alpha1",
        }
    }

    /// The lowercase plural used in store keys and on the command line.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Node => "nodes",
            Kind::IPPool => "ippools",
            Kind::Service => "services",
            Kind::Pod => "pods",
            Kind::VirtualMachine => "virtualmachines",
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn is_namespaced(self) -> bool {
        matches!(self, Kind::Service | Kind::Pod | Kind::VirtualMachine)
    }

    /// The store key prefix of every object of this kind (in `namespace`, when given and the
    /// kind is namespaced).
    pub fn key_prefix(self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.is_namespaced() => format!("/registry/{}/{ns}/", self.plural()),
            _ => format!("/registry/{}/", self.plural()),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a kind name podvisor does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown kind {0:?} (known: Node, IPPool, Service, Pod, VirtualMachine)")]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;

    /// Accepts the kind (`Pod`), its lowercase singular or plural (`pod`, `pods`) and the short
    /// names kubectl users type (`po`, `no`, `svc`, `vm`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let kind = match s.to_ascii_lowercase().as_str() {
            "node" | "nodes" | "no" => Kind::Node,
            "ippool" | "ippools" | "pool" | "pools" => Kind::IPPool,
            "service" | "services" | "svc" => Kind::Service,
            "pod" | "pods" | "po" => Kind::Pod,
            "virtualmachine" | "virtualmachines" | "vm" | "vms" => Kind::VirtualMachine,
            _ => return Err(UnknownKind(s.to_string())),
        };
        Ok(kind)
    }
}

/// One object of any kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    /// A host.
    Node(Node),
    /// An address pool.
    IPPool(IpPool),
    /// A service.
    Service(Service),
    /// A pod.
    Pod(Pod),
    /// A virtual machine.
    VirtualMachine(VirtualMachine),
}

macro_rules! each_kind {
    ($obj:expr, $inner:ident => $body:expr) => {
        match $obj {
            Object::Node($inner) => $body,
            Object::IPPool($inner) => $body,
            Object::Service($inner) => $body,
            Object::Pod($inner) => $body,
            Object::VirtualMachine($inner) => $body,
        }
    };
}

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Object::Node(_) => Kind::Node,
            Object::IPPool(_) => Kind::IPPool,
            Object::Service(_) => Kind::Service,
            Object::Pod(_) => Kind::Pod,
            Object::VirtualMachine(_) => Kind::VirtualMachine,
        }
    }

    /// The object's metadata.
    pub fn meta(&self) -> &ObjectMeta {
        each_kind!(self, o => &o.metadata)
    }

    /// The object's metadata, to change.
    pub fn meta_mut(&mut self) -> &mut ObjectMeta {
        each_kind!(self, o => &mut o.metadata)
    }

    /// `Kind/namespace/name`, or `Kind/name` for cluster-scoped kinds: how messages name it.
    pub fn display_name(&self) -> String {
        let m = self.meta();
        if self.kind().is_namespaced() {
            format!("{}/{}/{}", self.kind(), m.namespace, m.name)
        } else {
            format!("{}/{}", self.kind(), m.name)
        }
    }

    /// The key the object is stored under.
    pub fn store_key(&self) -> String {
        let m = self.meta();
        let ns = self.kind().is_namespaced().then_some(m.namespace.as_str());
        format!("{}{}", self.kind().key_prefix(ns), m.name)
    }

    /// Fills in what a manifest may leave out: the namespace of namespaced kinds.
    pub fn apply_defaults(&mut self) {
        let namespaced = self.kind().is_namespaced();
        let meta = self.meta_mut();
        if namespaced && meta.namespace.is_empty() {
            meta.namespace = DEFAULT_NAMESPACE.to_string();
        }
    }

    /// Checks every field; nothing that fails may be stored.
    ///
    /// # Errors
    /// Returns every problem found, each naming its field path.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        match self {
            Object::Node(o) => o.validate(&mut errs),
            Object::IPPool(o) => o.validate(&mut errs),
            Object::Service(o) => o.validate(&mut errs),
            Object::Pod(o) => o.validate(&mut errs),
            Object::VirtualMachine(o) => o.validate(&mut errs),
        }
        errs.into_result()
    }

    /// The object as JSON, with `apiVersion` and `kind` first.
    pub fn to_json_value(&self) -> serde_json::Value {
        let inner = each_kind!(self, o => serde_json::to_value(o));
        let mut out = serde_json::Map::new();
        out.insert("apiVersion".into(), self.kind().api_version().into());
        out.insert("kind".into(), self.kind().as_str().into());
        // Serializing these plain data types cannot fail: they hold no maps with non-string
        // keys and no types with fallible serializers.
        if let Ok(serde_json::Value::Object(fields)) = inner {
            out.extend(fields);
        }
        serde_json::Value::Object(out)
    }

    /// The object as pretty JSON text.
    pub fn to_json(&self) -> String {
        let value = self.to_json_value();
        serde_json::to_string_pretty(&value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The object as YAML text.
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(&self.to_json_value()).unwrap_or_else(|e| format!("error: {e}\n"))
    }

    /// Reads an object from a JSON value that carries `apiVersion` and `kind`.
    ///
    /// # Errors
    /// Names the field at fault: a missing or unknown kind, a wrong apiVersion, or a field of
    /// the wrong type or name.
    pub fn from_json_value(mut value: serde_json::Value) -> Result<Object, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        let Some(map) = value.as_object_mut() else {
            errs.push(FieldPath::default(), "an object must be a mapping");
            return Err(errs);
        };
        let kind_text = match map.remove("kind") {
            Some(serde_json::Value::String(k)) => k,
            Some(_) => {
                errs.push(FieldPath::root("kind"), "must be a string");
                return Err(errs);
            }
            None => {
                errs.push(FieldPath::root("kind"), "is missing");
                return Err(errs);
            }
        };
        let kind = match kind_text.parse::<Kind>() {
            Ok(k) if k.as_str() == kind_text => k,
            Ok(k) => {
                errs.push(
                    FieldPath::root("kind"),
                    format!("{kind_text:?} must be spelled {:?}", k.as_str()),
                );
                return Err(errs);
            }
            Err(e) => {
                errs.push(FieldPath::root("kind"), e.to_string());
                return Err(errs);
            }
        };
        match map.remove("apiVersion") {
            Some(serde_json::Value::String(v)) if v == kind.api_version() => {}
            Some(v) => {
                errs.push(
                    FieldPath::root("apiVersion"),
                    format!("{v} is not served for {kind}; use {:?}", kind.api_version()),
                );
                return Err(errs);
            }
            None => {
                errs.push(
                    FieldPath::root("apiVersion"),
                    format!("is missing; {kind} uses {:?}", kind.api_version()),
                );
                return Err(errs);
            }
        }
        let obj = match kind {
            Kind::Node => typed(value).map(Object::Node),
            Kind::IPPool => typed(value).map(Object::IPPool),
            Kind::Service => typed(value).map(Object::Service),
            Kind::Pod => typed(value).map(Object::Pod),
            Kind::VirtualMachine => typed(value).map(Object::VirtualMachine),
        };
        obj.map_err(|(path, reason)| {
            errs.push(path, reason);
            errs
        })
    }
}

fn typed<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, (FieldPath, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            FieldPath::default()
        } else {
            FieldPath::root(&path)
        };
        (path, e.into_inner().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_yaml(text: &str) -> Result<Object, ValidationErrors> {
        let value: serde_json::Value = serde_yaml_ng::from_str(text).expect("test yaml parses");
        Object::from_json_value(value)
    }

    #[test]
    fn test_pod_round_trips_through_yaml() {
        let mut obj = from_yaml(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: web, labels: {app: web}}\nspec:\n  containers:\n  - name: httpd\n    image: /srv/busybox\n    command: [busybox, httpd, -f]\n",
        )
        .expect("valid pod");
        obj.apply_defaults();
        assert_eq!(obj.store_key(), "/registry/pods/default/web");
        obj.validate().expect("pod validates");
        let again = from_yaml(&obj.to_yaml()).expect("round trip");
        assert_eq!(again, obj);
    }

    #[test]
    fn test_unknown_field_is_named_with_its_path() {
        let err = from_yaml(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - name: a\n    image: x\n    imagee: y\n",
        )
        .expect_err("typo refused");
        assert_eq!(err.0[0].path.as_str(), "spec.containers[0].imagee");
        assert!(err.0[0].reason.contains("imagee"), "{err}");
    }

    #[test]
    fn test_wrong_type_is_named_with_its_path() {
        let err = from_yaml(
            "apiVersion: podvisor.io/v1alpha1\nkind: VirtualMachine\nmetadata: {name: vm}\nspec:\n  class: {vcpus: many, memoryMiB: 64}\n  image: {kernel: /k}\n",
        )
        .expect_err("bad type refused");
        assert_eq!(err.0[0].path.as_str(), "spec.class.vcpus");
    }

    #[test]
    fn test_unknown_kind_and_wrong_api_version_are_refused() {
        let err = from_yaml("apiVersion: v1\nkind: Deployment\nmetadata: {name: d}\n")
            .expect_err("unknown");
        assert_eq!(err.0[0].path.as_str(), "kind");
        let err =
            from_yaml("apiVersion: v2\nkind: Pod\nmetadata: {name: d}\nspec: {containers: []}\n")
                .expect_err("wrong version");
        assert_eq!(err.0[0].path.as_str(), "apiVersion");
    }

    #[test]
    fn test_validation_collects_every_problem() {
        let obj = from_yaml(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: Web}\nspec:\n  containers:\n  - {name: a, image: ''}\n  - {name: a, image: x, resources: {limits: {memory: lots}}}\n",
        )
        .expect("parses");
        let errs = obj.validate().expect_err("invalid");
        let paths: Vec<_> = errs.0.iter().map(|e| e.path.to_string()).collect();
        assert_eq!(
            paths,
            [
                "metadata.name",
                "spec.containers[0].image",
                "spec.containers[1].name",
                "spec.containers[1].resources.limits[memory]"
            ]
        );
    }

    #[test]
    fn test_kind_accepts_kubectl_short_names() {
        assert_eq!("po".parse::<Kind>(), Ok(Kind::Pod));
        assert_eq!("VMs".parse::<Kind>(), Ok(Kind::VirtualMachine));
        assert!("deployment".parse::<Kind>().is_err());
    }
}
