//! The node key enrolment gave the agent, kept across restarts in the state file (mode 0600):
//! the report loop signs with it, the recordings outbox authenticates with it.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// What enrolment gave us, kept across restarts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeKey {
    pub balancer: String,
    pub node: i64,
    pub name: String,
    pub key: String,
}

/// The stored enrolment, if it was made with this balancer.
pub fn load(path: &Path, balancer: &str) -> anyhow::Result<Option<NodeKey>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let state: NodeKey = serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "state file {} is damaged ({e}); remove it to enrol again",
                    path.display()
                )
            })?;
            Ok((state.balancer == balancer).then_some(state))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!(
            "cannot read state file {}: {e}",
            path.display()
        )),
    }
}

/// Writes the state file atomically, readable by its owner only (it holds the node key).
pub fn save(path: &Path, state: &NodeKey) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(&serde_json::to_vec_pretty(state)?)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_privately_and_belongs_to_one_balancer() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        let state = NodeKey {
            balancer: "http://lb".into(),
            node: 3,
            name: "bbb3".into(),
            key: "ab".into(),
        };
        save(&path, &state).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load(&path, "http://lb").unwrap(), Some(state));
        assert_eq!(load(&path, "http://other").unwrap(), None);
        std::fs::write(&path, "{").unwrap();
        assert!(load(&path, "http://lb")
            .unwrap_err()
            .to_string()
            .contains("damaged"));
    }
}
