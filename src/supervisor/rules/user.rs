//! `-u USER[:GROUP]` resolved against the container's own `/etc/passwd` and `/etc/group`, as
//! runc's `user.GetExecUser` does for Docker: a name must be in passwd, a number need not be
//! (its group is then 0 and its home `/`); a group by name must be in group; the user's
//! supplementary groups are those of group that list its name. Pure: the caller reads the files.

/// Who the container's command runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecUser {
    /// User ID.
    pub uid: u32,
    /// Group ID.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Home directory (`HOME` unless the container sets one).
    pub home: String,
}

/// One `/etc/passwd` line: name, uid, gid, home.
fn passwd_entries(passwd: &str) -> impl Iterator<Item = (&str, u32, u32, &str)> {
    passwd.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 6 || line.starts_with('#') {
            return None;
        }
        Some((f[0], f[2].parse().ok()?, f[3].parse().ok()?, f[5]))
    })
}

/// One `/etc/group` line: name, gid, members.
fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 3 || line.starts_with('#') {
            return None;
        }
        let members = f.get(3).map(|m| m.split(',').filter(|s| !s.is_empty()).collect());
        Some((f[0], f[2].parse().ok()?, members.unwrap_or_default()))
    })
}

/// Resolves `spec` (`""` is root) in runc's words for what is not found.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<ExecUser, String> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let found = passwd_entries(passwd)
        .find(|(name, uid, _, _)| *name == user || user.parse::<u32>().is_ok_and(|n| n == *uid));
    let (name, uid, mut gid, home) = match (found, user.parse::<u32>()) {
        (Some((name, uid, gid, home)), _) => (Some(name), uid, gid, home.to_string()),
        (None, Ok(uid)) => (None, uid, 0, "/".to_string()),
        (None, Err(_)) => {
            return Err(format!("unable to find user {user}: no matching entries in passwd file"));
        }
    };
    let mut groups = Vec::new();
    match grp.filter(|g| !g.is_empty()) {
        Some(g) => {
            let by = group_entries(group)
                .find(|(n, id, _)| *n == g || g.parse::<u32>().is_ok_and(|x| x == *id));
            gid = match (by, g.parse::<u32>()) {
                (Some((_, id, _)), _) => id,
                (None, Ok(id)) => id,
                (None, Err(_)) => {
                    return Err(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ));
                }
            };
        }
        None => {
            if let Some(name) = name {
                groups = group_entries(group)
                    .filter(|(_, _, members)| members.contains(&name))
                    .map(|(_, id, _)| id)
                    .collect();
            }
        }
    }
    Ok(ExecUser { uid, gid, groups, home })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          app:x:1000:1000::/home/app:/bin/sh\n\
                          nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nstaff:x:50:app,other\nnogroup:x:65534:\n";

    fn user(uid: u32, gid: u32, groups: &[u32], home: &str) -> ExecUser {
        ExecUser { uid, gid, groups: groups.to_vec(), home: home.into() }
    }

    #[test]
    fn names_and_numbers_as_runc() {
        assert_eq!(resolve("", PASSWD, GROUP).unwrap(), user(0, 0, &[], "/root"));
        assert_eq!(resolve("app", PASSWD, GROUP).unwrap(), user(1000, 1000, &[50], "/home/app"));
        assert_eq!(resolve("1000", PASSWD, GROUP).unwrap(), user(1000, 1000, &[50], "/home/app"));
        assert_eq!(resolve("4242", PASSWD, GROUP).unwrap(), user(4242, 0, &[], "/"));
        assert_eq!(resolve("4242:4242", PASSWD, GROUP).unwrap(), user(4242, 4242, &[], "/"));
        assert_eq!(
            resolve("nobody:nogroup", PASSWD, GROUP).unwrap(),
            user(65534, 65534, &[], "/nonexistent")
        );
        assert_eq!(resolve("app:staff", PASSWD, GROUP).unwrap(), user(1000, 50, &[], "/home/app"));
        // No passwd file at all: numbers still work.
        assert_eq!(resolve("7", "", "").unwrap(), user(7, 0, &[], "/"));
    }

    #[test]
    fn what_is_not_found_in_runcs_words() {
        assert_eq!(
            resolve("nosuchuser", PASSWD, GROUP).unwrap_err(),
            "unable to find user nosuchuser: no matching entries in passwd file"
        );
        assert_eq!(
            resolve("app:nosuchgroup", PASSWD, GROUP).unwrap_err(),
            "unable to find group nosuchgroup: no matching entries in group file"
        );
        // Broken lines are skipped, never a panic.
        assert!(resolve("x", "x:\n::::::\n:x:a:b:c:d\n", "g:x\n").is_err());
    }
}
