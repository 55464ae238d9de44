//! `nanobanana` as a process of its own (`serve`, `worker`), for the tests that kill or signal
//! it. Environment from `TestApp::vars`, so a process sees what the in-process service sees.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use super::wait::WAIT;

/// This build's `nanobanana` binary, copied once per test run: a target directory shared with
/// other branches may have its `nanobanana` replaced by another build while the tests run.
pub fn binary() -> &'static Path {
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let prefix = "nanobanana-worker-test-";
        // Copies of runs that have ended go.
        for entry in std::fs::read_dir(std::env::temp_dir()).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(prefix) {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        let copy = std::env::temp_dir().join(format!("{prefix}{}", std::process::id()));
        std::fs::copy(env!("CARGO_BIN_EXE_nanobanana"), &copy).expect("copy the nanobanana binary");
        let help = std::process::Command::new(&copy).arg("--help").output().expect("nanobanana --help");
        let help = String::from_utf8_lossy(&help.stdout);
        let commands: &[&str] = if cfg!(feature = "sandbox") { &["worker", "sandbox"] } else { &["worker"] };
        for command in commands {
            assert!(
                help.contains(command),
                "the nanobanana binary has no `{command}` command: another build replaced it; run the tests again"
            );
        }
        copy
    })
}

/// A child `nanobanana`, killed (SIGKILL) when dropped, so a failing test leaves none behind.
pub struct Process {
    pub child: tokio::process::Child,
}

impl Process {
    pub(super) fn spawn(command: &mut tokio::process::Command) -> Self {
        let child = command.kill_on_drop(true).spawn().expect("start nanobanana");
        Self { child }
    }

    /// SIGKILL, and waits until the process is gone.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("kill -9");
        self.child.wait().await.expect("the process is gone");
    }

    /// SIGTERM; its exit status, within `WAIT`.
    pub async fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().expect("a running process").to_string();
        let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
        assert!(sent.success());
        tokio::time::timeout(WAIT, self.child.wait()).await.expect("exits in time").expect("exit status")
    }
}
