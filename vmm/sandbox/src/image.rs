//! Container roots from OCI image layouts or plain directories.
//!
//! An OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`) is unpacked layer by
//! layer into a fresh directory. Every blob's digest is checked before use, so a corrupt layer is
//! an error, not a half-written root. Entries are placed without ever following a link out of the
//! root: a `..` component, a hard link out of the root, or a write through a symlink whose target
//! is absolute or climbs above the root fails the unpack, and the partial root is removed.

use std::fs;
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use sha2::{Digest, Sha256};

/// Where a container's root comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// An OCI image layout directory; `reference` picks a manifest by its
    /// `org.opencontainers.image.ref.name` annotation, else the first one is used.
    OciLayout {
        /// The layout directory.
        dir: PathBuf,
        /// The image reference within the layout.
        reference: Option<String>,
    },
    /// A ready root directory, used in place.
    Rootfs(PathBuf),
}

/// What the image says a container runs, when the caller does not say otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    /// Entrypoint followed by command.
    pub args: Vec<String>,
    /// Environment.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// User.
    pub user: String,
}

/// Why an image could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The layout or a file in it is missing.
    #[error("image {path} not found")]
    NotFound {
        /// What is missing.
        path: PathBuf,
    },
    /// The layout's metadata is not valid OCI.
    #[error("invalid OCI metadata in {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A blob does not match its digest.
    #[error("blob {digest} is corrupt: its content hashes to sha256:{actual}")]
    DigestMismatch {
        /// The digest the manifest names.
        digest: String,
        /// The digest of the content.
        actual: String,
    },
    /// A layer could not be read as a (compressed) tar archive.
    #[error("layer {digest} is corrupt: {reason}")]
    CorruptLayer {
        /// The layer.
        digest: String,
        /// What failed.
        reason: String,
    },
    /// A layer entry would land outside the root.
    #[error("layer {digest}: entry {entry:?} escapes the rootfs: {reason}")]
    Escape {
        /// The layer.
        digest: String,
        /// The entry's path.
        entry: String,
        /// How it escapes.
        reason: String,
    },
    /// Writing the root failed.
    #[error("writing {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Unpacks the image of an OCI layout into `dest`, which must not exist yet. On failure `dest`
/// is removed again.
///
/// # Errors
///
/// [`ImageError`] naming the missing file, corrupt blob or escaping entry.
pub fn unpack_oci_layout(
    layout: &Path,
    reference: Option<&str>,
    dest: &Path,
) -> Result<ImageDefaults, ImageError> {
    if !layout.join("oci-layout").is_file() || !layout.join("index.json").is_file() {
        return Err(ImageError::NotFound {
            path: layout.to_owned(),
        });
    }
    fs::create_dir_all(dest).map_err(io_err(dest))?;
    let result = unpack_into(layout, reference, dest);
    if result.is_err() {
        let _ = fs::remove_dir_all(dest);
    }
    result
}

fn unpack_into(
    layout: &Path,
    reference: Option<&str>,
    dest: &Path,
) -> Result<ImageDefaults, ImageError> {
    let index_path = layout.join("index.json");
    let index = ImageIndex::from_file(&index_path).map_err(|e| ImageError::Invalid {
        path: index_path.clone(),
        reason: e.to_string(),
    })?;
    let descriptor = index
        .manifests()
        .iter()
        .find(|m| match reference {
            None => true,
            Some(r) => m
                .annotations()
                .as_ref()
                .and_then(|a| a.get("org.opencontainers.image.ref.name"))
                .is_some_and(|n| n == r),
        })
        .ok_or_else(|| ImageError::NotFound {
            path: layout.join(format!("index.json#{}", reference.unwrap_or("<first>"))),
        })?;

    let manifest_bytes = read_blob(layout, descriptor.digest().as_ref())?;
    let manifest =
        ImageManifest::from_reader(manifest_bytes.as_slice()).map_err(|e| ImageError::Invalid {
            path: blob_path(layout, descriptor.digest().as_ref()),
            reason: e.to_string(),
        })?;
    let config_digest = manifest.config().digest().to_string();
    let config_bytes = read_blob(layout, &config_digest)?;
    let config = ImageConfiguration::from_reader(config_bytes.as_slice()).map_err(|e| {
        ImageError::Invalid {
            path: blob_path(layout, &config_digest),
            reason: e.to_string(),
        }
    })?;

    for layer in manifest.layers() {
        let digest = layer.digest().to_string();
        let blob = read_blob(layout, &digest)?;
        let gzip = match layer.media_type() {
            MediaType::ImageLayerGzip => true,
            MediaType::ImageLayer => false,
            MediaType::Other(t) if t.ends_with("tar.gzip") || t.ends_with("tar+gzip") => true,
            other => {
                return Err(ImageError::CorruptLayer {
                    digest,
                    reason: format!("unsupported media type {other}"),
                });
            }
        };
        let reader: Box<dyn Read> = if gzip {
            Box::new(GzDecoder::new(blob.as_slice()))
        } else {
            Box::new(blob.as_slice())
        };
        apply_layer(reader, dest, &digest)?;
    }

    let mut defaults = ImageDefaults::default();
    if let Some(c) = config.config() {
        defaults
            .args
            .extend(c.entrypoint().clone().unwrap_or_default());
        defaults.args.extend(c.cmd().clone().unwrap_or_default());
        defaults.env = c.env().clone().unwrap_or_default();
        defaults.cwd = c.working_dir().clone().unwrap_or_default();
        defaults.user = c.user().clone().unwrap_or_default();
    }
    Ok(defaults)
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    layout.join("blobs").join(alg).join(hex)
}

/// Reads a blob and checks it against its digest.
fn read_blob(layout: &Path, digest: &str) -> Result<Vec<u8>, ImageError> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return Err(ImageError::Invalid {
            path: layout.join("index.json"),
            reason: format!("unsupported digest {digest}"),
        });
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ImageError::Invalid {
            path: layout.join("index.json"),
            reason: format!("malformed digest {digest}"),
        });
    }
    let path = blob_path(layout, digest);
    let data = fs::read(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ImageError::NotFound { path: path.clone() },
        _ => ImageError::Io {
            path: path.clone(),
            source: e,
        },
    })?;
    let actual = hex_string(&Sha256::digest(&data));
    if actual != hex {
        return Err(ImageError::DigestMismatch {
            digest: digest.to_owned(),
            actual,
        });
    }
    Ok(data)
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Applies one layer (a tar stream) onto `root`, honouring OCI whiteouts.
fn apply_layer(reader: impl Read, root: &Path, digest: &str) -> Result<(), ImageError> {
    let corrupt = |e: io::Error| ImageError::CorruptLayer {
        digest: digest.to_owned(),
        reason: e.to_string(),
    };
    let mut archive = tar::Archive::new(BufReader::new(reader));
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let escape = |reason: String| ImageError::Escape {
            digest: digest.to_owned(),
            entry: name.clone(),
            reason,
        };
        let rel = relative_path(&name).map_err(escape)?;
        let Some(file_name) = rel.file_name().map(|f| f.to_string_lossy().into_owned()) else {
            continue; // the root itself
        };
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let parent = resolve_dir(root, parent_rel).map_err(escape)?;

        if file_name == ".wh..wh..opq" {
            clear_dir(&parent)?;
            continue;
        }
        if let Some(hidden) = file_name.strip_prefix(".wh.") {
            remove_any(&parent.join(hidden))?;
            continue;
        }

        let target = parent.join(&file_name);
        let kind = entry.header().entry_type();
        if let Ok(meta) = fs::symlink_metadata(&target) {
            // Never write through what is there: replace it, unless both are directories.
            if !(meta.is_dir() && kind.is_dir()) {
                remove_any(&target)?;
            }
        }
        if kind.is_hard_link() {
            let link = entry
                .link_name_bytes()
                .map(|b| b.into_owned())
                .unwrap_or_default();
            let link = String::from_utf8_lossy(&link).into_owned();
            let link_rel = relative_path(&link).map_err(escape)?;
            let src_parent =
                resolve_dir(root, link_rel.parent().unwrap_or(Path::new(""))).map_err(escape)?;
            let src = src_parent.join(link_rel.file_name().unwrap_or_default());
            if fs::symlink_metadata(&src)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(true)
            {
                return Err(escape(format!(
                    "hard link to {link:?}, which is not a file in the rootfs"
                )));
            }
            fs::hard_link(&src, &target).map_err(io_err(&target))?;
            continue;
        }
        entry.set_preserve_permissions(true);
        entry.set_preserve_mtime(true);
        entry.set_unpack_xattrs(false);
        entry.unpack(&target).map_err(|e| ImageError::Io {
            path: target.clone(),
            source: e,
        })?;
    }
    Ok(())
}

/// The normalized relative path of an archive entry; `..` is refused, a leading `/` or `./`
/// dropped.
fn relative_path(name: &str) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err("its path contains \"..\"".into()),
            Component::Prefix(_) => return Err("its path has a prefix".into()),
        }
    }
    Ok(out)
}

/// The directory `rel` under `root`, created as needed. Symlinks on the way are followed only
/// when relative and staying inside the root.
fn resolve_dir(root: &Path, rel: &Path) -> Result<PathBuf, String> {
    let mut stack: Vec<PathBuf> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = rel
        .components()
        .rev()
        .map(|c| c.as_os_str().to_owned())
        .collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            if stack.pop().is_none() {
                return Err("a symlink on its path climbs above the rootfs".into());
            }
            continue;
        }
        if part == "." {
            continue;
        }
        let mut here = root.to_path_buf();
        here.extend(&stack);
        here.push(&part);
        match fs::symlink_metadata(&here) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return Err("too many symlinks on its path".into());
                }
                let target = fs::read_link(&here).map_err(|e| e.to_string())?;
                if target.is_absolute() {
                    return Err(format!(
                        "it would be written through the absolute symlink /{} -> {}",
                        stack
                            .iter()
                            .chain([&PathBuf::from(&part)])
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join("/"),
                        target.display()
                    ));
                }
                for c in target.components().rev() {
                    pending.push(c.as_os_str().to_owned());
                }
            }
            Ok(m) if m.is_dir() => stack.push(PathBuf::from(&part)),
            Ok(_) => return Err(format!("{} is not a directory", here.display())),
            Err(_) => {
                fs::create_dir(&here).map_err(|e| format!("creating {}: {e}", here.display()))?;
                stack.push(PathBuf::from(&part));
            }
        }
    }
    let mut dir = root.to_path_buf();
    dir.extend(&stack);
    Ok(dir)
}

fn remove_any(path: &Path) -> Result<(), ImageError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(io_err(path)),
        Ok(_) => fs::remove_file(path).map_err(io_err(path)),
        Err(_) => Ok(()),
    }
}

fn clear_dir(dir: &Path) -> Result<(), ImageError> {
    for e in fs::read_dir(dir).map_err(io_err(dir))?.flatten() {
        remove_any(&e.path())?;
    }
    Ok(())
}

/// Checks that a plain rootfs directory exists.
///
/// # Errors
///
/// [`ImageError::NotFound`] when it does not.
pub fn check_rootfs(dir: &Path) -> Result<(), ImageError> {
    if dir.is_absolute() && dir.is_dir() {
        Ok(())
    } else {
        Err(ImageError::NotFound {
            path: dir.to_owned(),
        })
    }
}
