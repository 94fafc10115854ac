//! `loadgen up` as a user starts it (the README's way to run the system),
//! for the tests that drive it as a process: its output, its control API,
//! its children.

use std::time::Duration;

/// `loadgen up` (the README's way to run the system), kept until dropped.
pub struct Up {
    pub child: tokio::process::Child,
    pub gateway: String,
    pub control: String,
    pub admin_token: String,
    /// Every line it has printed so far (its own and its services').
    pub output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    pub dir: tempfile::TempDir,
}

impl Up {
    /// `loadgen up --ports auto --data-dir <temp>`: the README's command
    /// with free ports instead of 8080–8084, so the test runs beside
    /// anything else. Reads the addresses from what it prints, and the
    /// admin token from the file it says it wrote.
    pub async fn start() -> Self {
        Self::start_in(tempfile::tempdir().unwrap()).await
    }

    /// The same, on the data directory `dir` (a second start of it).
    pub async fn start_in(dir: tempfile::TempDir) -> Self {
        use tokio::io::AsyncBufReadExt as _;
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(["up", "--ports", "auto", "--data-dir"])
            .arg(dir.path())
            .env_remove("ADMIN_TOKEN")
            .env_remove("JWT_SECRET")
            .env_remove("RATE_LIMIT_TRUST_FORWARDED_FOR")
            .env("OTEL_SDK_DISABLED", "true")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("loadgen up starts");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut gateway, mut control) = (None, None);
        let read = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                output.lock().unwrap().push(line.clone());
                let words: Vec<&str> = line.split_whitespace().collect();
                if words.first() == Some(&"gateway")
                    && words.get(1).is_some_and(|w| w.starts_with("http://"))
                {
                    gateway = Some(words[1].to_owned());
                }
                // `control API: curl -s -H "authorization: ..." http://.../services`
                if line.contains("control API: curl -s ")
                    && let Some(url) = line.split_whitespace().last()
                {
                    control = Some(url.trim_end_matches("/services").to_owned());
                }
                if line.contains("Ctrl-C stops everything") {
                    break;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(120), read)
            .await
            .expect("loadgen up starts within two minutes");
        // Keep draining its output so it never blocks on a full pipe.
        let kept = output.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                kept.lock().unwrap().push(line);
            }
        });
        let admin_token = std::fs::read_to_string(dir.path().join("admin-token"))
            .expect("loadgen up wrote its admin token")
            .trim()
            .to_owned();
        Self {
            child,
            gateway: gateway.expect("loadgen up printed the gateway's address"),
            control: control.expect("loadgen up printed the control API's address"),
            admin_token,
            output,
            dir,
        }
    }

    /// Ctrl-C, as an operator stops it, and waits until it has stopped
    /// its services; gives back its data directory.
    pub async fn interrupt(mut self) -> tempfile::TempDir {
        let pid = nix::unistd::Pid::from_raw(self.child.id().unwrap() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("loadgen up stops within a minute of Ctrl-C")
            .unwrap();
        self.dir
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }
}

/// The processes `pid` started that run a service (`loadgen serve`), by
/// what the kernel lists as its children.
pub fn service_children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let children = std::fs::read_to_string(task.unwrap().path().join("children")).unwrap();
        for child in children.split_whitespace() {
            let child: u32 = child.parse().unwrap();
            let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
            if cmdline.split(|b| *b == 0).any(|arg| arg == b"serve") {
                found.push(child);
            }
        }
    }
    found
}

/// Whether `pid` still runs (a zombie waiting for its new parent to reap
/// it has stopped).
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The state follows the parenthesised command name.
            stat.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next())
        })
        .is_some_and(|state| state != 'Z' && state != 'X')
}
