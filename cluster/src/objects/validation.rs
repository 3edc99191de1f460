//! Validation errors that name the field at fault.
//!
//! Validation walks an object and collects every problem it finds, each with the path of the
//! field (`spec.containers[1].image`) and a reason, so an operator can fix a manifest in one go.

use std::fmt;

/// The path of a field inside an object, written the way `kubectl explain` spells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(String);

impl FieldPath {
    /// The path of a top-level field.
    pub fn root(name: &str) -> Self {
        FieldPath(name.to_string())
    }

    /// The path of a field inside this one.
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            FieldPath(name.to_string())
        } else {
            FieldPath(format!("{}.{name}", self.0))
        }
    }

    /// The path of the `index`th element of this list.
    pub fn index(&self, index: usize) -> Self {
        FieldPath(format!("{}[{index}]", self.0))
    }

    /// The path of the entry `key` of this map.
    pub fn key(&self, key: &str) -> Self {
        FieldPath(format!("{}[{key}]", self.0))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ValidationError {
    /// The field at fault.
    pub path: FieldPath,
    /// What is wrong with it.
    pub reason: String,
}

/// Every problem found in one object; never empty when returned as an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    /// Records a problem with the field at `path`.
    pub fn push(&mut self, path: FieldPath, reason: impl Into<String>) {
        self.0.push(ValidationError {
            path,
            reason: reason.into(),
        });
    }

    /// `Ok(())` when nothing was recorded, else these errors.
    ///
    /// # Errors
    /// Returns `self` when at least one problem was recorded.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    /// Checks that `value` is a DNS-1123 label (lowercase alphanumerics and '-', at most 63
    /// characters, starting and ending with an alphanumeric), as Kubernetes names are.
    pub fn check_dns_label(&mut self, path: FieldPath, value: &str) {
        if let Err(reason) = dns_label(value, 63) {
            self.push(path, reason);
        }
    }

    /// Checks that `value` is a DNS-1123 subdomain: dot-separated labels, at most 253
    /// characters.
    pub fn check_dns_subdomain(&mut self, path: FieldPath, value: &str) {
        if value.is_empty() {
            self.push(path, "must not be empty");
            return;
        }
        if value.len() > 253 {
            self.push(
                path,
                format!("must be at most 253 characters, got {}", value.len()),
            );
            return;
        }
        for part in value.split('.') {
            if let Err(reason) = dns_label(part, 63) {
                self.push(path, format!("{reason} (in {value:?})"));
                return;
            }
        }
    }
}

fn dns_label(value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > max {
        return Err(format!(
            "must be at most {max} characters, got {}",
            value.len()
        ));
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if !value.chars().all(ok_char) {
        return Err(format!(
            "{value:?} may hold only lowercase letters, digits and '-'"
        ));
    }
    if value.starts_with('-') || value.ends_with('-') {
        return Err(format!(
            "{value:?} must start and end with a letter or digit"
        ));
    }
    Ok(())
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_field_path_spells_nested_fields() {
        let p = FieldPath::root("spec")
            .child("containers")
            .index(1)
            .child("image");
        assert_eq!(p.as_str(), "spec.containers[1].image");
        assert_eq!(
            FieldPath::root("metadata")
                .child("labels")
                .key("app")
                .as_str(),
            "metadata.labels[app]"
        );
    }

    #[test]
    fn test_dns_label_fails_when_uppercase_or_edge_dash() {
        let mut errs = ValidationErrors::default();
        errs.check_dns_label(FieldPath::root("a"), "Web");
        errs.check_dns_label(FieldPath::root("b"), "-web");
        errs.check_dns_label(FieldPath::root("c"), "web-1");
        errs.check_dns_label(FieldPath::root("d"), &"x".repeat(64));
        let paths: Vec<_> = errs.0.iter().map(|e| e.path.as_str().to_string()).collect();
        assert_eq!(paths, ["a", "b", "d"]);
    }
}
