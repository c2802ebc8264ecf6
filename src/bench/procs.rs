//! What processes cost, read from `/proc`: CPU time (user and system) and
//! peak resident memory, by process and for every `postgres` process of
//! the machine (the server's backends).

use std::collections::BTreeMap;
use std::path::Path;

/// CPU seconds spent so far, user and system.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cpu {
    pub user: f64,
    pub system: f64,
}

impl Cpu {
    pub fn total(self) -> f64 {
        self.user + self.system
    }

    pub fn since(self, earlier: Cpu) -> Cpu {
        Cpu {
            user: (self.user - earlier.user).max(0.0),
            system: (self.system - earlier.system).max(0.0),
        }
    }

    fn add(&mut self, other: Cpu) {
        self.user += other.user;
        self.system += other.system;
    }
}

/// Clock ticks per second of `/proc/*/stat`'s times: USER_HZ, which the
/// kernel fixes at 100 for every interface it exports to user space.
fn ticks_per_second() -> f64 {
    100.0
}

/// The command name and CPU times of a `/proc/<pid>/stat` line.
pub fn parse_stat(line: &str) -> Option<(&str, Cpu)> {
    // `pid (comm) state ...`: comm may hold spaces and parentheses, so
    // split at the last ')'.
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let comm = line.get(open + 1..close)?;
    let fields: Vec<&str> = line.get(close + 1..)?.split_whitespace().collect();
    // After comm: state is field 3 of the man page, utime 14, stime 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let ticks = ticks_per_second();
    Some((
        comm,
        Cpu {
            user: utime / ticks,
            system: stime / ticks,
        },
    ))
}

/// The CPU times of process `pid` (zero once it is gone).
pub fn cpu(pid: u32) -> Cpu {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|line| parse_stat(&line).map(|(_, cpu)| cpu))
        .unwrap_or_default()
}

/// This process's CPU times.
pub fn own_cpu() -> Cpu {
    cpu(std::process::id())
}

/// The CPU times of every process named `name`, by pid.
pub fn cpu_of_named(name: &str) -> BTreeMap<u32, Cpu> {
    let mut found = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(line) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((comm, cpu)) = parse_stat(&line)
            && comm == name
        {
            found.insert(pid, cpu);
        }
    }
    found
}

/// The CPU spent by processes named `name` between two readings of
/// [`cpu_of_named`]: what the ones alive at both spent, plus everything
/// the ones that started in between spent.
pub fn spent_by_named(before: &BTreeMap<u32, Cpu>, after: &BTreeMap<u32, Cpu>) -> Cpu {
    let mut spent = Cpu::default();
    for (pid, now) in after {
        spent.add(now.since(before.get(pid).copied().unwrap_or_default()));
    }
    spent
}

/// The peak resident set of process `pid` (`VmHWM`), in bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    status_field(
        &Path::new("/proc").join(pid.to_string()).join("status"),
        "VmHWM:",
    )
}

fn status_field(path: &Path, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let ticks = ticks_per_second();
        let line = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 5 1000 10 18446744073709551615";
        let (comm, cpu) = parse_stat(line).unwrap();
        assert_eq!(comm, "a (b) c");
        assert_eq!(cpu.user, 250.0 / ticks);
        assert_eq!(cpu.system, 75.0 / ticks);
        assert_eq!(parse_stat("4242 (x) S 1"), None);
    }

    #[test]
    fn this_process_is_found_and_spends_time() {
        let started = own_cpu();
        let mut x = 0u64;
        while own_cpu().total() <= started.total() {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(peak_rss(std::process::id()).unwrap() > 1024 * 1024);
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        let named = cpu_of_named(comm.trim());
        assert!(named.contains_key(&std::process::id()));
        let mut later = named.clone();
        later.insert(
            u32::MAX,
            Cpu {
                user: 1.0,
                system: 2.0,
            },
        );
        let spent = spent_by_named(&named, &later);
        assert_eq!(spent.total(), 3.0);
    }
}
