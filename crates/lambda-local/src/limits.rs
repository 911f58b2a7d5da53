//! Lambda's resource limits for each execution environment, enforced by the kernel's cgroup (v1)
//! controllers: a CPU share in proportion to the memory size (AWS: 1,769 MB is the equivalent of
//! one vCPU), and the memory size as a hard limit over all of the environment's processes.
//!
//! Where the controllers cannot be used (not root, no cgroup v1 `cpu` and `memory` mounts), the
//! environment says so once and runs unlimited, and every record says `limits: "none"`.

use std::{
    fs::{self, File, OpenOptions},
    io,
    os::fd::{AsRawFd, RawFd},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use serde::{Deserialize, Serialize};

/// The memory size that buys one vCPU on Lambda.
pub const MB_PER_VCPU: u32 = 1769;
/// The CPU controller's accounting period; an environment may use its share of each.
const CPU_PERIOD_US: u64 = 100_000;
/// The kernel's smallest quota.
const MIN_CPU_QUOTA_US: u64 = 1_000;
/// Where the v1 controllers are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Every environment's cgroup lives under this directory of our own cgroup.
const PARENT: &str = "lambda-local";

/// Which limits an invocation ran under, as its record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limits {
    /// The CPU share and the memory limit of its memory size, by cgroup v1.
    Cgroup,
    /// None: the environment had a whole host and unlimited memory.
    None,
}

/// The fraction of one CPU a function of `memory_mb` gets (above 1,769 MB, more than one).
pub fn cpu_share(memory_mb: u32) -> f64 {
    cpu_quota_us(memory_mb) as f64 / CPU_PERIOD_US as f64
}

fn cpu_quota_us(memory_mb: u32) -> u64 {
    (CPU_PERIOD_US * u64::from(memory_mb) / u64::from(MB_PER_VCPU)).max(MIN_CPU_QUOTA_US)
}

/// The directories under which environments' cgroups are made, one per controller.
#[derive(Debug)]
pub(crate) struct Controllers {
    cpu: PathBuf,
    memory: PathBuf,
}

impl Controllers {
    /// The writable `cpu` and `memory` controllers under this process's own cgroups, or why
    /// there are none. Leftovers of an earlier run that died are removed on the way.
    pub(crate) fn detect() -> Result<Self, String> {
        let own = fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let parent = |controller: &str| -> Result<PathBuf, String> {
            let mount = Path::new(CGROUP_ROOT).join(controller);
            if !mount.join("tasks").exists() {
                return Err(format!(
                    "no cgroup v1 '{controller}' controller at {} (cgroup v2 alone is not \
                     supported yet)",
                    mount.display()
                ));
            }
            // Lines are `id:controllers:path`.
            let own_path = own
                .lines()
                .filter_map(|line| {
                    let mut fields = line.splitn(3, ':').skip(1);
                    fields.next().zip(fields.next())
                })
                .find(|(controllers, _)| controllers.split(',').any(|c| c == controller))
                .map_or("/", |(_, path)| path);
            let parent = mount.join(own_path.trim_start_matches('/')).join(PARENT);
            fs::create_dir_all(&parent).map_err(|e| {
                format!(
                    "cannot create {}: {e} (the limits need root)",
                    parent.display()
                )
            })?;
            remove_leftovers(&parent);
            Ok(parent)
        };
        Ok(Self {
            cpu: parent("cpu")?,
            memory: parent("memory")?,
        })
    }

    /// A new environment's cgroups, limited for `memory_mb`, named `name` (unique in this
    /// process; the process id is added).
    pub(crate) fn create(&self, name: &str, memory_mb: u32) -> io::Result<Cgroup> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let name = format!(
            "{}.{}.{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut cgroup = Cgroup {
            dirs: Vec::new(),
            procs: Vec::new(),
        };
        for parent in [&self.cpu, &self.memory] {
            let dir = parent.join(&name);
            fs::create_dir(&dir)?;
            cgroup.dirs.push(dir);
        }
        let [cpu, memory] = [&cgroup.dirs[0], &cgroup.dirs[1]];
        fs::write(cpu.join("cpu.cfs_period_us"), CPU_PERIOD_US.to_string())?;
        fs::write(
            cpu.join("cpu.cfs_quota_us"),
            cpu_quota_us(memory_mb).to_string(),
        )?;
        let bytes = (u64::from(memory_mb) << 20).to_string();
        fs::write(memory.join("memory.limit_in_bytes"), &bytes)?;
        // With swap accounting, swap may not extend the limit either (Lambda has none).
        let swap = memory.join("memory.memsw.limit_in_bytes");
        if swap.exists() {
            fs::write(swap, &bytes)?;
        }
        for dir in &cgroup.dirs {
            let procs = OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))?;
            cgroup.procs.push(procs);
        }
        Ok(cgroup)
    }
}

/// One environment's cgroups. Dropping it kills what is left in them and removes them.
#[derive(Debug)]
pub(crate) struct Cgroup {
    dirs: Vec<PathBuf>,
    /// Open `cgroup.procs` files, for the new process to join before it runs the function.
    procs: Vec<File>,
}

impl Cgroup {
    /// Descriptors the child writes `0` ("myself") to between fork and exec, so it and
    /// everything it starts are limited from the first instruction.
    pub(crate) fn join_fds(&self) -> Vec<RawFd> {
        self.procs.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// Closes the `cgroup.procs` files once the process has joined.
    pub(crate) fn joined(&mut self) {
        self.procs.clear();
    }

    /// Whether the kernel's OOM killer killed a process of the environment.
    pub(crate) fn oom_killed(&self) -> bool {
        let Some(memory) = self.dirs.get(1) else {
            return false;
        };
        fs::read_to_string(memory.join("memory.oom_control"))
            .ok()
            .and_then(|control| {
                control
                    .lines()
                    .find_map(|line| line.strip_prefix("oom_kill "))
                    .and_then(|count| count.trim().parse::<u64>().ok())
            })
            .is_some_and(|count| count > 0)
    }
}

/// Joins the cgroups whose `cgroup.procs` descriptors are given. Runs in the child between fork
/// and exec, so it only uses async-signal-safe calls.
pub(crate) fn join(fds: &[RawFd]) -> io::Result<()> {
    for &fd in fds {
        // SAFETY: write(2) from a valid buffer to a descriptor the parent opened.
        if unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) } != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.procs.clear();
        let dirs = std::mem::take(&mut self.dirs);
        // A cgroup can only be removed once its processes are gone; an environment's processes
        // are being killed when it is dropped, and a process it started may outlive the group
        // signal, so what is left is killed here and removal retried for a moment.
        std::thread::spawn(move || {
            for _ in 0..200 {
                dirs.iter().for_each(|dir| kill_members(dir));
                if dirs
                    .iter()
                    .all(|dir| fs::remove_dir(dir).is_ok() || !dir.exists())
                {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
    }
}

fn kill_members(dir: &Path) {
    let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) else {
        return;
    };
    for pid in procs
        .lines()
        .filter_map(|pid| pid.trim().parse::<i32>().ok())
    {
        // SAFETY: kill(2) on a process of a cgroup this environment created.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// Removes the cgroups of environments whose lambda-local process is gone.
fn remove_leftovers(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let owner = name
            .to_str()
            .and_then(|name| name.split('.').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            kill_members(&entry.path());
            let _ = fs::remove_dir(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_share_is_proportional_to_memory_with_one_vcpu_at_1769_mb() {
        assert_eq!(cpu_quota_us(1769), CPU_PERIOD_US);
        assert_eq!(cpu_quota_us(128), 7_235);
        assert!((cpu_share(128) - 0.072).abs() < 0.001);
        assert!((cpu_share(3008) - 1.70).abs() < 0.01);
    }
}
