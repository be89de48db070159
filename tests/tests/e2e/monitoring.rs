//! Monitoring and geo placement end to end: three simulated nodes "in" three cities enrol as
//! agents would and send signed reports; creates from each region land on the right node; a
//! busy node, a node with a closed port, a silent agent and a node forced off get nothing;
//! forged, replayed and unsigned reports are refused.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conflux_shared::report::{self, Enrolled};
use conflux_shared::{Algorithm, Response};
use conflux_tests::harness::{
    a_report, balancer, eventually, http, now_ms, post_report, sim, Balancer, SimNode,
};
use ipnet::IpNet;
use serde::Serialize;
use serde_json::json;

const UNI: &str = "uni-secret-0123456789";
const TOKEN: &str = "enrol-me-please-0123";

/// The cities, their client address blocks and where their node stands.
const CITIES: [(&str, &str, f64, f64); 3] = [
    ("porto-alegre", "198.51.100.0/24", -30.03, -51.22),
    ("sao-paulo", "203.0.113.0/24", -23.55, -46.63),
    ("frankfurt", "192.0.2.0/24", 50.11, 8.68),
];

#[derive(Serialize)]
struct Flat {
    country_code: &'static str,
    city: &'static str,
    latitude: f32,
    longitude: f32,
}

/// A DB-IP-style (flat) database placing each city's client block in that city.
fn geo_database(dir: &Path) -> std::path::PathBuf {
    let mut writer = mmdb_writer::Writer::new("city ipv4");
    for (city, block, lat, lon) in CITIES {
        let record = Flat {
            country_code: if city == "frankfurt" { "DE" } else { "BR" },
            city,
            latitude: lat as f32,
            longitude: lon as f32,
        };
        writer
            .insert(block.parse::<IpNet>().unwrap(), &record)
            .unwrap();
    }
    // The nodes' own host: Frankfurt enrols without a location and is placed by GeoIP of it.
    let (_, _, lat, lon) = CITIES[2];
    let host = Flat {
        country_code: "DE",
        city: "frankfurt",
        latitude: lat as f32,
        longitude: lon as f32,
    };
    writer
        .insert("127.0.0.0/8".parse::<IpNet>().unwrap(), &host)
        .unwrap();
    let path = dir.join("cities.mmdb");
    std::fs::write(&path, writer.to_bytes().unwrap()).unwrap();
    path
}

/// Fake agents: every 200 ms each enrolled city reports its current CPU (None = stopped).
type Cpus = Arc<Mutex<BTreeMap<&'static str, Option<f64>>>>;

fn spawn_agents(url: String, agents: Vec<(&'static str, Enrolled)>, cpus: Cpus) {
    tokio::spawn(async move {
        let mut sent = 0i64;
        loop {
            for (city, agent) in &agents {
                let cpu = cpus.lock().unwrap().get(city).copied().flatten();
                if let Some(cpu) = cpu {
                    sent = now_ms().max(sent + 1);
                    let body = serde_json::to_vec(&a_report(cpu, 0.5)).unwrap();
                    post_report(&url, agent.node, &agent.key, sent, &body).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

async fn enrol(
    lb: &Balancer,
    node: &SimNode,
    name: &str,
    token: &str,
    at: Option<(f64, f64)>,
) -> (u16, serde_json::Value) {
    let response = http()
        .post(format!("{}{}", lb.url, report::ENROL_PATH))
        .json(&json!({
            "token": token, "name": name, "url": node.url, "secret": node.secret,
            "latitude": at.map(|a| a.0), "longitude": at.map(|a| a.1),
        }))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Creates `id` as a client at `client_ip` and returns the name of the node it landed on.
async fn create_from(lb: &Balancer, id: &str, client_ip: &str) -> String {
    let url = lb
        .client(UNI, Algorithm::Sha256)
        .url("create", &[("meetingID", id), ("name", "Room")]);
    let body = http()
        .get(url)
        .header("x-forwarded-for", client_ip)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(Response::from_xml(&body).unwrap().is_success(), "{body}");
    let info = lb.cli_ok(&["meetings", "info", id]);
    info.lines()
        .find_map(|l| l.strip_prefix("server: "))
        .unwrap_or_else(|| panic!("{info}"))
        .to_owned()
}

#[tokio::test]
async fn geo_placement_follows_health_and_location() {
    let nodes = [
        sim().start().await,
        sim().start().await,
        sim().start().await,
    ];
    let dir = tempfile::tempdir().unwrap();
    let geo = geo_database(dir.path());
    let lb = balancer()
        .integration("uni", UNI)
        .config(&format!(
            "[geoip]\nfiles = [{geo:?}]\n[monitor]\nenrolment_token = {TOKEN:?}\nenrol_enabled = true\n\
             ports_interval_secs = 0.2\nversion_interval_secs = 0.2\ndemo_interval_secs = 0.2\n\
             stale_unknown_intervals = 3\nstale_critical_intervals = 6\n"
        ))
        .env("CONFLUX_SERVER__TRUSTED_PROXIES", "[]")
        .start()
        .await;

    // Enrolment: a wrong token is refused; the right one registers each node with its key.
    let (status, answer) = enrol(&lb, &nodes[0], "porto-alegre", "guess", None).await;
    assert_eq!(status, 401, "{answer}");
    let mut agents = Vec::new();
    for (node, (city, _, lat, lon)) in nodes.iter().zip(CITIES) {
        // Frankfurt has no configured location: GeoIP of its address (127.0.0.1) places it.
        let at = (city != "frankfurt").then_some((lat, lon));
        let (status, answer) = enrol(&lb, node, city, TOKEN, at).await;
        assert_eq!(status, 200, "{answer}");
        agents.push((city, serde_json::from_value::<Enrolled>(answer).unwrap()));
    }
    let cpus: Cpus = Arc::new(Mutex::new(
        CITIES.iter().map(|c| (c.0, Some(20.0))).collect(),
    ));
    spawn_agents(lb.url.clone(), agents, cpus.clone());
    lb.wait_online(3).await;
    let check_is = |city: &'static str, check: &'static str, state: &'static str| {
        let lb = &lb;
        async move {
            eventually(|| async {
                let checks = lb.cli_ok(&["servers", "checks", city]);
                checks
                    .lines()
                    .any(|l| l.starts_with(check) && l.contains(state))
            })
            .await
        }
    };
    for city in ["porto-alegre", "sao-paulo", "frankfurt"] {
        assert!(check_is(city, "cpu", "OK").await, "{city} reported");
    }

    // Each region's client lands on its own node.
    assert_eq!(
        create_from(&lb, "poa-1", "198.51.100.7").await,
        "porto-alegre"
    );
    assert_eq!(create_from(&lb, "sp-1", "203.0.113.5").await, "sao-paulo");
    // Frankfurt's host is located in the background, within a second or so.
    assert!(
        eventually(|| async {
            create_from(&lb, &format!("fra-{}", rand::random::<u32>()), "192.0.2.9").await
                == "frankfurt"
        })
        .await
    );
    let info = lb.cli_ok(&["meetings", "info", "poa-1"]);
    assert!(info.contains("geo: nearest node porto-alegre"), "{info}");
    // The caller is no trusted proxy here: its X-Forwarded-For is believed for placement only
    // because the integration passes its users' addresses (Mconf; on by default). Switched
    // off, the caller's own address (127.0.0.1, located in Frankfurt) places the meeting.
    let placed_for = |flag: &'static str, node: &'static str| {
        let lb = &lb;
        async move {
            lb.cli_ok(&["integrations", "update", "uni", "--forwarded-for", flag]);
            eventually(|| async {
                let id = format!("xff-{}", rand::random::<u32>());
                create_from(lb, &id, "198.51.100.7").await == node
            })
            .await
        }
    };
    assert!(placed_for("false", "frankfurt").await);
    assert!(placed_for("true", "porto-alegre").await);

    // Porto Alegre at 90% CPU (a WARNING) gets nothing; São Paulo is the nearest healthy node.
    cpus.lock().unwrap().insert("porto-alegre", Some(90.0));
    assert!(check_is("porto-alegre", "cpu", "WARNING").await);
    assert_eq!(create_from(&lb, "poa-2", "198.51.100.8").await, "sao-paulo");
    // Forced off, it gets nothing even when healthy.
    lb.cli_ok(&["servers", "force", "porto-alegre", "off"]);
    cpus.lock().unwrap().insert("porto-alegre", Some(20.0));
    assert!(check_is("porto-alegre", "cpu", "OK").await);
    // The CLI wrote the store; wait until the running balancer has taken the force in.
    let forced_off = || async {
        lb.admin_json("/nodes")
            .await
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["name"] == "porto-alegre" && n["forced"] == "forced off")
    };
    assert!(eventually(forced_off).await);
    assert_ne!(
        create_from(&lb, "poa-3", "198.51.100.9").await,
        "porto-alegre",
        "forced off"
    );
    lb.cli_ok(&["servers", "force", "porto-alegre", "auto"]);
    assert!(
        eventually(|| async {
            create_from(
                &lb,
                &format!("poa-{}", rand::random::<u32>()),
                "198.51.100.9",
            )
            .await
                == "porto-alegre"
        })
        .await
    );

    // A closed port on São Paulo: its ports check goes CRITICAL and it gets nothing.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    lb.cli_ok(&[
        "servers",
        "update",
        "sao-paulo",
        "--ports",
        &closed.to_string(),
    ]);
    assert!(check_is("sao-paulo", "ports", "CRITICAL").await);
    assert_eq!(
        create_from(&lb, "sp-2", "203.0.113.6").await,
        "porto-alegre"
    );
    // Forced on, it takes meetings again whatever its checks say.
    lb.cli_ok(&["servers", "force", "sao-paulo", "on"]);
    assert!(
        eventually(|| async {
            create_from(&lb, &format!("sp-{}", rand::random::<u32>()), "203.0.113.7").await
                == "sao-paulo"
        })
        .await
    );
    lb.cli_ok(&["servers", "force", "sao-paulo", "auto"]);
    lb.cli_ok(&["servers", "update", "sao-paulo", "--ports", ""]);

    // Frankfurt's agent stops: its report check turns UNKNOWN, then CRITICAL, and it is out.
    cpus.lock().unwrap().insert("frankfurt", None);
    assert!(check_is("frankfurt", "report", "UNKNOWN").await);
    assert!(check_is("frankfurt", "report", "CRITICAL").await);
    assert_ne!(create_from(&lb, "fra-2", "192.0.2.10").await, "frankfurt");
    let status = lb.cli_ok(&["servers", "checks", "frankfurt"]);
    assert!(status.contains("no report for"), "{status}");
    // The alert history has each change, newest first, with the state it left.
    let history = lb.admin_json("/alerts?node=frankfurt").await;
    let report: Vec<(&str, Option<&str>)> = history["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"] == "report")
        .map(|c| (c["state"].as_str().unwrap(), c["previous"].as_str()))
        .collect();
    assert_eq!(
        report,
        [("CRITICAL", Some("UNKNOWN")), ("UNKNOWN", Some("OK"))],
        "a check's first OK is not history: {history}"
    );

    // Prometheus sees the same: check states, the agents' figures, the API's counters.
    let metrics = lb.metrics().await;
    for line in [
        "conflux_node_check_state{node=\"frankfurt\",check=\"report\"} 2.0",
        "conflux_node_cpu_usage_ratio{node=\"porto-alegre\"} 0.2",
        "conflux_node_accepting{node=\"frankfurt\"} 0.0",
        "conflux_node_online{node=\"sao-paulo\"} 1.0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing:\n{metrics}"
        );
    }
    assert!(
        metrics
            .lines()
            .any(|l| l
                .starts_with("conflux_api_requests_total{call=\"create\",outcome=\"success\"}")),
        "{metrics}"
    );
    assert!(
        metrics.contains("conflux_api_request_duration_seconds_bucket{"),
        "{metrics}"
    );
    assert!(
        metrics.contains("conflux_node_network_receive_bytes_total{node=\"porto-alegre\"}"),
        "{metrics}"
    );
    metrics_are_well_formed(&lb).await;
    drop(nodes);
}

#[tokio::test]
async fn forged_replayed_and_unsigned_reports_are_refused() {
    let node = sim().start().await;
    let lb = balancer()
        .integration("uni", UNI)
        .config(&format!("[monitor]\nenrolment_token = {TOKEN:?}\n"))
        .start()
        .await;
    let (status, answer) = enrol(&lb, &node, "bbb1", TOKEN, Some((10.0, 10.0))).await;
    assert_eq!(status, 200, "{answer}");
    let enrolled: Enrolled = serde_json::from_value(answer).unwrap();
    // Enrolled nodes wait for an admin unless monitor.enrol_enabled.
    assert!(lb.cli_ok(&["servers", "list"]).contains("disabled"));
    let body = serde_json::to_vec(&a_report(10.0, 10.0)).unwrap();
    let now = now_ms();
    let (id, key) = (enrolled.node, enrolled.key.as_str());
    let lb_url = lb.url.as_str();
    assert_eq!(post_report(lb_url, id, key, now, &body).await, 200);
    assert_eq!(
        post_report(lb_url, id, key, now, &body).await,
        409,
        "a replay"
    );
    assert_eq!(
        post_report(lb_url, id, key, now - 1, &body).await,
        409,
        "an older one"
    );
    assert_eq!(
        post_report(lb_url, id, "not-the-key", now + 1, &body).await,
        401,
        "forged"
    );
    assert_eq!(
        post_report(lb_url, id + 1, key, now + 2, &body).await,
        401,
        "unknown node"
    );
    assert_eq!(
        post_report(lb_url, id, key, now - 10 * 60_000, &body).await,
        401,
        "ten minutes old"
    );
    let unsigned = http()
        .post(format!("{}{}", lb.url, report::REPORT_PATH))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 400);
    let error: serde_json::Value = unsigned.json().await.unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("x-conflux-node"),
        "{error}"
    );
    assert_eq!(
        post_report(lb_url, id, key, now + 3, b"{not json").await,
        400
    );
    // Still accepted after all that, and the log names the refusals.
    assert_eq!(post_report(lb_url, id, key, now + 4, &body).await, 200);
    let log = lb.process.log_text();
    assert!(
        log.contains("bad signature") && log.contains("replayed"),
        "{log}"
    );
}

/// A join of `id` by a user at `user_ip` (X-Forwarded-For, as the front-end passes it): the
/// node its redirect points at, and the redirect.
async fn join_from(
    lb: &Balancer,
    nodes: &[(&str, &SimNode)],
    id: &str,
    user_ip: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let mut params = vec![
        ("meetingID", id),
        ("fullName", "Ana"),
        ("role", "MODERATOR"),
    ];
    params.extend_from_slice(extra);
    let url = lb.client(UNI, Algorithm::Sha256).url("join", &params);
    let answer = http()
        .get(url)
        .header("x-forwarded-for", user_ip)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 302);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let (name, _) = nodes
        .iter()
        .find(|(_, n)| location.starts_with(&n.url))
        .unwrap_or_else(|| panic!("{location}"));
    (name.to_string(), location)
}

#[tokio::test]
async fn a_meeting_created_ahead_of_time_moves_to_its_first_user() {
    let (poa, fra) = (sim().start().await, sim().start().await);
    let nodes = [("porto-alegre", &poa), ("frankfurt", &fra)];
    let dir = tempfile::tempdir().unwrap();
    let geo = geo_database(dir.path());
    let mut lb = balancer()
        .node("porto-alegre", &poa)
        .node("frankfurt", &fra)
        .integration("uni", UNI)
        .config(&format!("[geoip]\nfiles = [{geo:?}]"))
        .env("CONFLUX_SERVER__TRUSTED_PROXIES", "[]")
        .start()
        .await;
    for (name, (_, _, lat, lon)) in [("porto-alegre", CITIES[0]), ("frankfurt", CITIES[2])] {
        lb.cli_ok(&[
            "servers",
            "update",
            name,
            "--location",
            &format!("{lat},{lon}"),
        ]);
    }
    // Started again, so that its snapshot surely has the locations.
    lb.crash_and_restart().await;
    // The front-end's server (127.0.0.1, "in Frankfurt") creates the courses' rooms ahead of
    // time, without its users' addresses.
    let server = lb.client(UNI, Algorithm::Sha256);
    for id in ["course-1", "course-2"] {
        assert!(server
            .call("create", &[("meetingID", id), ("name", "Course")])
            .await
            .is_success());
        let info = lb.cli_ok(&["meetings", "info", id]);
        assert!(info.contains("server: frankfurt"), "{info}");
    }
    let created = match server
        .call("getMeetingInfo", &[("meetingID", "course-1")])
        .await
        .body
    {
        conflux_shared::response::Body::Meeting(m) => m.create_time.to_string(),
        other => panic!("{other:?}"),
    };

    // course-1's first user is in Porto Alegre: the meeting moves there, once.
    let (node, location) = join_from(
        &lb,
        &nodes,
        "course-1",
        "198.51.100.7",
        &[("createTime", &created)],
    )
    .await;
    assert_eq!(node, "porto-alegre");
    assert!(!location.contains("createTime"), "{location}");
    let entered = http().get(&location).send().await.unwrap();
    assert_eq!(entered.status(), 302, "the moved meeting takes the join");
    let info = lb.cli_ok(&["meetings", "info", "course-1"]);
    assert!(info.contains("server: porto-alegre"), "{info}");
    assert!(info.contains("moved at its first join"), "{info}");
    let on = |node: &SimNode| {
        let client = node.client(Algorithm::Sha1);
        async move {
            client
                .call("getMeetingInfo", &[("meetingID", "course-1")])
                .await
                .is_success()
        }
    };
    assert!(on(&poa).await);
    assert!(
        !on(&fra).await
            || fra
                .client(Algorithm::Sha1)
                .call("isMeetingRunning", &[("meetingID", "course-1")])
                .await
                .field("running")
                == Some("false"),
        "ended on the node it left"
    );
    // Later joins follow it, wherever their users are; it does not move again.
    assert_eq!(
        join_from(&lb, &nodes, "course-1", "192.0.2.9", &[]).await.0,
        "porto-alegre"
    );

    // course-2's first user is near its node: it stays, and later users do not move it.
    assert_eq!(
        join_from(&lb, &nodes, "course-2", "192.0.2.9", &[]).await.0,
        "frankfurt"
    );
    assert_eq!(
        join_from(&lb, &nodes, "course-2", "198.51.100.7", &[])
            .await
            .0,
        "frankfurt"
    );
}

/// `/metrics` in the classic format passes `promtool check metrics` (naming and help lint);
/// asked for OpenMetrics alone, it parses under the OpenMetrics reference parser (Python's
/// prometheus_client, from .venv); both list the same families.
async fn metrics_are_well_formed(lb: &conflux_tests::harness::Balancer) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let classic = lb.metrics().await;
    assert!(!classic.contains("# EOF"), "{classic}");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package: scripts/test installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(classic.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let answer = conflux_tests::harness::http()
        .get(format!("{}/metrics", lb.url))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let openmetrics = answer.text().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, &openmetrics).unwrap();
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let parsed = Command::new(python)
        .arg("-c")
        .arg(
            "import sys\n\
             from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\n\
             print(len(list(parse(open(sys.argv[1]).read()))))",
        )
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        parsed.status.success(),
        "{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let families: usize = String::from_utf8_lossy(&parsed.stdout)
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        families,
        classic.matches("# TYPE ").count(),
        "{openmetrics}"
    );
}

#[tokio::test]
async fn a_fresh_balancer_describes_every_family_and_its_build_and_process() {
    let lb = balancer().start().await;
    let metrics = lb.metrics().await;
    for family in [
        "conflux_api_requests_total counter",
        "conflux_api_request_duration_seconds histogram",
        "conflux_node_online gauge",
        "conflux_node_meetings gauge",
        "conflux_node_check_state gauge",
        "conflux_integration_meetings gauge",
        "process_cpu_seconds_total counter",
        "process_resident_memory_bytes gauge",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {family}\n")),
            "{family}:\n{metrics}"
        );
    }
    assert!(metrics.contains(&format!(
        "conflux_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
    metrics_are_well_formed(&lb).await;
}
