//! Reading manifests: YAML streams of one or more documents, JSON, and folders of such files,
//! as `kubectl apply -f` reads them.

use std::path::{Path, PathBuf};

use super::object::Object;
use super::validation::ValidationErrors;

/// What went wrong reading manifests; every variant names the source and the document.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A file or folder could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The text is not YAML or JSON.
    #[error("{source_name}: document {document} is not valid YAML or JSON: {reason}")]
    Syntax {
        /// The file or stream.
        source_name: String,
        /// The document's number, from 1.
        document: usize,
        /// What the parser said.
        reason: String,
    },
    /// A document is not a valid object.
    #[error("{source_name}: document {document}: {errors}")]
    Invalid {
        /// The file or stream.
        source_name: String,
        /// The document's number, from 1.
        document: usize,
        /// Every problem, with its field path.
        errors: ValidationErrors,
    },
    /// The folder holds no manifest file.
    #[error("{0} holds no .yaml, .yml or .json file")]
    Empty(PathBuf),
}

/// Parses every document of `text` into objects, with defaults applied, and validates each.
///
/// Empty documents are skipped; a `kind: List` document contributes its `items`.
/// `source_name` names the text in errors.
///
/// # Errors
/// The first document that does not parse or validate, named by its number.
pub fn parse_manifests(text: &str, source_name: &str) -> Result<Vec<Object>, ManifestError> {
    let mut objects = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let document = i + 1;
        let value: serde_json::Value =
            serde::Deserialize::deserialize(doc).map_err(|e| ManifestError::Syntax {
                source_name: source_name.to_string(),
                document,
                reason: e.to_string(),
            })?;
        let items = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::Object(ref m)
                if m.get("kind").and_then(|k| k.as_str()) == Some("List") =>
            {
                match m.get("items") {
                    Some(serde_json::Value::Array(items)) => items.clone(),
                    _ => Vec::new(),
                }
            }
            v => vec![v],
        };
        for item in items {
            let invalid = |errors| ManifestError::Invalid {
                source_name: source_name.to_string(),
                document,
                errors,
            };
            let mut obj = Object::from_json_value(item).map_err(invalid)?;
            obj.apply_defaults();
            obj.validate().map_err(invalid)?;
            objects.push(obj);
        }
    }
    Ok(objects)
}

/// Reads a manifest file, or every `.yaml`, `.yml` and `.json` file of a folder in name order.
///
/// # Errors
/// An unreadable path, a folder without manifests, or the first invalid document.
pub fn read_manifest_path(path: &Path) -> Result<Vec<Object>, ManifestError> {
    let read_err = |source| ManifestError::Read {
        path: path.to_path_buf(),
        source,
    };
    let files = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(read_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("yaml" | "yml" | "json")
                    )
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(ManifestError::Empty(path.to_path_buf()));
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut objects = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| ManifestError::Read {
            path: file.clone(),
            source,
        })?;
        objects.extend(parse_manifests(&text, &file.display().to_string())?);
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_multi_document_stream_with_list_and_empty_documents() {
        let text = "---\napiVersion: podvisor.io/v1alpha1\nkind: IPPool\nmetadata: {name: pods}\nspec: {cidrs: [10.77.0.0/24]}\n---\n---\n{\"kind\": \"List\", \"items\": [{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"web\"}, \"spec\": {\"selector\": {\"app\": \"web\"}, \"ports\": [{\"port\": 80}]}}]}\n";
        let objs = parse_manifests(text, "stdin").expect("parses");
        let names: Vec<_> = objs.iter().map(|o| o.display_name()).collect();
        assert_eq!(names, ["IPPool/pods", "Service/default/web"]);
    }

    #[test]
    fn test_invalid_document_is_named_by_number_and_field() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: ok}\nspec: {selector: {a: b}, ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec: {selector: {a: b}, ports: [{port: 0}]}\n";
        let err = parse_manifests(text, "svc.yaml")
            .expect_err("port 0 refused")
            .to_string();
        assert_eq!(
            err,
            "svc.yaml: document 2: spec.ports[0].port: must be between 1 and 65535"
        );
    }

    #[test]
    fn test_syntax_error_names_the_document() {
        let err = parse_manifests("a: [1, 2\n", "broken.yaml").expect_err("refused");
        assert!(
            matches!(err, ManifestError::Syntax { document: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn test_folder_without_manifests_is_an_error() {
        let dir = std::env::temp_dir().join(format!("podvisor-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let err = read_manifest_path(&dir).expect_err("empty folder refused");
        assert!(matches!(err, ManifestError::Empty(_)));
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    #[test]
    fn test_example_manifests_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/manifests");
        let objs = read_manifest_path(&dir).expect("the shipped manifests are valid");
        let kinds: std::collections::BTreeSet<_> = objs.iter().map(|o| o.kind().as_str()).collect();
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            ["IPPool", "Pod", "Service", "VirtualMachine"]
        );
    }
}
