//! One child process with its output in files, signals sent with `kill(1)`, and its memory
//! read from `/proc`.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A signal for [`ManagedProcess::signal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Graceful stop.
    Term,
    /// Graceful stop (Ctrl-C).
    Int,
    /// Immediate death, nothing flushed.
    Kill,
    /// Freeze.
    Stop,
    /// Thaw.
    Cont,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Int => "INT",
            Signal::Kill => "KILL",
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
        }
    }
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`, KiB.
    pub rss_kib: u64,
    /// `VmHWM` (peak resident set), KiB.
    pub peak_kib: u64,
}

/// Reads [`Memory`] of `pid`; `None` when it is gone.
pub fn memory_of(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}

/// Sends `signal` to `pid` with `kill(1)`.
///
/// # Errors
/// `kill` could not run or failed (no such process).
pub fn send_signal(pid: u32, signal: Signal) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{}", signal.name()))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -{} {pid} failed", signal.name());
    }
    Ok(())
}

/// How to start the process again (a restart repeats it).
#[derive(Clone, Debug)]
pub struct Spawn {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Variables set over the inherited environment (from which `IDBRIDGE__…` is removed).
    pub env: Vec<(String, String)>,
    /// `<dir>/<label>.stdout.log` and `.stderr.log`.
    pub log_dir: PathBuf,
    /// A name for logs and messages (`writer-0`).
    pub label: String,
}

impl Spawn {
    /// Where stdout goes.
    pub fn stdout_path(&self) -> PathBuf {
        self.log_dir.join(format!("{}.stdout.log", self.label))
    }
    /// Where stderr goes.
    pub fn stderr_path(&self) -> PathBuf {
        self.log_dir.join(format!("{}.stderr.log", self.label))
    }
}

fn append(path: &Path, banner: &str) -> anyhow::Result<File> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(file, "{banner}").with_context(|| format!("writing {}", path.display()))?;
    Ok(file)
}

/// A running (or exited) child; killed on drop if still running.
#[derive(Debug)]
pub struct ManagedProcess {
    spec: Spawn,
    child: Child,
    starts: u32,
    exit: Option<ExitStatus>,
}

impl ManagedProcess {
    /// Starts it, output appended to its log files.
    ///
    /// # Errors
    /// The log files cannot be opened or the program cannot start.
    pub fn spawn(spec: Spawn) -> anyhow::Result<Self> {
        let child = start(&spec, 1)?;
        Ok(Self {
            spec,
            child,
            starts: 1,
            exit: None,
        })
    }

    /// Starts it with stdout piped to the caller (stderr still to its file).
    ///
    /// # Errors
    /// As [`spawn`](Self::spawn).
    pub fn spawn_piped(spec: Spawn) -> anyhow::Result<(Self, std::process::ChildStdout)> {
        let mut command = command(&spec);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(append(&spec.stderr_path(), "--- start 1 ---")?);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", spec.program.display()))?;
        let stdout = child
            .stdout
            .take()
            .context("the child's stdout is not piped")?;
        Ok((
            Self {
                spec,
                child,
                starts: 1,
                exit: None,
            },
            stdout,
        ))
    }

    /// Its label.
    pub fn label(&self) -> &str {
        &self.spec.label
    }

    /// How it was started.
    pub fn spec(&self) -> &Spawn {
        &self.spec
    }

    /// Its pid (of the current incarnation).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its memory, while it runs.
    pub fn memory(&self) -> Option<Memory> {
        memory_of(self.pid())
    }

    /// The exit status once it exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        self.try_exit().is_none()
    }

    /// Sends `signal`.
    ///
    /// # Errors
    /// It already exited, or `kill` failed.
    pub fn signal(&mut self, signal: Signal) -> anyhow::Result<()> {
        if !self.running() {
            bail!("{} already exited", self.spec.label);
        }
        send_signal(self.pid(), signal)
    }

    /// Waits for it to exit.
    ///
    /// # Errors
    /// It still runs after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return Ok(status);
            }
            if Instant::now() >= end {
                bail!("{} did not exit within {timeout:?}", self.spec.label);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; returns the exit status.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.try_exit() {
            return Some(status);
        }
        let _ = send_signal(self.pid(), Signal::Term);
        match self.wait_exit(grace) {
            Ok(status) => Some(status),
            Err(_) => {
                let _ = self.child.kill();
                let status = self.child.wait().ok();
                self.exit = status;
                status
            }
        }
    }

    /// Starts it again with the same command (it must have exited).
    ///
    /// # Errors
    /// It still runs, or it cannot start.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.running() {
            bail!("{} still runs; stop or kill it first", self.spec.label);
        }
        self.starts += 1;
        self.child = start(&self.spec, self.starts)?;
        self.exit = None;
        Ok(())
    }

    /// The last `lines` lines of its stderr and stdout files.
    pub fn tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for path in [self.spec.stdout_path(), self.spec.stderr_path()] {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let from = all.len().saturating_sub(lines);
            out.push_str(&format!("==> {} <==\n", path.display()));
            for line in &all[from..] {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn command(spec: &Spawn) -> Command {
    let mut command = Command::new(&spec.program);
    command.args(&spec.args);
    for (name, _) in std::env::vars_os() {
        if name
            .to_str()
            .is_some_and(|n| n.to_ascii_uppercase().starts_with("IDBRIDGE__"))
        {
            command.env_remove(name);
        }
    }
    command.envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    command
}

fn start(spec: &Spawn, n: u32) -> anyhow::Result<Child> {
    let banner = format!("--- start {n} ---");
    let mut command = command(spec);
    command
        .stdin(Stdio::null())
        .stdout(append(&spec.stdout_path(), &banner)?)
        .stderr(append(&spec.stderr_path(), &banner)?);
    command
        .spawn()
        .with_context(|| format!("starting {}", spec.program.display()))
}
