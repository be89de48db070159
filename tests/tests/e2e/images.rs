//! The container images: `scripts/image` builds them with buildah (FROM scratch, no registry),
//! and each runs from its own filesystem, as its own user, with its entrypoint: the balancer
//! serves and is ready, the recorder makes its key and serves. A container runtime's
//! namespaces and cgroups are not available here (podman's crun may not set limits in this
//! sandbox), so the images run under buildah's chroot isolation on the host's network.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use conflux_tests::harness::http;

/// buildah with its own storage in `dir`.
fn buildah(dir: &Path) -> Command {
    let mut command = Command::new("buildah");
    command
        .arg("--storage-driver=vfs")
        .arg(format!("--root={}", dir.join("storage").display()))
        .arg(format!("--runroot={}", dir.join("run").display()))
        .stdin(Stdio::null());
    command
}

fn ok(mut command: Command) -> String {
    let out = command.output().expect("runs");
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A working container of `image`, run with `args` (its process group killed on drop).
struct Running(Child);

impl Running {
    fn start(
        dir: &Path,
        image: &str,
        env: &[&str],
        volumes: &[String],
        args: &[&str],
    ) -> (Running, String) {
        let mut from = buildah(dir);
        from.args(["from", "--quiet", image]);
        let container = ok(from).trim().to_owned();
        let mut run = buildah(dir);
        run.args(["run", "--isolation", "chroot", "--network", "host"]);
        for e in env {
            run.args(["--env", e]);
        }
        for v in volumes {
            run.args(["--volume", v]);
        }
        run.arg(&container)
            .arg("--")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        std::os::unix::process::CommandExt::process_group(&mut run, 0);
        let mut child = run.spawn().expect("buildah runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let running = Running(child);
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the container prints its listening line");
        (running, addr)
    }
}

impl Drop for Running {
    /// SIGTERM to the whole group (buildah, its chroot runtime, the program), then SIGKILL
    /// if it is still there after 5 s; the runtime's mounts live in its own namespace.
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        for signal in ["TERM", "KILL"] {
            let _ = Command::new("kill")
                .args(["-s", signal, "--", &group])
                .status();
            for _ in 0..100 {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

#[tokio::test]
async fn the_images_build_without_a_registry_and_run_as_their_user() {
    if Command::new("buildah").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs buildah (scripts/test)"
        );
        eprintln!("skipped: buildah is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut build = Command::new(root.join("scripts/image"));
    build
        .args(["--profile", "debug", "--out"])
        .arg(dir.path().join("images"))
        .env(
            "BUILDAH_ARGS",
            format!(
                "--storage-driver=vfs --root={} --runroot={}",
                dir.path().join("storage").display(),
                dir.path().join("run").display()
            ),
        );
    let built = ok(build);
    let images: Vec<&str> = built.lines().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(images.len(), 2, "{built}");
    for name in ["conflux-balancer", "conflux-recorder"] {
        let archive = dir.path().join("images").join(format!("{name}.tar"));
        assert!(archive.metadata().unwrap().len() > 1_000_000, "{name}.tar");
    }

    for (image, port) in [(images[0], "8080/tcp"), (images[1], "8090/tcp")] {
        let mut inspect = buildah(dir.path());
        inspect.args(["inspect", "--type", "image", image]);
        let config: serde_json::Value = serde_json::from_str(&ok(inspect)).unwrap();
        let config = &config["OCIv1"]["config"];
        assert_eq!(config["User"], "10001:10001", "not root");
        assert!(config["ExposedPorts"].get(port).is_some(), "{config}");
        assert_eq!(config["Cmd"], serde_json::json!(["serve"]));
    }

    // The balancer from its image's filesystem: the libraries it links are in it.
    let (_balancer, addr) = Running::start(
        dir.path(),
        images[0],
        &["CONFLUX_SERVER__LISTEN=127.0.0.1:0"],
        &[],
        &["/usr/bin/conflux-balancer", "serve"],
    );
    for path in ["healthz", "readyz"] {
        let answer = http()
            .get(format!("http://{addr}/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "/{path}");
    }

    // The recorder, its private key mounted as a Kubernetes secret would be (readable by its
    // user only), the balancer above as its balancer.
    let keys = dir.path().join("keys");
    let mut keygen = Command::new(conflux_tests::harness::binary("conflux-recorder"));
    keygen.args(["keygen", "--out"]).arg(&keys);
    ok(keygen);
    let mut chown = Command::new("chown");
    chown.args(["-R", "10001:10001"]).arg(&keys);
    ok(chown);
    let (_recorder, rec) = Running::start(
        dir.path(),
        images[1],
        &[
            "CONFLUX_RECORDER__LISTEN=127.0.0.1:0",
            &format!("CONFLUX_BALANCER__URL=http://{addr}"),
            "CONFLUX_BALANCER__SECRET=an-integration-secret-0123",
            "CONFLUX_RECORDER__PRIVATE_KEY=/etc/conflux/key/recorder.key.pem",
        ],
        &[format!("{}:/etc/conflux/key:ro", keys.display())],
        &["/usr/bin/conflux-recorder", "serve"],
    );
    let answer = http()
        .get(format!("http://{rec}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}
