//! The command line of `conflux-balancer` (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// One BigBlueButton API in front of a federated pool of BBB nodes (Mconf-LB design; a drop-in
/// Scalelite replacement).
///
/// Configuration: one TOML file (--config, or CONFLUX_CONFIG), overridden by
/// CONFLUX_<SECTION>__<KEY> environment variables; Scalelite's variables (LOADBALANCER_SECRET,
/// POLL_INTERVAL, ...) are accepted too. See the README for every key.
#[derive(Debug, Parser)]
#[command(
    after_help = "Example:\n  conflux-balancer --config /etc/conflux/balancer.toml serve\n  conflux-balancer servers status"
)]
#[command(name = "conflux-balancer", version)]
pub struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "CONFLUX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the SQLite store lives (overrides server.data_dir).
    #[arg(long, global = true, env = "CONFLUX_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the BBB API; prints `listening on http://ADDR` once ready.
    #[command(
        after_help = "Example:\n  conflux-balancer --config /etc/conflux/balancer.toml serve --listen 0.0.0.0:8090"
    )]
    Serve {
        /// Address to listen on (port 0 picks a free port); overrides server.listen.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Start a balancer with three simulated BBB nodes, an agent for each, one integration and an
    /// admin account for the dashboard, with no set-up.
    #[command(after_help = "Example:\n  conflux-balancer demo --listen 127.0.0.1:8080")]
    Demo {
        /// Address of the demo balancer.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// Manage the BBB nodes (Scalelite's servers tasks).
    #[command(subcommand)]
    #[command(after_help = "Example:\n  conflux-balancer servers status")]
    Servers(ServersCommand),
    /// Inspect and end meetings.
    #[command(subcommand)]
    #[command(after_help = "Example:\n  conflux-balancer meetings list")]
    Meetings(MeetingsCommand),
    /// Manage integrations (institutions, Scalelite's tenants) and their secrets.
    #[command(subcommand)]
    #[command(after_help = "Example:\n  conflux-balancer integrations add moodle")]
    Integrations(IntegrationsCommand),
    /// Web accounts (admin or viewer). Passwords are read from standard input (one line).
    #[command(subcommand)]
    #[command(
        after_help = "Example:\n  echo 'a long password' | conflux-balancer users add alice --role admin"
    )]
    Users(UsersCommand),
    /// Tokens of the JSON admin API (`Authorization: Bearer TOKEN`); never the BBB secrets.
    #[command(subcommand)]
    #[command(after_help = "Example:\n  conflux-balancer tokens add grafana --role viewer")]
    Tokens(TokensCommand),
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Example:\n  conflux-balancer completions bash > /etc/bash_completion.d/conflux-balancer"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: conflux_shared::cli_docs::Shell,
    },
    /// Write the man pages of every command into a folder (for packages).
    #[command(hide = true)]
    ManPages {
        /// The folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Poll every node once now and print the status table.
    #[command(after_help = "Example:\n  conflux-balancer poll")]
    Poll,
}

impl Command {
    /// Whether the command only reads the store (and so must not create one).
    pub fn only_reads(&self) -> bool {
        use ServersCommand as S;
        match self {
            Command::Servers(c) => {
                matches!(
                    c,
                    S::List | S::Status | S::Checks { .. } | S::History { .. } | S::Yaml { .. }
                ) || matches!(c, S::Sync { dry_run: true, .. })
            }
            Command::Meetings(c) => {
                matches!(c, MeetingsCommand::List | MeetingsCommand::Info { .. })
            }
            Command::Integrations(c) => matches!(c, IntegrationsCommand::List),
            Command::Users(c) => matches!(c, UsersCommand::List),
            Command::Tokens(c) => matches!(c, TokensCommand::List),
            Command::Serve { .. }
            | Command::Demo { .. }
            | Command::Poll
            | Command::Completions { .. }
            | Command::ManPages { .. } => false,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List the accounts and their roles.
    #[command(after_help = "Example:\n  conflux-balancer users list")]
    List,
    /// Add an account; its password (8 characters or more) is read from standard input.
    #[command(
        after_help = "Example:\n  echo 'a long password' | conflux-balancer users add alice --role admin"
    )]
    Add {
        /// The account's name.
        username: String,
        /// What the account may do: admin changes, viewer only looks.
        #[arg(long, value_enum, default_value = "viewer")]
        role: RoleArg,
    },
    /// Set an account's password (read from standard input); ends its sessions.
    #[command(
        after_help = "Example:\n  echo 'a new long password' | conflux-balancer users passwd alice"
    )]
    Passwd {
        /// The account's name.
        username: String,
    },
    /// Remove an account (and its sessions).
    #[command(after_help = "Example:\n  conflux-balancer users remove alice")]
    Remove {
        /// The account's name.
        username: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// List the tokens (names and roles; the tokens themselves are not kept).
    #[command(after_help = "Example:\n  conflux-balancer tokens list")]
    List,
    /// Make a token; it is printed once.
    #[command(after_help = "Example:\n  conflux-balancer tokens add grafana --role viewer")]
    Add {
        /// A name for the token (who or what uses it).
        name: String,
        /// What the token may do: admin changes, viewer only reads.
        #[arg(long, value_enum, default_value = "viewer")]
        role: RoleArg,
    },
    /// Revoke a token.
    #[command(after_help = "Example:\n  conflux-balancer tokens remove grafana")]
    Remove {
        /// The token's name.
        name: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    Admin,
    Viewer,
}

#[derive(Debug, Subcommand)]
pub enum ServersCommand {
    /// List the nodes.
    #[command(after_help = "Example:\n  conflux-balancer servers list")]
    List,
    /// Add a node (disabled until enabled, as in Scalelite).
    #[command(
        after_help = "Example:\n  conflux-balancer servers add https://bbb1.example.org/bigbluebutton/api SECRET --name bbb1 --enable"
    )]
    Add(AddServer),
    /// Remove a node (its meetings are forgotten).
    #[command(after_help = "Example:\n  conflux-balancer servers remove bbb1")]
    Remove {
        /// The node's name or id.
        server: String,
    },
    /// Let a node take new meetings.
    #[command(after_help = "Example:\n  conflux-balancer servers enable bbb1")]
    Enable {
        /// The node's name or id.
        server: String,
    },
    /// Stop sending anything to a node. If it still hosts meetings, asks first (or --yes); they
    /// are then ended on the node and forgotten.
    #[command(after_help = "Example:\n  conflux-balancer servers disable bbb1 --yes")]
    Disable {
        /// The node's name or id.
        server: String,
        /// Do not ask: end and forget the node's meetings.
        #[arg(long)]
        yes: bool,
    },
    /// Keep a node's meetings but send it no new ones; it becomes disabled once empty.
    #[command(after_help = "Example:\n  conflux-balancer servers cordon bbb1")]
    Cordon {
        /// The node's name or id.
        server: String,
    },
    /// Forget every meeting of a node, end them on the node, and disable it.
    #[command(after_help = "Example:\n  conflux-balancer servers panic bbb1")]
    Panic {
        /// The node's name or id.
        server: String,
        /// Keep the node's state instead of disabling it.
        #[arg(long)]
        keep_state: bool,
    },
    /// Change a node's URL, secret, load multiplier, tags, location or checked ports.
    #[command(
        after_help = "Example:\n  conflux-balancer servers update bbb1 --load-multiplier 2 --location 50.11,8.68"
    )]
    Update(UpdateServer),
    /// Override monitoring: `on` takes meetings even with failing checks, `off` takes none
    /// whatever the checks say, `auto` follows the checks again.
    #[command(after_help = "Example:\n  conflux-balancer servers force bbb1 off")]
    Force {
        /// The node's name or id.
        server: String,
        /// on, off or auto.
        #[arg(value_enum)]
        mode: ForceMode,
    },
    /// A node's monitoring checks: state, since when, output (Nagios-like).
    #[command(after_help = "Example:\n  conflux-balancer servers checks bbb1")]
    Checks {
        /// The node's name or id.
        server: String,
    },
    /// A node's metric history from its agent's reports (oldest first).
    #[command(
        after_help = "Example:\n  conflux-balancer servers history bbb1 --resolution 5m --hours 24"
    )]
    History {
        /// The node's name or id.
        server: String,
        /// Row resolution: every report, 5-minute or hourly means.
        #[arg(long, value_enum, default_value = "raw")]
        resolution: Resolution,
        /// How far back, in hours.
        #[arg(long, default_value_t = 1.0)]
        hours: f64,
    },
    /// The status table: HOSTNAME STATE STATUS MEETINGS USERS LARGEST MEETING VIDEOS.
    #[command(after_help = "Example:\n  conflux-balancer servers status")]
    Status,
    /// Make the pool match a YAML (or JSON) file in Scalelite's servers:sync format:
    /// `servers: {ID: {url, secret, enabled, load_multiplier, tag}}`.
    #[command(
        after_help = "Example:\n  conflux-balancer servers sync servers.yml --mode cordon --dry-run"
    )]
    Sync {
        /// The file, or `-` for standard input.
        file: String,
        /// What happens to nodes the file does not list: keep them, cordon them (removed when
        /// empty), or force (end their meetings and remove them).
        #[arg(long, value_enum, default_value = "cordon")]
        mode: SyncMode,
        /// Print what would change and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the pool in the servers:sync format.
    #[command(after_help = "Example:\n  conflux-balancer servers yaml --verbose")]
    Yaml {
        /// Add state, load and online status.
        #[arg(long)]
        verbose: bool,
    },
}

/// servers sync's treatment of unlisted nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncMode {
    Keep,
    Cordon,
    Force,
}

#[derive(Debug, Args)]
pub struct AddServer {
    /// The node's BBB URL (https://host/bigbluebutton/api or https://host).
    pub url: String,
    /// The node's shared secret.
    pub secret: String,
    /// A name (default: the URL's host).
    #[arg(long)]
    pub name: Option<String>,
    /// Load multiplier: higher makes the node look busier.
    #[arg(long, default_value_t = 1.0)]
    pub load_multiplier: f64,
    /// Tags for meta_server-tag placement (comma list).
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Enable the node at once.
    #[arg(long)]
    pub enable: bool,
    /// Add the node without first checking that its API answers and accepts the secret.
    #[arg(long)]
    pub no_check: bool,
}

#[derive(Debug, Args)]
pub struct UpdateServer {
    /// The node's name or id.
    pub server: String,
    /// The node's new BBB URL.
    #[arg(long)]
    pub url: Option<String>,
    /// The node's new shared secret.
    #[arg(long)]
    pub secret: Option<String>,
    /// Load multiplier: higher makes the node look busier.
    #[arg(long)]
    pub load_multiplier: Option<f64>,
    /// Replace the tags (comma list; empty string clears them).
    #[arg(long)]
    pub tags: Option<String>,
    /// Where the node is, `LAT,LON` in degrees (for geo placement); empty string clears it.
    #[arg(long, allow_hyphen_values = true)]
    pub location: Option<String>,
    /// TCP ports the balancer checks on this node (comma list; empty = the configured default).
    #[arg(long)]
    pub ports: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Resolution {
    Raw,
    #[value(name = "5m")]
    FiveMinutes,
    #[value(name = "1h")]
    Hourly,
}

impl Resolution {
    /// Seconds per stored row (0 = one row per report).
    pub fn seconds(self) -> i64 {
        match self {
            Resolution::Raw => 0,
            Resolution::FiveMinutes => 300,
            Resolution::Hourly => 3600,
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ForceMode {
    On,
    Off,
    Auto,
}

#[derive(Debug, Subcommand)]
pub enum MeetingsCommand {
    /// List the meetings the balancer knows.
    #[command(after_help = "Example:\n  conflux-balancer meetings list")]
    List,
    /// Show a meeting: node, owner, placement reason, events.
    #[command(after_help = "Example:\n  conflux-balancer meetings info lecture-42")]
    Info {
        /// The meeting's ID (meetingID).
        meeting_id: String,
    },
    /// End a meeting on its node and forget it.
    #[command(after_help = "Example:\n  conflux-balancer meetings end lecture-42")]
    End {
        /// The meeting's ID (meetingID).
        meeting_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum IntegrationsCommand {
    /// List integrations (secrets are not shown).
    #[command(after_help = "Example:\n  conflux-balancer integrations list")]
    List,
    /// Add an integration; prints its secret once (generated unless --secret is given).
    #[command(after_help = "Example:\n  conflux-balancer integrations add moodle")]
    Add {
        /// The integration's name (the institution, Scalelite's tenant).
        name: String,
        /// The secret to use instead of a generated one (8 characters or more).
        #[arg(long)]
        secret: Option<String>,
    },
    /// Remove an integration and forget its meetings.
    #[command(after_help = "Example:\n  conflux-balancer integrations remove moodle")]
    Remove {
        /// The integration's name or id.
        integration: String,
    },
    /// Replace an integration's secret; prints the new one once.
    #[command(after_help = "Example:\n  conflux-balancer integrations rotate moodle")]
    Rotate {
        /// The integration's name or id.
        integration: String,
        /// The new secret instead of a generated one.
        #[arg(long)]
        secret: Option<String>,
    },
    /// Change an integration's name or plan.
    #[command(
        after_help = "Example:\n  conflux-balancer integrations update moodle --max-meetings 50 --prefix moodle"
    )]
    Update(UpdateIntegration),
}

#[derive(Debug, Args)]
pub struct UpdateIntegration {
    /// The integration's name or id.
    pub integration: String,
    /// A new name.
    #[arg(long)]
    pub name: Option<String>,
    /// Allow API access (true/false).
    #[arg(long)]
    pub api_enabled: Option<bool>,
    /// Allow recorded meetings (true/false).
    #[arg(long)]
    pub recording_allowed: Option<bool>,
    /// Maximum concurrent meetings (0 = unlimited).
    #[arg(long)]
    pub max_meetings: Option<u32>,
    /// Maximum concurrent users (0 = unlimited).
    #[arg(long)]
    pub max_users: Option<u32>,
    /// A short name (a-z, 0-9, -) that selects this integration by URL path
    /// (`/PREFIX/bigbluebutton/api/...`) or by the first label of the Host header, so requests
    /// are checked against its secrets only; empty clears it. `mobile`, `bigbluebutton` and
    /// `demo` are paths of the API, refused.
    #[arg(long)]
    pub prefix: Option<String>,
    /// The integration's recording server (conflux-recorder) base URL; with --recorder-key.
    #[arg(long, requires = "recorder_key")]
    pub recorder_url: Option<String>,
    /// A PEM file with the recording server's RSA public key (3072 bits or more).
    #[arg(long, requires = "recorder_url")]
    pub recorder_key: Option<std::path::PathBuf>,
    /// Remove the recording server (recorded meetings are then refused their record flag).
    #[arg(long, conflicts_with_all = ["recorder_url", "recorder_key"])]
    pub no_recorder: bool,
    /// Delete recordings this many days after they ended, on the balancer, the nodes and the
    /// recording server (0 = keep them).
    #[arg(long)]
    pub retention_days: Option<u32>,
    /// Whether the X-Forwarded-For header of this integration's signed calls names the end
    /// user, whose location then places its meetings (true/false; Mconf: the front-end passes
    /// its user's address). On by default.
    #[arg(long)]
    pub forwarded_for: Option<bool>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_command_has_an_example_and_every_argument_a_description() {
        let cmd = super::Cli::command();
        cmd.clone().debug_assert();
        assert_eq!(
            conflux_shared::cli_docs::undocumented(&cmd),
            Vec::<String>::new()
        );
    }
}
