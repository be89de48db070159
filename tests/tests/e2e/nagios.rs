//! The agent as a plugin under a real Nagios 4 (Debian's `nagios4`, installed by
//! scripts/test): two services run `conflux-agent check ...` and their status and perfdata
//! must show up in Nagios's status file.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use conflux_tests::harness::{binary, sim};

const NAGIOS: &str = "/usr/sbin/nagios4";

/// The `servicestatus` blocks of a Nagios status file, by service description.
fn services(status: &str) -> HashMap<String, HashMap<String, String>> {
    status
        .split("servicestatus {")
        .skip(1)
        .filter_map(|block| {
            let fields: HashMap<String, String> = block
                .lines()
                .take_while(|l| !l.trim().starts_with('}'))
                .filter_map(|l| l.trim().split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            Some((fields.get("service_description")?.clone(), fields))
        })
        .collect()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

#[tokio::test]
async fn nagios_runs_the_agent_as_a_plugin() {
    assert!(
        Path::new(NAGIOS).exists(),
        "{NAGIOS} is missing: scripts/test installs Debian's nagios4"
    );
    let node = sim().start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Nagios drops to its own user when started as root: let it read and write here.
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::create_dir(d.join("checkresults")).unwrap();
    std::fs::set_permissions(
        d.join("checkresults"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    let agent = binary("conflux-agent");
    write(
        &d.join("agent.toml"),
        &format!(
            "[node]\napi_url = \"{}/bigbluebutton/api\"\nsecret = {:?}\n",
            node.url, node.secret
        ),
    );
    let p = |name: &str| d.join(name).display().to_string();
    write(
        &d.join("objects.cfg"),
        &format!(
            "define timeperiod {{\n timeperiod_name always\n alias always\n sunday 00:00-24:00\n monday 00:00-24:00\n tuesday 00:00-24:00\n wednesday 00:00-24:00\n thursday 00:00-24:00\n friday 00:00-24:00\n saturday 00:00-24:00\n}}\n\
             define command {{\n command_name nothing\n command_line /bin/true\n}}\n\
             define command {{\n command_name conflux_cpu\n command_line {agent} --config {cfg} check cpu -w 101 -c 102 --sample-secs 0.2\n}}\n\
             define command {{\n command_name conflux_bbb\n command_line {agent} --config {cfg} check bbb -w 100 -c 200\n}}\n\
             define contact {{\n contact_name nobody\n alias nobody\n host_notifications_enabled 0\n service_notifications_enabled 0\n host_notification_period always\n service_notification_period always\n host_notification_options n\n service_notification_options n\n host_notification_commands nothing\n service_notification_commands nothing\n}}\n\
             define host {{\n host_name bbb1\n address 127.0.0.1\n check_command nothing\n max_check_attempts 1\n check_period always\n contacts nobody\n notification_period always\n}}\n\
             define service {{\n host_name bbb1\n service_description Conflux CPU\n check_command conflux_cpu\n max_check_attempts 1\n check_interval 2\n retry_interval 2\n check_period always\n contacts nobody\n notification_period always\n}}\n\
             define service {{\n host_name bbb1\n service_description Conflux BBB\n check_command conflux_bbb\n max_check_attempts 1\n check_interval 2\n retry_interval 2\n check_period always\n contacts nobody\n notification_period always\n}}\n",
            agent = agent.display(),
            cfg = p("agent.toml"),
        ),
    );
    write(
        &d.join("nagios.cfg"),
        &format!(
            "log_file={log}\ncfg_file={objects}\nobject_cache_file={cache}\nprecached_object_file={pre}\n\
             status_file={status}\nstatus_update_interval=1\nnagios_user=nagios\nnagios_group=nagios\n\
             check_external_commands=0\nlock_file={lock}\ntemp_file={tmp}\ntemp_path={dir}\n\
             retain_state_information=0\nstate_retention_file={retention}\ncheck_result_path={results}\n\
             interval_length=1\nmax_service_check_spread=1\nmax_host_check_spread=1\n\
             check_result_reaper_frequency=1\nuse_syslog=0\nenable_notifications=0\n\
             execute_host_checks=0\nservice_check_timeout=30\n",
            log = p("nagios.log"),
            objects = p("objects.cfg"),
            cache = p("objects.cache"),
            pre = p("objects.precache"),
            status = p("status.dat"),
            lock = p("nagios.lock"),
            tmp = p("nagios.tmp"),
            dir = d.display(),
            retention = p("retention.dat"),
            results = p("checkresults"),
        ),
    );
    let verify = Command::new(NAGIOS)
        .arg("-v")
        .arg(d.join("nagios.cfg"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "nagios -v: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let started = Command::new(NAGIOS)
        .arg("-d")
        .arg(d.join("nagios.cfg"))
        .status()
        .unwrap();
    assert!(started.success());
    let stop = Stop(d.join("nagios.lock"));

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = HashMap::new();
    while Instant::now() < deadline {
        let status = std::fs::read_to_string(d.join("status.dat")).unwrap_or_default();
        seen = services(&status);
        let checked = |name: &str| {
            seen.get(name)
                .is_some_and(|s| s.get("has_been_checked").is_some_and(|v| v == "1"))
        };
        if checked("Conflux CPU") && checked("Conflux BBB") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let log = std::fs::read_to_string(d.join("nagios.log")).unwrap_or_default();
    let cpu = seen
        .get("Conflux CPU")
        .unwrap_or_else(|| panic!("{seen:?}\n{log}"));
    assert_eq!(cpu["current_state"], "0", "{cpu:?}\n{log}");
    assert!(cpu["plugin_output"].starts_with("CPU OK - "), "{cpu:?}");
    assert!(cpu["performance_data"].starts_with("cpu="), "{cpu:?}");
    assert!(
        cpu["performance_data"].contains(";101;102;0;100"),
        "{cpu:?}"
    );
    let bbb = &seen["Conflux BBB"];
    assert_eq!(bbb["current_state"], "0", "{bbb:?}");
    assert!(
        bbb["plugin_output"].starts_with("BBB OK - 0 meetings"),
        "{bbb:?}"
    );
    assert!(
        bbb["performance_data"].contains("users=0;100;200;0"),
        "{bbb:?}"
    );
    drop(stop);
}

/// Stops the Nagios daemon (its pid is in the lock file) when the test ends.
struct Stop(std::path::PathBuf);

impl Drop for Stop {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}
