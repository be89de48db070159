//! The deployment files of `packaging/`: the Kubernetes manifests validate against the
//! Kubernetes schemas (kubernetes-validate, strict) and the compose file against the Compose
//! specification (check-jsonschema), each validator shown to refuse a broken copy; HAProxy
//! accepts the compose file's configuration; and the balancer and the recorder start with the
//! configuration and the environment those files give them.

use std::path::{Path, PathBuf};
use std::process::Command;

use conflux_tests::harness::Process;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A validator from the repository's `.venv` (scripts/test installs it), or None when absent
/// outside CI.
fn tool(name: &str) -> Option<PathBuf> {
    let path = root().join(".venv/bin").join(name);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "scripts/test installs {name}"
    );
    eprintln!("skipped: {name} is not installed (scripts/test installs it)");
    None
}

/// Whether `program args file` accepts `file`, and its output.
fn check(program: &Path, args: &[&str], file: &Path) -> (bool, String) {
    let out = Command::new(program).args(args).arg(file).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `file` with `from` replaced by `to` (once), written into `dir`.
fn broken(file: &Path, from: &str, to: &str, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{from:?} is not in {}", file.display());
    let copy = dir.join(file.file_name().unwrap());
    std::fs::write(&copy, text.replacen(from, to, 1)).unwrap();
    copy
}

#[test]
fn the_kubernetes_manifests_and_the_compose_file_validate() {
    let (Some(kube), Some(jsonschema)) = (tool("kubernetes-validate"), tool("check-jsonschema"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let manifests = root().join("packaging/kubernetes/conflux.yaml");
    let (valid, out) = check(&kube, &["--strict"], &manifests);
    assert!(
        valid && out.matches("passed for resource").count() >= 10,
        "{out}"
    );
    let bad = broken(&manifests, "replicas: 3", "replicas: three", dir.path());
    assert!(
        !check(&kube, &["--strict"], &bad).0,
        "the validator refuses a bad copy"
    );

    let compose = root().join("packaging/compose/compose.yaml");
    let args = ["--builtin-schema", "vendor.compose-spec"];
    let (valid, out) = check(&jsonschema, &args, &compose);
    assert!(valid, "{out}");
    let bad = broken(
        &compose,
        "restart: unless-stopped",
        "restart: [always]",
        dir.path(),
    );
    assert!(
        !check(&jsonschema, &args, &bad).0,
        "the validator refuses a bad copy"
    );

    let haproxy = root().join("packaging/compose/haproxy.cfg");
    let (valid, out) = check(Path::new("haproxy"), &["-c", "-f"], &haproxy);
    assert!(valid, "{out}");
}

/// The documents of a multi-document YAML file.
fn documents(path: &Path) -> Vec<serde_yaml_ng::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

/// The `NAME=value` pairs of the compose file's `environment` of `service` (following its
/// `<<`-less alias), with `${VAR:?..}` taken from env.example.
fn compose_env(service: &str) -> Vec<(String, String)> {
    let compose = root().join("packaging/compose/compose.yaml");
    let doc = documents(&compose).remove(0);
    let example = std::fs::read_to_string(root().join("packaging/compose/env.example")).unwrap();
    let value_of = |var: &str| {
        example
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{var}=")))
            .unwrap_or_else(|| panic!("env.example has no {var}"))
            .to_owned()
    };
    let env = doc["services"][service]["environment"]
        .as_mapping()
        .unwrap_or_else(|| panic!("{service} has no environment"));
    env.iter()
        .map(|(k, v)| {
            let mut value = v.as_str().unwrap().to_owned();
            while let Some(start) = value.find("${") {
                let end = start + value[start..].find('}').unwrap();
                let var = value[start + 2..end].split(":?").next().unwrap().to_owned();
                value.replace_range(start..=end, &value_of(&var));
            }
            (k.as_str().unwrap().to_owned(), value)
        })
        .collect()
}

#[test]
fn the_deployments_configuration_is_what_the_programs_accept() {
    let dir = tempfile::tempdir().unwrap();
    // Kubernetes: the ConfigMap's balancer.toml, with the Deployment's secret variables set.
    let manifests = documents(&root().join("packaging/kubernetes/conflux.yaml"));
    let config_map = manifests
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "conflux-balancer")
        .unwrap();
    let config = dir.path().join("balancer.toml");
    std::fs::write(
        &config,
        config_map["data"]["balancer.toml"].as_str().unwrap(),
    )
    .unwrap();
    let data = dir.path().join("k8s-data").display().to_string();
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        &data,
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]
    .map(String::from);
    // The Deployment's environment, from its Secret (the store's URL needs the manifests'
    // PostgreSQL: left out).
    let find = |kind: &str, name: &str| {
        manifests
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    let deployment = find("Deployment", "conflux-balancer");
    let env: Vec<(String, String)> = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|e| e["name"] != "CONFLUX_STORE__URL")
        .map(|e| {
            let secret = &e["valueFrom"]["secretKeyRef"];
            let value = find("Secret", secret["name"].as_str().unwrap())["stringData"]
                [secret["key"].as_str().unwrap()]
            .as_str()
            .unwrap();
            (e["name"].as_str().unwrap().to_owned(), value.to_owned())
        })
        .collect();
    assert_eq!(env.len(), 2, "{env:?}");
    let (balancer, _) = Process::start_with_env("conflux-balancer", &args, dir.path(), &env);
    drop(balancer);

    // Compose: the balancers' and the recorder's environment, as env.example fills it in.
    let env: Vec<(String, String)> = compose_env("balancer-1")
        .into_iter()
        .filter(|(k, _)| k != "CONFLUX_STORE__URL")
        .map(|(k, v)| match k.as_str() {
            "CONFLUX_RECORDINGS__ARCHIVE_DIR" => {
                (k, dir.path().join("archives").display().to_string())
            }
            _ => (k, v),
        })
        .collect();
    assert!(env.len() >= 4, "{env:?}");
    let args = ["--data-dir", &data, "serve", "--listen", "127.0.0.1:0"].map(String::from);
    let (balancer, _) = Process::start_with_env("conflux-balancer", &args, dir.path(), &env);
    drop(balancer);

    let keys = dir.path().join("keys");
    let status = Command::new(conflux_tests::harness::binary("conflux-recorder"))
        .args(["keygen", "--out"])
        .arg(&keys)
        .output()
        .unwrap();
    assert!(status.status.success());
    let env: Vec<(String, String)> = compose_env("recorder")
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "CONFLUX_RECORDER__PRIVATE_KEY" => {
                (k, keys.join("recorder.key.pem").display().to_string())
            }
            _ => (k, v),
        })
        .chain([
            (
                "CONFLUX_RECORDER__LISTEN".to_owned(),
                "127.0.0.1:0".to_owned(),
            ),
            (
                "CONFLUX_RECORDER__DATA_DIR".to_owned(),
                dir.path().join("recordings").display().to_string(),
            ),
        ])
        .collect();
    let missing = dir.path().join("none.toml").display().to_string();
    let args = ["--config", &missing, "serve"].map(String::from);
    let (recorder, _) = Process::start_with_env("conflux-recorder", &args, dir.path(), &env);
    drop(recorder);
}

/// The metric names an expression reads (`conflux_*`, `process_*`), as families: a
/// histogram's `_bucket`, `_sum` and `_count` series belong to it.
fn families_in(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("conflux_") || t.starts_with("process_"))
        .map(|t| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| t.strip_suffix(s))
                .unwrap_or(t)
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn the_alerts_and_the_grafana_dashboard_read_what_metrics_expose() {
    let monitoring = root().join("packaging/monitoring");
    let promtool = |args: &[&str]| {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&monitoring)
            .output()
            .expect("promtool (Debian's prometheus package: scripts/test installs it)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "promtool {args:?}: {text}");
        text
    };
    promtool(&["check", "rules", "conflux-alerts.yml"]);
    promtool(&["test", "rules", "conflux-alerts.test.yml"]);

    // Every panel's query (and the dashboard's variable) is PromQL that parses: promtool
    // checks them as recording rules, Grafana's variables filled in.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(monitoring.join("grafana-dashboard.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    assert!(exprs.len() >= 20, "{} queries", exprs.len());
    exprs.push("conflux_build_info".into()); // label_values(conflux_build_info, instance)
    let dir = tempfile::tempdir().unwrap();
    let rules: String = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let e = e
                .replace("$__rate_interval", "5m")
                .replace("$instance", ".*");
            format!("      - record: dashboard:query_{i}\n        expr: {e:?}\n")
        })
        .collect();
    let file = dir.path().join("dashboard-rules.yml");
    std::fs::write(
        &file,
        format!("groups:\n  - name: dashboard\n    rules:\n{rules}"),
    )
    .unwrap();
    promtool(&["check", "rules", file.to_str().unwrap()]);

    // Every family they read is one a balancer exposes (described from the start).
    let lb = conflux_tests::harness::balancer().start().await;
    let exposed = lb.metrics().await;
    let alerts = std::fs::read_to_string(monitoring.join("conflux-alerts.yml")).unwrap();
    let mut read: Vec<String> = exprs.iter().flat_map(|e| families_in(e)).collect();
    read.extend(
        alerts
            .lines()
            .filter_map(|l| l.trim().strip_prefix("expr:"))
            .flat_map(families_in),
    );
    read.sort();
    read.dedup();
    assert!(read.len() >= 15, "{read:?}");
    for family in read {
        assert!(
            exposed.contains(&format!("# TYPE {family} ")),
            "{family} is read by the dashboard or the alerts but not exposed"
        );
    }
}
