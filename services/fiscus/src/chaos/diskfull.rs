//! The campaign's full disk: one member's ledger directory on a filesystem
//! of its own (a tmpfs), whose size the campaign shrinks to what is used
//! plus a sliver, and grows again. The ledger-store must then pause its
//! commits (its free-space margin, `min_free_bytes`, is larger than the
//! sliver), say so on `/readyz`, and go on when the space returns.
//!
//! Mounting needs root (util-linux `mount` refuses `-t` to anyone else);
//! without it the campaign says that full disks were not tested.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The tmpfs's size while the disk is not full: an upper bound only (a
/// tmpfs takes memory for what is written, nothing more).
const ROOMY: &str = "64g";
/// Free space left when the disk is "full": under the ledger-store's
/// default margin (256 MiB), so commits pause before the engine fails.
const SLIVER_BYTES: u64 = 32 * 1024 * 1024;

/// A member's ledger directory on its own tmpfs; unmounted on drop.
pub(crate) struct SmallDisk {
    pub member: String,
    dir: PathBuf,
    mounted: bool,
}

fn run(args: &[&str], dir: &Path) -> Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .arg(dir)
        .output()
        .with_context(|| format!("running {}", args[0]))?;
    if !out.status.success() {
        bail!(
            "{} {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl SmallDisk {
    /// Mounts a tmpfs on `dir` (the member's ledger directory, not yet
    /// opened by any process), keeping what it held.
    pub(crate) fn mount(member: &str, dir: &Path) -> Result<Self> {
        let aside = dir.with_extension("before-tmpfs");
        let had = dir.exists();
        if had {
            std::fs::rename(dir, &aside)?;
        }
        std::fs::create_dir_all(dir)?;
        let opts = format!("size={ROOMY},mode=0700");
        if let Err(e) = run(&["mount", "-t", "tmpfs", "-o", &opts, "tmpfs"], dir) {
            std::fs::remove_dir(dir)?;
            if had {
                std::fs::rename(&aside, dir)?;
            }
            return Err(e);
        }
        let disk = Self {
            member: member.to_owned(),
            dir: dir.to_owned(),
            mounted: true,
        };
        if had {
            if let Err(e) = copy_tree(&aside, dir) {
                // Put the directory back as it was.
                disk.unmount(false)?;
                std::fs::remove_dir(dir)?;
                std::fs::rename(&aside, dir)?;
                return Err(e.context("copying the ledger directory onto the tmpfs"));
            }
            std::fs::remove_dir_all(&aside)?;
        }
        Ok(disk)
    }

    fn stat(&self) -> Result<(u64, u64)> {
        let s = nix::sys::statvfs::statvfs(&self.dir)?;
        let frag = s.fragment_size();
        Ok((s.blocks() * frag, s.blocks_free() * frag))
    }

    /// Shrinks the filesystem to what is used plus a sliver. Returns the
    /// bytes now free.
    pub(crate) fn fill(&self) -> Result<u64> {
        let (size, free) = self.stat()?;
        let used = size - free;
        let opts = format!("remount,size={}", used + SLIVER_BYTES);
        run(&["mount", "-o", &opts], &self.dir)?;
        Ok(self.stat()?.1)
    }

    /// Gives the space back.
    pub(crate) fn free(&self) -> Result<()> {
        run(
            &["mount", "-o", &format!("remount,size={ROOMY}")],
            &self.dir,
        )
    }

    /// Moves the store back onto the disk it came from (`keep`, for
    /// `--keep-data`) and unmounts. Call with every process stopped. On a
    /// failure the mount stays (and is let go of lazily when dropped).
    pub(crate) fn unmount(mut self, keep: bool) -> Result<()> {
        if keep {
            let aside = self.dir.with_extension("tmpfs-copy");
            copy_tree(&self.dir, &aside)?;
            run(&["umount"], &self.dir)?;
            self.mounted = false;
            std::fs::remove_dir(&self.dir)?;
            std::fs::rename(&aside, &self.dir)?;
        } else {
            run(&["umount"], &self.dir)?;
            self.mounted = false;
        }
        Ok(())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if self.mounted {
            // Not unmounted in order (a campaign that could not start, or an
            // unmount that failed): let go of the mount when nothing uses it.
            let _ = run(&["umount", "-l"], &self.dir);
        }
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}
