//! CPU time of processes from `/proc/<pid>/stat` (user + system), so a run can say where its
//! CPU went per event: each service process, every PostgreSQL backend together, RabbitMQ's
//! Erlang VM, the simulator and this benchmark process.

use std::collections::BTreeMap;

/// Linux's `USER_HZ`: `/proc/<pid>/stat` counts CPU time in 1/100 s on every architecture
/// Linux runs on (`sysconf(_SC_CLK_TCK)`).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds used so far by one process, `None` when it is gone.
fn seconds_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces; fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) … utime(11) stime(12).
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some((user + system) as f64 / TICKS_PER_SECOND)
}

/// CPU seconds of every process whose command name (`/proc/<pid>/comm`) is `comm`, per pid
/// (PostgreSQL runs one process per connection).
fn seconds_of_each(comm: &str) -> BTreeMap<u32, f64> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return BTreeMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == comm)
        })
        .filter_map(|pid| Some((pid, seconds_of(pid)?)))
        .collect()
}

/// CPU seconds per label at one instant, and per PostgreSQL process.
#[derive(Clone, Debug, Default)]
pub struct Sample(BTreeMap<String, f64>, BTreeMap<u32, f64>);

/// Samples the labelled processes, PostgreSQL (all `postgres` processes), RabbitMQ
/// (`beam.smp`) and this process.
pub fn sample(processes: &[(String, u32)]) -> Sample {
    let mut all = BTreeMap::new();
    for (label, pid) in processes {
        if let Some(s) = seconds_of(*pid) {
            all.insert(label.clone(), s);
        }
    }
    let postgres = seconds_of_each("postgres");
    all.insert(
        "PostgreSQL (all backends)".to_owned(),
        postgres.values().sum(),
    );
    all.insert(
        "RabbitMQ (beam.smp)".to_owned(),
        seconds_of_each("beam.smp").values().sum(),
    );
    if let Some(s) = seconds_of(std::process::id()) {
        all.insert("this benchmark".to_owned(), s);
    }
    Sample(all, postgres)
}

impl Sample {
    /// CPU seconds used from `earlier` to `self`, per label, largest first. PostgreSQL
    /// backends that ended between the samples are not counted (the services' pools keep
    /// theirs open).
    pub fn since(&self, earlier: &Sample) -> Vec<(String, f64)> {
        let mut used: Vec<(String, f64)> = self
            .0
            .iter()
            .map(|(label, now)| {
                let before = earlier.0.get(label).copied().unwrap_or(0.0);
                (label.clone(), (now - before).max(0.0))
            })
            .collect();
        used.sort_by(|a, b| b.1.total_cmp(&a.1));
        used
    }

    /// CPU seconds of each PostgreSQL process from `earlier` to `self`, by pid (processes
    /// that ended between the samples are not counted; ones started since count whole).
    pub fn postgres_since(&self, earlier: &Sample) -> BTreeMap<u32, f64> {
        self.1
            .iter()
            .map(|(pid, now)| {
                let before = earlier.1.get(pid).copied().unwrap_or(0.0);
                (*pid, (now - before).max(0.0))
            })
            .collect()
    }
}

/// PostgreSQL's CPU per client (`application_name`, which every service sets to
/// `idbridge-<service>`) or background process, largest first: `owners` maps a server
/// process id to its owner, as `pg_stat_activity` names it.
pub fn postgres_by_owner(
    per_pid: &BTreeMap<u32, f64>,
    owners: &BTreeMap<u32, String>,
) -> Vec<(String, f64)> {
    let mut by_owner: BTreeMap<String, f64> = BTreeMap::new();
    for (pid, seconds) in per_pid {
        let owner = owners
            .get(pid)
            .cloned()
            .unwrap_or_else(|| "postmaster, logger and processes started since".to_owned());
        *by_owner.entry(owner).or_default() += seconds;
    }
    let mut all: Vec<(String, f64)> = by_owner.into_iter().collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1));
    all
}

/// CPU milliseconds per event of the PostgreSQL processes working for `owner`, in a list of
/// [`postgres_by_owner`] over `events` events; `None` when none did.
pub fn owner_ms_per_event(by_owner: &[(String, f64)], owner: &str, events: usize) -> Option<f64> {
    by_owner
        .iter()
        .find(|(name, _)| name == owner)
        .map(|(_, seconds)| seconds * 1000.0 / events.max(1) as f64)
}
