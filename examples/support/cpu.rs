//! The benchmarks' CPU figures: processor time used by a process, and by the whole machine, from /proc.

/// User and system time `process` (a pid, or `self`) has used so far, in seconds.
#[allow(dead_code)]
pub fn process_seconds(process: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at the state, field 3;
    // utime and stime are fields 14 and 15, in clock ticks (100 a second on Linux).
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The machine's cores' time so far, in seconds: `busy` (everything this machine ran, but idle,
/// I/O wait and steal), `steal` (time a virtual machine's hypervisor gave to someone else while
/// this machine had work), and `all`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MachineTime {
    pub busy: f64,
    pub steal: f64,
    pub all: f64,
}

impl MachineTime {
    pub fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().next()?;
        let ticks: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .filter_map(|t| t.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal
        let [user, nice, system, idle, iowait, irq, softirq, steal] = ticks.try_into().ok()?;
        Some(Self {
            busy: (user + nice + system + irq + softirq) / 100.0,
            steal: steal / 100.0,
            all: (user + nice + system + idle + iowait + irq + softirq + steal) / 100.0,
        })
    }

    pub fn since(self, before: Self) -> Self {
        Self {
            busy: self.busy - before.busy,
            steal: self.steal - before.steal,
            all: self.all - before.all,
        }
    }

    /// The share of the cores' time the hypervisor took, as a percentage.
    pub fn steal_percent(&self) -> f64 {
        if self.all > 0.0 {
            100.0 * self.steal / self.all
        } else {
            0.0
        }
    }
}
