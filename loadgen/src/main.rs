//! `loadgen`: runs scenarios through LearnSphere (`run`), starts it
//! locally (`up`), benchmarks a URL (`bench`). `loadgen --help` lists the
//! commands.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use clap::{Parser, Subcommand, ValueEnum, builder::PossibleValuesParser};
use launcher::services::{SERVICES, parse_replicas};
use launcher::{Databases, Discovery, LaunchOptions, Logs, System};
use loadgen::platform::LocalPlatform;

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "LearnSphere's local launcher and load generator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Ports {
    /// gateway 8080, users 8081, courses 8082, payments 8083, progress 8084.
    Default,
    /// Free ports chosen at start (run several systems side by side).
    Auto,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start every service locally and keep them running until Ctrl-C.
    Up {
        /// Which ports the services listen on.
        #[arg(long, value_enum, default_value = "default")]
        ports: Ports,
        /// Directory for the SQLite files and the discovery targets file.
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// Use PostgreSQL instead of SQLite: a URL of a database the
        /// launcher can connect to and create `learnsphere_<service>`
        /// databases from (e.g. postgres://postgres@127.0.0.1:5432/postgres).
        #[arg(long, env = "LEARNSPHERE_POSTGRES_URL")]
        postgres: Option<String>,
        /// Replicas per service, e.g. `payments=3,users=2` (1 to 16 each;
        /// services not listed run one). Replica 0 takes the service's
        /// port, the others free ones.
        #[arg(long, value_parser = parse_replicas)]
        replicas: Option<BTreeMap<&'static str, usize>>,
        /// Where the control API listens (scale, kill, the launcher's
        /// metrics); default 127.0.0.1:8070, or a free port with
        /// `--ports auto`.
        #[arg(long)]
        control_addr: Option<SocketAddr>,
        /// How services find their dependencies: `file-sd` passes the
        /// targets file, which the mesh follows as replicas come and go;
        /// `urls` passes each a list of the dependency's replicas' URLs at
        /// start (later scaling does not reach it).
        #[arg(long, value_enum, default_value = "file-sd")]
        discovery: DiscoveryArg,
        /// The services' admin API token (faults, crash, drain). Unset: a
        /// random one, written to `<data-dir>/admin-token` (mode 0600).
        #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// The secret the services sign and verify access tokens with (at
        /// least 32 bytes; prefer the environment variable: arguments show
        /// in `ps`). Unset: a random one kept in `<data-dir>/jwt-secret`
        /// (mode 0600) and reused on the next start of that directory, so
        /// tokens survive restarts. Never the public development default.
        #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
        jwt_secret: Option<String>,
        /// Whether the gateway takes an anonymous client's address from the
        /// `X-Forwarded-For` it sends. On by default: the system listens on
        /// loopback only, and loadgen's synthetic learners, one address
        /// each, must be rate limited as the many clients they stand for.
        #[arg(
            long,
            env = "RATE_LIMIT_TRUST_FORWARDED_FOR",
            default_value = "true",
            action = clap::ArgAction::Set,
            value_name = "BOOL"
        )]
        rate_limit_trust_forwarded_for: bool,
        #[command(flatten)]
        links: Links,
    },
    /// Receive OTLP traces and logs (gRPC and HTTP) and print what
    /// arrives: span counts, and each log record as it comes. A stand-in
    /// collector for benchmarks and quick looks without Jaeger.
    Receive(loadgen::receive::ReceiveArgs),
    /// Run a scenario: journeys through the gateway on a schedule, the
    /// scenario's timeline events on time, then a verdict from its
    /// thresholds and expectations (exit 0 passed, 1 a check failed, 2
    /// the run could not be made). See docs/scenarios.md.
    Run(Box<loadgen::run::RunArgs>),
    /// List the shipped scenarios (and those in --dir), one line each.
    Scenarios {
        /// Also list the scenario files in this directory.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// List the journeys scenarios can use instead.
        #[arg(long)]
        journeys: bool,
    },
    /// Load one URL with GET over keep-alive connections, as fast as it
    /// answers (like wrk) or at a fixed rate (like wrk2), and print
    /// throughput and coordinated-omission corrected latency.
    Bench(load_engine::bench::BenchArgs),
    /// Serve the operator console (docs/web.md) for a system on Compose or
    /// Kubernetes, optionally running a background scenario in a loop
    /// while no operator run is on (Compose's loadgen container does).
    Console(Box<ConsoleArgs>),
    /// Print the event bus server's configuration for a deployment whose
    /// subjects start with PREFIX: one user per service, allowed to
    /// publish only its own events (`deploy/compose/nats.conf` is this for
    /// `learnsphere`).
    NatsConfig {
        #[arg(default_value = "learnsphere")]
        prefix: String,
    },
    /// Run one service in this process (what `up` starts as its children).
    Serve {
        /// The service to run (one of the launcher's catalogue).
        #[arg(value_parser = PossibleValuesParser::new(SERVICES.iter().map(|s| s.name)))]
        service: String,
        /// The service's own flags (`loadgen serve <service> -- --help` lists them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DiscoveryArg {
    FileSd,
    Urls,
}

fn service_args(name: &str, args: Vec<String>) -> impl Iterator<Item = String> {
    std::iter::once(name.to_owned()).chain(args)
}

/// Runs `service` in this process: the launcher's catalogue names the
/// services, and this is where each name meets its crate.
async fn serve(service: &str, args: Vec<String>) -> anyhow::Result<()> {
    launcher::exit_with_the_launcher();
    let args = service_args(service, args);
    match service {
        "gateway" => gateway::run(gateway::Config::parse_from(args)).await,
        "users" => users::run(users::Config::parse_from(args)).await,
        "courses" => courses::run(courses::Config::parse_from(args)).await,
        "payments" => payments::run(payments::Config::parse_from(args)).await,
        "progress" => progress::run(progress::Config::parse_from(args)).await,
        other => anyhow::bail!("the catalogue names {other}, which this binary cannot serve"),
    }
}

/// Where the learner app exports its spans: the OTLP/HTTP traces URL of
/// `OTEL_EXPORTER_OTLP_ENDPOINT` when the services export over HTTP, else
/// `loadgen receive`'s (and a Collector's) default HTTP port on this
/// machine. A browser cannot speak gRPC.
fn web_otlp_traces_url() -> String {
    let protocol = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").unwrap_or_default();
    match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if protocol.starts_with("http") => {
            format!("{}/v1/traces", endpoint.trim_end_matches('/'))
        }
        _ => "http://localhost:4318/v1/traces".into(),
    }
}

/// What `loadgen up` prints once everything is ready: where each replica
/// is, and how to reach the system.
fn print_up(system: &System, bearer: &str) {
    println!();
    println!("LearnSphere is up:");
    for s in system.services() {
        for r in system.replicas(s.name) {
            let name = if r.replica == 0 {
                s.name.to_owned()
            } else {
                format!("{}-{}", s.name, r.replica)
            };
            println!(
                "  {:<11} {:<24} pid {:<7} {}",
                name,
                r.url,
                r.pid.map_or("-".into(), |p| p.to_string()),
                s.database.as_deref().unwrap_or("(no database)")
            );
        }
    }
    println!();
    println!(
        "  learner app: {}/",
        system.url("gateway").unwrap_or_default()
    );
    println!(
        "  try:  curl -i {}/api/courses?per_page=3",
        system.url("gateway").unwrap_or_default()
    );
    if let Some(addr) = system.control_addr() {
        println!("  operator console: http://{addr}/console (the admin token above)");
        println!(
            "  control API: curl -s -H \"authorization: Bearer {bearer}\" http://{addr}/services"
        );
    }
    if let Some(path) = system.targets_file() {
        println!("  discovery targets: {}", path.display());
    }
    println!(
        "  events: NATS {}, subjects {}.events.* (docs/events.md)",
        system.nats_url(),
        system.events_prefix()
    );
    println!("  Ctrl-C stops everything.");
    println!();
}

/// Grafana and Jaeger as the operator's browser reaches them, for the
/// console's links (and, under `up`, the learner app's trace links).
#[derive(Debug, clap::Args)]
struct Links {
    /// Grafana as your browser reaches it: the operator console links its
    /// dashboards.
    #[arg(long, env = "GRAFANA_URL", default_value = "http://localhost:3000")]
    grafana_url: String,
    /// Jaeger's UI as your browser reaches it: the console (and the
    /// learner app) link trace ids to it.
    #[arg(
        long,
        env = "LOADGEN_JAEGER_URL",
        default_value = "http://localhost:16686"
    )]
    jaeger_url: String,
}

/// `loadgen console`'s arguments.
#[derive(Debug, clap::Args)]
struct ConsoleArgs {
    /// Where the console listens (publish it on loopback only).
    #[arg(long, default_value = "127.0.0.1:8070")]
    listen: SocketAddr,
    /// The gateway the runs drive.
    #[arg(long)]
    target: String,
    #[command(flatten)]
    on: loadgen::run::PlatformArgs,
    #[command(flatten)]
    links: Links,
    /// Where runs write their summaries and reports.
    #[arg(long, default_value = "console-runs")]
    runs_dir: PathBuf,
    /// Each run serves loadgen's /metrics here.
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
    /// A scenario to run in a loop while no operator run is on.
    #[arg(long)]
    background: Option<String>,
    /// The background scenario's duration scale.
    #[arg(long, default_value_t = 1.0)]
    background_duration_scale: f64,
}

/// `loadgen console`: the console alone, guarded by the admin token.
async fn console(args: ConsoleArgs) -> anyhow::Result<()> {
    let token = args.on.admin_token.clone().ok_or_else(|| {
        anyhow::anyhow!("the console needs the admin token (--admin-token or ADMIN_TOKEN)")
    })?;
    let console = loadgen::console::Console::new(loadgen::console::Settings {
        grafana_url: args.links.grafana_url,
        jaeger_url: args.links.jaeger_url,
        admin_token: token.clone(),
        runs_dir: std::path::absolute(&args.runs_dir)?,
        exe: None,
        metrics_addr: args.metrics_addr,
        background: args
            .background
            .map(|scenario| (scenario, args.background_duration_scale)),
    });
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    console.attach(
        loadgen::console::Target {
            gateway_url: args.target.trim_end_matches('/').to_owned(),
            run_flags: args.on.flags(),
            launcher: false,
        },
        args.on.platform(),
    );
    let token = token
        .parse()
        .map_err(|e| anyhow::anyhow!("the admin token: {e}"))?;
    println!("operator console: http://{addr}/console");
    axum::serve(listener, console.standalone(token, addr))
        .with_graceful_shutdown(mesh::server::shutdown_signal())
        .await?;
    Ok(())
}

/// What `loadgen up` was asked for.
struct UpArgs {
    ports: Ports,
    data_dir: PathBuf,
    postgres: Option<String>,
    replicas: BTreeMap<&'static str, usize>,
    control_addr: Option<SocketAddr>,
    discovery: DiscoveryArg,
    admin_token: Option<String>,
    jwt_secret: Option<String>,
    rate_limit_trust_forwarded_for: bool,
    links: Links,
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let mut options = LaunchOptions::local(&args.data_dir);
    options.auto_ports = args.ports == Ports::Auto;
    options.host = Ipv4Addr::LOCALHOST;
    options.logs = Logs::Prefixed;
    // The system listens on loopback only, so its clients are processes
    // of this machine's user: by default the gateway takes each one's
    // address from the `X-Forwarded-For` they send, as a system `loadgen
    // run` starts does (docs/decisions.md, 16).
    options.env = BTreeMap::from([
        (
            "RATE_LIMIT_TRUST_FORWARDED_FOR".into(),
            args.rate_limit_trust_forwarded_for.to_string(),
        ),
        ("WEB_JAEGER_URL".into(), args.links.jaeger_url.clone()),
    ]);
    // The learner app's spans go where `loadgen receive` listens for
    // OTLP/HTTP unless told otherwise (docs/web.md).
    if std::env::var_os("WEB_OTLP_TRACES_URL").is_none() {
        options
            .env
            .insert("WEB_OTLP_TRACES_URL".into(), web_otlp_traces_url());
    }
    options.replicas = args.replicas;
    let (token, written) = launcher::admin_token(args.admin_token, &args.data_dir)?;
    // What to put in `Authorization: Bearer` for the control API and the
    // services' admin API: never the token itself (terminals get shared).
    let bearer = match &written {
        Some(path) => {
            println!("admin token: {} (ADMIN_TOKEN)", path.display());
            format!("$(cat {})", path.display())
        }
        None => "<admin token>".to_owned(),
    };
    options.admin_token = Some(token);
    let (secret, kept) = launcher::jwt_secret(args.jwt_secret, &args.data_dir)?;
    if let Some(path) = kept {
        println!(
            "token secret: {} (JWT_SECRET, kept across starts)",
            path.display()
        );
    }
    options.jwt_secret = Some(secret);
    options.discovery = match args.discovery {
        DiscoveryArg::Urls => Discovery::Urls,
        DiscoveryArg::FileSd => Discovery::FileSd,
    };
    options.control_addr = Some(args.control_addr.unwrap_or_else(|| {
        // Side-by-side systems (`--ports auto`) must not fight over 8070.
        let port = if options.auto_ports { 0 } else { 8070 };
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }));
    if let Some(admin_url) = args.postgres {
        options.databases = Databases::Postgres {
            admin_url,
            prefix: "learnsphere".into(),
        };
    }
    let console = loadgen::console::Console::new(loadgen::console::Settings {
        grafana_url: args.links.grafana_url,
        jaeger_url: args.links.jaeger_url,
        admin_token: options.admin_token.clone().unwrap_or_default(),
        runs_dir: std::path::absolute(args.data_dir.join("runs"))?,
        exe: None,
        metrics_addr: None,
        background: None,
    });
    options.control_extension = Some(console.extension());
    println!("starting LearnSphere...");
    let mut system = System::start(options).await?;
    if let Some(addr) = system.control_addr() {
        let control_url = format!("http://{addr}");
        console.attach(
            loadgen::console::Target {
                gateway_url: system.url("gateway").unwrap_or_default(),
                run_flags: vec![
                    "--platform".into(),
                    "local".into(),
                    "--control".into(),
                    control_url.clone().into(),
                ],
                launcher: true,
            },
            Arc::new(LocalPlatform::new(
                control_url,
                system.control_token().map(str::to_owned),
            )),
        );
    }
    print_up(&system, &bearer);

    loop {
        tokio::select! {
            () = mesh::server::shutdown_signal() => break,
            // The supervisors log crashes and restart the replicas; this
            // only keeps the queue of exits from growing.
            exit = system.next_exit() => if exit.is_none() { break },
        }
    }
    println!("stopping...");
    system.stop(Duration::from_secs(15)).await;
    Ok(())
}

fn list_scenarios(dir: Option<PathBuf>, journeys: bool) -> anyhow::Result<()> {
    use loadgen::{
        journeys::JOURNEYS,
        scenario::{SHIPPED, Scenario},
    };
    if journeys {
        for journey in &JOURNEYS {
            println!("{:<10} {}", journey.name, journey.about);
        }
        return Ok(());
    }
    for (name, text) in SHIPPED {
        let scenario = Scenario::parse(text, name)?;
        println!("{name:<22} {}", scenario.description);
    }
    if let Some(dir) = dir {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for path in files {
            let shown = path.display().to_string();
            match Scenario::load(&shown) {
                Ok(s) => println!("{shown:<22} {}", s.description),
                Err(e) => println!("{shown:<22} (unreadable: {e})"),
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Up {
            ports,
            data_dir,
            postgres,
            replicas,
            control_addr,
            discovery,
            admin_token,
            jwt_secret,
            rate_limit_trust_forwarded_for,
            links,
        } => {
            up(UpArgs {
                ports,
                data_dir,
                postgres,
                replicas: replicas.unwrap_or_default(),
                control_addr,
                discovery,
                admin_token,
                jwt_secret,
                rate_limit_trust_forwarded_for,
                links,
            })
            .await
        }
        Command::Serve { service, args } => serve(&service, args).await,
        Command::NatsConfig { prefix } => {
            print!("{}", launcher::nats::config(&prefix));
            Ok(())
        }
        Command::Scenarios { dir, journeys } => list_scenarios(dir, journeys),
        Command::Run(args) => std::process::exit(loadgen::run::run(*args).await),
        Command::Console(args) => console(*args).await,
        Command::Receive(args) => loadgen::receive::receive(args).await,
        Command::Bench(args) => {
            print!("{}", load_engine::bench::bench(args).await?);
            Ok(())
        }
    }
}
