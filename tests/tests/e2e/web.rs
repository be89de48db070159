//! The operator's web: a real headless Chromium against the running demo (login, every node,
//! a live change after a join, a node's history chart, logout; screenshots), and the security
//! rules checked over HTTP: login required, CSRF, login rate limiting, no secret in any page.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use conflux_shared::Algorithm;
use conflux_tests::harness::{balancer, binary, cookie, http, log_in, sim, BbbClient, Process};

const UNI: &str = "uni-secret-0123456789";
const DEMO_SECRET: &str = "conflux-demo-secret-0123456789";

/// `conflux-balancer --data-dir DIR users add NAME --role ROLE` with the password on stdin.
fn add_user(data_dir: &Path, name: &str, role: &str, password: &str) {
    let mut child = Command::new(binary("conflux-balancer"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["users", "add", name, "--role", role])
        .env_remove("CONFLUX_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_dashboard_in_a_real_browser() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").exists() && Path::new("/usr/bin/chromium").exists(),
        "playwright-core (npm, tests/browser) and Debian's chromium are needed: scripts/test installs them"
    );
    let dir = tempfile::tempdir().unwrap();
    let args = ["demo", "--listen", "127.0.0.1:0"].map(String::from);
    let (demo, addr) = Process::start("conflux-balancer", &args, dir.path());
    let data = std::env::temp_dir()
        .join(format!("conflux-demo-{}", demo.pid()))
        .join("balancer");
    add_user(&data, "tester", "viewer", "tester-password");
    add_user(&data, "boss", "admin", "boss-password");
    let base = format!("http://{addr}");
    let bbb = BbbClient::new(&base, DEMO_SECRET, Algorithm::Sha256);
    assert!(bbb
        .call(
            "create",
            &[("meetingID", "browser-room"), ("name", "Browser")]
        )
        .await
        .is_success());
    let join = bbb.url(
        "join",
        &[
            ("meetingID", "browser-room"),
            ("fullName", "Ann"),
            ("role", "VIEWER"),
            ("redirect", "false"),
        ],
    );
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let script = serde_json::json!({
        "base": base, "user": "tester", "password": "tester-password",
        "admin": "boss", "adminPassword": "boss-password", "join": join,
        "shots": shots, "nodes": ["bbb1", "bbb2", "bbb3"],
    })
    .to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .current_dir(&browser_dir)
            .arg("dashboard.mjs")
            .arg(script)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "{stdout}\n{stderr}\ndemo log:\n{}",
        demo.log_text()
    );
    for step in [
        "logged in",
        "every node shown",
        "without a reload",
        "history chart",
        "network history",
        "logged out",
        "secret shown once",
        "removed once confirmed",
        "ask first",
        "compact labels",
        "alert history",
        "meetings page",
        "report downloaded",
        "nothing blocked by the Content-Security-Policy",
    ] {
        assert!(stdout.contains(step), "{step} missing:\n{stdout}");
    }
    for shot in ["dashboard.png", "node.png", "alerts.png", "meetings.png"] {
        let png = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/screenshots")
                .join(shot),
        )
        .unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{shot}");
    }
}

#[tokio::test]
async fn pages_need_a_login_and_never_show_secrets() {
    let node = sim().start().await;
    let lb = balancer()
        .nodes(&[&node])
        .integration("uni", UNI)
        .config("[web]\nsecure_cookies = false\n")
        .start()
        .await;
    let data = lb.dir.path().join("data");
    add_user(&data, "ops", "admin", "ops-password-1");
    let base = lb.url.clone();

    // Nobody logged in: the login page, or 401 for data.
    let home = http().get(format!("{base}/")).send().await.unwrap();
    assert_eq!(home.status().as_u16(), 303);
    assert_eq!(home.headers()["location"], "/login");
    for path in ["/events", "/api/v1/nodes/bbb1/history"] {
        let r = http().get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path}");
    }

    // Every web answer carries the security headers; HSTS only when served as secure.
    for path in ["/login", "/admin", "/static/app.js", "/"] {
        let r = http().get(format!("{base}{path}")).send().await.unwrap();
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        assert!(h.get("strict-transport-security").is_none(), "{path}");
    }
    let login_page = http().get(format!("{base}/login")).send().await.unwrap();
    let login_html = login_page.text().await.unwrap();
    assert!(!login_html.contains("<script>"), "no inline script");

    // CSRF: a login without the login cookie's token is refused.
    let forged = http()
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=abc&username=ops&password=ops-password-1")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    assert!(cookie(&forged, "conflux_session").is_none());

    let session = log_in(&base, "ops", "ops-password-1").await.unwrap();
    let get = |path: &str| {
        let (base, session) = (base.clone(), session.clone());
        let path = path.to_owned();
        async move {
            http()
                .get(format!("{base}{path}"))
                .header("cookie", session)
                .send()
                .await
                .unwrap()
        }
    };
    let page = get("/").await.text().await.unwrap();
    assert!(page.contains(r#"data-node="bbb1""#), "{page}");
    let node_page = get("/nodes/bbb1").await.text().await.unwrap();
    let history = get("/api/v1/nodes/bbb1/history?range=day")
        .await
        .text()
        .await
        .unwrap();
    assert!(history.contains(r#""range":"day""#), "{history}");
    let mut events = get("/events").await;
    let first = events.chunk().await.unwrap().unwrap();
    for text in [
        page.as_str(),
        node_page.as_str(),
        history.as_str(),
        &String::from_utf8_lossy(&first),
    ] {
        assert!(!text.contains(&node.secret), "a node secret leaked");
        assert!(!text.contains(UNI), "an integration secret leaked");
        assert!(!text.contains("$argon2"), "a password hash leaked");
    }
    assert_eq!(get("/nodes/nope").await.status().as_u16(), 404);
    assert_eq!(
        get("/api/v1/nodes/bbb1/history?range=week")
            .await
            .status()
            .as_u16(),
        400
    );

    // Logging out needs the session's CSRF token.
    let bad_logout = http()
        .post(format!("{base}/logout"))
        .header("cookie", &session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_logout.status().as_u16(), 403);
    assert_eq!(get("/").await.status().as_u16(), 200, "still logged in");

    // A viewer sees the pages but changes nothing, even with a valid CSRF token.
    add_user(&data, "watcher", "viewer", "watcher-password");
    let viewer = log_in(&base, "watcher", "watcher-password").await.unwrap();
    let admin_page = http()
        .get(format!("{base}/admin"))
        .header("cookie", &viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(admin_page.status().as_u16(), 403);
    let viewer_home = http()
        .get(format!("{base}/"))
        .header("cookie", &viewer)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = viewer_home
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    for (path, body) in [
        (
            "/admin/integrations/add",
            format!("csrf={csrf}&name=Sneaky"),
        ),
        ("/admin/nodes/disable", format!("csrf={csrf}&id=1")),
        (
            "/admin/users/add",
            format!("csrf={csrf}&username=x&password=xxxxxxxxx&role=admin"),
        ),
    ] {
        let r = http()
            .post(format!("{base}{path}"))
            .header("cookie", &viewer)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{path}");
    }
    assert!(!lb.cli_ok(&["integrations", "list"]).contains("Sneaky"));
    assert!(lb.cli_ok(&["servers", "list"]).contains("enabled"));
    // An admin's form without the session's token is refused too.
    let refused = http()
        .post(format!("{base}/admin/integrations/add"))
        .header("cookie", &session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=not-it&name=Forged")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    assert!(!lb.cli_ok(&["integrations", "list"]).contains("Forged"));

    // Five wrong passwords from one address: even the right one is refused for a while.
    for _ in 0..5 {
        assert_eq!(
            log_in(&base, "ops", "wrong-password").await.unwrap_err().0,
            401
        );
    }
    let (status, body) = log_in(&base, "ops", "ops-password-1").await.unwrap_err();
    assert_eq!(status, 429, "{body}");
    let audit = lb.process.log_text();
    assert!(audit.contains("Login failed."), "{audit}");
}

#[tokio::test]
async fn a_public_dashboard_needs_no_login() {
    let node = sim().start().await;
    let lb = balancer()
        .nodes(&[&node])
        .integration("uni", UNI)
        .config("[web]\npublic = true\n")
        .start()
        .await;
    let page = http().get(format!("{}/", lb.url)).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(
        page.headers()["strict-transport-security"],
        "max-age=31536000",
        "HSTS when the web is served as secure (the default)"
    );
    let text = page.text().await.unwrap();
    assert!(
        text.contains(r#"data-node="bbb1""#) && !text.contains("Log out"),
        "{text}"
    );
}

/// `conflux-balancer --data-dir DIR tokens add NAME --role ROLE`: the token.
fn add_token(data_dir: &Path, name: &str, role: &str) -> String {
    let out = Command::new(binary("conflux-balancer"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["tokens", "add", name, "--role", role])
        .env_remove("CONFLUX_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .strip_prefix("token: ")
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_json_admin_api_does_what_the_pages_do() {
    let node = sim().start().await;
    let lb = balancer()
        .nodes(&[&node])
        .integration("uni", UNI)
        .start()
        .await;
    let data = lb.dir.path().join("data");
    let admin = add_token(&data, "automation", "admin");
    let viewer = add_token(&data, "grafana", "viewer");
    let base = format!("{}/api/v1", lb.url);
    let get = |path: &str, token: &str| {
        let (url, token) = (format!("{base}{path}"), token.to_owned());
        async move { http().get(url).bearer_auth(token).send().await.unwrap() }
    };
    let post = |path: &str, token: &str, body: serde_json::Value| {
        let (url, token) = (format!("{base}{path}"), token.to_owned());
        async move {
            http()
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };

    // Every GET path of docs/openapi.yaml answers, and never with a secret.
    let spec =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.yaml"))
            .unwrap();
    let paths: Vec<&str> = spec
        .lines()
        .filter_map(|l| l.strip_prefix("  /").and_then(|p| p.strip_suffix(':')))
        .filter(|p| !p.starts_with('{'))
        .collect();
    assert!(paths.len() >= 8, "{paths:?}");
    // A meeting to list (its ID needs encoding in a path).
    let uni = lb.client(UNI, conflux_shared::Algorithm::Sha256);
    let created = uni
        .call("create", &[("meetingID", "api room/1"), ("name", "Api")])
        .await;
    assert!(created.is_success(), "{created:?}");
    let mut answers = Vec::new();
    for template in paths {
        let path = format!(
            "/{}",
            template
                .replace("{node}", "bbb1")
                .replace("{meeting}", "api%20room%2F1")
        );
        let r = get(&path, &viewer).await;
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let text = r.text().await.unwrap();
        assert!(
            !text.contains(&node.secret) && !text.contains(UNI),
            "{path} leaks a secret"
        );
        answers.push(serde_json::json!([format!("/{template}"), text]));
    }
    // The spec is valid OpenAPI 3 and every answer matches its documented schema.
    documented(&answers);
    let listed: serde_json::Value = get("/meetings?node=bbb1&limit=5", &viewer)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(listed["meetings"][0]["meeting_id"], "api room/1");
    assert_eq!(listed["meetings"][0]["node"], "bbb1");
    assert!(
        listed["meetings"][0]["placement_reason"]
            .as_str()
            .unwrap()
            .len()
            > 3
    );
    let one: serde_json::Value = get("/meetings/api%20room%2F1", &viewer)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (one["integration"].as_str(), one["running"].as_bool()),
        (Some("uni"), Some(false)),
        "{one}"
    );
    for bad in [
        "/meetings?integration=999",
        "/meetings?node=nope",
        "/meetings?limit=x",
    ] {
        assert_eq!(get(bad, &viewer).await.status().as_u16(), 400, "{bad}");
    }
    assert_eq!(get("/meetings/nope", &viewer).await.status().as_u16(), 404);
    // A search finds by ID or name in any case; LIKE's wildcards are only themselves.
    for (q, found) in [
        ("ROOM%2F", 1),
        ("api", 1),
        ("%25", 0),
        ("_", 0),
        ("nothing", 0),
    ] {
        let listed: serde_json::Value = get(&format!("/meetings?q={q}"), &viewer)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(listed["total"], found, "q={q}: {listed}");
    }
    assert_eq!(
        http()
            .get(format!("{base}/nodes"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    assert_eq!(get("/nodes", "not-a-token").await.status().as_u16(), 401);

    // Viewers read only; admins act, audited under the token's name.
    let refused = post(
        "/integrations/add",
        &viewer,
        serde_json::json!({"name": "Api University"}),
    )
    .await;
    assert_eq!(refused.status().as_u16(), 403);
    let made = post(
        "/integrations/add",
        &admin,
        serde_json::json!({"name": "Api University"}),
    )
    .await;
    assert_eq!(made.status().as_u16(), 200);
    let made: serde_json::Value = made.json().await.unwrap();
    let secret = made["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 40);
    let listed: serde_json::Value = get("/integrations", &viewer).await.json().await.unwrap();
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["name"] == "Api University"));
    assert!(
        !listed.to_string().contains(&secret),
        "listing shows no secret"
    );
    let bbb = lb.client(&secret, conflux_shared::Algorithm::Sha256);
    assert!(
        conflux_tests::harness::eventually(|| async {
            bbb.call("getMeetings", &[]).await.is_success()
        })
        .await,
        "the new secret works"
    );
    let node_id = 1;
    let updated = post(
        "/nodes/update",
        &admin,
        serde_json::json!({"id": node_id, "location": "-30.03,-51.22", "multiplier": 2.5, "tags": "gpu"}),
    )
    .await;
    assert_eq!(updated.status().as_u16(), 200);
    assert!(lb
        .cli_ok(&["servers", "list"])
        .contains("load multiplier: 2.5"));
    let bad = post(
        "/nodes/update",
        &admin,
        serde_json::json!({"id": node_id, "location": "north"}),
    )
    .await;
    assert_eq!(bad.status().as_u16(), 400);
    let unknown = post("/nodes/explode", &admin, serde_json::json!({"id": node_id})).await;
    assert_eq!(unknown.status().as_u16(), 404);
    // The integration's recording server: URL and RSA public key (3072 bits or more).
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tests/fixtures/keys");
    let strong = std::fs::read_to_string(keys.join("recorder-3072.pub.pem")).unwrap();
    let weak = std::fs::read_to_string(keys.join("weak-2048.pub.pem")).unwrap();
    let uni_id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "uni")
        .unwrap()["id"]
        .clone();
    let refused = post(
        "/integrations/recorder",
        &admin,
        serde_json::json!({"id": uni_id, "url": "https://rec.uni.example", "key": weak}),
    )
    .await;
    assert_eq!(refused.status().as_u16(), 400);
    assert!(refused.text().await.unwrap().contains("2048 bits"));
    let set = post(
        "/integrations/recorder",
        &admin,
        serde_json::json!({"id": uni_id, "url": "https://rec.uni.example/", "key": strong}),
    )
    .await;
    assert_eq!(set.status().as_u16(), 200);
    let listed: serde_json::Value = get("/integrations", &viewer).await.json().await.unwrap();
    let uni = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "uni")
        .unwrap()
        .clone();
    assert_eq!(uni["recorder"]["url"], "https://rec.uni.example");
    assert_eq!(uni["recorder"]["fingerprint"].as_str().unwrap().len(), 64);
    // The CLI does the same from a key file, and refuses a weak key changing nothing.
    let weak_file = lb.dir.path().join("weak.pem");
    std::fs::write(&weak_file, &weak).unwrap();
    let out = lb.cli(&[
        "integrations",
        "update",
        "uni",
        "--recorder-url",
        "https://other.example",
        "--recorder-key",
        weak_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 3072"));
    assert!(lb
        .cli_ok(&["integrations", "list"])
        .contains("https://rec.uni.example (key "));

    let audit: serde_json::Value = get("/audit", &viewer).await.json().await.unwrap();
    assert!(audit.to_string().contains("token:automation"), "{audit}");
    // The CLI's changes are in the same log (the harness added the node and the integration).
    let cli = audit.as_array().unwrap();
    for action in ["servers add", "integrations add"] {
        assert!(
            cli.iter()
                .any(|e| e["actor"] == "cli" && e["action"] == action),
            "{action} missing: {audit}"
        );
    }
    assert!(
        !audit.to_string().contains(UNI),
        "no secret in the audit log"
    );
}

/// Checks `docs/openapi.yaml` with openapi-spec-validator and each `[path, body]` answer
/// against its path's documented 200 schema (openapi-schema-validator, OpenAPI 3.0 rules:
/// `nullable`, no undocumented fields where the schema says so), both from .venv.
fn documented(answers: &[serde_json::Value]) {
    const CHECK: &str = r##"
import json, sys, yaml
from openapi_spec_validator import validate
from openapi_schema_validator import OAS30Validator
spec = yaml.safe_load(open(sys.argv[1]))
validate(spec)
def inline(node):
    if isinstance(node, dict):
        if "$ref" in node:
            target = spec
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return inline(target)
        return {k: inline(v) for k, v in node.items()}
    if isinstance(node, list):
        return [inline(v) for v in node]
    return node
failures = []
for path, body in json.load(sys.stdin):
    schema = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    errors = list(OAS30Validator(inline(schema)).iter_errors(json.loads(body)))
    failures += [f"{path}: {e.message} at {list(e.absolute_path)}" for e in errors[:3]]
print("\n".join(failures))
sys.exit(1 if failures else 0)
"##;
    use std::io::Write;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut child = std::process::Command::new(root.join(".venv/bin/python"))
        .arg("-c")
        .arg(CHECK)
        .arg(root.join("docs/openapi.yaml"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the .venv python (scripts/test makes it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(answers).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
