//! Resolves a container's user from its own `/etc/passwd` and `/etc/group`.
//!
//! The agent is a static binary and must not call into NSS, and a container's users are those of
//! its image, so it parses the files of the container's root itself (after `pivot_root`).

use std::fs;

/// A resolved identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory, when the user is in `/etc/passwd`.
    pub home: Option<String>,
}

/// Resolves `user` (`""`, `uid`, `uid:gid`, `name` or `name:group`) against the passwd and group
/// texts of the container.
pub fn resolve(user: &str, passwd: &str, group: &str) -> Result<Identity, String> {
    if user.is_empty() {
        return Ok(Identity {
            uid: 0,
            gid: 0,
            home: Some("/root".into()),
        });
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && (f[0] == u || (u.parse::<u32>().is_ok() && f[2] == u)));
    let uid = match u.parse::<u32>() {
        Ok(n) => n,
        Err(_) => entry
            .as_ref()
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| format!("user {u:?} not found in the container's /etc/passwd"))?,
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| format!("group {g:?} not found in the container's /etc/group"))?,
        },
        None => entry.as_ref().and_then(|f| f[3].parse().ok()).unwrap_or(0),
    };
    let home = entry.map(|f| f[5].to_owned());
    Ok(Identity { uid, gid, home })
}

/// Resolves `user` against the files of the current root.
pub fn resolve_in_root(user: &str) -> Result<Identity, String> {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = fs::read_to_string("/etc/group").unwrap_or_default();
    resolve(user, &passwd, &group)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:34:www:/var/www:/bin/false\n";
    const GROUP: &str = "root:x:0:\nweb:x:34:\nstaff:x:50:\n";

    #[test]
    fn test_resolves_names_and_numbers() {
        assert_eq!(resolve("", PASSWD, GROUP).unwrap().uid, 0);
        let www = resolve("www", PASSWD, GROUP).unwrap();
        assert_eq!(
            (www.uid, www.gid, www.home.as_deref()),
            (33, 34, Some("/var/www"))
        );
        let n = resolve("1000:1000", PASSWD, GROUP).unwrap();
        assert_eq!((n.uid, n.gid), (1000, 1000));
        let g = resolve("www:staff", PASSWD, GROUP).unwrap();
        assert_eq!((g.uid, g.gid), (33, 50));
    }

    #[test]
    fn test_resolve_fails_when_user_unknown() {
        let err = resolve("nobody", PASSWD, GROUP).unwrap_err();
        assert!(err.contains("nobody"), "{err}");
    }
}
