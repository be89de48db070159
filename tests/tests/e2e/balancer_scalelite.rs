//! Scalelite's management API (`/scalelite/api/*`), as Scalelite's automation calls it: checksums
//! with the load balancer's secret, JSON in and out, Scalelite's answers and errors.

use conflux_shared::checksum::compute;
use conflux_shared::{Algorithm, Response};
use conflux_tests::harness::{balancer, binary, http, sim, Balancer, BbbClient, Process};
use serde_json::{json, Value};

const LB_SECRET: &str = "scalelite-lb-secret-0123456789";

fn url(lb: &Balancer, call: &str, query: &str, secret: &str) -> String {
    let sum = compute(Algorithm::Sha256, call, query, secret);
    let sep = if query.is_empty() { "" } else { "&" };
    format!("{}/scalelite/api/{call}?{query}{sep}checksum={sum}", lb.url)
}

async fn get(lb: &Balancer, call: &str, query: &str) -> (u16, Value) {
    let r = http()
        .get(url(lb, call, query, LB_SECRET))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn post(lb: &Balancer, call: &str, body: Value) -> (u16, Value) {
    let r = http()
        .post(url(lb, call, "", LB_SECRET))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn servers_and_tenants_through_scalelites_api() {
    let (n1, n2) = (sim().start().await, sim().start().await);
    let lb = balancer()
        .node("bbb1", &n1)
        .env("LOADBALANCER_SECRET", LB_SECRET)
        .start()
        .await;

    // A wrong checksum is BBB's XML error, HTTP 200; a non-JSON body is refused too.
    let bad = http()
        .get(url(&lb, "getServers", "", "wrong-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 200);
    let text = bad.text().await.unwrap();
    assert_eq!(
        Response::from_xml(&text).unwrap().key(),
        Some("checksumError"),
        "{text}"
    );
    let form = http()
        .post(url(&lb, "addServer", "", LB_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("url=x")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        Response::from_xml(&form).unwrap().key(),
        Some("unsupportedContentType")
    );

    let (status, servers) = get(&lb, "getServers", "").await;
    assert_eq!(status, 200);
    assert_eq!(servers[0]["id"], "bbb1");
    assert_eq!(servers[0]["state"], "enabled");
    assert_eq!(servers[0]["online"], "online");
    assert_eq!(servers[0]["load_multiplier"], "1.0");

    let n2_url = format!("{}/bigbluebutton/api/", n2.url);
    let (status, added) = post(
        &lb,
        "addServer",
        json!({"server": {"url": n2_url, "secret": n2.secret, "load_multiplier": "2.0", "tag": "gpu"}}),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(
        added["url"],
        n2_url.as_str(),
        "the URL as given, trailing slash kept"
    );
    assert_eq!(added["state"], "disabled");
    assert_eq!(added["online"], "offline");
    assert_eq!(added["load"], "unavailable");
    assert_eq!(added["tag"], "gpu");
    let id = added["id"].as_str().unwrap().to_owned();
    let (_, info) = get(&lb, "getServerInfo", &format!("id={id}")).await;
    assert_eq!(info["url"], n2_url.as_str());
    assert!(
        lb.cli_ok(&["servers", "list"])
            .contains(&format!("url: {n2_url}\n")),
        "servers list shows it as given"
    );
    let (status, missing) = post(&lb, "addServer", json!({"server": {"url": n2.url}})).await;
    assert_eq!(
        (status, missing["error"].as_str()),
        (400, Some("Server needs a URL and a secret"))
    );

    // Flat bodies are accepted as Scalelite accepts them.
    let (status, enabled) = post(&lb, "updateServer", json!({"id": id, "state": "enable"})).await;
    assert_eq!(
        (status, enabled["state"].as_str()),
        (200, Some("enabled")),
        "{enabled}"
    );
    let (status, invalid) = post(
        &lb,
        "updateServer",
        json!({"id": id, "server": {"state": "explode"}}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(invalid["error"], "Invalid state parameter: explode");
    let (status, zero) = post(
        &lb,
        "updateServer",
        json!({"id": id, "server": {"load_multiplier": "0"}}),
    )
    .await;
    assert_eq!(
        (status, zero["error"].as_str()),
        (400, Some("Load-multiplier must be a non-zero number"))
    );
    let (status, unknown) = get(&lb, "getServerInfo", "id=nope").await;
    assert_eq!(
        (status, unknown["error"].as_str()),
        (404, Some("Couldn't find server with id=nope"))
    );

    // panicServer ends the node's meetings and disables it.
    let bbb = lb.client(LB_SECRET, Algorithm::Sha256);
    let created = bbb
        .call(
            "create",
            &[
                ("meetingID", "m1"),
                ("name", "Room M"),
                ("preferredServer", "bbb1"),
            ],
        )
        .await;
    assert!(created.is_success(), "{created:?}");
    let (status, panicked) = post(&lb, "panicServer", json!({"id": "bbb1"})).await;
    assert_eq!(status, 200, "{panicked}");
    assert_eq!(
        panicked["success"],
        "Server id=bbb1 has been disabled and the meetings have been destroyed"
    );
    assert_eq!(
        bbb.call("getMeetingInfo", &[("meetingID", "m1")])
            .await
            .key(),
        Some("notFound")
    );
    let (_, info) = get(&lb, "getServerInfo", "id=bbb1").await;
    assert_eq!(info["state"], "disabled");
    let (status, gone) = post(&lb, "deleteServer", json!({"id": id})).await;
    assert_eq!(
        (status, gone["success"].as_str().map(String::from)),
        (200, Some(format!("Server id={id} was destroyed")))
    );

    // Tenants are integrations.
    let (status, tenant) = post(
        &lb,
        "addTenant",
        json!({"tenant": {"name": "uni2", "secrets": "uni2-secret-aaaaaaa:uni2-secret-bbbbbbb"}}),
    )
    .await;
    assert_eq!(status, 201, "{tenant}");
    let tenant_id = tenant["tenant"]["id"].as_str().unwrap().to_owned();
    let uni2 = lb.client("uni2-secret-bbbbbbb", Algorithm::Sha1);
    assert!(
        conflux_tests::harness::eventually(|| async {
            uni2.call("getMeetings", &[]).await.is_success()
        })
        .await,
        "the tenant's second secret works"
    );
    let (_, tenants) = get(&lb, "getTenants", "").await;
    assert!(
        tenants
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "uni2"),
        "{tenants}"
    );
    let (status, renamed) = post(
        &lb,
        "updateTenant",
        json!({"id": tenant_id, "tenant": {"name": "uni-two"}}),
    )
    .await;
    assert_eq!(
        (status, renamed["tenant"]["name"].as_str()),
        (200, Some("uni-two"))
    );
    let (status, _) = post(&lb, "addTenant", json!({"tenant": {"name": "x"}})).await;
    assert_eq!(status, 400);
    let (status, deleted) = post(&lb, "deleteTenant", json!({"id": tenant_id})).await;
    assert_eq!(status, 200, "{deleted}");
    assert!(!lb.cli_ok(&["integrations", "list"]).contains("uni-two"));
}

#[tokio::test]
async fn the_scalelite_policy_places_and_counts_load_as_scalelite_does() {
    let (n1, n2) = (sim().start().await, sim().start().await);
    let lb = balancer()
        .node("bbb1", &n1)
        .node("bbb2", &n2)
        .env("LOADBALANCER_SECRET", LB_SECRET)
        .env("CONFLUX_PLACEMENT__POLICY", "scalelite")
        .env("CONFLUX_POLLER__INTERVAL_SECS", "600")
        .start()
        .await;
    // Through the balancer itself, so its placement sees the multiplier at once.
    let (status, updated) = post(
        &lb,
        "updateServer",
        json!({"id": "bbb2", "server": {"load_multiplier": "2"}}),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    let loads = || async {
        let (status, servers) = get(&lb, "getServers", "").await;
        assert_eq!(status, 200, "{servers}");
        servers
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_owned(),
                    s["load"].clone(),
                    s["load_multiplier"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    // Each create adds 1 × the multiplier until the next poll; ties go to the first node.
    let bbb = lb.client(LB_SECRET, Algorithm::Sha256);
    let mut placed = Vec::new();
    for i in 0..5 {
        let id = format!("room-{i}");
        let created = bbb
            .call("create", &[("meetingID", &id), ("name", "Room")])
            .await;
        assert!(created.is_success(), "{created:?}");
        let info = lb.cli_ok(&["meetings", "info", &id]);
        placed.push(
            info.lines()
                .find_map(|l| l.strip_prefix("server: "))
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        placed,
        ["bbb1", "bbb2", "bbb1", "bbb1", "bbb2"],
        "{}",
        lb.cli_ok(&["meetings", "info", "room-3"])
    );
    let load_of = |all: &[(String, Value, Value)], id: &str| {
        all.iter()
            .find(|(i, ..)| i == id)
            .unwrap()
            .1
            .as_f64()
            .unwrap()
    };
    let now = loads().await;
    assert_eq!((load_of(&now, "bbb1"), load_of(&now, "bbb2")), (3.0, 4.0));
    // A join adds 1 × the multiplier too.
    let join = [
        ("meetingID", "room-1"),
        ("fullName", "Ada"),
        ("role", "VIEWER"),
        ("redirect", "false"),
    ];
    assert!(bbb.call("join", &join).await.is_success());
    assert_eq!(load_of(&loads().await, "bbb2"), 6.0);
    // A poll recomputes it: each young meeting weighs at least LOAD_MIN_USER_COUNT (15), times
    // the multiplier; a cordoned node keeps its load.
    lb.cli_ok(&["servers", "cordon", "bbb1"]);
    lb.cli_ok(&["poll"]);
    assert!(
        conflux_tests::harness::eventually(|| async {
            let now = loads().await;
            (load_of(&now, "bbb1"), load_of(&now, "bbb2")) == (45.0, 60.0)
        })
        .await,
        "{:?}",
        loads().await
    );
}

#[tokio::test]
async fn a_scalelite_environment_is_read_and_what_it_cannot_mean_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = [
        ("BIND", "tcp://127.0.0.1"),
        ("PORT", &port.to_string()),
        ("REDIS_URL", "redis://redis:6379"),
        ("SECRET_KEY_BASE", "0123456789abcdef"),
        ("LOADBALANCER_SECRET", "a-scalelite-secret-0123"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let data = dir.path().join("data").display().to_string();
    let args = ["--data-dir", &data, "serve"].map(String::from);
    let (mut lb, addr) = Process::start_with_env("conflux-balancer", &args, dir.path(), &env);
    assert_eq!(addr, format!("127.0.0.1:{port}"), "puma's PORT and BIND");
    let client = BbbClient::new(
        &format!("http://{addr}"),
        "a-scalelite-secret-0123",
        Algorithm::Sha256,
    );
    assert!(client.call("getMeetings", &[]).await.is_success());
    let log = lb.log_text();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("mean nothing to Conflux"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains("SECRET_KEY_BASE, REDIS_URL"),
        "{}",
        warnings[0]
    );
    lb.stop();

    // A misspelled CONFLUX_ variable is refused, not silently ignored.
    let out = std::process::Command::new(binary("conflux-balancer"))
        .args(["--data-dir", &data, "servers", "list"])
        .env("CONFLUX_DATADIR", "/somewhere/else")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("CONFLUX_DATADIR") && stderr.contains("did you mean CONFLUX_DATA_DIR"),
        "{stderr}"
    );
}
