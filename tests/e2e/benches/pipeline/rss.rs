//! Memory of a process from `/proc/<pid>/status`: `VmHWM` (peak resident set), `VmRSS`
//! (resident set now) and its parts `RssAnon` (heap, stacks) and `RssFile` (mapped pages of
//! the executable and libraries), in KiB.

/// `(VmHWM, VmRSS, RssAnon, RssFile)` in KiB, `None` when the process is gone.
pub fn of(pid: u32) -> Option<(u64, u64, u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
    };
    Some((
        field("VmHWM:")?,
        field("VmRSS:")?,
        field("RssAnon:")?,
        field("RssFile:")?,
    ))
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}
