//! Nodes served over HTTPS, as every real BBB node is: polled, placed on and proxied to over
//! TLS, trusting the CA named by `SSL_CERT_FILE`; a node whose certificate is not trusted is
//! never used.

use conflux_shared::response::Body;
use conflux_shared::Algorithm;

use conflux_tests::harness::{balancer, client_trusting, eventually, http, sim, TestCa};

const UNI: &str = "uni-secret-0123456789";

#[tokio::test]
async fn https_nodes_are_polled_and_proxied_and_untrusted_ones_never_used() {
    let ca = TestCa::new("conflux test CA");
    let node = sim()
        .tls(ca.issue("node", &["127.0.0.1"]), &ca.pem)
        .start()
        .await;
    assert!(node.url.starts_with("https://"), "{}", node.url);
    // The balancer trusts the private CA alone: it is online only if polled over TLS.
    let lb = balancer()
        .node("tls1", &node)
        .integration("uni", UNI)
        .env("SSL_CERT_FILE", &ca.pem.display().to_string())
        .start()
        .await;
    let bbb = lb.client(UNI, Algorithm::Sha256);

    // Another node, whose certificate another CA signed.
    let other_ca = TestCa::new("someone else's CA");
    let stray = sim()
        .tls(other_ca.issue("stray", &["127.0.0.1"]), &other_ca.pem)
        .start()
        .await;
    let args = [
        "servers",
        "add",
        &stray.url,
        &stray.secret,
        "--name",
        "stray",
        "--enable",
    ];
    let refused = lb.cli(&args);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "the check refuses an untrusted node"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--no-check"));
    lb.cli_ok(&[&args[..], &["--no-check"]].concat());

    for i in 0..4 {
        let id = format!("secure-{i}");
        let created = bbb
            .call("create", &[("meetingID", &id), ("name", "Lecture")])
            .await;
        assert!(created.is_success(), "{created:?}");
        let running = bbb.call("isMeetingRunning", &[("meetingID", &id)]).await;
        assert!(running.is_success(), "{running:?}");
        let info = bbb.call("getMeetingInfo", &[("meetingID", &id)]).await;
        let Body::Meeting(meeting) = &info.body else {
            panic!("{info:?}")
        };
        assert_eq!(meeting.meeting_id, id);

        // The join goes to the HTTPS node, which accepts the re-signed URL.
        let join = bbb
            .get(&bbb.url(
                "join",
                &[
                    ("meetingID", &id),
                    ("fullName", "Ann"),
                    ("role", "MODERATOR"),
                ],
            ))
            .await;
        assert_eq!(join.status, 302, "{}", join.body);
        let location = join.location.expect("a redirect");
        assert!(location.starts_with(&node.url), "{location}");
        let followed = client_trusting(&ca.pem)
            .get(&location)
            .send()
            .await
            .unwrap();
        assert_eq!(followed.status(), 302, "the node accepts the join");
    }

    // Nothing of the stray node is believed: it stays offline, and every meeting is on tls1.
    let list = lb.cli_ok(&["servers", "list"]);
    let stray_entry = list.split("id: ").find(|e| e.contains("name: stray"));
    assert!(
        stray_entry.is_some_and(|e| e.contains("\toffline")),
        "{list}"
    );
    let tls1_entry = list.split("id: ").find(|e| e.contains("name: tls1"));
    assert!(tls1_entry.is_some_and(|e| e.contains("\tonline")), "{list}");
    let on_stray = client_trusting(&other_ca.pem)
        .get(stray.client(Algorithm::Sha1).url("getMeetings", &[]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        on_stray.contains("<messageKey>noMeetings</messageKey>"),
        "{on_stray}"
    );

    // Proxied writes too: end over TLS, and the listing from the store follows.
    assert!(bbb
        .call("end", &[("meetingID", "secure-0")])
        .await
        .is_success());
    assert!(
        eventually(|| async {
            match bbb.call("getMeetings", &[]).await.body {
                Body::Meetings(list) => {
                    list.len() == 3 && list.iter().all(|m| m.meeting_id != "secure-0")
                }
                _ => false,
            }
        })
        .await
    );
    // The harness's plain client cannot reach the node: it really is served over TLS only.
    assert!(http().get(&node.url).send().await.is_err());
}
